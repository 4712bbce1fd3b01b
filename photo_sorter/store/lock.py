"""The library lock: one writing command at a time per library (scan, repredict, purge-missing,
install-model, choose-best, cluster, upgrades), across threads and processes.

For a SQLite library it is a lock file beside the database; the OS drops it when its holder
dies, so a crashed command never leaves it stuck. The holder writes what it is doing into the
file, so a refused command can say who is busy. A server database (PostgreSQL) serialises
writers with its own transactions and takes no file lock.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from photo_sorter.store.db import DatabaseError, open_engine, session_factory


class LibraryBusy(DatabaseError):
    """Another command is writing to the library; try again when it has finished."""


def sessions(db) -> sessionmaker:
    """A sessionmaker for db: an Engine, a sessionmaker, or a path/URL (opened and checked)."""
    if isinstance(db, sessionmaker):
        return db
    return session_factory(db if isinstance(db, Engine) else open_engine(db))


def library_file(db) -> Path | None:
    """The SQLite file behind db (a path, Engine or sessionmaker), None for other databases."""
    if isinstance(db, (str, Path)):
        return Path(db)
    engine = db.kw["bind"] if isinstance(db, sessionmaker) else db
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


@contextmanager
def library_lock(db, *, wait: float = 0, doing: str = "a command"):
    """Hold the library's lock; raises LibraryBusy when another holder keeps it past `wait`
    seconds. Re-entrant within a thread (a scan's own re-prediction)."""
    path = library_file(db)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    lock = FileLock(lock_path, timeout=wait, is_singleton=True)
    try:
        holder = lock_path.read_text(errors="replace").strip() if not lock.is_locked else ""
    except OSError:
        holder = ""
    try:
        lock.acquire()
    except Timeout:
        who = f" ({holder})" if holder else ""
        raise LibraryBusy(f"the library {path} is busy: another command is writing to it{who}; "
                          "try again when it has finished") from None
    try:
        if lock.lock_counter == 1:
            try:
                lock_path.write_text(f"{doing}, pid {os.getpid()}")
            except OSError:
                pass  # only informative
        yield
    finally:
        lock.release()


def exclusive(doing: str):
    """Decorate func(db, ...) to run under the library lock, refusing at once when busy; db is
    passed on as a sessionmaker."""

    def decorate(func):
        @functools.wraps(func)
        def locked(db, *args, **kwargs):
            Session = sessions(db)
            with library_lock(Session, doing=doing):
                return func(Session, *args, **kwargs)

        return locked

    return decorate
