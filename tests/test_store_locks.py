"""Every command that writes to the library takes the library lock: while a scan runs,
purge-missing, install-model, choose-best, cluster and repredict refuse with one line, and the
scan's work is neither lost nor silently undone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select

from conftest import REPO
from photo_sorter import clusters, scan, selection
from photo_sorter.model import install_model
from photo_sorter.store import LibraryBusy, ModelVersion, Photo, library_lock, open_engine, session_factory
from test_reliability_concurrency import make_photos
from test_reliability_models import save_model


def headless(*argv, timeout=180):
    return subprocess.run([sys.executable, "main.py", "--headless", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_writers_refuse_while_a_scan_runs_and_the_scan_loses_nothing(tmp_path, db_url):
    library = make_photos(tmp_path / "lib", 6, size=(160, 120))
    db = db_url
    engine = open_engine(db)
    scan.scan(engine, [make_photos(tmp_path / "gone", 2, size=(200, 150))])  # not the same bytes as lib
    for f in (tmp_path / "gone").iterdir():
        f.unlink()
    scan.scan(engine, [tmp_path / "gone"])  # two missing photos for purge-missing to find
    (tmp_path / "models").mkdir()
    tiny = save_model(tmp_path / "models" / "tiny.keras")
    inside, release = threading.Event(), threading.Event()

    def hold(progress):
        if progress.phase == "scanning" and progress.files_done == 3:
            inside.set()
            release.wait(300)

    result = {}
    first = threading.Thread(target=lambda: result.update(
        scan.scan(engine, [library], progress=hold, options=scan.ScanOptions(commit_every=1))))
    first.start()
    try:
        assert inside.wait(120)
        for attempt in (lambda: scan.purge_missing(engine),
                        lambda: install_model(tiny, engine, tmp_path / "installed"),
                        lambda: selection.choose_best(engine, "/x|0", 1),
                        lambda: clusters.run_clustering(engine, k=2),
                        lambda: scan.repredict(engine)):
            with pytest.raises(LibraryBusy, match=r"is busy: another command is writing to it \(scan, pid \d+\)"):
                attempt()
        for argv in (("purge-missing",), ("install-model", tiny), ("choose-best", "/x|0", "1")):
            cli = headless(*argv, "--db", db)
            assert cli.returncode == 2 and cli.stderr.count("\n") == 1, cli.stderr
            assert "is busy" in cli.stderr and "Traceback" not in cli.stderr
    finally:
        release.set()
        first.join()
    assert result["photos_new"] == 6 and result["errors"] == 0
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count(Photo.id)).where(Photo.status == "ok")) == 6
        assert s.scalar(select(func.count(Photo.id)).where(Photo.status == "missing")) == 2
        assert s.scalar(select(ModelVersion.name).where(ModelVersion.active)) != "tiny"
    assert scan.purge_missing(engine) == 2  # the lock was released
    install_model(tiny, engine, tmp_path / "installed")
    with session_factory(engine)() as s:
        assert s.scalar(select(ModelVersion.name).where(ModelVersion.active)) == "tiny"


def test_the_lock_is_per_library_and_reentrant(tmp_path, new_db):
    a, b = open_engine(new_db(tmp_path / "a")), open_engine(new_db(tmp_path / "b"))
    with library_lock(a, doing="test"):
        with library_lock(a):  # the same thread again: a scan's own re-prediction
            with library_lock(b):
                pass
        other = {}
        t = threading.Thread(target=lambda: other.update(busy=_busy(a)))
        t.start()
        t.join()
        assert other["busy"] == "test"
    assert _busy(a) is None


def _busy(engine):
    try:
        with library_lock(engine):
            return None
    except LibraryBusy as exc:
        return str(exc).split("(")[1].split(",")[0]


SCANNER = """
import sys
from photo_sorter import scan
from photo_sorter.store import LibraryBusy
try:
    print(scan.scan(sys.argv[1], sys.argv[2:])["photos_new"])
except LibraryBusy as exc:
    print(exc)
"""


def _scanners(db, *folders):
    """One scanning process per folder, all started at once: [what each printed]."""
    procs = [subprocess.Popen([sys.executable, "-c", SCANNER, str(db), str(f)], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for f in folders]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    return [out.strip().splitlines()[-1] for out, _ in outs]


def test_two_scanner_processes_neither_duplicate_nor_lose_a_row(tmp_path, db_url):
    """Both start on a new library (one creates it, the other waits for that); the second scan
    is refused while the first writes, and scans again after; the same folder twice adds nothing."""
    a = make_photos(tmp_path / "a", 4, size=(160, 120))
    b = make_photos(tmp_path / "b", 5, size=(200, 150))
    pending, new = {a: None, b: None}, 0
    for _ in range(5):
        for folder, said in zip(list(pending), _scanners(db_url, *pending)):
            if said.isdigit():
                new += int(said)
                del pending[folder]
            else:
                assert "is busy: another command is writing to it (scan, pid" in said, said
        if not pending:
            break
    assert not pending and new == 9
    again = _scanners(db_url, a, a, b)  # nothing new, whoever gets the lock
    assert all(s == "0" or "is busy" in s for s in again), again
    engine = open_engine(db_url)
    with session_factory(engine)() as s:
        paths = s.scalars(select(Photo.path).where(Photo.status == "ok")).all()
    assert len(paths) == len(set(paths)) == 9
    assert sorted(paths) == sorted(str(p) for p in [*a.iterdir(), *b.iterdir()])
    with library_lock(engine, doing="test"):  # across processes, the holder is named
        busy = _scanners(db_url, a)[0]
    assert busy.endswith("is busy: another command is writing to it (test, pid %d); "
                         "try again when it has finished" % os.getpid()), busy
