"""The scan with worker threads or processes: the same library as the scan without workers,
cancel and resume, and a worker process that dies failing only the photo it was on."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from conftest import SAMPLE_PHOTOS
from photo_sorter import scan
from photo_sorter.store import Face, Photo, open_engine, predictions_table, session_factory
from photo_sorter.workers import WorkerCrash, Workers


def library(folder, names=None):
    """The sample photos (or those `names`), two copies of one (one read before it, one after),
    a damaged file and a no-face scene."""
    folder.mkdir()
    for photo in sorted(SAMPLE_PHOTOS.iterdir()):
        if photo.suffix in (".jpg", ".png") and (names is None or photo.name in names):
            shutil.copy2(photo, folder / photo.name)
    shutil.copy2(SAMPLE_PHOTOS / "obama_biden_two_faces_blue_room_2010_crop.jpg", folder / "zz_copy.jpg")
    shutil.copy2(SAMPLE_PHOTOS / "obama_biden_two_faces_blue_room_2010_crop.jpg", folder / "ab_copy.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def contents(engine):
    """Everything a scan stores, without ids and times."""
    with session_factory(engine)() as s:
        photos = [(p.path, p.status, p.error, p.content_hash, p.width, p.height, p.n_faces, p.captured_at)
                  for p in s.scalars(select(Photo).order_by(Photo.path))]
        faces = [(f.content_hash, f.index, f.x, f.y, f.w, f.h, f.confidence, f.landmarks, f.crop)
                 for f in s.scalars(select(Face).order_by(Face.content_hash, Face.index))]
        c = predictions_table.c
        predictions = [tuple(row) for row in s.execute(
            select(Face.content_hash, Face.index, *[col for col in c if col.name not in ("id", "face_id", "model_id")])
            .join(Face, Face.id == c.face_id).order_by(Face.content_hash, Face.index))]
    return photos, faces, predictions


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_two_workers_store_what_one_process_stores(tmp_path, model, processes):
    lib = library(tmp_path / "lib")
    one = open_engine(tmp_path / "one.db")
    two = open_engine(tmp_path / "two.db")
    first = scan.scan(one, [lib], model=model, options=scan.ScanOptions(workers=1))
    second = scan.scan(two, [lib], model=model, options=scan.ScanOptions(workers=2, processes=processes))
    assert (first["workers"], second["workers"]) == (1, 2)
    drop = ("seconds", "workers")
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    assert second["photos_copied"] == 2 and second["problems"]["error"] == 1 and second["faces"] > 5
    assert contents(one) == contents(two)


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["threads", "processes"])
def test_cancel_and_resume_with_workers(tmp_path, model, processes):
    lib = library(tmp_path / "lib")
    engine = open_engine(tmp_path / "lib.db")
    options = scan.ScanOptions(workers=2, commit_every=1, processes=processes)
    cancel = threading.Event()

    def cancel_after_three(progress):
        if progress.files_done == 3:
            cancel.set()

    stopped = scan.scan(engine, [lib], model=model, options=options, progress=cancel_after_three, cancel=cancel)
    assert stopped["cancelled"]
    with session_factory(engine)() as s:
        stored = s.scalar(select(func.count()).select_from(Photo))
    assert 3 <= stored < stopped["photos_seen"] and stored == stopped["photos_new"]
    final = scan.scan(engine, [lib], model=model, options=options)
    assert final["photos_unchanged"] + final["photos_rechecked"] == stored
    assert final["photos_new"] == final["photos_seen"] - stored
    whole = open_engine(tmp_path / "whole.db")
    scan.scan(whole, [lib], model=model, options=scan.ScanOptions(workers=1))
    _, faces, predictions = contents(engine)
    _, whole_faces, whole_predictions = contents(whole)
    assert faces == whole_faces  # the same faces, none twice
    # and their predictions (batched differently around the cancel: float rounding differs)
    assert [p[:2] for p in predictions] == [p[:2] for p in whole_predictions]
    numbers = [np.array([p[2:] for p in rows], float) for rows in (predictions, whole_predictions)]
    assert np.allclose(*numbers, atol=1e-4, equal_nan=True)


def dies_on(value: int) -> int:
    """A task for the pool: its process dies (as a decoder crash would kill it) on 3."""
    if value == 3:
        os._exit(1)
    return value * 10


def test_a_dying_worker_fails_only_its_task():
    results = []
    with Workers(dies_on, 2, processes=True) as pool:
        tasks = [pool.submit(v) for v in range(7)]
        for task in tasks:
            try:
                results.append(pool.result(task))
            except WorkerCrash as exc:
                results.append(str(exc))
    assert results[:3] + results[4:] == [0, 10, 20, 40, 50, 60]
    assert "died" in results[3]
