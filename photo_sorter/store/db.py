"""Engine and sessions: SQLite in WAL mode by default, any SQLAlchemy URL (PostgreSQL) accepted.

Opening checks the database read-only first (store/schema.py): a file that is not ours or is
damaged is refused untouched. An older library is upgraded in place after a backup copy beside
it, which is removed once the upgrade has succeeded.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
import urllib.parse
from pathlib import Path

import platformdirs
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from photo_sorter.store import schema
from photo_sorter.store.errors import DatabaseError

APP_NAME = "photo_sorter"
BUSY_SECONDS = 30   # how long a write waits for another connection's write
CHECK_SECONDS = 5   # how long the open check waits for a lock held by another program
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
log = logging.getLogger(__name__)


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return user_data_dir() / "library.db"


def to_url(url_or_path: str | Path | None) -> URL:
    """A plain path (or None for the default) is always a path, whatever characters it holds
    ('lib%41.db' stays that name); only 'scheme://...' is a URL."""
    if url_or_path is None:
        url_or_path = default_db_path()
    text = str(url_or_path)
    if isinstance(url_or_path, str) and _SCHEME.match(text):
        try:
            url = make_url(text)
        except ArgumentError:
            raise DatabaseError(f"{text} is not a database URL (e.g. postgresql://user@host/db)") from None
        # plain postgresql:// means SQLAlchemy's psycopg2; the [postgres] extra installs psycopg 3
        return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url
    return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))


def describe(url: URL) -> str:
    """The database as named to the user: the path of a file, else the URL without password."""
    if _sqlite_file(url):
        return url.database
    return url.render_as_string(hide_password=True)


def address(url: URL) -> str:
    """The database as the user can give it again (--db, File > Open recent): a file's path,
    else the URL without its password (libpq finds that in ~/.pgpass or PGPASSWORD)."""
    if _sqlite_file(url):
        return url.database
    return url._replace(password=None).render_as_string(hide_password=False)  # (set(password=None) keeps it)


def _sqlite_file(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


def _create(url: URL, **kwargs) -> Engine:
    try:
        return create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise DatabaseError(f"{describe(url)}: unknown kind of database '{url.get_backend_name()}'; "
                            "give a file path, or a URL such as postgresql://user@host/db") from None
    except ImportError as exc:
        raise DatabaseError(f"{describe(url)}: the database driver is not installed ({exc.name or exc}); "
                            "install it with pip") from None


def open_engine(url_or_path: str | Path | None = None) -> Engine:
    """The engine of a library, created or upgraded to the current schema as needed. Raises
    DatabaseError, with the file untouched, for anything that is not a library we can use."""
    url = to_url(url_or_path)
    if _sqlite_file(url):
        return _open_sqlite(Path(url.database), url)
    engine = _create(url)
    try:
        with engine.connect() as conn:
            revision = schema.current_revision(conn, describe(url))
        if revision != schema.head():  # one process upgrades; the others wait, then find it done
            from photo_sorter.store.lock import library_lock

            with library_lock(engine, wait=60, doing="upgrade"), engine.begin() as conn:
                revision = schema.current_revision(conn, describe(url))
                if revision != schema.head():
                    schema.upgrade(conn, revision)
    except DatabaseError:
        engine.dispose()
        raise
    except schema.SchemaError as exc:
        engine.dispose()
        raise DatabaseError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any driver error means: not a usable database
        engine.dispose()
        raise DatabaseError(f"cannot open database {describe(url)}: {_first_line(exc)}") from None
    _one_line_errors(engine, describe(url))
    return engine


def _first_line(exc: BaseException) -> str:
    exc = getattr(exc, "orig", None) or exc
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_only(path: Path, timeout: float, wal: bool) -> Engine:
    """A connection that cannot write. A WAL file with no -wal beside it is opened immutable:
    a read-only connection would otherwise create the -wal and -shm files."""
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    if wal and not path.with_name(path.name + "-wal").exists():
        uri += "&immutable=1"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=timeout))


def _checked_record() -> Path:
    return user_data_dir() / "checked-libraries.json"


def _fingerprint(path: Path) -> list[int]:
    """The file and its write-ahead log as they are now: inode, size, mtime."""
    wal = path.with_name(path.name + "-wal")
    return [v for p in (path, wal) if p.exists() for st in [p.stat()]
            for v in (st.st_ino, st.st_size, st.st_mtime_ns)]


def _checked_before(path: Path) -> bool:
    """Whether this very file (same inode, size and mtime) passed the page check already: the
    check reads every page (seconds for a large library), so it runs once per change of the file."""
    try:
        return json.loads(_checked_record().read_text()).get(str(path)) == _fingerprint(path)
    except (OSError, ValueError, AttributeError):
        return False


def _remember_checked(path: Path) -> None:
    fingerprint = _fingerprint(path)
    if time.time_ns() - max(fingerprint[2::3]) < 2_000_000_000:
        return  # a write within the same clock tick would keep this mtime: check again next time
    from photo_sorter.files import atomic_write

    try:
        record = json.loads(_checked_record().read_text())
    except (OSError, ValueError):
        record = {}
    record.pop(str(path), None)
    record[str(path)] = fingerprint
    try:
        atomic_write(_checked_record(), json.dumps(dict(list(record.items())[-50:])).encode())
    except OSError:
        pass  # only saves time


def _inspect(path: Path) -> str | None:
    """The file's schema revision, read without writing anything (see schema.current_revision)."""
    if path.is_dir():
        raise DatabaseError(f"cannot open database {path}: it is a folder")
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as fh:
        header = fh.read(100)
    if header[:16] != b"SQLite format 3\x00":
        raise DatabaseError(f"cannot open database {path}: file is not a database")
    engine = _read_only(path, CHECK_SECONDS, wal=header[18:20] == b"\x02\x02")
    checked = _checked_before(path)
    try:
        with engine.connect() as conn:
            revision = schema.current_revision(conn, str(path), integrity=not checked)
        if not checked:
            _remember_checked(path)
        return revision
    except schema.SchemaError as exc:
        raise DatabaseError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - sqlite3 says what is wrong with the file
        raise DatabaseError(_sqlite_message(path, _first_line(exc), CHECK_SECONDS)) from None
    finally:
        engine.dispose()


