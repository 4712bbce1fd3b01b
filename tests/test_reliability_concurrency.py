"""Concurrent access to one library database: readers during a scan (WAL), two scans at once, and
database files that are corrupt or belong to another program."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from conftest import REPO
from library_factory import jpeg_bytes, scene
from photo_sorter import library as photo_library, scan
from photo_sorter.gui import listings
from photo_sorter.store import DatabaseError, LibraryBusy, Photo, open_engine, session_factory


def make_photos(folder, n, size=(320, 240)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"img_{i:03d}.jpg").write_bytes(jpeg_bytes(scene(i, size)))
    return folder


def headless(*argv, timeout=120):
    return subprocess.run([sys.executable, "main.py", "--headless", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def integrity(db_path) -> str:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readers_during_a_scan_never_see_a_locked_database(tmp_path):
    """What the GUI does: list photos and counts from the main thread while the worker scans,
    committing every photo. WAL lets every read go through; the counts only grow."""
    library = make_photos(tmp_path / "lib", 24, size=(160, 120))
    engine = open_engine(tmp_path / "library.db")
    result = {}
    writer = threading.Thread(target=lambda: result.update(
        scan.scan(engine, [library], options=scan.ScanOptions(commit_every=1))))
    writer.start()
    seen, reads = [], 0
    try:
        while writer.is_alive():
            rows = listings.photo_rows(engine)
            seen.append(len(rows))
            assert photo_library.counts(engine)["photos"] >= len(rows)
            scan.list_errors(engine)
            reads += 1
            time.sleep(0.01)  # the GUI polls; a busy loop would only starve the writer of the GIL
    except OperationalError as exc:  # pragma: no cover - the failure this test guards against
        pytest.fail(f"a reader hit {exc}")
    finally:
        writer.join()
    assert result["photos_new"] == 24 and reads > 10
    assert seen == sorted(seen) and 0 < max(seen) <= 24 and min(seen) < 24
    assert len(listings.photo_rows(engine)) == 24


def test_a_second_scan_refuses_clearly_and_nothing_is_corrupted(tmp_path):
    library = make_photos(tmp_path / "lib", 6)
    db = tmp_path / "library.db"
    engine = open_engine(db)
    inside, release = threading.Event(), threading.Event()

    def hold(progress):
        if progress.phase == "scanning":
            inside.set()
            release.wait(120)

    result = {}
    first = threading.Thread(target=lambda: result.update(scan.scan(engine, [library], progress=hold)))
    first.start()
    try:
        assert inside.wait(120)
        with pytest.raises(LibraryBusy, match="is busy: another command is writing to it \(scan, pid"):
            scan.scan(engine, [library])
        with pytest.raises(LibraryBusy, match="is busy: another command"):
            scan.repredict(engine)
        cli = headless("scan", library, "--db", db)  # another process
        assert cli.returncode == 2, cli.stderr
        assert cli.stderr.startswith("error: the library") and "is busy" in cli.stderr and cli.stderr.count("\n") == 1
    finally:
        release.set()
        first.join()
    assert result["photos_new"] == 6 and result["errors"] == 0
    assert integrity(db) == "ok"
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count(Photo.id))) == 6
    assert scan.scan(engine, [library])["photos_unchanged"] == 6  # the lock was released


def _foreign(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    return path


def _garbage(path):
    path.write_bytes(bytes(range(256)) * 40)
    return path


def _truncated_library(path):
    engine = open_engine(path)
    scan.scan(engine, [make_photos(path.parent / "lib", 4, size=(160, 120))])
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for leftover in ("-wal", "-shm"):
        path.with_name(path.name + leftover).unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.mark.parametrize("make, message", [
    (_foreign, "database of another program"),
    (_garbage, "file is not a database"),
    (_truncated_library, "malformed"),
])
def test_bad_database_file_is_refused_and_left_untouched(tmp_path, make, message):
    db = make(tmp_path / "library.db")
    before, siblings = sha256(db), sorted(tmp_path.iterdir())
    with pytest.raises(DatabaseError, match=message):
        open_engine(db)
    other = make_photos(tmp_path / "other", 1)
    siblings.append(other)
    for argv in (("scan", other), ("errors",),
                 ("photos", "--where", "Smiling")):
        cli = headless(*argv, "--db", db)
        assert cli.returncode == 2 and cli.stderr.count("\n") == 1, cli.stderr
        assert message in cli.stderr and "Traceback" not in cli.stderr
    assert sha256(db) == before and sorted(tmp_path.iterdir()) == siblings


def test_database_path_that_is_a_folder(tmp_path):
    with pytest.raises(DatabaseError, match="cannot open database"):
        open_engine(tmp_path)
