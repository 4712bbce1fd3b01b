"""Schema versions: a library from before migrations (commit 0250049, frozen as DDL beside this
file) is upgraded in place with nothing lost; the migrations build exactly the schema the code
declares; a library from a newer version, a failed upgrade, a foreign or damaged database are
refused with one line and the file untouched."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from photo_sorter.store import DatabaseError, ModelVersion, Photo, open_engine, register_model, session_factory
from photo_sorter.store import schema
from photo_sorter.store.models import Base

DDL = (Path(__file__).parent / "schema_0250049.sql").read_text()
TABLES = ("photos", "models", "scan_runs", "faces", "cluster_runs", "best_choices", "photo_hashes",
          "predictions", "clusters", "cluster_members")
CARD = {"name": "old", "attributes": ["Smiling", "Male"], "thresholds": {"Smiling": 0.4, "Male": 0.6}}


def legacy_library(path: Path, n_photos: int = 30) -> Path:
    """A library as 0250049 wrote it, with rows in every table, in WAL mode as the app left it."""
    conn = sqlite3.connect(path)
    conn.executescript(DDL)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("INSERT INTO models (id, name, sha256, path, attributes, thresholds, card, active) "
                 "VALUES (1, 'old', ?, '/m/old.keras', ?, ?, ?, 1)",
                 ("a" * 64, json.dumps(CARD["attributes"]), json.dumps(CARD["thresholds"]), json.dumps(CARD)))
    for i in range(1, n_photos + 1):
        conn.execute("INSERT INTO photos (id, path, folder, size, mtime_ns, content_hash, status, error, "
                     "width, height, captured_at, capture_source, camera, burst_id, n_faces, scanned_at) "
                     "VALUES (?, ?, '/p', ?, ?, ?, ?, ?, 640, 480, ?, 'exif', 'Cam', NULL, 1, ?)",
                     (i, f"/p/img_{i:03d}.jpg", 1000 + i, 10**18 + i, f"{i:064x}",
                      "error" if i % 7 == 0 else "ok", "bad" if i % 7 == 0 else None,
                      f"2024-05-0{1 + i % 9} 10:00:0{i % 10}.250000", "2024-06-01 12:00:00.000000"))
        conn.execute("INSERT INTO faces (id, photo_id, \"index\", x, y, w, h, confidence, landmarks, crop) "
                     "VALUES (?, ?, 0, 1.5, 2.5, 30, 40, 0.99, '[[1,2],[3,4],[5,6],[7,8],[9,10]]', ?)",
                     (i, i, bytes([i % 256]) * 50))
        conn.execute("INSERT INTO predictions (face_id, model_id, Smiling, Male) VALUES (?, 1, ?, ?)",
                     (i, i / 100, 1 - i / 100))
        conn.execute("INSERT INTO photo_hashes VALUES (?, ?, ?, ?)", (i, 1000 + i, 10**18 + i, f"{i:016x}"))
    conn.execute("INSERT INTO scan_runs (roots, status, summary) VALUES ('[\"/p\"]', 'done', '{\"photos_new\": 30}')")
    conn.execute("INSERT INTO cluster_runs (id, model_id, attributes, k, seed, silhouette, params) "
                 "VALUES (1, 1, '[\"Smiling\"]', 2, 0, 0.5, '{}')")
    conn.execute("INSERT INTO clusters VALUES (1, 1, 0, 'Smiling', 1, '[0.9]', '{\"Smiling\": 0.9}', NULL)")
    conn.execute("INSERT INTO cluster_members VALUES (1, 3, 0.25)")
    conn.execute("INSERT INTO best_choices (group_key, photo_id) VALUES ('/p|0|x', 2)")
    conn.commit()
    conn.close()
    return path


def dump(path: Path) -> dict:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pragma(path: Path, name: str):
    with sqlite3.connect(path) as conn:
        row = conn.execute(f"PRAGMA {name}").fetchone()
    return None if row is None else row[0]


def schema_diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def test_a_0250049_library_is_upgraded_in_place_and_nothing_is_lost(tmp_path):
    db = legacy_library(tmp_path / "library.db")
    before = dump(db)
    engine = open_engine(db)
    after = dump(db)
    for table in TABLES:
        if table in ("models", "photos"):  # one column more: the card's hash, the shot's other files
            assert [row[:-1] for row in after[table]] == before[table]
        elif table == "faces":  # keyed by their photo's content instead of the photo
            content = {row[0]: row[5] for row in before["photos"]}
            assert after[table] == [(r[0], *r[2:], content[r[1]]) for r in before[table]]
        else:
            assert after[table] == before[table], table
    assert pragma(db, "application_id") == schema.APPLICATION_ID
    assert pragma(db, "user_version") == schema.user_version(schema.head())
    assert pragma(db, "foreign_key_check") is None
    assert not list(tmp_path.glob("*.backup-*"))  # kept only until the upgrade succeeded
    assert schema_diff(engine) == []
    with session_factory(engine).begin() as session:  # the old model is still the same model
        model = type("M", (), {"sha256": "a" * 64, "card": CARD, "name": "old", "path": "/m/old.keras",
                               "attributes": CARD["attributes"], "thresholds": CARD["thresholds"]})
        assert register_model(session, model) == 1
        assert session.get(ModelVersion, 1).active
    engine.dispose()
    assert open_engine(db) is not None and dump(db)["photos"] == after["photos"]  # opens again as is


def test_migrations_build_exactly_the_declared_schema(db_url):
    engine = open_engine(db_url)
    assert schema_diff(engine) == []
    if engine.dialect.name == "sqlite":
        assert pragma(db_url, "application_id") == schema.APPLICATION_ID
    assert schema.known_revisions()[0] == schema.BASELINE and schema.head() == schema.known_revisions()[-1]


def test_a_library_from_a_newer_version_is_refused_untouched(tmp_path):
    db = tmp_path / "library.db"
    open_engine(db).dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = sha256(db)
    with pytest.raises(DatabaseError, match="made by a newer version of photo_sorter .*update photo_sorter"):
        open_engine(db)
    assert sha256(db) == before


def test_a_failed_upgrade_keeps_the_library_and_the_backup(tmp_path):
    db = legacy_library(tmp_path / "library.db")
    with sqlite3.connect(db) as conn:  # a card the upgrade cannot read
        conn.execute("UPDATE models SET card = '{broken'")
    before = dump(db)
    with pytest.raises(DatabaseError, match="cannot upgrade .*the library is unchanged .*backup-0001_baseline") as info:
        open_engine(db)
    assert "\n" not in str(info.value)
    assert dump(db) == before
    with sqlite3.connect(db) as conn:
        assert "alembic_version" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    backup = tmp_path / "library.db.backup-0001_baseline"
    assert dump(backup) == before


def _photos_of_another_program(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, filename TEXT, rating INTEGER)")
        conn.execute("INSERT INTO photos VALUES (1, 'x.jpg', 5)")


def _other_application_id(path):
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")


def _another_alembic_user(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001_baseline')")
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")


def _dropped_column(path):
    open_engine(path).dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ix_photos_status")
        conn.execute("DROP INDEX ix_photos_content_status_id")
        conn.execute("ALTER TABLE photos DROP COLUMN status")


def _legacy_with_dropped_column(path):
    legacy_library(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE photo_hashes DROP COLUMN dhash")


def _zeroed_middle_pages(path):
    legacy_library(path, 400)
    open_engine(path).dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    data = bytearray(path.read_bytes())
    page = 4096
    middle = len(data) // page // 2
    data[middle * page:(middle + 3) * page] = bytes(3 * page)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make, message", [
    (_photos_of_another_program, "database of another program"),
    (_other_application_id, "database of another program \\(application id 0x4d2\\)"),
    (_another_alembic_user, "database of another program"),
    (_dropped_column, "table photos lacks column status"),
    (_legacy_with_dropped_column, "table photo_hashes lacks column dhash"),
    (_zeroed_middle_pages, "is damaged"),
], ids=["foreign photos table", "other application id", "other alembic user", "dropped column",
        "old library, dropped column", "zeroed pages"])
def test_foreign_or_damaged_databases_are_refused_untouched(tmp_path, make, message):
    db = tmp_path / "library.db"
    make(db)
    before, journal, siblings = sha256(db), pragma(db, "journal_mode"), sorted(tmp_path.iterdir())
    with pytest.raises(DatabaseError, match=message) as info:
        open_engine(db)
    assert "\n" not in str(info.value)
    assert sha256(db) == before and sorted(tmp_path.iterdir()) == siblings
    assert pragma(db, "journal_mode") == journal


def test_the_page_check_runs_once_per_change_of_the_file(tmp_path, monkeypatch):
    """Reading every page takes seconds on a large library: it runs again only when the file
    changed (inode, size or mtime) since it last passed."""
    db = tmp_path / "library.db"
    open_engine(db).dispose()
    long_ago = time.time() - 60
    os.utime(db, (long_ago, long_ago))
    checks, real = [], schema.current_revision
    monkeypatch.setattr(schema, "current_revision",
                        lambda conn, where, integrity=True: checks.append(integrity) or real(conn, where, integrity))
    for _ in range(3):
        open_engine(db).dispose()
    assert checks == [True, False, False]
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO scan_runs (roots, status) VALUES ('[]', 'done')")
    open_engine(db).dispose()
    assert checks[-1] is True


def test_copies_with_their_own_faces_are_merged_into_one_set_without_losing_anything(tmp_path):
    """Before 0004 each copy of a file had its own faces: they become the one set of the content;
    what only a copy's face had (another model's prediction, a cluster membership) moves to it."""
    db = legacy_library(tmp_path / "library.db")
    same = f"{4:064x}"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE photos SET content_hash = ? WHERE id IN (5, 6)", (same,))
        conn.execute("INSERT INTO models (id, name, sha256, path, attributes, thresholds, card, active) "
                     "VALUES (2, 'new', ?, '/m/new.keras', '[\"Smiling\"]', '{}', '{}', 0)", ("b" * 64,))
        conn.execute("INSERT INTO predictions (face_id, model_id, Smiling) VALUES (6, 2, 0.75)")
        conn.execute("INSERT INTO cluster_members VALUES (1, 5, 0.5)")
        conn.execute("INSERT INTO best_choices (group_key, photo_id) VALUES ('/p|0|copy', 6)")
    before = dump(db)
    engine = open_engine(db)
    after = dump(db)
    assert [f[0] for f in after["faces"]] == [f[0] for f in before["faces"] if f[0] not in (5, 6)]
    assert after["photos"] == [(*p, None) for p in before["photos"]]  # every path keeps its row
    assert after["best_choices"] == before["best_choices"]
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT model_id, Smiling FROM predictions WHERE face_id = 4 ORDER BY 1").fetchall()
    assert kept == [(1, 0.04), (2, 0.75)]  # its own, and the copy's other model
    assert len(after["predictions"]) == len(before["predictions"]) - 2  # the copies' model-1 ones
    assert sorted(after["cluster_members"]) == [(1, 3, 0.25), (1, 4, 0.5)]
    assert pragma(db, "foreign_key_check") is None
    with session_factory(engine)() as session:
        shared = {p.id: [f.id for f in p.faces] for p in session.query(Photo).filter(Photo.id.in_([4, 5, 6]))}
    assert shared == {4: [4], 5: [4], 6: [4]}
