"""Watched folders: files added, renamed, deleted and arriving in bursts while a Watcher (or
`scan --watch`) runs reach the library within seconds, through the real scan and bundled model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image
from sqlalchemy import func, select

from conftest import REPO, SAMPLE_PHOTOS
from photo_sorter import scan
from photo_sorter.model import AttributeModel
from photo_sorter.store import Face, LibraryBusy, Photo, open_engine, session_factory
from photo_sorter.watch import Watcher, scan_roots

PORTRAIT = SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg"


def rows(engine) -> dict[str, tuple[str, int]]:
    with session_factory(engine)() as s:
        return {p.path.rsplit("/", 1)[-1]: (p.status, p.n_faces) for p in s.scalars(select(Photo))}


def companions(engine) -> dict[str, list]:
    with session_factory(engine)() as s:
        return {p.path.rsplit("/", 1)[-1]: p.companions for p in s.scalars(select(Photo))}


def wait_for(condition, timeout: float = 90.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("the watcher did not get there in time")


def plain(path, shade: int) -> None:
    Image.new("RGB", (96, 64), (shade, 120, 200 - shade)).save(path)


@pytest.fixture(scope="module")
def model():
    return AttributeModel.load()


def test_scan_roots_keep_existing_folders_and_loose_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    plain(tmp_path / "a" / "b" / "x.jpg", 1)
    plain(tmp_path / "y.jpg", 2)
    roots = scan_roots({tmp_path / "a" / "b" / "x.jpg", tmp_path / "y.jpg", tmp_path / "gone.jpg"},
                       {tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "vanished" / "deeper"},
                       [tmp_path])
    assert roots == [tmp_path / "a", tmp_path / "y.jpg"]


def test_files_added_renamed_deleted_while_watching(tmp_path, model):
    lib = tmp_path / "photos"
    (lib / "sub").mkdir(parents=True)
    plain(lib / "old.jpg", 10)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib], model=model)
    summaries, errors = [], []
    watcher = Watcher(engine, [lib], model=model, quiet=0.5, on_scan=summaries.append,
                      on_error=errors.append).start()
    try:
        started = time.monotonic()
        shutil.copy(PORTRAIT, lib / "sub" / "portrait.jpg")
        plain(lib / "new.jpg", 20)
        (lib / ".hidden").mkdir()
        plain(lib / ".hidden" / "secret.jpg", 30)
        (lib / "notes.txt").write_text("not a photo")
        (lib / "sub" / "portrait.CR2").write_bytes(b"the RAW of portrait.jpg: listed, never decoded")
        wait_for(lambda: rows(engine).get("portrait.jpg") == ("ok", 1) and "new.jpg" in rows(engine))
        wait_for(lambda: companions(engine).get("portrait.jpg") == ["portrait.CR2"])
        latency = time.monotonic() - started
        with session_factory(engine)() as s:
            assert s.scalar(select(func.count(Face.id))) == 1
        (lib / "new.jpg").rename(lib / "sub" / "renamed.jpg")
        wait_for(lambda: "renamed.jpg" in rows(engine) and "new.jpg" not in rows(engine))
        (lib / "old.jpg").unlink()
        wait_for(lambda: rows(engine)["old.jpg"][0] == "missing")
    finally:
        watcher.stop()
    assert set(rows(engine)) == {"old.jpg", "portrait.jpg", "renamed.jpg"} and not errors
    assert sum(s["photos_moved"] for s in summaries) == 1
    assert latency < 60, latency
    print(f"watch latency to stored faces: {latency:.1f} s")


def test_a_burst_of_new_files_is_scanned_in_few_batches(tmp_path, model):
    lib = tmp_path / "photos"
    lib.mkdir()
    engine = open_engine(tmp_path / "library.db")
    summaries = []
    watcher = Watcher(engine, [lib], model=model, quiet=1.0, on_scan=summaries.append).start()
    try:
        for i in range(200):
            plain(lib / f"burst_{i:04d}.jpg", i % 200)
        wait_for(lambda: sum(s["photos_new"] for s in summaries) >= 200)
    finally:
        watcher.stop()
    assert len(rows(engine)) == 200 and len(summaries) <= 4, len(summaries)


def test_a_busy_library_is_retried_not_lost(tmp_path, model, monkeypatch):
    lib = tmp_path / "photos"
    lib.mkdir()
    engine = open_engine(tmp_path / "library.db")
    real_scan, refused = scan.scan, threading.Event()

    def busy_once(*args, **kwargs):
        if not refused.is_set():
            refused.set()
            raise LibraryBusy("the library is busy: another command is writing to it")
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(scan, "scan", busy_once)
    monkeypatch.setattr("photo_sorter.watch.RETRY_SECONDS", 0.5)
    errors = []
    watcher = Watcher(engine, [lib], model=model, quiet=0.3, on_error=errors.append).start()
    try:
        plain(lib / "a.jpg", 5)
        wait_for(lambda: "a.jpg" in rows(engine))
    finally:
        watcher.stop()
    assert errors == ["the library is busy: another command is writing to it"]


@pytest.mark.slow
def test_cli_scan_watch_reports_batches_until_interrupted(tmp_path):
    lib = tmp_path / "photos"
    lib.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--headless", "scan", str(lib), "--db",
         str(tmp_path / "library.db"), "--watch", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        wait_for(lambda: proc.stderr.readline().startswith("watching"), timeout=180)
        first = ""  # the first scan's summary, indented JSON
        while not first.endswith("\n}\n"):
            first += proc.stdout.readline()
        assert json.loads(first)["photos_new"] == 0
        shutil.copy(PORTRAIT, lib / "portrait.jpg")
        batch = json.loads(proc.stdout.readline())
        assert batch["photos_new"] == 1 and batch["faces"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0


def test_folders_moved_in_and_deleted_while_watching(tmp_path, model):
    lib, outside = tmp_path / "photos", tmp_path / "elsewhere" / "trip"
    lib.mkdir()
    outside.mkdir(parents=True)
    for i in range(3):
        plain(outside / f"trip_{i}.jpg", 40 * i)
    engine = open_engine(tmp_path / "library.db")
    watcher = Watcher(engine, [lib], model=model, quiet=0.5).start()
    try:
        outside.rename(lib / "trip")  # a whole folder arrives at once
        wait_for(lambda: len(rows(engine)) == 3)
        shutil.rmtree(lib / "trip")
        wait_for(lambda: {status for status, _ in rows(engine).values()} == {"missing"})
    finally:
        watcher.stop()


def test_a_refused_watch_is_one_line(tmp_path, model, monkeypatch):
    import errno

    from photo_sorter.watch import WatchError

    def refuse(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("photo_sorter.watch.Observer.start", refuse)
    engine = open_engine(tmp_path / "library.db")
    with pytest.raises(WatchError, match="limit of watched folders.*max_user_watches"):
        Watcher(engine, [tmp_path], model=model).start()
