"""Engine and sessions: SQLite in WAL mode by default, any SQLAlchemy URL (PostgreSQL) accepted."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from photo_sorter.store.models import Base

APP_NAME = "photo_sorter"


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return user_data_dir() / "library.db"


def to_url(url_or_path: str | Path | None) -> str:
    """A plain path (or None for the default) becomes a sqlite URL; URLs pass through."""
    if url_or_path is None:
        url_or_path = default_db_path()
    text = str(url_or_path)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class DatabaseError(RuntimeError):
    """The database cannot be used (corrupt, foreign or unreachable); the file is left untouched."""


def open_engine(url_or_path: str | Path | None = None) -> Engine:
    """Create the engine and the tables. Refuses files that are not photo_sorter databases."""
    url = to_url(url_or_path)
    engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    try:  # checked before the WAL pragma, which would rewrite a foreign file's header
        existing = set(inspect(engine).get_table_names())
    except Exception as exc:  # noqa: BLE001 - any driver error means: not a usable database
        engine.dispose()
        raise DatabaseError(f"cannot open database {url}: {getattr(exc, 'orig', None) or exc}") from exc
    ours = set(Base.metadata.tables)
    engine.dispose()
    if existing and not existing & ours:
        raise DatabaseError(
            f"{url} is a database of another program (tables: {', '.join(sorted(existing)[:5])}); "
            "choose another file"
        )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
