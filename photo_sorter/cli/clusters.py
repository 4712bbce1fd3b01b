"""Headless commands over the stored faces: cluster, best-smiling, choose-best, export."""

from __future__ import annotations

import sys
from pathlib import Path

from photo_sorter.cli import (
    UserError, add_db_options, check_out_dir, check_out_file, emit, float_arg, int_arg, open_library,
)


def register(subparsers) -> None:
    from photo_sorter import selection

    p = subparsers.add_parser("cluster", help="group faces by attributes (K-Means) with eigenface sheets")
    p.add_argument("--attributes", help="comma-separated attributes (default: the article's ten)")
    p.add_argument("--k", default="auto", help="number of clusters or 'auto' (silhouette over 2..10)")
    p.add_argument("--seed", type=int_arg(0, 2**32 - 1), default=0)
    p.add_argument("--out", help="folder for the PNG sheets (default: beside the database file)")
    add_db_options(p)
    p.set_defaults(func=_cluster)

    p = subparsers.add_parser("best-smiling", help="the best smiling photo of every burst")
    _burst_options(p)
    p.add_argument("--min-photos", type=int_arg(1), default=2, help="smallest burst to report (default 2)")
    p.add_argument("--out", help="copy each burst's best photo into this folder (originals stay)")
    add_db_options(p)
    p.set_defaults(func=_best_smiling)

    p = subparsers.add_parser("choose-best", help="store your own pick for a burst (respected on rescans)")
    p.add_argument("group_key", help="the burst's key, as printed by best-smiling")
    p.add_argument("photo_id", nargs="?", type=int_arg(1), help="the photo to keep as best")
    p.add_argument("--clear", action="store_true", help="forget the pick; the automatic one applies")
    _burst_options(p, " (give best-smiling's, which printed the key)")
    add_db_options(p)
    p.set_defaults(func=_choose_best)

    p = subparsers.add_parser("export", help="export photos/faces with attributes: CSV, JSON or XMP sidecars")
    p.add_argument("--format", required=True, choices=["csv", "json", "xmp"])
    p.add_argument("--out", help="csv/json: output file (default: stdout); xmp: a folder "
                                 "(default: each sidecar beside its photo)")
    p.add_argument("--where", help="only photos matching this attribute expression")
    p.add_argument("--sidecar-name", choices=["ext", "stem"], default="ext",
                   help="sidecar beside the photo as photo.jpg.xmp (ext, default: digiKam, darktable) "
                   "or photo.xmp (stem: Lightroom)")
    p.add_argument("--embed-none", action="store_true", default=True,
                   help="xmp: write sidecars only (the default and only mode: photos are never written)")
    add_db_options(p)
    p.set_defaults(func=_export)


def _call(fn, *args, **kwargs):
    """Run a core function, turning its input errors into one-line user errors."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:  # LibraryError and attribute validation
        raise UserError(str(exc)) from None


def _cluster(args) -> int:
    from photo_sorter import clusters

    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()] if args.attributes else None
    k = _call(clusters.parse_k, args.k)
    out = check_out_dir(args.out) if args.out else _sheets_dir(args.db)
    result = _call(clusters.run_clustering, open_library(args), attributes=attributes, k=k,
                   seed=args.seed, out_dir=out)
    shown = {key: result[key] for key in ("run_id", "k", "silhouette")}
    shown["clusters"] = [{key: c[key] for key in ("id", "name", "size", "sheet")} for c in result["clusters"]]
    sil = f"{result['silhouette']:.3f}" if result["silhouette"] is not None else "n/a"
    lines = [f"run {result['run_id']}: k={result['k']}, silhouette {sil}, {result['n_faces']} faces"]
    lines += [f"  {c['size']:>6}  {c['name']}  {c['sheet'] or ''}" for c in result["clusters"]]
    emit(shown, args.json, "\n".join(lines))
    return 0


def _sheets_dir(db: str | None) -> Path:
    """`library_sheets/` beside `library.db`, so run numbers of two libraries never collide; for
    a server database, a folder named after its URL in the user data folder."""
    import re

    from photo_sorter.store.db import default_db_path, describe, to_url, user_data_dir

    if db and "://" in db:
        return user_data_dir() / "cluster_sheets" / re.sub(r"[^\w.-]+", "_", describe(to_url(db)))
    path = Path(db).expanduser() if db else default_db_path()
    return path.with_name(f"{path.stem}_sheets")


def _burst_options(p, note: str = "") -> None:
    from photo_sorter import selection

    p.add_argument("--gap-seconds", type=float_arg(0), default=selection.DEFAULT_GAP_SECONDS,
                   help=f"largest gap inside a burst (default {selection.DEFAULT_GAP_SECONDS:g} s){note}")
    p.add_argument("--event-gap-seconds", type=float_arg(0), default=selection.DEFAULT_EVENT_GAP_SECONDS,
                   help=f"largest gap inside an event (default {selection.DEFAULT_EVENT_GAP_SECONDS:g} s)")
    p.add_argument("--no-visual-split", action="store_true",
                   help="do not split bursts where consecutive photos look clearly different")


def _burst_parameters(args) -> dict:
    return {"gap_seconds": args.gap_seconds, "event_gap_seconds": args.event_gap_seconds,
            "visual_split": not args.no_visual_split}


def _best_smiling(args) -> int:
    from photo_sorter import selection

    out = check_out_dir(args.out) if args.out else None
    groups = _call(selection.best_smiling, open_library(args), min_photos=args.min_photos,
                   **_burst_parameters(args))
    copies = _call(selection.copy_best, groups, out, open_library(args)) if out else None
    lines = []
    for g in groups:
        lines.append(f"{g['key']}  ({len(g['photo_ids'])} photos, event {g['event']})")
        lines.append(f"  best: {g['best']['path']}")
        lines += [f"    - {r}" for r in g["reasons"]]
    lines.append(f"{len(groups)} bursts" + (f"; best photos copied to {args.out}" if copies else ""))
    emit({"groups": groups, "copied": copies}, args.json, "\n".join(lines))
    return 0


def _choose_best(args) -> int:
    from photo_sorter import selection

    if (args.photo_id is None) == (not args.clear):
        raise UserError("give either a PHOTO_ID or --clear")
    result = _call(selection.choose_best, open_library(args), args.group_key, args.photo_id,
                   **_burst_parameters(args))
    text = (f"{args.group_key}: best is now photo {args.photo_id}" if args.photo_id is not None
            else f"{args.group_key}: pick cleared")
    emit(result, args.json, text)
    return 0


def _export(args) -> int:
    from photo_sorter import export

    out = None
    if args.out:
        out = check_out_dir(args.out) if args.format == "xmp" else check_out_file(args.out)
    result = _call(export.export, open_library(args), args.format, out=out, where=args.where,
                   sidecar_name=args.sidecar_name)
    if "text" in result and not args.json:
        sys.stdout.write(result["text"])
        return 0
    if args.format == "xmp":
        text = "\n".join([f"{result['sidecars']} sidecars written for {result['photos']} photos",
                          *(f"note: {n}" for n in result["notes"]),
                          *(f"skipped: {e}" for e in result["errors"])])
    else:
        text = f"{result['photos']} photos, {result['faces']} faces written to {result.get('out')}"
    emit(result, args.json, text)
    return 1 if result.get("errors") else 0
