"""Library-level operations the desktop app offers (no Qt): forgetting a removed folder, the
folders a library's scans covered, the library's counts and problems in plain words, and the installed models (list, activate, delete).

The CLI and the scan keep their precise technical messages; `plain_problem` is what a user reads.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from photo_sorter.scan import PROBLEMS, list_errors
from photo_sorter.store import ModelVersion, Photo, drop_unshared_faces, library_lock, model_row
from photo_sorter.store.models import PathText
from photo_sorter.store.registry import activate

# (pattern in the stored error, what the user reads); first match wins.
_PLAIN = (
    (r"truncated|ends? early|premature end", "The file ends early (damaged, or still being copied)."),
    (r"not an image|cannot identify|unidentified", "Not a picture this app can read (a damaged file, "
                                                   "or another kind of file named like a photo)."),
    (r"decompression|too large", "The picture is too large to open safely."),
    (r"permission denied|errno 13", "No permission to read this file."),
    (r"file not found|no such file", "The file is no longer there."),
    (r"broken data stream|corrupt|invalid|damaged", "The file is damaged."),
    (r"is a directory|not a directory|errno", "The file or folder cannot be read."),
)


def plain_problem(error: str | None, kind: str = "error") -> str:
    """One plain sentence for a stored scan problem ('OSError: image file is truncated (31 bytes
    not processed)' -> 'The file ends early (damaged, or still being copied).'). A file skipped
    on purpose (kind 'skipped', scan.PROBLEMS) keeps the scan's own reason, which is plain."""
    text = (error or "").strip()
    if kind == "skipped":
        return f"Skipped on purpose: {text[:1].lower() + text[1:]}" if text else "Skipped on purpose."
    for pattern, message in _PLAIN:
        if re.search(pattern, text, re.IGNORECASE):
            return message
    text = re.sub(r"^[A-Za-z]*(Error|Exception):\s*", "", text)
    return (text[:1].upper() + text[1:]) if text else "The file could not be read."


class _codepoint_order(FunctionElement):
    """A path compared character by character (SQLite's BINARY; PostgreSQL's "C" collation
    rather than the database's locale, which may ignore '/' when ordering)."""

    inherit_cache = True
    type = PathText()


@compiles(_codepoint_order)
def _plain(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_codepoint_order, "postgresql")
def _c_collation(element, compiler, **kw):
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


def under(folder: str):
    """Photos inside folder or any subfolder of it: the paths from 'folder/' up to 'folder0'
    ('0' follows '/'), a range the path index serves (a LIKE prefix scanned every row: 224-380 ms
    for one folder at 1M photos). Unlike LIKE, case, '_' and '%' in names are taken literally."""
    folder = folder.rstrip("/\\")
    path = _codepoint_order(Photo.path)
    return or_(Photo.folder == folder, and_(path >= folder + "/", path < folder + "0"))


def forget_folder(engine: Engine, folder: str, keep: list[str] = ()) -> int:
    """Delete the rows of the photos under a folder removed from the library (faces and
    predictions no other copy has, and picks, go with them; the files are untouched). Photos also under a folder in `keep` (a
    parent or child still in the library) stay. Returns how many rows went."""
    condition = under(folder)
    if keep:
        condition = condition & ~or_(*(under(f) for f in keep))
    with Session(engine) as s, s.begin():
        hashes = s.scalars(select(Photo.content_hash).where(condition)).all()
        count = s.execute(delete(Photo).where(condition)).rowcount
        drop_unshared_faces(s, hashes)  # copies elsewhere keep their faces
        return count


def scanned_folders(engine: Engine) -> list[str]:
    """The folders the library's scans covered that are still folders, oldest first: the
    library's folders when the app opens a library it has no folder list for (one made with the
    CLI, or on another computer)."""
    from photo_sorter.store import ScanRun

    with Session(engine) as s:
        roots = [r for run in s.scalars(select(ScanRun.roots).order_by(ScanRun.id)) for r in run or ()]
    return [r for r in dict.fromkeys(roots) if Path(r).is_dir()]


