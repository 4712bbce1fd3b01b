"""Decode time per 12 MP photo by format: the header (imaging.open_photo) plus the detection copy
(long side 1024), as the scan does, for JPEG, HEIC, AVIF and DNG (embedded full-size JPEG preview,
and a half-size demosaic when there is none).

    nice -n 10 python benchmarks/bench_formats.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from photo_sorter import imaging  # noqa: E402
from raw_factory import make_dng  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {"load_before": round(os.getloadavg()[0], 1)}
    src = Image.open(REPO / "resources" / "sample_photos" / "obama_blue_room_2010_crop.jpg").convert("RGB")
    photo = src.resize((3000, 4000), Image.Resampling.BICUBIC).transpose(Image.Transpose.ROTATE_90)  # 4000x3000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {"JPEG": tmp / "a.jpg", "HEIC": tmp / "a.heic", "AVIF": tmp / "a.avif"}
        for path in files.values():
            photo.save(path, quality=85)
        files["DNG (preview)"] = make_dng(tmp / "a.dng", np.asarray(photo), photo)
        files["DNG (demosaic)"] = make_dng(tmp / "b.dng", np.asarray(photo), None)
        print(f"{'format':<16} {'MB':>6} {'header+1024 s':>14} {'full s':>8}")
        for name, path in files.items():
            small, full = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                opened = imaging.open_photo(path)
                opened.image(1024)
                small.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                imaging.open_photo(path).image()
                full.append(time.perf_counter() - t0)
            print(f"{name:<16} {path.stat().st_size / 1e6:6.1f} {statistics.median(small):14.3f} "
                  f"{statistics.median(full):8.3f}")
            results[name] = {"detect_copy_s": round(statistics.median(small), 3),
                             "full_s": round(statistics.median(full), 3)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
