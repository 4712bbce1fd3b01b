"""The scan: discover -> change check -> decode -> detect -> align -> predict -> store. No Qt.

Change detection: a known file whose size and mtime are unchanged is not read at all; otherwise
its content hash decides between unchanged (only the stat is refreshed), changed (re-processed)
and, for a new path whose content belongs to a vanished file, moved (the row, faces and
predictions follow the file). Photos are written in batches, each photo with all its faces and
predictions in one transaction, so an interrupted scan resumes at the first uncommitted photo.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from sqlalchemy import delete, exists, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from photo_sorter import align, faces, imaging
from photo_sorter.model import (
    BUNDLED_MODEL, AttributeModel, ModelError, device_name, file_sha256, read_card,
)
from photo_sorter.store import (
    Face, ModelVersion, Photo, ScanRun, open_engine, predictions_table, session_factory,
)


class ScanError(ValueError):
    """Bad scan input (a root that does not exist); one readable line."""


class ScanBusy(ScanError):
    """Another scan or re-prediction holds the library; trying again later will do."""


@dataclass
class ScanOptions:
    min_face: int | None = None  # smallest face kept (full-res pixels); None: what detect_size resolves
    detect_size: int = 1024    # long side of the copy MTCNN sees (see faces.detection_side)
    confidence: float = 0.9    # MTCNN final-stage threshold
    commit_every: int = 16     # photos per transaction
    predict_batch: int = 32    # aligned faces per model call


@dataclass
class ScanProgress:
    phase: str                 # discovering | scanning | predicting | done
    files_found: int
    files_done: int
    faces: int
    errors: int
    current: str | None = None
    eta_seconds: float | None = None


@dataclass
class _Pending:
    """One photo's row update waiting for the next batch: `faces` None keeps the stored faces."""

    row_id: int | None
    values: dict
    faces: list[faces.DetectedFace] | None = None
    frames: list[np.ndarray] = field(default_factory=list)


def _sessions(db) -> sessionmaker[Session]:
    if isinstance(db, sessionmaker):
        return db
    return session_factory(db if isinstance(db, Engine) else open_engine(db))


def _exclusive(func):
    """Run func(Session, ...) holding the library's lock file (beside a SQLite database): a second
    scan or re-prediction of the same library refuses at once instead of interleaving its writes.
    The OS drops the lock when its holder dies, so a crashed scan never leaves it stuck."""

    @functools.wraps(func)
    def locked(db, *args, **kwargs):
        Session = _sessions(db)
        url = Session.kw["bind"].url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return func(Session, *args, **kwargs)
        lock = FileLock(url.database + ".lock", timeout=0, is_singleton=True)  # re-entrant per thread
        try:
            lock.acquire()
        except Timeout:
            raise ScanBusy(f"another scan or re-prediction of {url.database} is running; "
                            "try again when it has finished") from None
        try:
            return func(Session, *args, **kwargs)
        finally:
            lock.release()

    return locked


