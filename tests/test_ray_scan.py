"""A scan over a Ray cluster, on one local cluster for the module (a head and a second node on
127.0.0.1, one CPU each): the same library as a plain scan, a worker killed mid-scan, cancel and
resume, the lock, and the path check refusing a library one node cannot read."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
from sqlalchemy import func, select

import ray_cluster
from photo_sorter import scan
from photo_sorter.store import LibraryBusy, Photo, ScanRun, open_engine, session_factory
from test_workers import contents, dies_on, library

pytestmark = pytest.mark.slow
if ray_cluster.missing():
    pytest.skip(ray_cluster.missing(), allow_module_level=True)

# The second node cannot read what only root's override of file modes could: as root (CI) it
# runs without that capability (setpriv), so a folder of mode 000 is readable by the driver and
# the head but not there.
NODE2_PREFIX = (("setpriv", "--bounding-set=-dac_override,-dac_read_search")
                if os.geteuid() == 0 and shutil.which("setpriv") else ())
DROPS = ("seconds", "workers", "device")
SMALL = ("astronaut_eileen_collins_nasa.png", "camera_person_cc0.png", "noface_rocket_spacex_pd.jpg",
         "obama_biden_two_faces_blue_room_2010_crop.jpg")


@pytest.fixture(scope="module")
def nodes():
    with ray_cluster.LocalCluster(cpus=1) as local:
        local.add_node()
        local.add_node(prefix=NODE2_PREFIX)
        local.wait(2)
        yield local


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """A few small sample photos (faces, none), two copies of one and a damaged file."""
    return library(tmp_path_factory.mktemp("ray") / "lib", SMALL)


@pytest.fixture(scope="module")
def plain(tmp_path_factory, lib, model):
    """The library as a plain scan stores it: (summary, contents)."""
    engine = open_engine(tmp_path_factory.mktemp("plain") / "plain.db")
    return scan.scan(engine, [lib], model=model), contents(engine)


@pytest.fixture(scope="module")
def cluster(nodes):
    from photo_sorter.cluster import Cluster

    with Cluster(nodes.address) as connected:
        yield connected


def same_predictions(got, want) -> bool:
    """Predictions of the same faces, equal up to float rounding (batched differently)."""
    numbers = [np.array([p[2:] for p in rows], float) for rows in (got, want)]
    return [p[:2] for p in got] == [p[:2] for p in want] and np.allclose(*numbers, atol=1e-4, equal_nan=True)


def test_a_node_that_cannot_read_the_photos_refuses_the_scan(nodes, tmp_path, lib, capsys):
    """`scan --ray`: one line naming the node that cannot read a path, and nothing written."""
    if not NODE2_PREFIX:
        pytest.skip("needs root and setpriv (util-linux) to give the second node fewer rights")
    import ray

    from photo_sorter.cli import main

    private = tmp_path / "private"
    shutil.copytree(lib, private)
    private.chmod(0)
    db = tmp_path / "lib.db"
    try:
        code = main(["scan", str(private), "--ray", nodes.address, "--db", str(db)])
    finally:
        private.chmod(0o755)
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "same path on every node" in error
    ids = [n["NodeID"][:8] for n in nodes.node_table()]  # the head first
    assert f"({ids[1]}) cannot read {private}" in error and ids[0] not in error
    assert not ray.is_initialized()  # the CLI disconnected
    with session_factory(open_engine(db))() as s:  # nothing written
        assert s.scalar(select(func.count()).select_from(Photo)) == 0
        assert s.scalar(select(func.count()).select_from(ScanRun)) == 0


def test_the_same_library_as_a_plain_scan(cluster, tmp_path, lib, model, plain):
    engine = open_engine(tmp_path / "ray.db")
    summary = scan.scan(engine, [lib], model=model, cluster=cluster)
    assert summary["workers"] == 2 and "Ray cluster" in summary["device"] and "2 node(s)" in summary["device"]
    assert {k: v for k, v in summary.items() if k not in DROPS} == {k: v for k, v in plain[0].items() if k not in DROPS}
    photos, faces, predictions = contents(engine)
    assert (photos, faces) == plain[1][:2] and same_predictions(predictions, plain[1][2])


@pytest.fixture
def shared_library(request, tmp_path):
    """A library on PostgreSQL (what several machines share), or a SQLite file where no server
    can be started here."""
    import postgres_server

    if postgres_server.missing():
        return tmp_path / "ray.db"
    return request.getfixturevalue("postgres").new_database()


def test_a_worker_killed_mid_scan_loses_and_duplicates_nothing(cluster, nodes, shared_library, lib, model, plain):
    """A worker process is killed while it analyses a photo: Ray runs that task again, the scan
    completes as a plain one; meanwhile the library refuses a second scan."""
    engine = open_engine(shared_library)
    result: dict = {}
    scanning = threading.Thread(target=lambda: result.update(
        scan.scan(engine, [lib], model=model, cluster=cluster, options=scan.ScanOptions(commit_every=2))))
    scanning.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and scanning.is_alive() and time.monotonic() < deadline:
        for pid in nodes.worker_pids("_analyse"):  # running a photo's analysis right now
            os.kill(pid, signal.SIGSTOP)  # frozen: its title cannot change before the kill
            if pid in nodes.worker_pids("_analyse"):  # still in the task: it dies in mid-run
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)
    with pytest.raises(LibraryBusy):
        scan.scan(engine, [lib], model=model)
    scanning.join(120)
    assert killed is not None, "no worker was caught running a task"
    assert {k: v for k, v in result.items() if k not in DROPS} == {k: v for k, v in plain[0].items() if k not in DROPS}
    photos, faces, predictions = contents(engine)
    assert (photos, faces) == plain[1][:2] and same_predictions(predictions, plain[1][2])


def test_cancel_and_resume(cluster, tmp_path, lib, model, plain):
    engine = open_engine(tmp_path / "ray.db")
    cancel = threading.Event()

    def cancel_after_three(progress):
        if progress.files_done == 3:
            cancel.set()

    options = scan.ScanOptions(commit_every=1)
    stopped = scan.scan(engine, [lib], model=model, cluster=cluster, options=options,
                        progress=cancel_after_three, cancel=cancel)
    assert stopped["cancelled"]
    with session_factory(engine)() as s:
        stored = s.scalar(select(func.count()).select_from(Photo))
    assert 3 <= stored < stopped["photos_seen"] and stored == stopped["photos_new"]
    final = scan.scan(engine, [lib], model=model, cluster=cluster, options=options)
    assert final["photos_unchanged"] + final["photos_rechecked"] == stored
    assert final["photos_new"] == final["photos_seen"] - stored
    photos, faces, predictions = contents(engine)
    assert faces == plain[1][1] and same_predictions(predictions, plain[1][2])


def test_a_task_whose_worker_always_dies_fails_alone(cluster, monkeypatch):
    """As with worker processes (test_workers): the task that kills its worker (every time it
    runs: a decoder crash) raises WorkerCrash; the others' results come."""
    from photo_sorter import cluster as ray_scan
    from photo_sorter.workers import WorkerCrash

    monkeypatch.setattr(ray_scan, "RETRIES", 1)
    with ray_scan.RayWorkers(dies_on) as pool:
        tasks = [pool.submit(v) for v in range(5)]
        results = []
        for task in tasks:
            try:
                results.append(pool.result(task))
            except WorkerCrash as exc:
                results.append(str(exc))
    assert results[:3] + results[4:] == [0, 10, 20, 40]
    assert "the Ray worker analysing it died (WorkerCrashedError, 2 times)" in results[3]
