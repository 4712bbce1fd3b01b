"""Which schema a database holds, and upgrading it to ours with Alembic (store/migrations).

A database is ours when it says so (SQLite application_id, Alembic's version table) and holds
the tables and columns of that version; a SQLite library from before migrations (commit 0250049)
is recognised by its exact schema. A server database (PostgreSQL) has no application id: one
with tables but no alembic_version is another program's. Anything else - another program's database, a damaged file, a
library from a newer photo_sorter - is refused before a byte of it is written.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from photo_sorter.store.models import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
APPLICATION_ID = 0x50534F52  # "PSOR" in the SQLite header: this file is a photo_sorter library
BASELINE = "0001_baseline"   # the unversioned schema of commit 0250049


class SchemaError(RuntimeError):
    """The database is not a library this version can use; one line saying why."""


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return _scripts().get_current_head()


def known_revisions() -> list[str]:
    """Oldest first."""
    return [s.revision for s in reversed(list(_scripts().walk_revisions()))]


def user_version(revision: str) -> int:
    """The revision's number (its 'NNNN_' prefix), mirrored in SQLite's user_version."""
    return int(revision.split("_", 1)[0])


@cache
def baseline_metadata() -> MetaData:
    spec = importlib.util.spec_from_file_location("_baseline", MIGRATIONS / "versions" / f"{BASELINE}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metadata()


def _mismatch(conn: Connection, metadata: MetaData, tables: set[str]) -> str | None:
    """The first difference between the database's tables/columns and metadata's, or None."""
    insp = inspect(conn)
    for name, table in metadata.tables.items():
        if name not in tables:
            return f"table {name} is missing"
        have = {c["name"] for c in insp.get_columns(name)}
        want = set(table.columns.keys())
        if want - have:
            return f"table {name} lacks column {sorted(want - have)[0]}"
        if have - want:
            return f"table {name} has an unknown column {sorted(have - want)[0]}"
    return None


def current_revision(conn: Connection, where: str, integrity: bool = True) -> str | None:
    """The schema revision the database holds (BASELINE for a pre-migration library, None for an
    empty database), after checking that it is ours and (with `integrity`, a read of every page)
    undamaged. Only reads."""
    sqlite = conn.dialect.name == "sqlite"
    app_id = conn.exec_driver_sql("PRAGMA application_id").scalar() if sqlite else APPLICATION_ID
    if app_id not in (0, APPLICATION_ID):
        raise SchemaError(f"{where} is a database of another program (application id {app_id:#x}); "
                          "choose another file")
    if sqlite and integrity:
        problems = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            first = problems[0].strip().splitlines()[0]
            raise SchemaError(f"{where} is damaged (database disk image is malformed: {first}); "
                              "restore it from a backup or choose another file")
    tables = {t for t in inspect(conn).get_table_names() if not t.startswith("sqlite_")}
    if not tables:
        return None
    foreign = (f"{where} is a database of another program (tables: "
               f"{', '.join(sorted(tables)[:5])}); choose another {'file' if sqlite else 'database'}")
    if "alembic_version" in tables:
        if app_id != APPLICATION_ID:
            raise SchemaError(foreign)
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if revision not in known_revisions():
            raise SchemaError(f"{where} was made by a newer version of photo_sorter (schema {revision}); "
                              "update photo_sorter to open it")
        expected = Base.metadata if revision == head() else None
        if revision == BASELINE:
            expected = baseline_metadata()
    elif not sqlite:  # libraries on a server began with migrations: no version, not ours
        raise SchemaError(foreign)
    elif app_id == APPLICATION_ID:
        raise SchemaError(f"{where} is damaged: its schema version is gone; restore it from a backup")
    elif not tables & set(Base.metadata.tables):
        raise SchemaError(foreign)
    else:
        revision, expected = BASELINE, baseline_metadata()
    if expected is not None:
        problem = _mismatch(conn, expected, tables - {"alembic_version"})
        if problem:
            raise SchemaError(f"{where} is not a photo_sorter library this version knows ({problem}): "
                              "a database of another program, or a damaged one; choose another file")
    return revision


def upgrade(conn: Connection, revision: str | None) -> None:
    """Bring the database from `revision` (see current_revision) to head inside the caller's
    transaction, so a failure leaves it as it was. SQLite needs foreign keys off meanwhile
    (batch migrations recreate tables; a DROP would cascade)."""
    if revision == BASELINE and not _has_version(conn):
        command.stamp(config(conn), BASELINE)
    command.upgrade(config(conn), "head")
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA application_id={APPLICATION_ID}")
        conn.exec_driver_sql(f"PRAGMA user_version={user_version(head())}")
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise SchemaError(f"the upgrade would break a reference in table {broken[0]}")
    problem = _mismatch(conn, Base.metadata, set(inspect(conn).get_table_names()))
    if problem:
        raise SchemaError(f"the upgrade did not give the expected schema ({problem})")


def _has_version(conn: Connection) -> bool:
    return "alembic_version" in inspect(conn).get_table_names()
