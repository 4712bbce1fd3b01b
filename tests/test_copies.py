"""Copies: files with the same content are decoded and detected once and share one set of faces
and predictions, stored once; every path keeps its own row in its folder, a copy added later
costs a hash, and deleting one copy keeps the others' faces. Photo listings list every copy;
face-level results (face queries, clusters, counts, best-smiling candidates) count a face once."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select

from conftest import SAMPLE_PHOTOS
from photo_sorter import scan
from photo_sorter.model import AttributeModel
from photo_sorter.store import BestChoice, Face, Photo, PhotoHash, open_engine, predictions_table, session_factory

PORTRAIT = SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg"
TWO = SAMPLE_PHOTOS / "obama_biden_two_faces_blue_room_2010_crop.jpg"


@pytest.fixture(scope="module")
def model():
    return AttributeModel.load()


@pytest.fixture
def analysed(monkeypatch):
    """Names of the files the scan decoded and ran detection on."""
    names, real = [], scan._analyse
    monkeypatch.setattr(scan, "_analyse", lambda path, *a: names.append(path.name) or real(path, *a))
    return names


def faces_by_name(engine) -> dict[str, list[tuple]]:
    """folder/name -> [(face index, box, Smiling)] of every ok photo."""
    with session_factory(engine)() as s:
        out = {}
        for photo in s.scalars(select(Photo).where(Photo.status == "ok")):
            out["/".join(photo.path.rsplit("/", 2)[-2:])] = [
                (f.index, (f.x, f.y, f.w, f.h), s.scalar(select(predictions_table.c.Smiling)
                                                         .where(predictions_table.c.face_id == f.id)))
                for f in photo.faces]
        return out


def test_copies_are_detected_once_and_keep_their_faces(tmp_path, model, analysed):
    lib = tmp_path / "photos"
    (lib / "backup").mkdir(parents=True)
    shutil.copy(PORTRAIT, lib / "portrait.jpg")
    shutil.copy(PORTRAIT, lib / "backup" / "portrait copy.jpg")  # a copy within the same scan
    shutil.copy(TWO, lib / "two.jpg")
    engine = open_engine(tmp_path / "library.db")
    summary = scan.scan(engine, [lib], model=model)
    assert sorted(analysed) == ["portrait.jpg", "two.jpg"]
    assert summary["photos_new"] == 3 and summary["photos_copied"] == 1 and summary["faces"] == 3
    faces = faces_by_name(engine)
    assert len(faces["photos/portrait.jpg"]) == 1
    assert faces["backup/portrait copy.jpg"] == faces["photos/portrait.jpg"]
    with session_factory(engine)() as s:
        folders = dict(s.execute(select(Photo.path, Photo.folder)).all())
    assert folders[str(lib / "backup" / "portrait copy.jpg")] == str(lib / "backup")
    with session_factory(engine)() as s:  # the look (for best-smiling) too: nothing left to read
        looks = dict(s.execute(select(Photo.path, PhotoHash.dhash).join(PhotoHash)).all())
    assert looks[str(lib / "backup" / "portrait copy.jpg")] == looks[str(lib / "portrait.jpg")] is not None
    assert len(looks) == 3 and scan.fill_photo_facts(engine) == 0

    analysed.clear()  # a copy added later costs a hash, not a detection
    shutil.copy(TWO, lib / "backup" / "two.jpg")
    summary = scan.scan(engine, [lib], model=model)
    assert analysed == [] and summary["photos_copied"] == 1 and summary["photos_unchanged"] == 3
    faces = faces_by_name(engine)
    assert faces["backup/two.jpg"] == faces["photos/two.jpg"] and len(faces["backup/two.jpg"]) == 2

    shutil.copy(TWO, lib / "two (1).jpg")  # a copy beside it, and the user's pick of its burst
    scan.scan(engine, [lib], model=model)
    with session_factory(engine).begin() as s:
        picked = s.scalar(select(Photo.id).where(Photo.path == str(lib / "two.jpg")))
        s.add(BestChoice(group_key=f"{lib}|0|two.jpg", photo_id=picked))
    (lib / "portrait.jpg").unlink()  # the first one goes: its copy keeps its face
    (lib / "two.jpg").unlink()
    scan.scan(engine, [lib], model=model)
    assert scan.purge_missing(engine) == 2
    with session_factory(engine)() as s:  # the pick passes to the copy beside it
        assert s.scalar(select(Photo.path).join(BestChoice)) == str(lib / "two (1).jpg")
    left = faces_by_name(engine)
    assert set(left) == {"backup/portrait copy.jpg", "backup/two.jpg", "photos/two (1).jpg"}
    assert left["backup/portrait copy.jpg"] == faces["photos/portrait.jpg"]
    assert left["backup/two.jpg"] == faces["photos/two.jpg"]
    with session_factory(engine)() as s:
        assert len(s.scalars(select(Face)).all()) == 3


def test_a_changed_file_that_becomes_a_copy_takes_the_other_photos_faces(tmp_path, model, analysed):
    lib = tmp_path / "photos"
    lib.mkdir()
    shutil.copy(PORTRAIT, lib / "a.jpg")
    shutil.copy(TWO, lib / "b.jpg")
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib], model=model)
    analysed.clear()
    shutil.copy(TWO, lib / "a.jpg")  # overwritten with the other photo's content
    summary = scan.scan(engine, [lib], model=model)
    assert analysed == [] and summary["photos_changed"] == 1 and summary["photos_copied"] == 1
    faces = faces_by_name(engine)
    assert faces["photos/a.jpg"] == faces["photos/b.jpg"] and len(faces["photos/a.jpg"]) == 2


def test_repredict_decodes_each_content_once(tmp_path, model, monkeypatch):
    from test_scan import tiny_model

    lib = tmp_path / "photos"
    lib.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(TWO, lib / name)
    shutil.copy(PORTRAIT, lib / "d.jpg")
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib], model=model)
    read, real = [], scan.imaging.read_file
    monkeypatch.setattr(scan.imaging, "read_file", lambda path: read.append(path) or real(path))
    result = scan.repredict(engine, tiny_model(tmp_path, ["Smiling", "Male"]))
    # 3 faces stored once (2 of the three copies, 1 of d): two contents read, predicted once
    assert len(read) == 2 and (result["faces"], result["photos"], result["errors"]) == (3, 2, 0)
    with session_factory(engine)() as s:
        smiling = s.execute(select(Photo.path, predictions_table.c.Smiling).select_from(Photo)
                            .join(Face, Face.content_hash == Photo.content_hash)
                            .join(predictions_table, predictions_table.c.face_id == Face.id)
                            .where(predictions_table.c.model_id == result["model_id"])
                            .order_by(Photo.path, Face.index)).all()
    per_photo = {}
    for path, value in smiling:
        per_photo.setdefault(path.rsplit("/", 1)[-1], []).append(value)
    assert per_photo["a.jpg"] == per_photo["b.jpg"] == per_photo["c.jpg"] and len(per_photo["a.jpg"]) == 2


def test_listings_list_every_copy_and_face_results_count_a_face_once(tmp_path, model):
    from photo_sorter import export, library, query, selection

    lib = tmp_path / "photos"
    (lib / "backup").mkdir(parents=True)
    shutil.copy(PORTRAIT, lib / "portrait.jpg")
    shutil.copy(PORTRAIT, lib / "portrait (1).jpg")  # a copy in the same folder: the same burst
    shutil.copy(PORTRAIT, lib / "backup" / "portrait.jpg")
    shutil.copy(TWO, lib / "two.jpg")
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib], model=model)
    with session_factory(engine)() as s:
        assert len(s.scalars(select(Face)).all()) == 3  # stored once: 1 + 2
        assert len(s.execute(select(predictions_table)).all()) == 3
    everyone = "Male or not Male"
    photos = {p["path"]: p for p in query.photos(engine, everyone)}
    assert len(photos) == 4  # each path is a photo the user has, with its faces as its own
    copy = photos[str(lib / "backup" / "portrait.jpg")]
    assert [(f["photo_id"], f["path"]) for f in copy["faces"]] == [(copy["photo_id"], copy["path"])]
    assert copy["faces"][0]["face_id"] == photos[str(lib / "portrait.jpg")]["faces"][0]["face_id"]
    faces = query.faces(engine, everyone)
    assert len(faces) == len({f["face_id"] for f in faces}) == 3
    assert library.counts(engine) == {"photos": 4, "errors": 0, "faces": 3}
    with session_factory(engine)() as s:
        m = export.active_model(s, None)
        assert len(export.face_rows(s, m)) == 3  # what clusters and eigenfaces take
        assert len(export.face_rows(s, m, each_copy=True)) == 5
    data = json.loads(export.export(engine, "json")["text"])
    assert sorted(len(p["faces"]) for p in data) == [1, 1, 1, 2]  # each copy's own entry
    pair = {photos[str(lib / "portrait.jpg")]["photo_id"], photos[str(lib / "portrait (1).jpg")]["photo_id"]}
    burst = [g for g in selection.best_smiling(engine) if pair <= set(g["photo_ids"])]
    assert len(burst) == 1 and len(burst[0]["ranking"]) == 1  # two copies in a burst: one candidate


def test_a_copy_that_changes_or_goes_leaves_the_others_faces(tmp_path, model, analysed):
    lib = tmp_path / "photos"
    lib.mkdir()
    shutil.copy(PORTRAIT, lib / "a.jpg")
    shutil.copy(PORTRAIT, lib / "b.jpg")
    shutil.copy(TWO, lib / "c.jpg")
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib], model=model)
    before = faces_by_name(engine)
    analysed.clear()
    shutil.copy(TWO, lib / "a.jpg")  # now a copy of c: no decode, and b keeps the portrait's face
    scan.scan(engine, [lib], model=model)
    after = faces_by_name(engine)
    assert analysed == [] and after["photos/b.jpg"] == before["photos/a.jpg"]
    assert after["photos/a.jpg"] == before["photos/c.jpg"]
    (lib / "b.jpg").unlink()  # the portrait's last file: missing keeps its face until purged
    scan.scan(engine, [lib], model=model)
    with session_factory(engine)() as s:
        assert len(s.scalars(select(Face)).all()) == 3
    assert scan.purge_missing(engine) == 1
    with session_factory(engine)() as s:
        assert len(s.scalars(select(Face)).all()) == 2
        assert len(s.execute(select(predictions_table)).all()) == 2
    from photo_sorter import library
    assert library.forget_folder(engine, str(lib)) == 2
    with session_factory(engine)() as s:
        assert s.scalars(select(Face)).all() == []