def path_key(path: Path) -> str:
    """The path as stored: itself, or for a name that is not valid UTF-8 (which SQLite cannot
    store) a readable stand-in with the bad bytes escaped, e.g. 'caf\\xe9.jpg'."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def file_hash(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def discover(roots: Iterable[Path], problems: list[OSError] | None = None,
             skipped: Counter | None = None) -> Iterator[Path]:
    """Supported image files under roots (a root may be a file), sorted per folder; hidden files
    and folders are skipped and symlinked folders are followed once (loops are safe). Folders
    that cannot be listed (permissions, paths beyond the system's limit) go to `problems`; every
    other file left out is counted in `skipped` by reason (imaging.skip_reason, or "raw_with_jpeg"
    for the RAW of a RAW+JPEG pair: one shot, whose JPEG is the photo)."""
    visited: set[tuple[int, int]] = set()
    skipped = Counter() if skipped is None else skipped
    for root in roots:
        if root.is_file():
            yield root
            continue
        for folder, dirs, files in os.walk(root, followlinks=True,
                                           onerror=None if problems is None else problems.append):
            try:
                st = os.stat(folder)
            except OSError:  # vanished while walking
                dirs[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited:
                dirs[:] = []
                continue
            visited.add((st.st_dev, st.st_ino))
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            decoded_stems = {Path(n).stem.lower() for n in files if Path(n).suffix.lower() in imaging.PAIRED_EXTENSIONS}
            for name in sorted(files):
                path = Path(folder) / name
                reason = imaging.skip_reason(path)
                if reason is None and path.suffix.lower() in imaging.RAW_EXTENSIONS and path.stem.lower() in decoded_stems:
                    reason = "raw_with_jpeg"
                if reason is None:
                    yield path
                else:
                    skipped[reason] += 1


_SKIP_WORDS = {"videos": "video(s)", "sidecars": "sidecar file(s)", "hidden": "hidden file(s)",
               "unsupported": "unsupported", "raw_with_jpeg": "RAW file(s) beside their JPEG"}


def skipped_text(skipped: dict) -> str:
    """A summary's skipped counts in words: "3 video(s), 2 unsupported" ("none" when empty)."""
    return ", ".join(f"{n} {_SKIP_WORDS.get(reason, reason)}" for reason, n in skipped.items()) or "none"


def register_model(session: Session, model: AttributeModel) -> int:
    """The model's row (by sha256, added if new), made the one active model."""
    row = session.scalar(select(ModelVersion).where(ModelVersion.sha256 == model.sha256))
    if row is None:
        row = ModelVersion(name=model.name, sha256=model.sha256, path=str(model.path),
                           attributes=model.attributes, thresholds=model.thresholds, card=model.card)
        session.add(row)
    session.execute(update(ModelVersion).where(ModelVersion.sha256 != model.sha256).values(active=False))
    row.active = True
    session.flush()
    return row.id


def active_model(db, load: bool = True) -> AttributeModel:
    """The library's active model when its file is still there, else the bundled one. With
    load=False only its card and hash are read; _predict loads the weights when first needed,
    so an unchanged rescan never imports TensorFlow."""
    with _sessions(db)() as session:
        path = session.scalar(select(ModelVersion.path).where(ModelVersion.active.is_(True)))
    path = Path(path) if path and Path(path).is_file() else BUNDLED_MODEL
    if load:
        return AttributeModel.load(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    return AttributeModel(path=path, card=read_card(path), keras_model=None, sha256=file_sha256(path))


def _predict(model: AttributeModel, frames: list[np.ndarray]) -> np.ndarray:
    if model.keras_model is None:
        model.keras_model = AttributeModel.load(model.path).keras_model
    return model.predict(np.stack(frames))


def _frames(photo: imaging.OpenedPhoto, landmarks: list, detect_side: int) -> list[np.ndarray]:
    """Aligned frames, each cut from the detection copy when that already has at least the
    frame's resolution there, else from the full-resolution decode (small faces stay sharp)."""
    small = photo.image(detect_side)
    small_scale = photo.scale_of(small)
    frames = []
    for points in landmarks:
        points = np.asarray(points, np.float64)
        if align.frame_scale(points) * small_scale <= 1.0:
            frames.append(align.to_celeba(small, points / small_scale))
        else:
            frames.append(align.to_celeba(photo.image(), points))
    return frames


def _analyse(path: Path, values: dict, options: ScanOptions) -> _Pending:
    """Decode, detect and align one photo; a bad file becomes an error row, never an exception."""
    try:
        photo = imaging.open_photo(path)
        side = faces.detection_side(photo.width, photo.height, options.detect_size, options.min_face)
        small = photo.image(side)
        found = faces.detect(small, scale=photo.scale_of(small), min_face=options.min_face,
                             confidence=options.confidence)
        frames = _frames(photo, [f.landmarks for f in found], side)
    except imaging.PhotoError as exc:
        return _Pending(None, {**values, "status": "error", "error": str(exc), "n_faces": 0}, [])
    except Exception as exc:  # noqa: BLE001 - one bad photo never stops a scan
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return _Pending(None, {**values, "status": "error", "error": message, "n_faces": 0}, [])
    values.update(status="ok", error=None, width=photo.width, height=photo.height,
                  captured_at=photo.captured_at, capture_source=photo.capture_source,
                  camera=photo.camera, burst_id=photo.burst_id, n_faces=len(found))
    return _Pending(None, values, found, frames)


def _prediction_rows(model: AttributeModel, model_id: int, face_ids, probabilities) -> list[dict]:
    return [
        {"face_id": fid, "model_id": model_id, **dict(zip(model.attributes, map(float, p)))}
        for fid, p in zip(face_ids, probabilities)
    ]


def _write(Session, model: AttributeModel, model_id: int, batch: list[_Pending]) -> None:
    """Predict the batch's faces in one model call and store the batch in one transaction."""
    frames = [f for item in batch for f in item.frames]
    probabilities = iter(_predict(model, frames) if frames else [])
    with Session.begin() as session:
        refreshed = [{"id": item.row_id, **item.values} for item in batch if item.faces is None]
        if refreshed:  # rows whose faces stay (stat refresh, move, error): one bulk UPDATE
            session.execute(update(Photo), refreshed)
        for item in batch:
            if item.faces is None:
                continue
            if item.row_id is None:
                photo = Photo(**item.values)
                session.add(photo)
            else:
                photo = session.get(Photo, item.row_id)
                for key, value in item.values.items():
                    setattr(photo, key, value)
            photo.faces.clear()
            session.flush()  # old faces (and their predictions) go before new ones reuse indexes
            new_faces = [
                Face(photo_id=photo.id, index=i, x=f.box[0], y=f.box[1], w=f.box[2], h=f.box[3],
                     confidence=f.confidence, landmarks=[list(p) for p in f.landmarks],
                     crop=align.encode_crop(frame))
                for i, (f, frame) in enumerate(zip(item.faces, item.frames))
            ]
            photo.faces.extend(new_faces)
            session.flush()
            rows = _prediction_rows(model, model_id, [f.id for f in new_faces],
                                    [next(probabilities) for _ in new_faces])
            if rows:
                session.execute(insert(predictions_table), rows)


@_exclusive
def scan(
    db,
    roots: Iterable[str | Path],
    *,
    model: AttributeModel | None = None,
    options: ScanOptions | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """Scan roots into the library `db` (an Engine, a sessionmaker or a path/URL) and return the
    summary counts. Faces of photos already in the library but without predictions from `model`
    (e.g. after a model change) are predicted too. Never writes to the photos."""
    started = time.monotonic()
    options = options or ScanOptions()
    roots = [Path(os.path.abspath(os.path.expanduser(r))) for r in roots]
    for root in roots:
        if not root.exists():
            raise ScanError(f"no such file or folder: {root}")
    Session = _sessions(db)
    model = model or active_model(Session, load=False)
    with Session.begin() as session:
        model_id = register_model(session, model)
        run = ScanRun(roots=[str(r) for r in roots])
        session.add(run)
        session.flush()
        run_id = run.id
    known = {}
    by_hash: dict[str, list] = {}
    with Session() as session:
        for row in session.execute(select(Photo.id, Photo.path, Photo.size, Photo.mtime_ns,
                                          Photo.content_hash, Photo.status, Photo.error)):
            known[row.path] = row
            by_hash.setdefault(row.content_hash, []).append(row)

    def report(phase: str, current: str | None = None) -> None:
        if progress is None:
            return
        work = done - counts["photos_unchanged"]
        left = len(files) - done
        eta = (time.monotonic() - started) / work * left if work and phase == "scanning" else None
        progress(ScanProgress(phase, len(files), done, counts["faces"], counts["errors"], current, eta))

    counts = dict.fromkeys(("photos_new", "photos_changed", "photos_unchanged", "photos_moved",
                            "photos_missing", "faces", "errors"), 0)
    files: list[Path] = []
    done = 0
    problems: list[OSError] = []
    skipped: Counter = Counter()
    for path in discover(roots, problems, skipped):
        files.append(path)
        if len(files) % 500 == 0:
            report("discovering")
    files = list(dict.fromkeys(files))  # overlapping roots
    seen = {path_key(p) for p in files}
    moved_from: set[str] = set()
    batch: list[_Pending] = []
    for exc in problems:  # a folder that vanished meanwhile is simply gone; others are reported
        if not isinstance(exc, FileNotFoundError) and exc.filename is not None:
            folder = Path(exc.filename)
            seen.add(path_key(folder))
            counts["errors"] += 1
            batch.append(_error_item(folder, known.get(path_key(folder)),
                                     f"cannot list folder: {exc.strerror or exc}"))
    run_status = "failed"
    try:
        for path in files:
            if cancel is not None and cancel.is_set():
                break
            item = _classify(path, known, by_hash, seen, moved_from, counts, options)
            done += 1
            if item is not None:
                batch.append(item)
            if len(batch) >= options.commit_every or sum(len(b.frames) for b in batch) >= options.predict_batch:
                _write(Session, model, model_id, batch)
                batch = []
            report("scanning", str(path))
        _write(Session, model, model_id, batch)
        cancelled = cancel is not None and cancel.is_set()
        if not cancelled:
            counts["photos_missing"] = _mark_missing(Session, roots, known, seen | moved_from)
            report("predicting")
            counts["faces_repredicted"] = repredict(Session, model, cancel=cancel, options=options)["faces"]
            cancelled = cancel is not None and cancel.is_set()
            if counts["photos_new"] + counts["photos_changed"] + counts["faces_repredicted"]:
                update_statistics(Session)
        run_status = "cancelled" if cancelled else "done"
    finally:
        summary = {"photos_seen": len(files), **counts, "skipped": dict(sorted(skipped.items())),
                   "seconds": round(time.monotonic() - started, 2),
                   "cancelled": run_status == "cancelled",
                   "device": device_name() if model.keras_model is not None else None,
                   "model": model.name}
        with Session.begin() as session:
            session.execute(update(ScanRun).where(ScanRun.id == run_id).values(
                status=run_status, finished_at=datetime.now(), summary=summary))
    report("done")
    return summary


def _error_item(path: Path, row, reason: str) -> _Pending:
    """The error row of a file (or folder) that cannot be read; a known photo keeps its faces."""
    values = {"path": path_key(path), "folder": path_key(path.parent), "status": "error", "n_faces": 0,
              "error": reason, "scanned_at": datetime.now()}
    return _Pending(row.id if row else None, values, [] if row is None else None)


def update_statistics(db) -> None:
    """Refresh SQLite's statistics (a sampled ANALYZE: ~1 s at 100k photos). Without them its
    planner takes `model_id = ?` on a prediction index for a few rows and may read a whole
    model's predictions per photo: minutes for one attribute query at 100k photos instead of
    tens of milliseconds (benchmarks/bench_query.py). Other databases keep their own."""
    with _sessions(db).begin() as session:
        if session.bind.dialect.name == "sqlite":
            session.execute(text("PRAGMA analysis_limit=1000"))
            session.execute(text("ANALYZE"))


def _classify(path, known, by_hash, seen, moved_from, counts, options) -> _Pending | None:
    """Decide what one discovered file needs and count it; returns the row update or None."""
    key = path_key(path)
    row = known.get(key)

    def error(reason: str) -> _Pending:
        counts["errors"] += 1
        return _error_item(path, row, reason)

    if key != str(path):
        return error("file name is not valid UTF-8; rename the file to scan it")
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return error("not a regular file (a pipe, socket or device); skipped without reading")
        if row is not None and row.status != "missing" and (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns):
            counts["photos_unchanged"] += 1
            return None
        digest = file_hash(path)
    except OSError as exc:
        return error(f"cannot read file: {exc.strerror or exc}")
    stat_values = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if row is not None and digest == row.content_hash:
        counts["photos_unchanged"] += 1
        return _Pending(row.id, {**stat_values, "status": "error" if row.error else "ok"})
    if row is None:
        for old in by_hash.get(digest, ()):
            if old.path not in seen and old.path not in moved_from and not os.path.exists(old.path):
                moved_from.add(old.path)
                counts["photos_moved"] += 1
                return _Pending(old.id, {**stat_values, "path": key, "folder": str(path.parent),
                                         "status": "error" if old.error else "ok"})
    counts["photos_changed" if row is not None else "photos_new"] += 1
    values = {"path": key, "folder": str(path.parent), "content_hash": digest,
              "scanned_at": datetime.now(), **stat_values}
    item = _analyse(path, values, options)
    item.row_id = row.id if row is not None else None
    counts["faces"] += len(item.frames)
    counts["errors"] += item.values["status"] == "error"
    return item


def _mark_missing(Session, roots: list[Path], known: dict, present: set[str]) -> int:
    """Rows under the scanned roots whose files are gone become `missing` (kept until purged)."""
    prefixes = tuple(path_key(r) + ("" if r.is_file() else os.sep) for r in roots)
    gone = [row.id for path, row in known.items()
            if row.status != "missing" and path not in present and path.startswith(prefixes)]
    with Session.begin() as session:
        for start in range(0, len(gone), 500):
            session.execute(update(Photo).where(Photo.id.in_(gone[start:start + 500]))
                            .values(status="missing"))
    return len(gone)


@_exclusive
def repredict(
    db,
    model: AttributeModel | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    cancel: threading.Event | None = None,
    options: ScanOptions | None = None,
) -> dict:
    """Predict with `model` (default: the active one) every face that has no prediction from it
    yet, re-aligning from the stored landmarks (no detection); earlier models' predictions stay.
    The model becomes the active one. Resumable: done faces are skipped."""
    started = time.monotonic()
    options = options or ScanOptions()
    Session = _sessions(db)
    model = model or active_model(Session, load=False)
    with Session.begin() as session:
        model_id = register_model(session, model)
        has_prediction = exists().where(predictions_table.c.face_id == Face.id,
                                        predictions_table.c.model_id == model_id)
        todo = session.execute(
            select(Face.id, Face.landmarks, Photo.id.label("photo_id"), Photo.path)
            .join(Photo).where(Photo.status == "ok", ~has_prediction)
            .order_by(Photo.id, Face.index)
        ).all()
    by_photo: dict[int, list] = {}
    for row in todo:
        by_photo.setdefault(row.photo_id, []).append(row)
    result = {"model_id": model_id, "faces": 0, "photos": 0, "errors": 0}
    face_ids, frames = [], []

    def flush() -> None:
        if face_ids:
            rows = _prediction_rows(model, model_id, face_ids, _predict(model, frames))
            with Session.begin() as session:
                session.execute(insert(predictions_table), rows)
        result["faces"] += len(face_ids)
        face_ids.clear()
        frames.clear()

    for done, rows in enumerate(by_photo.values()):
        if cancel is not None and cancel.is_set():
            break
        if progress is not None:
            progress(ScanProgress("predicting", len(by_photo), done, result["faces"],
                                  result["errors"], rows[0].path))
        try:
            photo = imaging.open_photo(rows[0].path)
            side = faces.detection_side(photo.width, photo.height, options.detect_size, options.min_face)
            frames.extend(_frames(photo, [r.landmarks for r in rows], side))
        except Exception:  # noqa: BLE001 - unreadable now; the next scan records why
            result["errors"] += 1
            continue
        face_ids.extend(r.id for r in rows)
        result["photos"] += 1
        if len(frames) >= options.predict_batch:
            flush()
    flush()
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def purge_missing(db) -> int:
    """Delete the rows of missing photos (their faces and predictions go with them)."""
    with _sessions(db).begin() as session:
        return session.execute(delete(Photo).where(Photo.status == "missing")).rowcount


def list_errors(db) -> list[dict]:
    """Files whose last scan failed, and why."""
    with _sessions(db)() as session:
        rows = session.execute(select(Photo.path, Photo.error, Photo.scanned_at)
                               .where(Photo.status == "error").order_by(Photo.path))
        return [{"path": r.path, "error": r.error, "scanned_at": r.scanned_at} for r in rows]
