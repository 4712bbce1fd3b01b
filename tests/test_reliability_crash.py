"""Crash and resume: a headless scan of a few hundred photos is killed (SIGKILL) at several random
points; after each kill the database passes PRAGMA integrity_check, every committed photo is
whole (its faces and predictions with it), and the next scan resumes without duplicates or
losses, ending in the same state as one uninterrupted scan. Clustering and model installation
are killed too: a run is stored whole or not at all, and the active model is always complete."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SAMPLE_PHOTOS
from library_factory import jpeg_bytes, scene
from photo_sorter import scan
from photo_sorter.attributes import CELEBA_ATTRIBUTES
from photo_sorter.files import sha256_file as file_sha256
from photo_sorter.model import BUNDLED_MODEL, card_path, read_card
from photo_sorter.store import open_engine

pytestmark = pytest.mark.slow

N_PLAIN = 230
FACE_SOURCES = ["obama_official_portrait_2012.jpg", "biden_blue_room_2010_crop.jpg",
                "obama_biden_two_faces_blue_room_2010_crop.jpg", "astronaut_eileen_collins_nasa.png"]


def make_library(root: Path) -> Path:
    """N_PLAIN small pictures without faces plus 20 distinct downscaled crops of face photos."""
    for i in range(N_PLAIN):
        folder = root / f"day{i // 60}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img_{i:04d}.jpg").write_bytes(jpeg_bytes(scene(i, (160, 120))))
    (root / "people").mkdir()
    for n in range(20):
        with Image.open(SAMPLE_PHOTOS / FACE_SOURCES[n % len(FACE_SOURCES)]) as im:
            im = im.convert("RGB")
            im.thumbnail((480 - 8 * n, 480 - 8 * n))
            im.save(root / "people" / f"face_{n:02d}.jpg", quality=90)
    return root


def headless(*argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", "--headless", *map(str, argv)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def query(db: Path, sql: str):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def photo_count(db: Path) -> int:
    try:
        return query(db, "SELECT count(*) FROM photos")[0][0]
    except sqlite3.OperationalError:  # no file or no tables yet
        return 0


def check_consistent(db: Path) -> int:
    """Integrity, and every committed photo whole: n_faces faces, one prediction per face and
    model. Returns the number of committed photos."""
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "PRAGMA foreign_key_check") == []
    assert query(db, """SELECT p.path FROM photos p LEFT JOIN faces f ON f.content_hash = p.content_hash
                        WHERE p.status = 'ok' GROUP BY p.id HAVING count(f.id) != p.n_faces""") == []
    assert query(db, """SELECT f.id FROM faces f LEFT JOIN predictions r ON r.face_id = f.id
                        GROUP BY f.id HAVING count(r.id) != 1""") == []
    assert query(db, "SELECT path FROM photos GROUP BY path HAVING count(*) > 1") == []
    return query(db, "SELECT count(*) FROM photos")[0][0]


def state(db: Path, root: Path) -> tuple[dict, dict]:
    """Everything a scan decides, keyed by path (row ids may differ between runs): photo facts,
    and per face its box and probabilities."""
    photos = {Path(p).relative_to(root).as_posix(): (status, digest, n, w, h) for p, status, digest, n, w, h in
              query(db, "SELECT path, status, content_hash, n_faces, width, height FROM photos")}
    cols = ", ".join(f'r."{a}"' for a in read_card(BUNDLED_MODEL)["attributes"])
    faces = {(Path(path).relative_to(root).as_posix(), index): np.array(values, np.float64)
             for path, index, *values in query(db, f"""
                 SELECT p.path, f."index", f.x, f.y, f.w, f.h, {cols} FROM faces f
                 JOIN photos p ON p.content_hash = f.content_hash JOIN predictions r ON r.face_id = f.id""")}
    return photos, faces


def assert_same_state(db: Path, clean_db: Path, root: Path) -> None:
    """Equal photos and faces; probabilities equal up to float noise (batches differ)."""
    (photos, faces), (clean_photos, clean_faces) = state(db, root), state(clean_db, root)
    assert photos == clean_photos and faces.keys() == clean_faces.keys()
    for key, values in faces.items():
        np.testing.assert_allclose(values, clean_faces[key], atol=1e-4, err_msg=str(key))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = make_library(tmp_path_factory.mktemp("crash") / "photos")
    clean_db = tmp_path_factory.mktemp("clean") / "library.db"
    summary = scan.scan(open_engine(clean_db), [root])
    assert summary["photos_new"] == N_PLAIN + 20 and summary["errors"] == 0 and summary["faces"] >= 20
    return root, clean_db


def test_scan_killed_at_random_points_resumes_to_the_clean_result(library, tmp_path):
    root, clean_db = library
    db = tmp_path / "library.db"
    rng = random.Random(6)
    targets = sorted(rng.sample(range(5, N_PLAIN - 60), 3))  # leave time to kill it
    committed = 0
    for target in targets:
        proc = headless("scan", root, "--db", db, "--json")
        while proc.poll() is None:
            if photo_count(db) >= target:
                time.sleep(rng.uniform(0, 0.3))  # land anywhere inside the next batch
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL, "the scan ended before it could be killed"
        now = check_consistent(db)
        assert now >= committed  # nothing committed is ever lost
        committed = now
        assert query(db, "SELECT status FROM scan_runs ORDER BY id DESC LIMIT 1") == [("running",)]
    proc = headless("scan", root, "--db", db, "--json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["photos_unchanged"] == committed and summary["photos_new"] == N_PLAIN + 20 - committed
    check_consistent(db)
    assert_same_state(db, clean_db, root)


def test_clustering_killed_stores_a_run_whole_or_not_at_all(library, tmp_path):
    _, clean_db = library
    db = tmp_path / "library.db"
    with sqlite3.connect(clean_db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    started = time.monotonic()
    proc = headless("cluster", "--k", "3", "--db", db, "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads(out)["k"] == 3
    whole = time.monotonic() - started
    rng = random.Random(7)
    kills, late = 0, 1.0
    while kills < 3:  # killed late in the run: while fitting, naming, drawing sheets or storing
        proc = headless("cluster", "--k", "3", "--db", db, "--json")
        time.sleep(rng.uniform(0.6, 0.97) * whole * late)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if proc.returncode != -signal.SIGKILL:  # the run ended before the kill: only kills count
            assert proc.returncode == 0
            late *= 0.8
            assert late > 0.2, "the runs keep ending before the kill"
            continue
        kills += 1
        check_consistent(db)
        for run_id, k in query(db, "SELECT id, k FROM cluster_runs"):
            sizes = query(db, f"""SELECT c.size, count(m.face_id) FROM clusters c
                                  LEFT JOIN cluster_members m ON m.cluster_id = c.id
                                  WHERE c.run_id = {run_id} GROUP BY c.id""")
            assert len(sizes) == k and all(size == members for size, members in sizes)
    assert query(db, "SELECT count(*) FROM cluster_runs")[0][0] >= 1


INSTALL = """
import os, shutil, sys
from sqlalchemy import event
from photo_sorter import model as m
from photo_sorter.store import open_engine

