"""Watched folders: latency from a file's creation to its stored faces, and a burst of new files
(how many scans, how long until all are stored), with the bundled model.

    nice -n 10 python benchmarks/bench_watch.py [--burst 1000]
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from photo_sorter import scan  # noqa: E402
from photo_sorter.model import AttributeModel  # noqa: E402
from photo_sorter.store import Face, Photo, open_engine, session_factory  # noqa: E402
from photo_sorter.watch import Watcher  # noqa: E402

PORTRAIT = REPO / "resources" / "sample_photos" / "obama_official_portrait_2012.jpg"


def wait(engine, stmt, target: int, timeout: float = 3600) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with session_factory(engine)() as s:
            if s.scalar(stmt) >= target:
                return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 1)
    model = AttributeModel.load()
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "photos"
        lib.mkdir()
        engine = open_engine(Path(tmp) / "library.db")
        shutil.copy(PORTRAIT, lib / "warm.jpg")
        scan.scan(engine, [lib], model=model)  # model traced once, as in a running app
        summaries = []
        watcher = Watcher(engine, [lib], model=model, on_scan=summaries.append).start()
        try:
            latencies = []
            for i in range(args.repeat):
                t0 = time.monotonic()
                shutil.copy(PORTRAIT, lib / f"portrait_{i}.jpg")
                latencies.append(wait(engine, select(func.count(Face.id)), i + 2) - t0)
            print("latency creation -> stored faces (s): " + ", ".join(f"{v:.2f}" for v in latencies))
            before = len(summaries)
            shade = Image.new("RGB", (640, 480), (90, 140, 200))
            t0 = time.monotonic()
            for i in range(args.burst):
                shade.save(lib / f"burst_{i:05d}.jpg", quality=80)
            written = time.monotonic() - t0
            done = wait(engine, select(func.count(Photo.id)), args.repeat + 1 + args.burst) - t0
            print(f"burst of {args.burst} new 640x480 files: written in {written:.1f} s, all stored "
                  f"{done:.1f} s after the first ({args.burst / done:.1f} files/s), in "
                  f"{len(summaries) - before} scan(s)")
            print(json.dumps({"load_before": load_before, "latency_s": [round(v, 2) for v in latencies],
                              "burst": args.burst, "burst_s": round(done, 1),
                              "burst_scans": len(summaries) - before}))
        finally:
            watcher.stop()


if __name__ == "__main__":
    main()
