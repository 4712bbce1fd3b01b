"""Failures as the user sees them: one readable line, with the details (the traceback) kept in a
log file under the user data folder, where a bug report can pick them up."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from sqlalchemy.exc import DBAPIError

log = logging.getLogger("photo_sorter")


def log_path() -> Path:
    from photo_sorter.store.db import user_data_dir

    return user_data_dir() / "logs" / "photo_sorter.log"


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (an OSError as 'PATH: reason', a database error as
    the driver's words without the SQL), or its type's name."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__


def log_failure(exc: BaseException, context: str) -> Path | None:
    """Append the exception with its traceback to the log (rotated at 1 MB); the log's path, or
    None when it cannot be written (a read-only home must not turn one error into two)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        log.error("%s: %s", context, one_line(exc), exc_info=exc)
    finally:
        log.removeHandler(handler)
        handler.close()
    return path
