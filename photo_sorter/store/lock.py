"""The library lock: one writing command at a time per library (scan, repredict, purge-missing,
install-model, choose-best, cluster, upgrades), across threads and processes.

For a SQLite library it is a lock file beside the database; the OS drops it when its holder
dies, so a crashed command never leaves it stuck. The holder writes what it is doing into the
file, so a refused command can say who is busy. A PostgreSQL library is locked by a session-level
advisory lock that a connection of the holder keeps (the server drops it with the connection, so
a crashed command does not leave it either); the holder's application_name says who it is.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import text
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
    url = _engine(db).url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


@contextmanager
def library_lock(db, *, wait: float = 0, doing: str = "a command"):
    """Hold the library's lock; raises LibraryBusy when another holder keeps it past `wait`
    seconds. Re-entrant within a thread (a scan's own re-prediction)."""
    path = library_file(db)
    if path is None:
        engine = _engine(db)
        if engine.dialect.name == "postgresql":
            with _advisory_lock(engine, wait, doing):
                yield
        else:
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


def _engine(db) -> Engine:
    return db.kw["bind"] if isinstance(db, sessionmaker) else db


ADVISORY_KEY = 0x50534F52  # "PSOR": the library's lock among the database's advisory locks
_held = threading.local()  # {url: [connection, depth]} of this thread's advisory locks


@contextmanager
def _advisory_lock(engine: Engine, wait: float, doing: str):
    """pg_try_advisory_lock on a connection of its own, polled until `wait` runs out; the lock
    lives as long as that connection's session, whatever the holder's transactions do."""
    key = engine.url.render_as_string(hide_password=True)
    held = _held.__dict__.setdefault("locks", {})
    if key in held:
        held[key][1] += 1
        try:
            yield
        finally:
            held[key][1] -= 1
        return
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + wait
        while not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}):
            if time.monotonic() >= deadline:
                holder = conn.scalar(text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                    {"k": ADVISORY_KEY})
                who = f" ({holder.removeprefix('photo_sorter: ')})" if holder else ""
                raise LibraryBusy(f"the library {key} is busy: another command is writing to it{who}; "
                                  "try again when it has finished")
            time.sleep(0.2)
        conn.execute(text("SELECT set_config('application_name', :n, false)"),
                     {"n": f"photo_sorter: {doing}, pid {os.getpid()}"[:63]})
        held[key] = [conn, 1]
        try:
            yield
        finally:
            del held[key]
            conn.execute(text("SELECT pg_advisory_unlock(:k), set_config('application_name', '', false)"),
                         {"k": ADVISORY_KEY})
    finally:
        conn.close()


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