def counts(engine: Engine) -> dict:
    """photos (readable), errors (unreadable: what the problems list holds), faces. Every count
    the app shows comes from here, so the status bar, the library panel and the scan's closing
    message agree."""
    from photo_sorter.store import Face

    with Session(engine) as s:
        by_status = dict(s.execute(select(Photo.status, func.count()).group_by(Photo.status)).all())
        faces = s.scalar(select(func.count()).select_from(Face)) or 0
    errors = sum(by_status.get(kind, 0) for kind in PROBLEMS)  # the scan's one definition
    return {"photos": by_status.get("ok", 0), "errors": errors, "faces": faces}


def problems(engine: Engine, ignored: set[str] = frozenset()) -> list[dict]:
    """The unreadable files (the set `counts` calls errors) less those the user chose to ignore,
    each with a plain message."""
    return [{**r, "message": plain_problem(r["error"], r["kind"])} for r in list_errors(engine)
            if r["path"] not in ignored]


# --- installed models --------------------------------------------------------------------------

def majority_only(card: dict) -> bool:
    """True when the card's validation figures are no better than always answering the more
    common value (balanced accuracy <= 0.5 for every attribute measured)."""
    per = ((card.get("metrics") or {}).get("validation") or {}).get("per_attribute") or {}
    values = [m.get("balanced_accuracy") for m in per.values() if isinstance(m, dict)]
    values = [v for v in values if v is not None]
    return bool(values) and max(values) <= 0.5 + 1e-9


def models(engine: Engine) -> list[dict]:
    """Installed models, newest first, with the figures their cards give."""
    with Session(engine) as s:
        rows = s.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())).all()
        out = []
        for m in rows:
            card = dict(m.card or {})
            validation = (card.get("metrics") or {}).get("validation") or {}
            out.append({"id": m.id, "name": m.name, "path": m.path, "active": bool(m.active),
                        "attributes": list(m.attributes), "file_exists": Path(m.path).is_file(),
                        "accuracy": validation.get("mean_accuracy"),
                        "balanced_accuracy": validation.get("mean_balanced_accuracy"),
                        "installed_at": m.added_at, "card": card})
        return out


def activate_model(engine: Engine, model_id: int) -> None:
    """Make an installed model the active one (its earlier predictions are reused; faces it has
    not predicted yet need `scan.repredict`)."""
    with library_lock(engine, doing="activate model"), Session(engine) as s, s.begin():
        if s.get(ModelVersion, model_id) is None:
            raise ValueError(f"no installed model with id {model_id}")
        activate(s, model_id)


def delete_model(engine: Engine, model_id: int) -> None:
    """Forget an installed model and its predictions (its file stays on disk). The active model
    cannot be deleted: activate another one first."""
    with library_lock(engine, doing="delete model"), Session(engine) as s, s.begin():
        m = s.get(ModelVersion, model_id)
        if m is None:
            raise ValueError(f"no installed model with id {model_id}")
        if m.active:
            raise ValueError(f"{m.name} is the active model: activate another one before deleting it")
        s.execute(delete(ModelVersion).where(ModelVersion.id == model_id))


def run_outdated(engine: Engine, run: dict) -> str:
    """Why a stored cluster run no longer describes the library ('' when it still does): another
    model is active, or faces the active model has predicted were added or removed since."""
    from photo_sorter.store import predictions_table

    with Session(engine) as s:
        active = getattr(model_row(s), "id", None)
        faces = s.scalar(select(func.count()).select_from(predictions_table)
                         .where(predictions_table.c.model_id == active)) or 0
    if run.get("model_id") is not None and active is not None and run["model_id"] != active:
        return "it was made with another attribute model than the active one"
    clustered = (run.get("params") or {}).get("n_faces")
    if clustered is not None and clustered != faces:
        return f"the library now has {faces} faces, the run saw {clustered}"
    return ""
