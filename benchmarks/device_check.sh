#!/usr/bin/env bash
# What this machine's accelerator (or CPU) gives photo_sorter, in under 5 minutes on a GPU machine:
# the device TensorFlow uses, scan photos/s on 12 MP photos (benchmarks/bench_scan.py, a few photos),
# attribute-model img/s at batch 64 and 256, and one training epoch's img/s.
#
#   bash benchmarks/device_check.sh            # from the repository root
#   PHOTOS=4 TRAIN_IMAGES=1024 nice bash benchmarks/device_check.sh   # smaller, for a busy CPU
#
# The scan part needs CelebA at ../shared/celeba (it composites its faces; skipped without it);
# training runs on random frames (no dataset, no cache build). Each part has its own time limit.
set -u
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
PHOTOS=${PHOTOS:-8}
TRAIN_IMAGES=${TRAIN_IMAGES:-4096}
CELEBA=${CELEBA:-../shared/celeba}
started=$SECONDS

echo "== device"
python - <<'EOF'
import os
from photo_sorter.model import device_name
from photo_sorter.workers import usable_cores
print(f"device: {device_name()}; usable cores: {usable_cores()}; load: {os.getloadavg()[0]:.1f}")
EOF

echo "== model img/s (bundled model, random frames)"
timeout 120 python - <<'EOF'
import time
import numpy as np
from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH, AttributeModel

model = AttributeModel.load()
for batch in (64, 256):
    frames = np.random.default_rng(0).integers(0, 256, (batch, FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
    model.predict(frames, batch_size=batch)  # traced once, not timed
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < 5:
        model.predict(frames, batch_size=batch)
        calls += 1
    print(f"batch {batch}: {calls * batch / (time.perf_counter() - start):.0f} img/s")
EOF

echo "== scan photos/s ($PHOTOS photos of 4000x3000)"
if [ -d "$CELEBA/img_align_celeba" ]; then
    BENCH=$(timeout 150 python benchmarks/bench_scan.py --photos "$PHOTOS" --size 4000x3000 --samples 1 --no-naive | tail -1) python - <<'EOF' || echo "scan bench failed or ran out of its 150 s"
import json, os
r = json.loads(os.environ["BENCH"])
o = r["ours"]
print(f"{o['photos_per_s']} photos/s with {o['workers']} worker(s) on {o['device']}, recall {o['recall']}, "
      f"peak RSS {o['peak_rss_with_workers_mb']} MB with the workers, load {r['load_before'][0]} -> {r['load_after'][0]}")
EOF
else
    echo "skipped: no CelebA at $CELEBA (the bench composites its faces)"
fi

echo "== training: one epoch of $TRAIN_IMAGES random frames (the app's network, 96 px, batch 64)"
TRAIN_IMAGES=$TRAIN_IMAGES timeout 150 python - <<'EOF' || echo "training failed or ran out of its 150 s"
import os, time
import numpy as np
from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH
from photo_sorter.training import build_model

n, batch = int(os.environ["TRAIN_IMAGES"]), 64
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (n, FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
y = rng.integers(0, 2, (n, 40)).astype(np.float32)
model = build_model(40)
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # traced once, not timed
start = time.perf_counter()
model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
seconds = time.perf_counter() - start
print(f"{n / seconds:.0f} img/s ({n} images in {seconds:.1f} s)")
EOF
echo "== $((SECONDS - started)) s in all"