crash_at, src, db, models = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
calls = 0

def step(fn, half=False):
    def run(*args, **kwargs):
        global calls
        calls += 1
        if calls == crash_at:
            if half:  # die in the middle of writing the copy
                data = args[0].read()
                args[1].write(data[: len(data) // 2])
                args[1].flush()
            os._exit(9)
        return fn(*args, **kwargs)
    return run

# The checks of AttributeModel.load are tested elsewhere; here only the file and database steps
# matter, so the model is described from its card and hash without importing TensorFlow.
m.AttributeModel.load = classmethod(lambda cls, p: cls(m.Path(p), m.read_card(m.Path(p)), None, m.sha256_file(p)))
shutil.copyfileobj = step(shutil.copyfileobj, half=True)
os.fsync, os.replace = step(os.fsync), step(os.replace)
engine = open_engine(db)
event.listen(engine, "commit", step(lambda conn: None))
m.install_model(src, engine, models)
print(calls)
"""


def test_model_install_crashing_at_every_step_never_activates_half_a_model(tmp_path):
    models, db = tmp_path / "installed", tmp_path / "library.db"
    attrs = [a for a in CELEBA_ATTRIBUTES if a != "Attractive"]
    old, new = tmp_path / "old" / "attributes.keras", tmp_path / "new" / "attributes.keras"
    for path, fill in ((old, b"old"), (new, b"new")):  # same name: the new one must not clobber the old
        path.parent.mkdir()
        path.write_bytes(fill * 200_000)
        card_path(path).write_text(json.dumps({"name": path.parent.name, "attributes": attrs,
                                               "thresholds": {a: 0.5 for a in attrs}}))

    def install(src, crash_at):
        return subprocess.run([sys.executable, "-c", INSTALL, str(crash_at), src, db, models],
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    first = install(old, 0)
    assert first.returncode == 0, first.stderr
    steps = int(first.stdout)
    assert steps >= 7  # two copies, their fsyncs and renames, the commit
    for crash_at in range(1, steps + 1):
        assert install(new, crash_at).returncode == 9
        rows = query(db, "SELECT name, path, sha256, card FROM models WHERE active")
        assert len(rows) == 1
        name, path, digest, card = rows[0]
        assert name == "old", f"crash before step {crash_at} of {steps} activated the new model"
        assert file_sha256(Path(path)) == digest == file_sha256(old)
        assert read_card(Path(path)) == json.loads(card) == read_card(old)
    done = install(new, 0)
    assert done.returncode == 0, done.stderr
    (name, path, digest), = query(db, "SELECT name, path, sha256 FROM models WHERE active")
    assert name == "new" and file_sha256(Path(path)) == digest == file_sha256(new)
    assert read_card(Path(path))["name"] == "new" and file_sha256(models / "attributes.keras") == file_sha256(old)
    assert query(db, "SELECT count(*) FROM models") == [(2,)]
    assert not list(models.glob(".*"))  # the crashed copies' temporary files were cleaned up
