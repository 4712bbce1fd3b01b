"""Rescan of an unchanged library: seconds, and files per second for the change check.

    python benchmarks/bench_rescan.py [--files 10000] [--identical] [--unchanged]

Generates --files small distinct JPEGs (--identical: all of one content, the worst case for
matching moves by hash) (16x12, too small to hold a face, so the first scan is
quick) in 100 folders, scans them once, then times, each in the same way as the CLI (model=None:
the active model's card and hash only, weights never loaded):
  - unchanged: a rescan where nothing changed (size and mtime decide; no file is read);
  - touched: a rescan after every file's mtime moved (content hashes decide; nothing re-decoded);
  - moved: a rescan after every folder was renamed (each file matched to its old row by hash).
--unchanged times the unchanged rescan only (the 100k-file target). The last line printed is
the JSON of the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from photo_sorter import scan  # noqa: E402
from photo_sorter.store import open_engine  # noqa: E402


def make_files(root: Path, count: int, seed: int = 0, identical: bool = False) -> None:
    rng = np.random.default_rng(seed)
    for i in range(count):
        if identical:
            rng = np.random.default_rng(seed)
        folder = root / f"album_{i % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        (folder / f"img_{i:06d}.jpg").write_bytes(buf.getvalue())


def timed_scan(engine, root: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    summary = scan.scan(engine, [root])
    return time.perf_counter() - start, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--identical", action="store_true", help="all files of one content")
    parser.add_argument("--unchanged", action="store_true", help="time the unchanged rescan only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "library"
        start = time.perf_counter()
        make_files(root, args.files, identical=args.identical)
        results = {"files": args.files, "identical": args.identical, "load_before": [round(v, 2) for v in os.getloadavg()],
                   "generate_seconds": round(time.perf_counter() - start, 1)}
        engine = open_engine(Path(tmp) / "library.db")
        seconds, first = timed_scan(engine, root)
        results["first_scan"] = {"seconds": round(seconds, 2), "new": first["photos_new"]}
        seconds, again = timed_scan(engine, root)
        assert again["photos_unchanged"] == args.files, again
        results["unchanged_rescan"] = {"seconds": round(seconds, 2),
                                       "files_per_s": round(args.files / seconds)}
        if args.unchanged:
            engine.dispose()
            results["load_after"] = [round(v, 2) for v in os.getloadavg()]
            print(json.dumps(results))
            return 0
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                st = os.stat(path)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        seconds, touched = timed_scan(engine, root)
        assert touched["photos_unchanged"] == args.files, touched
        results["touched_rescan"] = {"seconds": round(seconds, 2),
                                     "files_per_s": round(args.files / seconds)}
        for folder in sorted(root.iterdir()):
            folder.rename(folder.with_name("moved_" + folder.name))
        seconds, moved = timed_scan(engine, root)
        assert moved["photos_moved"] == args.files, moved
        results["moved_rescan"] = {"seconds": round(seconds, 2),
                                   "files_per_s": round(args.files / seconds)}
        engine.dispose()
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    results["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
