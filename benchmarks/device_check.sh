#!/usr/bin/env bash
# What this machine's accelerator (or CPU) gives photo_sorter, in under 5 minutes on a GPU machine:
# the device TensorFlow uses, scan photos/s on 12 MP photos (benchmarks/bench_scan.py, a few photos),
# attribute-model img/s at batch 64 and 256, and one short training epoch's img/s.
#
#   bash benchmarks/device_check.sh            # from the repository root
#   PHOTOS=4 TRAIN_IMAGES=1024 nice bash benchmarks/device_check.sh   # smaller, for a busy CPU
#
# The scan and training parts need CelebA at ../shared/celeba (they say so and are skipped
# without it). Each part has its own time limit, so the whole stays bounded.
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

echo "== training: one epoch of $TRAIN_IMAGES images (--init none, 96 px, no augmentation)"
if [ -f "$CELEBA/list_attr_celeba.txt" ]; then
    out=$(mktemp -d)
    TRAIN=$(timeout 150 python main.py --headless train --celeba "$CELEBA" --max-images "$TRAIN_IMAGES" --epochs 1 \
        --init none --augment none --out "$out/check.keras" --json | tail -1) TRAIN_IMAGES=$TRAIN_IMAGES python - <<'EOF' || echo "training failed or ran out of its 150 s"
import json, os
r, n = json.loads(os.environ["TRAIN"]), int(os.environ["TRAIN_IMAGES"])
print(f"{n / r['seconds']:.0f} img/s ({n} images in {r['seconds']} s, the validation pass included)")
EOF
    rm -rf "$out"
else
    echo "skipped: no CelebA at $CELEBA"
fi
echo "== $((SECONDS - started)) s in all"
