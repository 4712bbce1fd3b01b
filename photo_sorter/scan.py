"""The scan: discover -> change check -> decode -> detect -> align -> predict -> store. No Qt.

Change detection: a known file whose size and mtime are unchanged is not read at all; otherwise
its content hash decides between unchanged (only the stat is refreshed), changed (re-processed)
and, for a new path whose content belongs to a vanished file, moved (the row, faces and
predictions follow the file). Photos are written in batches, each photo with all its faces and
predictions in one transaction, so an interrupted scan resumes at the first uncommitted photo.

Each file is read once (imaging.read_file): its hash, decode and detection all come from those
bytes, so a row's content_hash always names the content its faces came from. Faces belong to a
content, not a path: copies share them, stored once (store.models.Face). A row's content_hash
is set only while its stored analysis is good; a row with a problem (PROBLEMS) is read again on
every scan. The scan stays inside its roots: links out of them are reported, not followed, and
only rows under the roots can go missing or be claimed by a move.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import bindparam, delete, exists, func, insert, select, text, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, aliased

from photo_sorter import align, faces, imaging, outputs
from photo_sorter.errors import log_failure, one_line
from photo_sorter.model import AttributeModel, active_model, device_name
from photo_sorter.store import (
    BestChoice, Face, Photo, PhotoHash, ScanRun, drop_unshared_faces, exclusive, predictions_table,
    register_model, sessions,
)
from photo_sorter.workers import Task, WorkerCrash, Workers, usable_cores

if TYPE_CHECKING:
    from photo_sorter.cluster import Cluster

# The one definition of a problem row (its `status`), used by the scan's summary, `errors` and
# the GUI's problems panel alike; every problem row is read again on the next scan.
PROBLEMS = {
    "unreadable": "the file or folder could not be read (permissions, I/O error, gone or changed "
                  "while being read)",
    "error": "the file was read but is not a photo we can decode (damaged, unsupported, too many pixels)",
    "skipped": "left alone on purpose (not a regular file, too large, out of range, a link out "
               "of the scanned folders, nested too deep)",
}
MAX_DEPTH = 256  # folder levels below a root; deeper nesting is reported, not walked
_INT64 = 1 << 63  # the database's integer range


class _Problem(Exception):
    """A file that gets a problem row of `status` (one of PROBLEMS) with a one-line reason."""

    def __init__(self, status: str, reason: str, skip_key: str | None = None):
        super().__init__(reason)
        self.status, self.skip_key = status, skip_key


def _count_problem(counts: dict, status: str, skip_key: str | None) -> None:
    """Count a problem row in the summary; a skipped one also under its reason in `skipped`."""
    counts["problems"][status] += 1
    if status == "skipped":
        counts["skipped"][skip_key] += 1


class ScanError(ValueError):
    """Bad scan input (a root that does not exist); one readable line."""


@dataclass
class ScanOptions:
    """Detection options, range-checked: the detection copy's side (what MTCNN's time and memory
    grow with) never exceeds MAX_DETECT_SIDE, whatever min_face asks for."""

    min_face: int | None = None  # smallest face kept (full-res pixels); None: what detect_size resolves
    detect_size: int = 1024    # long side of the copy MTCNN sees (see faces.detection_side)
    confidence: float = 0.9    # MTCNN final-stage threshold
    commit_every: int = 16     # analysed photos per transaction (rows only refreshed: up to REFRESH_BATCH)
    predict_batch: int = 32    # aligned faces per model call
    workers: int | None = None  # threads that decode and detect; None: the usable cores; 1: the scan's own
    processes: bool = False    # the workers as processes (a crash fails one photo; ~0.9 GB and seconds each)

    def __post_init__(self):
        if self.min_face is not None and not MIN_FACE_RANGE[0] <= self.min_face <= MIN_FACE_RANGE[1]:
            raise ScanError(f"the smallest face must be {MIN_FACE_RANGE[0]} to {MIN_FACE_RANGE[1]} pixels")
        if not DETECT_SIZE_RANGE[0] <= self.detect_size <= DETECT_SIZE_RANGE[1]:
            raise ScanError(f"the detection size must be {DETECT_SIZE_RANGE[0]} to {DETECT_SIZE_RANGE[1]} pixels")
        if not 0 < self.confidence <= 1:
            raise ScanError("the detection confidence must be in (0, 1]")
        if self.workers is not None and self.workers < 1:
            raise ScanError("the number of workers must be at least 1")
        if self.commit_every < 1 or self.predict_batch < 1:
            raise ScanError("batch sizes must be at least 1")

    def detection_side(self, photo: imaging.OpenedPhoto) -> int:
        side = faces.detection_side(photo.width, photo.height, self.detect_size, self.min_face)
        return min(side, MAX_DETECT_SIDE)


# Rows only refreshed (stat, move, problem of a known photo: nothing decoded, redone in
# microseconds after an interruption) per transaction: batches of 16 made a touched or moved
# library's rescan pay a transaction and four statements per 16 files.
REFRESH_BATCH = 1000
MAX_DETECT_SIDE = 4096           # the detection copy: 16 MP at most, whatever --min-face asks
MIN_FACE_RANGE = (1, 100_000)    # pixels of the full-resolution photo
DETECT_SIZE_RANGE = (64, MAX_DETECT_SIDE)


@dataclass
class ScanProgress:
    phase: str                 # discovering | scanning | predicting | hashing | done
    files_found: int
    files_done: int
    faces: int
    errors: int
    current: str | None = None
    eta_seconds: float | None = None


@dataclass
class _Pending:
    """One photo's row update waiting for the next batch: `faces` None keeps the stored faces;
    `copy_of` (a content hash) takes the facts of the photo with that content and shares its
    faces and predictions (stored once, under the content)."""

    row_id: int | None
    values: dict
    faces: list[faces.DetectedFace] | None = None
    frames: list[np.ndarray] = field(default_factory=list)
    probabilities: list = field(default_factory=list)
    copy_of: str | None = None
    dhash: int | None = None   # of the whole photo, for splitting bursts by look (selection.py)
    # A row whose content is unchanged under a new stat (touched, moved): the stat its stored
    # facts (PhotoHash) were read for; facts of that stat follow the row instead of being read again.
    facts_of: tuple[int, int] | None = None


# What a copy takes from the photo with the same content (its own path, folder and stat stay).
_COPIED = ("status", "error", "width", "height", "captured_at", "capture_source", "camera",
           "burst_id", "n_faces")


def path_key(path: Path) -> str:
    """The path as stored: exactly as Python names the file (a name that is not valid UTF-8
    keeps its bytes as lone surrogates; the store's PathText column stores them reversibly)."""
    return os.fspath(path)


_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(32), 127]}


