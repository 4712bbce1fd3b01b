"""Scan speed and face recall: the real scan against a naive pipeline, on the same generated photos.

    python benchmarks/bench_scan.py                 # 60 photos of 4000x3000 (naive: ~20 s a photo)
    python benchmarks/bench_scan.py --quick         # 4 photos of 2400x1800, under 2 minutes
    python benchmarks/bench_scan.py --no-naive --repeat 10   # peak RSS of the scan on 600 photos
    python benchmarks/bench_scan.py --photos 12 --no-naive --workers 1   # the scan in one process
    python benchmarks/bench_scan.py --small-faces   # faces from 25 px: recall per size bucket

The library (benchmarks/synthetic_library.py) is generated once per settings into --library
(default: a folder under the system temp dir) with its ground truth. Each pipeline runs in a fresh
process that first loads the model and the detector and runs them once (warm, as in the app), so
the timed part is the scan alone; that process's peak RSS is reported, and with worker processes
(--workers --processes) the peak of their sum with it (sampled every 0.2 s). Naive: full-resolution
decode, stock MTCNN on the full image, one model call and one DB commit per face. Ours: scan.scan
with ScanOptions (defaults unless --detect-size/--min-face). A face counts as found when a stored box's
centre lies within half the true width of the true centre and its width is 0.5-2x the true one.
The last line printed is the JSON of all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_library  # noqa: E402

RECALL_MIN_WIDTH = 80
SIZE_BUCKETS = (25, 40, 80, 200, 10**9)  # true face widths for recall per size: [25, 40), [40, 80), ...


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load() -> list[float]:
    """The 1/5/15-minute load averages: the machine is shared, so figures carry their load."""
    return [round(v, 2) for v in os.getloadavg()]


def _warm_model(detector=None):
    """The bundled model and the detector, loaded and run once (graph tracing is not timed)."""
    import numpy as np

    from photo_sorter import faces
    from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH, AttributeModel

    model = AttributeModel.load()
    model.predict(np.zeros((1, FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8))
    faces.detect(np.zeros((240, 320, 3), np.uint8), detector=detector)
    return model


def stock_detector():
    """mtcnn as shipped (networks run layer by layer, float64 input), with only the pyramid fix
    without which it raises (faces._scale_pyramid)."""
    import mtcnn.stages.stage_pnet
    from mtcnn import MTCNN

    from photo_sorter import faces

    mtcnn.stages.stage_pnet.build_scale_pyramid = faces._scale_pyramid
    return MTCNN(device="CPU:0")


def _sample_tree_rss(stop, peak: list) -> None:
    """The largest RSS sum of this process and its children seen until `stop` is set."""
    import psutil

    me = psutil.Process()
    while not stop.wait(0.2):
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], total)


def run_ours(folder: str, db: str, detect_size: int | None, min_face: int | None,
             workers: int | None = None, processes: bool = False) -> dict:
    """In a fresh process: the real scan, timed after warm-up (worker start-up included)."""
    import threading

    from photo_sorter import scan
    from photo_sorter.store import open_engine

    model = _warm_model()
    warm_rss = _peak_rss_mb()
    options = scan.ScanOptions(min_face=min_face, workers=workers, processes=processes)
    if detect_size:
        options.detect_size = detect_size
    engine = open_engine(db)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_sample_tree_rss, args=(stop, peak), daemon=True)
    sampler.start()
    start = time.perf_counter()
    summary = scan.scan(engine, [folder], model=model, options=options)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    engine.dispose()
    return {"seconds": round(seconds, 2), "photos": summary["photos_seen"], "errors": summary["errors"],
            "workers": summary["workers"], "processes": processes, "device": summary["device"],
            "rss_after_warmup_mb": warm_rss, "peak_rss_mb": _peak_rss_mb(),
            "peak_rss_with_workers_mb": round(peak[0] / 2**20, 1),
            "options": {"detect_size": options.detect_size, "min_face": options.min_face}}


def naive_scan(engine, folder: Path, model, detector) -> int:
    """Full-resolution decode, stock MTCNN on the full image, one model call and one commit per
    face."""
    from datetime import datetime

    from sqlalchemy import insert

    from photo_sorter import align, faces, imaging, scan
    from photo_sorter.files import sha256_file
    from photo_sorter.store import Face, Photo, predictions_table, register_model, session_factory

    Session = session_factory(engine)
    with Session.begin() as session:
        model_id = register_model(session, model)
    count = 0
    for path in scan.discover([folder]):
        photo = imaging.open_photo(path)
        image = photo.image()
        found = faces.detect(image, confidence=scan.ScanOptions().confidence, detector=detector)
        st = path.stat()
        with Session.begin() as session:
            row = Photo(path=str(path), folder=str(path.parent), size=st.st_size,
                        mtime_ns=st.st_mtime_ns, content_hash=sha256_file(path), status="ok",
                        width=photo.width, height=photo.height, captured_at=photo.captured_at,
                        capture_source=photo.capture_source, n_faces=len(found),
                        scanned_at=datetime.now())
            session.add(row)
        for i, face in enumerate(found):
            frame = align.to_celeba(image, face.landmarks)
            probabilities = model.predict(frame[None])[0]
            with Session.begin() as session:
                x, y, w, h = face.box
                face_row = Face(content_hash=row.content_hash, index=i, x=x, y=y, w=w, h=h,
                                confidence=face.confidence, crop=align.encode_crop(frame),
                                landmarks=[list(p) for p in face.landmarks])
                session.add(face_row)
                session.flush()
                session.execute(insert(predictions_table), scan._prediction_rows(
                    model, model_id, [face_row.id], [probabilities]))
        count += 1
    return count


def run_naive(folder: str, db: str) -> dict:
    """In a fresh process: the naive pipeline, timed after warm-up."""
    from photo_sorter.store import open_engine

    detector = stock_detector()
    model = _warm_model(detector)
    warm_rss = _peak_rss_mb()
    engine = open_engine(db)
    start = time.perf_counter()
    photos = naive_scan(engine, Path(folder), model, detector)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": round(seconds, 2), "photos": photos, "rss_after_warmup_mb": warm_rss,
            "peak_rss_mb": _peak_rss_mb()}


def in_fresh_process(fn, *args) -> dict:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def stored_boxes(db: str) -> dict[str, list[tuple]]:
    from sqlalchemy import select

    from photo_sorter.store import Face, Photo, open_engine, session_factory

    engine = open_engine(db)
    boxes: dict[str, list[tuple]] = {}
    with session_factory(engine)() as session:
        for path, x, y, w, h in session.execute(
                select(Photo.path, Face.x, Face.y, Face.w, Face.h).join(Face, Face.content_hash == Photo.content_hash)):
            boxes.setdefault(Path(path).name, []).append((x, y, w, h))
    engine.dispose()
    return boxes


def recall(truth: dict, boxes: dict[str, list[tuple]]) -> dict:
    """Found/true faces overall and for true widths >= RECALL_MIN_WIDTH, and unmatched boxes."""
    found = {"all": [0, 0], "large": [0, 0]}
    buckets = {f"{lo}-{hi}px" if hi < 10**9 else f">={lo}px": [0, 0] for lo, hi in zip(SIZE_BUCKETS, SIZE_BUCKETS[1:])}
    extra = 0
    for name, faces in truth.items():
        left = list(boxes.get(name, []))
        for face in sorted(faces, key=lambda f: -f["w"]):
            match = next((b for b in left
                          if abs(b[0] + b[2] / 2 - face["cx"]) <= face["w"] / 2
                          and abs(b[1] + b[3] / 2 - face["cy"]) <= face["w"] / 2
                          and 0.5 <= max(b[2], b[3]) / face["w"] <= 2.0), None)
            groups = ("all", "large") if face["w"] >= RECALL_MIN_WIDTH else ("all",)
            for g in groups:
                found[g][1] += 1
                found[g][0] += match is not None
            for (lo, hi), bucket in zip(zip(SIZE_BUCKETS, SIZE_BUCKETS[1:]), buckets.values()):
                if lo <= face["w"] < hi:
                    bucket[0] += match is not None
                    bucket[1] += 1
            if match is not None:
                left.remove(match)
        extra += len(left)
    return {"recall": round(found["all"][0] / max(1, found["all"][1]), 4),
            f"recall_ge{RECALL_MIN_WIDTH}px": round(found["large"][0] / max(1, found["large"][1]), 4),
            "faces_found": found["all"][0], "faces_true": found["all"][1],
            f"faces_found_ge{RECALL_MIN_WIDTH}px": found["large"][0],
            f"faces_true_ge{RECALL_MIN_WIDTH}px": found["large"][1],
            "unmatched_boxes": extra,
            "recall_by_width": {k: f"{f}/{n}" for k, (f, n) in buckets.items() if n}}


def repeated(library: Path, times: int, into: Path) -> Path:
    """The library `times` over as hard links (distinct paths, no extra disk), for RSS growth."""
    for k in range(times):
        sub = into / f"copy{k:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        for photo in library.glob("*.jpg"):
            if not (sub / photo.name).exists():
                os.link(photo, sub / photo.name)
    return into


def add_library_options(parser: argparse.ArgumentParser, photos: int = 60) -> None:
    """The options of the generated library (also bench_ray.py's)."""
    parser.add_argument("--photos", type=int, default=photos)
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of the generated photos")
    parser.add_argument("--samples", type=int, default=11, help="how many photos are upscaled samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", type=Path, help="folder for the generated library (kept)")
    parser.add_argument("--small-faces", action="store_true",
                        help=f"composite faces {synthetic_library.SMALL_FACE_SIZES[0]} px wide and up "
                        f"(default {synthetic_library.FACE_SIZES[0]})")


def generated_library(args) -> tuple[Path, dict]:
    """The library of add_library_options' settings, generated once (in a fresh process) into
    --library or a folder under the system temp dir named by them, and its ground truth."""
    size = tuple(int(v) for v in args.size.lower().split("x"))
    face_sizes = synthetic_library.SMALL_FACE_SIZES if args.small_faces else synthetic_library.FACE_SIZES
    library = args.library or Path(tempfile.gettempdir()) / (
        f"photo_sorter_bench_{args.photos}_{args.size}_{args.samples}_{args.seed}"
        + ("_small" if args.small_faces else ""))
    truth = in_fresh_process(synthetic_library.make_library, library, args.photos, size,
                             args.samples, args.seed, face_sizes)["files"]
    return library, truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_library_options(parser)
    parser.add_argument("--quick", action="store_true", help="4 photos of 2400x1800, 1 sample")
    parser.add_argument("--no-naive", action="store_true", help="time only our scan")
    parser.add_argument("--repeat", type=int, default=1, help="scan the library N times over (hard links)")
    parser.add_argument("--detect-size", type=int, help="ScanOptions.detect_size for our scan")
    parser.add_argument("--min-face", type=int, help="ScanOptions.min_face for our scan")
    parser.add_argument("--workers", type=int, help="ScanOptions.workers (default: the usable cores)")
    parser.add_argument("--processes", action="store_true", help="the workers as processes (ScanOptions.processes)")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.size, args.samples = 4, "2400x1800", 1
    if not synthetic_library.CELEBA.is_dir():
        print(f"CelebA images not found at {synthetic_library.CELEBA}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    library, truth = generated_library(args)
    results = {"photos": args.photos, "size": args.size, "load_before": _load(),
               "library_seconds": round(time.perf_counter() - start, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = library
        if args.repeat > 1:
            folder = repeated(library, args.repeat, Path(tmp) / "repeated")
            results["photos_scanned"] = args.photos * args.repeat
        ours = in_fresh_process(run_ours, str(folder), str(Path(tmp) / "ours.db"),
                                args.detect_size, args.min_face, args.workers, args.processes)
        if args.repeat == 1:
            ours.update(recall(truth, stored_boxes(str(Path(tmp) / "ours.db"))))
        ours["photos_per_s"] = round(ours["photos"] / ours["seconds"], 3)
        results["ours"] = ours
        if not args.no_naive:
            naive = in_fresh_process(run_naive, str(library), str(Path(tmp) / "naive.db"))
            naive.update(recall(truth, stored_boxes(str(Path(tmp) / "naive.db"))))
            naive["photos_per_s"] = round(naive["photos"] / naive["seconds"], 3)
            results["naive"] = naive
            results["speedup"] = round(ours["photos_per_s"] / naive["photos_per_s"], 1)
            key = f"recall_ge{RECALL_MIN_WIDTH}px"
            results[f"{key}_points_vs_naive"] = round(100 * (ours[key] - naive[key]), 1)
    results["load_after"] = _load()
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