def _sqlite_message(path, message: str, waited: float) -> str:
    if "locked" in message or "busy" in message:
        return (f"the library {path} is locked by another program (waited {waited:g} s); "
                "close it or let it finish, then try again")
    if "full" in message:
        return f"the disk holding {path} is full; free some space and try again (the last change was not saved)"
    if "readonly" in message or "read-only" in message:
        return f"cannot write to {path}: the file or its folder is read-only"
    if "malformed" in message or "not a database" in message:
        return f"{path} is damaged ({message}); restore it from a backup or choose another file"
    return f"cannot open database {path}: {message}"


def _open_sqlite(path: Path, url: URL) -> Engine:
    from photo_sorter.store.lock import library_lock

    if _inspect(path) != schema.head():
        path.parent.mkdir(parents=True, exist_ok=True)
        with library_lock(path, wait=60, doing="upgrade"):
            revision = _inspect(path)  # another process may have done it meanwhile
            if revision != schema.head():
                _upgrade_sqlite(path, url, revision)
    engine = _create(url, connect_args={"timeout": BUSY_SECONDS})
    event.listen(engine, "connect", _sqlite_pragmas)
    _one_line_errors(engine, str(path))
    return engine


def _upgrade_sqlite(path: Path, url: URL, revision: str | None) -> None:
    """Create or upgrade the file to head in one transaction, after a backup copy of an existing
    library that is kept if anything fails."""
    backup = None
    if revision is not None:
        backup = path.with_name(f"{path.name}.backup-{revision}")
        log.warning("upgrading the library %s from schema %s; a copy is kept at %s until it succeeds",
                    path, revision, backup)
        src, dst = sqlite3.connect(path), sqlite3.connect(backup)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    engine = _create(url, connect_args={"timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_conn, _record):  # so the DDL is part of the transaction
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA foreign_keys=OFF")

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.begin() as conn:
            schema.upgrade(conn, revision)
    except Exception as exc:  # noqa: BLE001 - rolled back; say why in one line
        kept = f"; the library is unchanged (a copy is at {backup})" if backup else ""
        raise DatabaseError(f"cannot {'upgrade' if backup else 'create'} the library {path}: "
                            f"{_first_line(exc)}{kept}") from None
    finally:
        engine.dispose()
    if backup is not None:
        backup.unlink()


CACHE_KIB = 64 * 1024   # per connection, filled only as pages are read
MMAP_BYTES = 2**32      # address space, not memory: the OS's page cache backs it


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    # Queries at scale read thousands of scattered rows (query.py): from SQLite's page cache or
    # the mapped file they cost ~1 us each, through a read() per page 3-5x that (bench_query.py).
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    cur.close()


def _one_line_errors(engine: Engine, where: str) -> None:
    """Database trouble met during work (locked, disk full, damaged) becomes a DatabaseError
    with one line saying what happened; the transaction it interrupted is rolled back."""

    @event.listens_for(engine, "handle_error")
    def _translate(ctx):
        if isinstance(ctx.original_exception, sqlite3.OperationalError | sqlite3.DatabaseError):
            message = _first_line(ctx.original_exception)
            if any(k in message for k in ("locked", "busy", "full", "readonly", "read-only",
                                          "malformed", "not a database", "disk I/O")):
                raise DatabaseError(_sqlite_message(where, message, BUSY_SECONDS))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
