"""Opening a library by --db, and database trouble met during work: every problem is one line
(DatabaseError in the core, exit status 2 on the command line), never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from sqlalchemy import event, insert, select

from conftest import REPO
from photo_sorter.gui import listings
from photo_sorter.scan import list_errors
from photo_sorter.store import DatabaseError, Photo, open_engine, session_factory
from photo_sorter.store.db import to_url


def headless(*argv, timeout=120):
    return subprocess.run([sys.executable, "main.py", "--headless", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line(cli, *needles):
    assert cli.returncode == 2, (cli.returncode, cli.stderr)
    assert cli.stderr.startswith("error: ") and cli.stderr.count("\n") == 1, cli.stderr
    assert "Traceback" not in cli.stderr
    for needle in needles:
        assert needle in cli.stderr, cli.stderr


@pytest.mark.parametrize("name", ["lib%41.db", "a%20b.db", "x?mode=ro.db", "#1.db", "lib:x.db"])
def test_a_plain_path_is_always_a_path(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    open_engine(name).dispose()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [name]
    assert to_url(name).database == str(tmp_path / name)


def test_only_scheme_slash_slash_is_a_url(tmp_path):
    assert to_url(f"sqlite:///{tmp_path}/lib.db").database == f"{tmp_path}/lib.db"
    assert to_url("postgresql://me:secret@host/db").drivername == "postgresql+psycopg"  # the extra's driver
    assert to_url("postgresql+psycopg2://me@host/db").drivername == "postgresql+psycopg2"


@pytest.mark.parametrize("url, message", [
    ("foo://bar", "unknown kind of database 'foo'"),
    ("mysql://me:secret@localhost/photos", "database driver is not installed"),
    ("postgresql+nosuchdriver://h/db", "unknown kind of database"),
])
def test_unusable_urls_are_one_line_errors(url, message):
    with pytest.raises(DatabaseError, match=message) as info:
        open_engine(url)
    assert "\n" not in str(info.value) and "secret" not in str(info.value)


def test_unusable_urls_on_the_command_line(tmp_path):
    assert_one_line(headless("errors", "--db", "foo://bar"), "unknown kind of database")
    assert_one_line(headless("photos", "--where", "Smiling", "--db", "mysql://localhost/x"),
                    "driver is not installed")


HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode=EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("held", flush=True)
time.sleep(120)
"""


def test_a_database_locked_by_another_program_fails_fast_with_one_line(tmp_path):
    db = tmp_path / "library.db"
    open_engine(db).dispose()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(DatabaseError, match="is locked by another program \\(waited 5 s\\)"):
            open_engine(db)
        assert time.monotonic() - started < 15
        cli = headless("errors", "--db", db)
        assert_one_line(cli, "locked by another program")
    finally:
        holder.kill()
        holder.wait()
    assert open_engine(db) is not None  # usable again once the other program is gone


def test_disk_full_is_one_line_and_the_batch_is_rolled_back(tmp_path):
    engine = open_engine(tmp_path / "library.db")
    with session_factory(engine).begin() as session:
        session.execute(insert(Photo), [{"path": "/kept.jpg", "folder": "/", "status": "ok", "n_faces": 0}])

    @event.listens_for(engine, "connect")
    def _small_disk(dbapi_conn, _record):  # SQLite reports a full page budget as a full disk
        dbapi_conn.execute("PRAGMA max_page_count=40")

    engine.dispose()
    rows = [{"path": f"/p/{i:05d}_{'x' * 200}.jpg", "folder": "/p", "status": "ok", "n_faces": 0}
            for i in range(2000)]
    with pytest.raises(DatabaseError, match="disk holding .*library.db is full") as info:
        with session_factory(engine).begin() as session:
            session.execute(insert(Photo), rows)
    assert "\n" not in str(info.value)
    assert [r["path"] for r in listings.photo_rows(engine)] == ["/kept.jpg"]


def test_a_hand_edited_date_is_a_one_line_error(tmp_path):
    db = tmp_path / "library.db"
    engine = open_engine(db)
    with session_factory(engine).begin() as session:
        session.execute(insert(Photo), [{"path": "/bad.jpg", "folder": "/", "status": "error",
                                         "error": "unreadable", "n_faces": 0}])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE photos SET scanned_at = '31/12/2024 noon'")
    with pytest.raises(DatabaseError, match="holds '31/12/2024 noon' where a date belongs"):
        list_errors(engine)
    assert_one_line(headless("errors", "--db", db), "where a date belongs")
    with sqlite3.connect(db) as conn:  # other ISO 8601 forms are dates
        conn.execute("UPDATE photos SET scanned_at = '2024-12-31T12:00:00+01:00'")
    assert list_errors(engine)[0]["scanned_at"].hour == 12


def test_atomic_write_keeps_modes_and_takes_any_legal_name(tmp_path):
    from photo_sorter.files import atomic_write

    long_name = tmp_path / ("é" * 124 + ".xmp")  # 252 bytes: legal, but no room for a longer temp name
    atomic_write(long_name, b"one")
    assert long_name.read_bytes() == b"one" and oct(long_name.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    long_name.chmod(0o640)
    atomic_write(long_name, b"two")
    assert long_name.read_bytes() == b"two" and long_name.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [long_name.name]  # no temporary file left


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_database_of_another_program_is_refused_untouched(db_url):
    """Tables but no version of ours: refused, whatever the kind of database, nothing written."""
    from sqlalchemy import create_engine, inspect, text

    raw = create_engine(to_url(db_url))
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)"))
    with pytest.raises(DatabaseError, match=r"is a database of another program \(tables: invoices\); "
                                            r"choose another (file|database)$"):
        open_engine(db_url)
    assert inspect(raw).get_table_names() == ["invoices"]
    raw.dispose()


def test_a_plain_postgresql_url_opens_with_psycopg(postgres):
    engine = open_engine(postgres.new_database().replace("postgresql+psycopg://", "postgresql://"))
    with session_factory(engine)() as s:
        assert s.scalars(select(Photo)).all() == [] and engine.driver == "psycopg"
