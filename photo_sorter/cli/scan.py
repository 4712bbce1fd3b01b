"""Headless commands of the library: scan, photos, faces, errors, purge-missing, repredict."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from photo_sorter.cli import (
    UserError, add_db_options, emit, float_arg, int_arg, open_library, progress_bar,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("scan", help="scan folders into the library (incremental)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to scan")
    add_db_options(p)
    p.add_argument("--min-face", type=int_arg(1, 100_000),
                   help="smallest face in pixels (default: what --detect-size resolves, 20 px there); "
                   "smaller values enlarge the detection copy and slow the scan")
    p.add_argument("--detect-size", type=int_arg(64, 4096), default=1024,  # scan.DETECT_SIZE_RANGE
                   help="long side of the copy MTCNN searches (default 1024)")
    p.add_argument("--confidence", type=float_arg(0, 1, above=True), default=0.9, help="MTCNN threshold (default 0.9)")
    p.add_argument("--workers", type=int_arg(1, 256),
                   help="photos decoded and searched for faces at once (default: the usable cores)")
    p.add_argument("--worker-processes", action="store_true",
                   help="run the workers as separate processes: a crashing decoder then fails only its "
                   "photo, but each worker takes about 0.9 GB and seconds to start")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="analyse the photos on a Ray cluster: its head's HOST:PORT, ray://HOST:PORT or "
                   "'auto' (the cluster this machine belongs to); every node must read the photos at the "
                   "same path (checked first). Needs the [cluster] extra")
    p.add_argument("--model", help="MODEL.keras (default: the library's active or the bundled model)")
    p.add_argument("--watch", action="store_true",
                   help="after the scan keep running and scan new, changed, moved and deleted files "
                   "as they come (one line per batch; Ctrl-C ends)")
    p.set_defaults(func=_scan)

    for name, help_text in (("photos", "photos matching an attribute expression"),
                            ("faces", "faces matching an attribute expression")):
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument("--where", required=True, metavar="EXPR",
                       help="e.g. 'Smiling and Eyeglasses and not Wearing_Hat', 'Smiling > 0.9'"
                       + (", 'all:Smiling'" if name == "photos" else ""))
        p.add_argument("--limit", type=int_arg(), default=50)
        p.add_argument("--offset", type=int_arg(), default=0)
        add_db_options(p)
        p.set_defaults(func=_query, kind=name)

    p = subparsers.add_parser("errors", help="files that failed to scan, and why")
    add_db_options(p)
    p.set_defaults(func=_errors)

    p = subparsers.add_parser("purge-missing", help="forget photos whose files are gone")
    p.add_argument("--dry-run", action="store_true",
                   help="only list what would be deleted (faces, and burst picks marked 'picked')")
    add_db_options(p)
    p.set_defaults(func=_purge)

    p = subparsers.add_parser("repredict",
                              help="predict every face with a model (kept beside older predictions)")
    p.add_argument("--model", help="MODEL.keras (default: the library's active or the bundled model)")
    add_db_options(p)
    p.set_defaults(func=_repredict)


def _load_model(path):
    from photo_sorter.model import AttributeModel, ModelError

    try:
        return AttributeModel.load(path) if path else None
    except ModelError as exc:
        raise UserError(str(exc)) from None


def _run(label: str, job) -> dict:
    """Run a scan-like job with a progress bar on stderr; its input errors become UserErrors."""
    from photo_sorter.model import ModelError
    from photo_sorter.scan import ScanError

    with progress_bar(label) as show:
        def update(p) -> None:
            if p.phase == "done":
                return
            detail = f"{p.faces} faces, {p.errors} errors"
            if p.eta_seconds is not None:
                detail += f", ETA {p.eta_seconds:.0f}s"
            show(p.files_done, p.files_found or None, detail)

        try:
            return job(update, threading.Event())
        except (ScanError, ModelError) as exc:
            raise UserError(str(exc)) from None


def _scan(args) -> int:
    from photo_sorter import scan

    try:
        options = scan.ScanOptions(min_face=args.min_face, detect_size=args.detect_size,
                                   confidence=args.confidence, workers=args.workers,
                                   processes=args.worker_processes)
    except scan.ScanError as exc:
        raise UserError(f"{exc} (--min-face, --detect-size, --confidence, --workers)") from None
    if args.ray and (args.workers or args.worker_processes or args.watch):
        raise UserError("--ray scans with the cluster's CPUs: it takes no --workers, --worker-processes or --watch")
    engine, model = open_library(args), _load_model(args.model)
    with _cluster(args.ray) as cluster:
        summary = _run("scan", lambda update, cancel: scan.scan(
            engine, args.paths, model=model, options=options, progress=update, cancel=cancel,
            cluster=cluster))
    text = "\n".join(f"{k}: {scan.skipped_text(v) if k == 'skipped' else v}" for k, v in summary.items())
    emit(summary, args.json, text)
    if args.watch:
        _watch(engine, args.paths, model, options, args.json)
    return 0


@contextmanager
def _cluster(address: str | None):
    """The Ray cluster at `address` (connected for the block), or None without one."""
    if address is None:
        yield None
        return
    from photo_sorter.cluster import Cluster, ClusterError

    try:
        cluster = Cluster(address)
    except ClusterError as exc:
        raise UserError(str(exc)) from None
    with cluster:
        yield cluster


def _watch(engine, paths, model, options, as_json: bool) -> None:
    """Scan changes as they come until interrupted: one line (or JSON object) per batch."""
    import json
    import sys

    from photo_sorter import scan
    from photo_sorter.watch import Watcher, WatchError

    def report(s: dict) -> None:
        line = json.dumps(s, default=str) if as_json else (
            f"watch: {s['photos_new']} new, {s['photos_changed']} changed, {s['photos_moved']} moved, "
            f"{s['photos_missing']} missing, {s['faces']} faces, {s['errors']} errors, "
            f"skipped: {scan.skipped_text(s['skipped'])} ({s['seconds']} s)")
        print(line, flush=True)

    watcher = Watcher(engine, paths, model=model, options=options, on_scan=report,
                      on_error=lambda message: print(f"watch: {message}", file=sys.stderr, flush=True))
    try:
        watcher.start()
    except WatchError as exc:
        raise UserError(str(exc)) from None
    print(f"watching {len(paths)} folder(s); Ctrl-C ends", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()


def _repredict(args) -> int:
    from photo_sorter import scan

    engine, model = open_library(args), _load_model(args.model)
    result = _run("repredict", lambda update, cancel: scan.repredict(
        engine, model, progress=update, cancel=cancel))
    emit(result, args.json, "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def _query(args) -> int:
    from photo_sorter import query

    engine = open_library(args)
    try:
        rows = getattr(query, args.kind)(engine, args.where, limit=args.limit, offset=args.offset)
    except query.QueryError as exc:
        raise UserError(str(exc)) from None
    lines = []
    for row in rows:
        if args.kind == "photos":
            lines.append(f"{row['score']:.3f}  {row['path']}  ({row['n_faces']} faces)")
        else:
            box = ",".join(f"{v:.0f}" for v in row["box"])
            lines.append(f"{row['score']:.3f}  {row['path']}  face {row['index']} at {box}")
    emit(rows, args.json, "\n".join(lines) or "no matches")
    return 0


def _errors(args) -> int:
    from photo_sorter import scan

    rows = scan.list_errors(open_library(args))
    emit(rows, args.json, "\n".join(f"{scan.display_path(r['path'])}: {r['kind']}: {r['error']}"
                                    for r in rows) or "no errors")
    return 0


def _purge(args) -> int:
    from photo_sorter import scan

    engine = open_library(args)
    if args.dry_run:
        rows = scan.list_missing(engine)
        emit(rows, args.json, "\n".join(
            f"{r['path']}: {r['faces']} face(s){', picked' if r['picked'] else ''}" for r in rows)
            or "no missing photos")
        return 0
    removed = scan.purge_missing(engine)
    emit({"purged": removed}, args.json, f"purged {removed} missing photo(s)")
    return 0
