"""Scan speed: photos/s and faces found on the sample library and on generated large photos.

    python benchmarks/bench_scan.py [--large 8] [--configs 1024 1024:40 640]

The large photos are 4000x3000 JPEGs: a smooth random background with 1-3 faces from the sample
photos pasted at sizes between 120 and 700 pixels, so the number of faces to find is known.
Each configuration scans into a fresh database with the bundled model (loaded once, not timed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from photo_sorter import faces, imaging, scan  # noqa: E402
from photo_sorter.model import AttributeModel  # noqa: E402
from photo_sorter.store import open_engine  # noqa: E402

SAMPLES = REPO / "resources" / "sample_photos"
DONORS = ["obama_official_portrait_2012.jpg", "biden_blue_room_2010_crop.jpg",
          "astronaut_eileen_collins_nasa.png", "obama_joint_session_2009.jpg"]


def face_patches() -> list[Image.Image]:
    """Each donor's face with a margin (head and some shoulders), as pasted into large photos."""
    patches = []
    for name in DONORS:
        photo = imaging.open_photo(SAMPLES / name)
        x, y, w, h = faces.detect(photo.image(1024), scale=photo.scale_of(photo.image(1024)))[0].box
        m = 0.6 * max(w, h)
        patches.append(photo.image().crop((int(x - m), int(y - m), int(x + w + m), int(y + h + m))))
    return patches


def make_large(folder: Path, count: int, seed: int = 0) -> int:
    """Write `count` 4000x3000 photos; returns the number of faces pasted."""
    rng = np.random.default_rng(seed)
    patches = face_patches()
    pasted = 0
    for i in range(count):
        noise = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        canvas = Image.fromarray(noise).resize((4000, 3000), Image.Resampling.BICUBIC)
        cells = rng.permutation(6)[: rng.integers(1, 4)]  # 3x2 grid, one face per cell at most
        for cell in cells:
            patch = patches[rng.integers(len(patches))]
            face_px = int(rng.integers(120, 700))  # the face box is 1/2.2 of the patch
            size = int(face_px * 2.2)
            patch = patch.resize((size, int(size * patch.height / patch.width)), Image.Resampling.LANCZOS)
            cx, cy = (cell % 3) * 1333 + 60, (cell // 3) * 1500 + 40
            canvas.paste(patch.crop((0, 0, min(size, 1270), min(patch.height, 1440))), (cx, cy))
            pasted += 1
        canvas.save(folder / f"large_{i:03d}.jpg", quality=90)
    return pasted


def run(folder: Path, model, options: scan.ScanOptions) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(Path(tmp) / "bench.db")
        start = time.perf_counter()
        summary = scan.scan(engine, [folder], model=model, options=options)
        seconds = time.perf_counter() - start
        engine.dispose()
    return {"photos": summary["photos_seen"], "faces": summary["faces"],
            "seconds": round(seconds, 2), "photos_per_s": round(summary["photos_seen"] / seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large", type=int, default=8, help="number of large photos to generate")
    parser.add_argument("--configs", nargs="+", default=["1024", "1024:40", "640"],
                        help="DETECT_SIZE[:MIN_FACE] settings to time on the large photos")
    args = parser.parse_args()
    model = AttributeModel.load()
    results = {"device": scan.device_name(),
               "sample_library": run(SAMPLES, model, scan.ScanOptions())}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["large_faces_pasted"] = make_large(folder, args.large)
        for config in args.configs:
            size, _, min_face = config.partition(":")
            options = scan.ScanOptions(detect_size=int(size), min_face=int(min_face) if min_face else None)
            results[f"large_detect_{config}"] = run(folder, model, options)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