def display_path(path: str | Path) -> str:
    """A stored path as one printable line: bytes that are not valid UTF-8 and control
    characters (a newline in a name) shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace").translate(_CONTROLS)


def _inside(path: str, bases: Iterable[str]) -> bool:
    return any(path == b or path.startswith(b.rstrip(os.sep) + os.sep) for b in bases)


def _stem_suffix(name: str) -> tuple[str, str]:
    """A file name's lower-case stem and suffix (string operations, no Path per file)."""
    stem, suffix = os.path.splitext(name)
    return stem.lower(), suffix.lower()


def _raws_by_stem(names: Iterable[str]) -> dict[str, list[str]]:
    """The RAW files among a folder's names, by lower-case stem (to pair them with their JPEG)."""
    raws: dict[str, list[str]] = {}
    for name in sorted(names):
        stem, suffix = _stem_suffix(name)
        if suffix in imaging.RAW_EXTENSIONS:
            raws.setdefault(stem, []).append(name)
    return raws


def _links(folder: str) -> set[str] | None:
    """Names of the folder's entries that are symbolic links, from one listing (the entries'
    types) instead of an lstat per file; None when it cannot be listed again."""
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.is_symlink()}
    except OSError:
        return None


def discover(roots: Iterable[Path], problems: list | None = None,
             skipped: Counter | None = None, companions: dict | None = None) -> Iterator[Path]:
    """Supported image files under roots (a root may be a file), sorted per folder; hidden files
    and folders are skipped. A link is followed only when it leads to a place inside the roots
    that is not above it (no loops, nothing outside what was asked). Links not followed,
    folders that cannot be listed (permissions, paths beyond the system's limit) and folders
    nested deeper than MAX_DEPTH go to `problems` as (path, status, reason, skip key), each once;
    every other file left out is counted in `skipped` by reason (imaging.skip_reason, or
    "raw_with_jpeg" for the RAW of a RAW+JPEG pair: one shot, whose JPEG is the photo, the RAW's
    name going to `companions[path_key(jpeg)]`)."""
    roots = list(roots)
    real_roots = [os.path.realpath(r) for r in roots]
    visited: set[tuple[int, int]] = set()
    skipped = Counter() if skipped is None else skipped
    companions = {} if companions is None else companions

    def pair(path: Path, raws: dict[str, list[str]], parts: tuple[str, str] | None = None) -> None:
        stem, suffix = parts or _stem_suffix(path.name)
        if suffix in imaging.PAIRED_EXTENSIONS and stem in raws:
            companions[path_key(path)] = raws[stem]

    def report(path: str, status: str, reason: str, key: str | None = None) -> None:
        if problems is not None:
            problems.append((Path(path), status, reason, key))

    def listing_failed(exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError) and exc.filename is not None:  # vanished: gone
            report(exc.filename, "unreadable", f"cannot list folder: {exc.strerror or exc}")

    def leads_out(path: str, here: str) -> str | None:
        """Why a link is not followed, or None to follow it."""
        target = os.path.realpath(path)
        if not _inside(target, real_roots):
            return f"link leads out of the scanned folders (to {display_path(target)}); not followed"
        if _inside(here, [target]):
            return "link leads back to a folder above it (a loop); not followed"
        return None

    for root in roots:
        if not root.is_dir():
            try:
                pair(root, _raws_by_stem(os.listdir(root.parent)))
            except OSError:  # its folder cannot be listed: the file alone is still scanned
                pass
            yield root
            continue
        base_depth = str(root).rstrip(os.sep).count(os.sep)
        for folder, dirs, files in os.walk(root, followlinks=True, onerror=listing_failed):
            try:
                st = os.stat(folder)
            except OSError:  # vanished while walking
                dirs[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited:
                dirs[:] = []
                continue
            visited.add((st.st_dev, st.st_ino))
            here = os.path.realpath(folder)
            kept = []
            if hidden := sum(d.startswith(".") for d in dirs):  # not walked, but not silently
                skipped["hidden_folders"] += hidden
            for d in sorted(d for d in dirs if not d.startswith(".")):
                full = os.path.join(folder, d)
                why = leads_out(full, here) if os.path.islink(full) else None
                if why is None:
                    kept.append(d)
                else:
                    report(full, "skipped", why, "links")
            if kept and folder.count(os.sep) - base_depth >= MAX_DEPTH:
                report(folder, "skipped", f"folders nested more than {MAX_DEPTH} levels deep are not scanned",
                       "too_deep")
                kept = []
            dirs[:] = kept
            split = {n: _stem_suffix(n) for n in files}
            decoded_stems = {stem for stem, suffix in split.values() if suffix in imaging.PAIRED_EXTENSIONS}
            raws = _raws_by_stem(files)
            ours = outputs.tool_outputs(folder, files)  # cluster sheets, copies: not photos
            links = _links(folder)
            base = Path(folder)
            for name in sorted(files):
                stem, suffix = split[name]
                reason = imaging.skip_reason(name)
                if reason is None and suffix in imaging.RAW_EXTENSIONS and stem in decoded_stems:
                    reason = "raw_with_jpeg"
                if reason is None and name in ours:
                    reason = "outputs"
                if reason is not None:
                    skipped[reason] += 1
                    continue
                path = base / name
                linked = path.is_symlink() if links is None else name in links
                why = leads_out(str(path), "") if linked else None
                if why is None:
                    pair(path, raws, (stem, suffix))
                    yield path
                else:
                    report(str(path), "skipped", why, "links")


_SKIP_WORDS = {"videos": "video(s)", "sidecars": "sidecar file(s)", "hidden": "hidden file(s)",
               "hidden_folders": "hidden folder(s)",
               "unsupported": "unsupported", "raw_with_jpeg": "RAW file(s) beside their JPEG",
               "links": "link(s) out of the scanned folders or in a loop",
               "too_deep": "folder(s) nested too deep", "special_files": "pipe(s), socket(s) or device(s)",
               "too_large": "file(s) too large", "bad_time": "file(s) with an impossible time",
               "outputs": "file(s) photo_sorter wrote (cluster sheets, copies)"}


def skipped_text(skipped: dict) -> str:
    """A summary's skipped counts in words: "3 video(s), 2 unsupported" ("none" when empty)."""
    return ", ".join(f"{n} {_SKIP_WORDS.get(reason, reason)}" for reason, n in skipped.items()) or "none"


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


@dataclass
class _Job:
    """A file that must be decoded and detected: what _analyse needs, and its row and content."""

    path: Path
    data: bytes
    mtime: float
    values: dict
    row_id: int | None
    digest: str

    def arguments(self, options: ScanOptions) -> tuple:
        return self.path, self.data, self.mtime, self.values, options


def _analyse(path: Path, data: bytes, mtime: float, values: dict, options: ScanOptions) -> _Pending:
    """Decode, detect and align one photo from the bytes that were read (and hashed); a bad
    file becomes an error row, never an exception."""
    try:
        photo = imaging.open_photo(path, data, mtime)
        side = options.detection_side(photo)
        small = photo.image(side)
        found = faces.detect(small, scale=photo.scale_of(small), min_face=options.min_face,
                             confidence=options.confidence)
        frames = _frames(photo, [f.landmarks for f in found], side)
    except imaging.PhotoError as exc:
        return _Pending(None, {**values, **_problem_values("error", str(exc))}, [])
    except Exception as exc:  # noqa: BLE001 - one bad photo never stops a scan
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return _Pending(None, {**values, **_problem_values("error", message)}, [])
    values.update(status="ok", error=None, width=photo.width, height=photo.height,
                  captured_at=photo.captured_at, capture_source=photo.capture_source,
                  camera=photo.camera, burst_id=photo.burst_id, n_faces=len(found))
    return _Pending(None, values, found, frames, dhash=imaging.dhash(small))


def _problem_values(status: str, reason: str) -> dict:
    """Column values of a problem row: no content hash (so no faces: those of its former content
    stay while a copy has them), so the next scan reads it again."""
    return {"status": status, "error": reason, "content_hash": None, "n_faces": 0}


def _prediction_rows(model: AttributeModel, model_id: int, face_ids, probabilities) -> list[dict]:
    return [
        {"face_id": fid, "model_id": model_id, **dict(zip(model.attributes, map(float, p)))}
        for fid, p in zip(face_ids, probabilities)
    ]


def _write(Session, model: AttributeModel, model_id: int, batch: list[_Pending],
           predict: Callable = _predict) -> list[str]:
    """Predict the batch's faces in one model call (`predict`: here, or a cluster's actors) and
    store the batch in one transaction. Should one row be refused (a constraint, a value out of
    range), the others are stored one by one; each refused one is logged and returned as
    'path: why', none taking the batch down."""
    frames = [f for item in batch for f in item.frames]
    probabilities = iter(predict(model, frames) if frames else [])
    for item in batch:
        item.probabilities = [next(probabilities) for _ in item.frames]
    return _store_or_split(Session, model, model_id, batch)


def _store_or_split(Session, model: AttributeModel, model_id: int, batch: list[_Pending]) -> list[str]:
    try:
        _store(Session, model, model_id, batch)
        return []
    except (IntegrityError, DataError, OverflowError) as exc:
        if len(batch) == 1:
            where = display_path(batch[0].values.get("path", f"row {batch[0].row_id}"))
            log_failure(exc, f"scan could not store {where}")
            return [f"{where}: {one_line(exc)}"]
    return [bad for item in batch for bad in _store_or_split(Session, model, model_id, [item])]


# The same content under a new stat: facts read for the old stat hold for the new one (read
# again by fill_photo_facts they would cost a decode per touched file).
_FACTS_FOLLOW = (update(PhotoHash.__table__)
                 .where(PhotoHash.photo_id == bindparam("id"), PhotoHash.size == bindparam("old_size"),
                        PhotoHash.mtime_ns == bindparam("old_mtime"))
                 .values(size=bindparam("new_size"), mtime_ns=bindparam("new_mtime")))


def _store(Session, model: AttributeModel, model_id: int, batch: list[_Pending]) -> None:
    with Session.begin() as session:
        ids = [item.row_id for item in batch if item.row_id is not None]
        before = set(session.scalars(select(Photo.content_hash).where(Photo.id.in_(ids)))) if ids else set()
        refreshed = [{"id": item.row_id, **item.values} for item in batch if item.faces is None]
        if refreshed:  # rows whose faces stay (stat refresh, move, error): one bulk UPDATE
            session.execute(update(Photo), refreshed)
        if followed := [{"id": item.row_id, "old_size": item.facts_of[0], "old_mtime": item.facts_of[1],
                         "new_size": item.values["size"], "new_mtime": item.values["mtime_ns"]}
                        for item in batch if item.facts_of is not None]:
            session.execute(_FACTS_FOLLOW, followed)
        for item in batch:
            if item.faces is None or item.copy_of is not None:
                continue
            photo = session.get(Photo, item.row_id) if item.row_id is not None else Photo()
            for key, value in item.values.items():
                setattr(photo, key, value)
            session.add(photo)
            session.flush()
            digest = photo.content_hash
            if digest is None:  # an error row: no content, no faces
                continue
            # faces of this content left by a row that no longer has it (detected anew here)
            session.execute(delete(Face).where(Face.content_hash == digest))
            new_faces = [
                Face(content_hash=digest, index=i, x=f.box[0], y=f.box[1], w=f.box[2], h=f.box[3],
                     confidence=f.confidence, landmarks=[list(p) for p in f.landmarks],
                     crop=align.encode_crop(frame))
                for i, (f, frame) in enumerate(zip(item.faces, item.frames))
            ]
            session.add_all(new_faces)
            session.flush()
            session.merge(PhotoHash(photo_id=photo.id, size=photo.size, mtime_ns=photo.mtime_ns,
                                    dhash=None if item.dhash is None else f"{item.dhash:016x}"))
            rows = _prediction_rows(model, model_id, [f.id for f in new_faces], item.probabilities)
            if rows:
                session.execute(insert(predictions_table), rows)
        for item in batch:  # after the batch's own new photos, which copies may come from
            if item.copy_of is not None:
                _store_copy(session, item)
        session.flush()
        drop_unshared_faces(session, before)  # contents no row has any more (changed, unreadable)


def _store_copy(session: Session, item: _Pending) -> None:
    """A copy's row with the facts of the photo whose content it has; the faces and predictions
    of that content are shared, not copied (deleting one copy keeps the other's)."""
    source = session.scalar(select(Photo).where(
        Photo.content_hash == item.copy_of, Photo.status.in_(("ok", "missing")),
        Photo.path != item.values["path"],
    ).order_by(Photo.status != "ok", Photo.id).limit(1))
    values = dict(item.values)
    if source is None:  # changed since it was seen: the next scan decodes this file itself
        values.update(_problem_values("error", "its identical copy changed during the scan; scan again"))
    else:
        values.update({key: getattr(source, key) for key in _COPIED})
        values["status"] = "ok"
    photo = session.get(Photo, item.row_id) if item.row_id is not None else Photo()
    for key, value in values.items():
        setattr(photo, key, value)
    session.add(photo)
    session.flush()
    look = session.get(PhotoHash, source.id) if source is not None else None
    if look is not None:  # the same content looks the same
        session.merge(PhotoHash(photo_id=photo.id, size=photo.size, mtime_ns=photo.mtime_ns, dhash=look.dhash))


def _known_under(Session, roots: list[Path]) -> dict:
    """Rows of the library under the roots, by path (only these can be claimed or go missing)."""
    with Session() as session:
        rows = session.execute(select(Photo.id, Photo.path, Photo.size, Photo.mtime_ns,
                                      Photo.content_hash, Photo.status, Photo.companions))
        bases = [str(r) for r in roots]
        return {row.path: row for row in rows if _inside(row.path, bases)}


@exclusive("scan")
def scan(
    db,
    roots: Iterable[str | Path],
    *,
    model: AttributeModel | None = None,
    options: ScanOptions | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    cancel: threading.Event | None = None,
    cluster: Cluster | None = None,
) -> dict:
    """Scan roots into the library `db` (an Engine, a sessionmaker or a path/URL) and return the
    summary counts. Faces of photos already in the library but without predictions from `model`
    (e.g. after a model change) are predicted too. With a `cluster` (cluster.Cluster) the photos
    are analysed and predicted on its nodes, which must read them at the same paths (checked
    first: a ScanError before anything is written when they cannot); all else is the same scan. Never writes to the photos, and changes no
    row outside the roots. A root that is not there (an unmounted drive) changes nothing and is
    listed in `roots_absent`; when no root is there the scan is refused. (A drive's empty mount
    point does mark its photos missing; they come back, faces and picks kept, when it is
    mounted again, as long as they are not purged.)"""
    started = time.monotonic()
    options = options or ScanOptions()
    roots = list(dict.fromkeys(Path(os.path.abspath(os.path.expanduser(r))) for r in roots))
    Session = sessions(db)
    absent = [r for r in roots if not os.path.lexists(r)]
    if len(absent) == len(roots):
        raise ScanError(f"the folder is not there (unmounted?): {display_path(absent[0])}")
    roots = [r for r in roots if r not in absent]
    known = _known_under(Session, roots)
    model = model or active_model(Session, load=False)
    by_hash: dict[str, deque] = {}
    for row in known.values():
        if row.content_hash is not None and row.status in ("ok", "missing"):
            by_hash.setdefault(row.content_hash, deque()).append(row)

    with Session() as session:  # contents already in the library: a copy of one is not decoded
        contents = set(session.scalars(select(Photo.content_hash).where(Photo.status.in_(("ok", "missing")))))

    def report(phase: str, current: str | None = None) -> None:
        if progress is None:
            return
        work = done - counts["photos_unchanged"]
        left = len(files) - done
        eta = (time.monotonic() - started) / work * left if work and phase == "scanning" else None
        problems_so_far = sum(counts["problems"].values())
        progress(ScanProgress(phase, len(files), done, counts["faces"], problems_so_far, current, eta))

    counts = dict.fromkeys(("photos_new", "photos_changed", "photos_unchanged", "photos_moved",
                            "photos_rechecked", "photos_copied", "photos_missing", "faces"), 0)
    counts["problems"] = dict.fromkeys(PROBLEMS, 0)  # rows of each kind written by this scan
    counts["skipped"] = Counter()  # files left alone on purpose, by reason
    files: list[Path] = []
    done = 0
    problems: list[tuple[Path, str, str, str | None]] = []
    companions: dict[str, list[str]] = {}  # path -> the RAW files of the same shot
    for path in discover(roots, problems, counts["skipped"], companions):
        files.append(path)
        if len(files) % 500 == 0:
            report("discovering")
    files = list(dict.fromkeys(files))  # overlapping roots
    if cluster is not None and (unreadable := cluster.check_paths(roots, files)):
        raise ScanError(unreadable)
    with Session.begin() as session:
        model_id = register_model(session, model)
        run = ScanRun(roots=[str(r) for r in roots])
        session.add(run)
        session.flush()
        run_id = run.id
    seen = {path_key(p) for p in files}
    moved_from: set[str] = set()
    unlisted: list[str] = []  # reported folders and links: the known photos beneath stay as they were
    batch: list[_Pending] = []
    for folder, status, reason, skip_key in dict.fromkeys(problems):  # each reported once
        key = path_key(folder)
        seen.add(key)
        _count_problem(counts, status, skip_key)
        batch.append(_problem_item(folder, known.get(key), status, reason))
        unlisted.append(key)
    analysed, frames = sum(item.faces is not None for item in batch), 0  # in the batch
    run_status = "failed"
    refused = []
    if cluster is not None:  # the analysis and the model on the cluster, all else here
        workers, pool, predict = cluster.cpus(), cluster.workers(_analyse, model), cluster.predict
    else:
        workers = min(options.workers or usable_cores(), len(files))
        if options.processes and not options.workers:  # each starts its own TensorFlow: seconds
            workers = min(workers, len(files) // 8)
        pool = Workers(_analyse, workers, options.processes) if workers > 1 else None
        predict = _predict
    # Classified files not yet stored, in order: (path, update or None, job, its task). Stored in
    # this order, so the batches (and what is a copy of what) are those of a scan in one process.
    ahead: deque[tuple[Path, _Pending | None, _Job | None, Task | None]] = deque()

    def settle() -> None:
        nonlocal done, batch, refused, analysed, frames
        path, item, job, task = ahead.popleft()
        if job is not None and task is None and job.digest in contents:
            item = _copy(job, counts)
        elif job is not None:
            try:
                item = (pool.result(task or pool.submit(*job.arguments(options))) if pool
                        else _analyse(*job.arguments(options)))
            except WorkerCrash as exc:
                item = _Pending(None, {**job.values, **_problem_values("error", str(exc))}, [])
            item = _analysed(job, item, contents, counts)
        done += 1
        if item is not None:
            batch.append(item)
            analysed += item.faces is not None
            frames += len(item.frames)
        if analysed >= options.commit_every or len(batch) >= REFRESH_BATCH or frames >= options.predict_batch:
            refused += _write(Session, model, model_id, batch, predict)
            batch, analysed, frames = [], 0, 0
        report("scanning", str(path))

    try:
        with pool or nullcontext():
            for path in files:
                if cancel is not None and cancel.is_set():
                    break
                got = _classify(path, known, by_hash, contents, seen, moved_from, counts,
                                companions.get(path_key(path)))
                if not isinstance(got, _Job):
                    ahead.append((path, got, None, None))
                elif pool is None or any(j is not None and j.digest == got.digest for _, _, j, _ in ahead):
                    ahead.append((path, None, got, None))  # a copy of one in flight: decided when settled
                else:
                    ahead.append((path, None, got, pool.submit(*got.arguments(options))))
                while ahead and (len(ahead) > 2 * workers or ahead[0][3] is None or ahead[0][3].done()):
                    settle()
            while ahead:
                settle()
        refused += _write(Session, model, model_id, batch, predict)
        cancelled = cancel is not None and cancel.is_set()
        if not cancelled:
            present = seen | moved_from | {p for p in known if _inside(p, unlisted)}
            paired = {os.path.join(os.path.dirname(jpeg), raw): jpeg
                      for jpeg, raws in companions.items() for raw in raws}
            counts["photos_missing"] = _mark_missing(Session, known, present, paired)
            report("predicting")
            counts["faces_repredicted"] = repredict(Session, model, cancel=cancel, options=options)["faces"]
            fill_photo_facts(Session, roots, progress, cancel)
            cancelled = cancel is not None and cancel.is_set()
            if counts["photos_new"] + counts["photos_changed"] + counts["faces_repredicted"]:
                update_statistics(Session)
        run_status = "cancelled" if cancelled else "done"
    finally:
        counts["skipped"] = dict(sorted(counts["skipped"].items()))
        summary = {"photos_seen": len(files), **counts, "errors": sum(counts["problems"].values()),
                   "not_stored": refused,
                   "roots_absent": [display_path(r) for r in absent],
                   "seconds": round(time.monotonic() - started, 2),
                   "cancelled": run_status == "cancelled",
                   "device": (cluster.describe() if cluster is not None
                              else device_name() if model.keras_model is not None else None),
                   "workers": workers,
                   "model": model.name}
        with Session.begin() as session:
            session.execute(update(ScanRun).where(ScanRun.id == run_id).values(
                status=run_status, finished_at=datetime.now(), summary=summary))
    report("done")
    return summary


def _problem_item(path: Path, row, status: str, reason: str) -> _Pending:
    """The problem row of a file (or folder or link); a known photo keeps its other facts until
    a later scan reads the file again."""
    values = {"path": path_key(path), "folder": path_key(path.parent), "scanned_at": datetime.now(),
              **_problem_values(status, reason)}
    return _Pending(row.id if row else None, values, [] if row is None else None)


def update_statistics(db) -> None:
    """Refresh SQLite's statistics (a sampled ANALYZE: ~1 s at 100k photos). Without them its
    planner takes `model_id = ?` on a prediction index for a few rows and may read a whole
    model's predictions per photo: minutes for one attribute query at 100k photos instead of
    tens of milliseconds (benchmarks/bench_query.py). PostgreSQL's autovacuum gets there too,
    but only a while after a bulk scan."""
    with sessions(db).begin() as session:
        dialect = session.bind.dialect.name
        if dialect == "sqlite":
            session.execute(text("PRAGMA analysis_limit=1000"))
        if dialect in ("sqlite", "postgresql"):
            session.execute(text("ANALYZE"))


def _read(path: Path, row) -> tuple[bytes | None, os.stat_result]:
    """The file's stat, and its bytes unless the stat says it is unchanged (None). Raises
    _Problem for a file that cannot or must not be read."""
    try:
        st = path.stat()
    except OSError as exc:
        raise _Problem("unreadable", f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _Problem("skipped", "not a regular file (a pipe, socket or device); skipped without reading",
                       "special_files")
    if not -_INT64 < st.st_mtime_ns < _INT64:
        raise _Problem("skipped", "the file's modification time is out of range; skipped", "bad_time")
    if st.st_size > imaging.MAX_FILE_BYTES:
        raise _Problem("skipped", f"file too large ({st.st_size:,} bytes; the limit is "
                                  f"{imaging.MAX_FILE_BYTES:,}); skipped without reading", "too_large")
    if row is not None and row.status == "ok" and (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns):
        return None, st
    try:
        return imaging.read_file(path)
    except imaging.PhotoError as exc:
        raise _Problem("unreadable", str(exc)) from None


def _classify(path, known, by_hash, contents, seen, moved_from, counts,
              listed: list[str] | None = None) -> _Pending | _Job | None:
    """Decide what one discovered file needs and count it; returns the row update, None, or the
    _Job of decoding and detecting it (the caller runs it: here or in a worker).
    `contents`: hashes of the library's readable photos (and of those read so far); `listed`:
    the other files of the same shot (the RAW beside a JPEG)."""
    key = path_key(path)
    row = known.get(key)
    try:
        data, st = _read(path, row)
    except _Problem as problem:
        _count_problem(counts, problem.status, problem.skip_key)
        return _problem_item(path, row, problem.status, str(problem))
    if data is None:
        counts["photos_unchanged"] += 1
        return None if row.companions == listed else _Pending(row.id, {"companions": listed})
    digest = hashlib.sha256(data).hexdigest()
    stat_values = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "companions": listed}
    if row is not None and row.status in ("ok", "missing") and digest == row.content_hash:
        counts["photos_unchanged"] += 1
        return _Pending(row.id, {**stat_values, "status": "ok"}, facts_of=(row.size, row.mtime_ns))
    if row is None:
        old = _claim_moved(by_hash.get(digest), seen, moved_from)
        if old is not None:
            counts["photos_moved"] += 1
            return _Pending(old.id, {**stat_values, "path": key, "folder": path_key(path.parent),
                                     "status": "ok"}, facts_of=(old.size, old.mtime_ns))
    if row is None:
        counts["photos_new"] += 1
    else:
        counts["photos_rechecked" if row.status in PROBLEMS else "photos_changed"] += 1
    values = {"path": key, "folder": path_key(path.parent), "content_hash": digest,
              "scanned_at": datetime.now(), **stat_values}
    job = _Job(path, data, st.st_mtime, values, row.id if row is not None else None, digest)
    return _copy(job, counts) if digest in contents else job


def _copy(job: _Job, counts: dict) -> _Pending:
    """A copy of a photo already read: no decode, no detection."""
    counts["photos_copied"] += 1
    return _Pending(job.row_id, job.values, [], copy_of=job.digest)


def _analysed(job: _Job, item: _Pending, contents: set, counts: dict) -> _Pending:
    """Count a job's analysis (done here or in a worker) and note its content as read."""
    item.row_id = job.row_id
    if item.values["status"] == "ok":
        contents.add(job.digest)
    counts["faces"] += len(item.frames)
    counts["problems"]["error"] += item.values["status"] == "error"
    return item


def _claim_moved(candidates: deque | None, seen: set, moved_from: set):
    """The row (of the same content) this new file was moved from: one whose file is gone and
    that no other file has claimed. A candidate ruled out stays out for the whole scan, so it is
    dropped: matching is linear in the number of files, however many share one content."""
    while candidates:
        old = candidates.popleft()
        if old.path not in seen and old.path not in moved_from and not os.path.lexists(old.path):
            moved_from.add(old.path)
            return old
    return None


def _mark_missing(Session, known: dict, present: set[str], paired: dict[str, str]) -> int:
    """Known rows (all under the scanned roots) whose files are gone become `missing`, kept
    until purged. The report of a folder (one that could not be listed, a link not followed)
    that is not reported again is deleted: it was never a photo. A RAW scanned on its own whose
    JPEG came later (`paired`: RAW path -> its JPEG's) is not gone either: it joins the JPEG's
    photo (listed there), its row goes and a pick of it passes to the JPEG's row."""
    gone, settled, joined = [], [], {}
    for path, row in known.items():
        if path in paired and path not in present:
            joined[row.id] = paired[path]
        elif row.status != "missing" and path not in present:
            (settled if row.status in PROBLEMS and os.path.isdir(path) else gone).append(row.id)
    with Session.begin() as session:
        if joined:
            shot = dict(session.execute(select(Photo.path, Photo.id)
                                        .where(Photo.path.in_(set(joined.values())))).all())
            for raw_id, jpeg in joined.items():
                if jpeg in shot:
                    session.execute(update(BestChoice).where(BestChoice.photo_id == raw_id)
                                    .values(photo_id=shot[jpeg]))
            hashes = session.scalars(select(Photo.content_hash).where(Photo.id.in_(list(joined)))).all()
            settled += list(joined)
        for ids, change in ((gone, update(Photo).values(status="missing")), (settled, delete(Photo))):
            for start in range(0, len(ids), 500):
                session.execute(change.where(Photo.id.in_(ids[start:start + 500])))
        if joined:
            drop_unshared_faces(session, hashes)
    return len(gone)


@exclusive("repredict")
def repredict(
    db,
    model: AttributeModel | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    cancel: threading.Event | None = None,
    options: ScanOptions | None = None,
) -> dict:
    """Predict with `model` (default: the active one) every face that has no prediction from it
    yet, re-aligning from the stored landmarks (no detection); earlier models' predictions stay.
    A photo whose file no longer has the content those landmarks came from is left for the next
    scan (counted in `errors`). The model becomes the active one. Resumable: done faces are
    skipped."""
    started = time.monotonic()
    options = options or ScanOptions()
    Session = sessions(db)
    model = model or active_model(Session, load=False)
    with Session.begin() as session:
        model_id = register_model(session, model)
        has_prediction = exists().where(predictions_table.c.face_id == Face.id,
                                        predictions_table.c.model_id == model_id)
        todo = session.execute(
            select(Face.id, Face.landmarks, Face.content_hash, Photo.path)
            .join(Photo, Photo.content_hash == Face.content_hash)
            .where(Photo.status == "ok", ~has_prediction)
            .order_by(Face.content_hash, Photo.id, Face.index)
        ).all()
    # A content's faces are read and aligned once, from the first of its files that still has it.
    by_content: dict[str, dict[str, list]] = {}
    for row in todo:
        by_content.setdefault(row.content_hash, {}).setdefault(row.path, []).append(row)
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

    done = 0
    for by_path in by_content.values():
        if cancel is not None and cancel.is_set():
            break
        if progress is not None:
            progress(ScanProgress("predicting", len(by_content), done, result["faces"],
                                  result["errors"], next(iter(by_path))))
        done += 1
        aligned = None
        for rows in by_path.values():  # the first copy whose file still has the content
            try:
                aligned = _realign(rows, options)
                break
            except Exception:  # noqa: BLE001 - unreadable now; the next scan records why
                continue
        if aligned is None:
            result["errors"] += 1
            continue
        face_ids.extend(r.id for r in rows)
        frames.extend(aligned)
        result["photos"] += 1
        if len(frames) >= options.predict_batch:
            flush()
    flush()
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def _realign(rows: list, options: ScanOptions) -> list[np.ndarray]:
    """Aligned frames of one photo's faces from their stored landmarks, if the file still has
    the content they came from."""
    data, st = imaging.read_file(rows[0].path)
    if hashlib.sha256(data).hexdigest() != rows[0].content_hash:
        raise imaging.PhotoError("changed since it was scanned")
    photo = imaging.open_photo(rows[0].path, data, st.st_mtime)
    return _frames(photo, [r.landmarks for r in rows], options.detection_side(photo))


@exclusive("fill-photo-facts")
def fill_photo_facts(db, roots: Iterable[Path] | None = None,
                     progress: Callable[[ScanProgress], None] | None = None,
                     cancel: threading.Event | None = None) -> int:
    """Read what best-smiling needs (perceptual hash, XMP burst marker) for readable photos under
    `roots` (None: all) that lack it for their current file version: photos of libraries scanned
    before the scan stored it, or files touched without changing. Runs at the end of every scan
    over its roots; returns the count."""
    Session = sessions(db)
    with Session() as session:
        todo = [row for row in session.execute(
            select(Photo.id, Photo.path, Photo.size, Photo.mtime_ns).outerjoin(PhotoHash)
            .where(Photo.status == "ok",
                   (PhotoHash.photo_id.is_(None)) | PhotoHash.size.is_distinct_from(Photo.size)
                   | PhotoHash.mtime_ns.is_distinct_from(Photo.mtime_ns))
        ) if roots is None or _inside(row.path, map(str, roots))]
    for start in range(0, len(todo), 64):
        if cancel is not None and cancel.is_set():
            break
        if progress is not None:
            progress(ScanProgress("hashing", len(todo), start, 0, 0, todo[start].path))
        with Session.begin() as session:
            for row in todo[start:start + 64]:
                try:
                    photo = imaging.open_photo(row.path)
                    value, marker = imaging.dhash(photo.image(64)), photo.burst_id
                except imaging.PhotoError:
                    value, marker = None, None
                session.merge(PhotoHash(photo_id=row.id, size=row.size, mtime_ns=row.mtime_ns,
                                        dhash=None if value is None else f"{value:016x}"))
                if marker:
                    session.execute(update(Photo).where(Photo.id == row.id).values(burst_id=marker))
    return len(todo)


def list_missing(db) -> list[dict]:
    """What purge_missing would delete: each missing photo with its face count and whether it is
    a user's pick of a burst (shown for confirmation before purging)."""
    picked = exists().where(BestChoice.photo_id == Photo.id)
    with sessions(db)() as session:
        rows = session.execute(select(Photo.id, Photo.path, Photo.n_faces, picked.label("picked"))
                               .where(Photo.status == "missing").order_by(Photo.path))
        return [{"id": r.id, "path": r.path, "faces": r.n_faces, "picked": bool(r.picked)} for r in rows]


@exclusive("purge-missing")
def purge_missing(db, ids: Iterable[int] | None = None) -> int:
    """Delete the rows of missing photos (faces and predictions no other copy has, and picks,
    go with them; a pick passes to a readable copy in the same folder); `ids` limits it to
    those listed (e.g. by list_missing) that are still missing. Under the library lock, so a
    running scan's batch is never deleted under it."""
    stmt = delete(Photo).where(Photo.status == "missing")
    if ids is not None:
        stmt = stmt.where(Photo.id.in_(list(ids)))
    with db.begin() as session:
        copy = aliased(Photo)
        for choice, gone in session.execute(select(BestChoice, Photo).join(Photo).where(stmt.whereclause)):
            heir = session.scalar(select(copy.id).where(
                copy.content_hash == gone.content_hash, copy.folder == gone.folder,
                copy.status == "ok").order_by(copy.id).limit(1))
            if heir is not None:
                choice.photo_id = heir
        session.flush()
        hashes = session.scalars(select(Photo.content_hash).where(stmt.whereclause)).all()
        count = session.execute(stmt).rowcount
        drop_unshared_faces(session, hashes)
        return count


def list_errors(db) -> list[dict]:
    """The library's problem rows (PROBLEMS), and why: what `errors` prints and the GUI's
    problems panel shows; `kind` is the row's status."""
    with sessions(db)() as session:
        rows = session.execute(select(Photo.path, Photo.status, Photo.error, Photo.scanned_at)
                               .where(Photo.status.in_(PROBLEMS)).order_by(Photo.path))
        return [{"path": r.path, "kind": r.status, "error": r.error, "scanned_at": r.scanned_at}
                for r in rows]


def problem_counts(db) -> dict[str, int]:
    """Problem rows of the library per kind (every kind of PROBLEMS, zeros included)."""
    with sessions(db)() as session:
        found = dict(session.execute(select(Photo.status, func.count()).where(Photo.status.in_(PROBLEMS))
                                     .group_by(Photo.status)).all())
    return {kind: found.get(kind, 0) for kind in PROBLEMS}
