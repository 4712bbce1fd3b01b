"""Scan speed of a library where 30 % of the files are copies, against the same number of
distinct photos: a copy costs its hash, not a decode and detection.

Photos: the sample photos upscaled to a 3000-pixel long side, each distinct one with its own
grain (so its own content); copies sit in a second folder under other names.

    nice -n 10 python benchmarks/bench_copies.py [--photos 40] [--copies 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from photo_sorter import scan  # noqa: E402
from photo_sorter.model import AttributeModel  # noqa: E402
from photo_sorter.store import open_engine  # noqa: E402


def distinct_photos(folder: Path, count: int, rng) -> list[Path]:
    samples = sorted((REPO / "resources" / "sample_photos").glob("*.[jp][pn]g"))
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        im = Image.open(samples[i % len(samples)]).convert("RGB")
        im = im.resize((3000 * im.width // max(im.size), 3000 * im.height // max(im.size)))
        grain = rng.normal(0, 3, (im.height, im.width, 1))
        pixels = np.clip(np.asarray(im, np.float32) + grain, 0, 255).astype(np.uint8)
        paths.append(folder / f"photo_{i:03d}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def timed_scan(model, folder: Path, db: Path) -> dict:
    t0 = time.perf_counter()
    summary = scan.scan(open_engine(db), [folder], model=model)
    return {"seconds": round(time.perf_counter() - t0, 1), "copied": summary["photos_copied"],
            "new": summary["photos_new"], "faces": summary["faces"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--copies", type=float, default=0.3)
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 1)
    model = AttributeModel.load()
    n_copies = round(args.photos * args.copies)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain = distinct_photos(tmp / "plain" / "photos", args.photos, np.random.default_rng(0))
        with_copies = tmp / "copies"
        (with_copies / "photos").mkdir(parents=True)
        (with_copies / "backup").mkdir()
        for p in plain[: args.photos - n_copies]:
            shutil.copy(p, with_copies / "photos" / p.name)
        for i in range(n_copies):  # copies of the first photos, under other names
            shutil.copy(plain[i], with_copies / "backup" / f"copy_{i:03d}.jpg")
        scan.scan(open_engine(tmp / "warm.db"), [plain[0]], model=model)  # model traced once
        distinct = timed_scan(model, tmp / "plain", tmp / "plain.db")
        copied = timed_scan(model, with_copies, tmp / "copies.db")
    result = {"load_before": load_before, "files": args.photos, "copies": n_copies,
              "distinct": distinct, "with_copies": copied,
              "speedup": round(distinct["seconds"] / copied["seconds"], 2)}
    print(f"{args.photos} distinct photos: {distinct['seconds']} s; {args.photos - n_copies} + "
          f"{n_copies} copies: {copied['seconds']} s ({result['speedup']}x)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
