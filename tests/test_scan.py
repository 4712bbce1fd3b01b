"""The scan end to end with the bundled model: sample library, incremental rescans, moves,
deletions, bad files, interrupt and resume, re-prediction with another model, and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from conftest import SAMPLE_PHOTOS
from photo_sorter import imaging, query, scan
from photo_sorter.cli import main as cli_main
from photo_sorter.model import AttributeModel
from photo_sorter.store import Face, ModelVersion, Photo, ScanRun, open_engine, predictions_table, session_factory

# Faces per sample photo (resources/sample_photos/LICENSES.md).
EXPECTED_FACES = {
    "obama_official_portrait_2012.jpg": 1, "obama_joint_session_2009.jpg": 1,
    "biden_blue_room_2010_crop.jpg": 1, "obama_blue_room_2010_crop.jpg": 1,
    "obama_biden_two_faces_blue_room_2010_crop.jpg": 2, "astronaut_eileen_collins_nasa.png": 1,
    "camera_person_cc0.png": 1, "noface_coffee_cc0.png": 0, "noface_cat_chelsea_cc0.png": 0,
    "noface_rocket_spacex_pd.jpg": 0, "noface_hubble_deep_field_nasa.jpg": 0,
}


def sha256sums(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in EXPECTED_FACES}


def count(engine, stmt):
    with session_factory(engine)() as s:
        return s.scalar(stmt)


def test_sample_library_faces_and_rows(sample_scan, model):
    engine, summary = sample_scan
    assert summary["photos_seen"] == summary["photos_new"] == len(EXPECTED_FACES)
    assert summary["faces"] == sum(EXPECTED_FACES.values()) and summary["errors"] == 0
    with session_factory(engine)() as s:
        photos = {p.path.rsplit("/", 1)[-1]: p for p in s.scalars(select(Photo))}
        assert {name: p.n_faces for name, p in photos.items()} == EXPECTED_FACES
        assert {name: len(p.faces) for name, p in photos.items()} == EXPECTED_FACES
        portrait = photos["obama_official_portrait_2012.jpg"]
        assert (portrait.width, portrait.height, portrait.camera) == (910, 1137, "Canon EOS 5D Mark III")
        assert portrait.capture_source == "exif" and portrait.captured_at.year == 2012
        face = portrait.faces[0]
        assert 200 < face.w < 450 and len(face.landmarks) == 5 and face.confidence > 0.9
        assert face.landmarks[0][0] < face.landmarks[1][0]  # image-left eye first
        crops = [Image.open(io.BytesIO(f.crop)) for f in s.scalars(select(Face))]
        assert {c.size for c in crops} == {(89, 109)}
        active = s.scalars(select(ModelVersion).where(ModelVersion.active)).one()
        assert active.sha256 == model.sha256 and active.attributes == model.attributes
        rows = s.execute(select(predictions_table)).mappings().all()
        assert len(rows) == sum(EXPECTED_FACES.values())
        values = np.array([[r[a] for a in model.attributes] for r in rows])
        assert np.all((values >= 0) & (values <= 1))
        assert s.scalars(select(ScanRun)).one().status == "done"
    assert sha256sums(SAMPLE_PHOTOS) == dict(
        line.split()[::-1] for line in (SAMPLE_PHOTOS / "SHA256SUMS").read_text().splitlines()
        if line.split()[1] in EXPECTED_FACES)  # the photos were only read


def test_queries_on_the_scanned_library(sample_scan, model):
    engine, _ = sample_scan
    everyone = query.faces(engine, "Male or not Male", limit=100)
    assert len(everyone) == sum(EXPECTED_FACES.values())
    two = [p for p in query.photos(engine, "Male >= 0 and Male <= 1") if p["n_faces"] == 2]
    assert len(two) == 1 and len(two[0]["faces"]) == 2
    assert set(two[0]["faces"][0]["probabilities"]) == set(model.attributes)
    if "untrained" not in model.name:  # values are meaningful once the model is trained
        assert all(p["path"].rsplit("/", 1)[-1].startswith(("obama", "biden"))
                   for p in query.photos(engine, "all:Male and not Young"))


class DecodeCounter:
    """Counts full photo decodes (OpenedPhoto.image calls) while installed."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = imaging.OpenedPhoto.image

        def counting(photo, *args, **kwargs):
            self.calls += 1
            return original(photo, *args, **kwargs)

        monkeypatch.setattr(imaging.OpenedPhoto, "image", counting)


def copy_photos(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(SAMPLE_PHOTOS / name, folder / name)
    return folder


def test_incremental_rescan_change_move_delete_and_errors(tmp_path, model, monkeypatch):
    lib = copy_photos(tmp_path / "lib", ["obama_official_portrait_2012.jpg",
                                         "obama_biden_two_faces_blue_room_2010_crop.jpg",
                                         "noface_coffee_cc0.png"])
    (lib / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (lib / ".hidden").mkdir()
    shutil.copy2(SAMPLE_PHOTOS / "astronaut_eileen_collins_nasa.png", lib / ".hidden" / "x.png")
    (lib / "loop").symlink_to(lib, target_is_directory=True)
    engine = open_engine(tmp_path / "lib.db")

    first = scan.scan(engine, [lib], model=model)
    assert (first["photos_new"], first["faces"], first["problems"]["error"], first["problems"]["skipped"]) == (4, 3, 1, 1)
    assert first["photos_seen"] == 4  # hidden folder skipped, symlink loop reported, not followed
    errors = scan.list_errors(engine)
    assert [(e["path"].rsplit("/", 1)[-1], e["kind"]) for e in errors] == [("broken.jpg", "error"),
                                                                           ("loop", "skipped")]
    assert "\n" not in errors[0]["error"] and errors[0]["error"]

    decodes = DecodeCounter(monkeypatch)
    again = scan.scan(engine, [lib], model=model)
    assert (again["photos_unchanged"], again["photos_new"], again["faces"]) == (3, 0, 0)
    assert again["problems"]["error"] == again["photos_rechecked"] == 1  # a problem row is read again on every scan
    assert decodes.calls == 0

    portrait = lib / "obama_official_portrait_2012.jpg"
    with session_factory(engine)() as s:
        old_face = s.scalars(select(Face).join(Photo, Photo.content_hash == Face.content_hash).where(Photo.path == str(portrait))).one()
    (lib / "album").mkdir()
    portrait.rename(lib / "album" / "renamed.jpg")                              # moved
    shutil.copy2(SAMPLE_PHOTOS / "astronaut_eileen_collins_nasa.png", lib / "noface_coffee_cc0.png")  # changed
    (lib / "obama_biden_two_faces_blue_room_2010_crop.jpg").unlink()           # deleted
    third = scan.scan(engine, [lib], model=model)
    assert (third["photos_moved"], third["photos_changed"], third["photos_missing"]) == (1, 1, 1)
    assert (third["photos_unchanged"], third["photos_rechecked"], third["faces"]) == (0, 1, 1)
    assert decodes.calls > 0  # only the changed file was decoded
    with session_factory(engine)() as s:
        moved = s.scalars(select(Face).join(Photo, Photo.content_hash == Face.content_hash).where(Photo.path.endswith("renamed.jpg"))).one()
        assert moved.id == old_face.id  # the same face row (and its predictions) followed the file
        changed = s.scalars(select(Photo).where(Photo.path.endswith("noface_coffee_cc0.png"))).one()
        assert changed.n_faces == 1 and len(changed.faces) == 1
    assert not any("two_faces" in p["path"] for p in query.photos(engine, "Male or not Male"))

    assert scan.purge_missing(engine) == 1
    assert count(engine, select(func.count()).select_from(Photo)) == 4  # 3 photos and the reported link
    assert count(engine, select(func.count()).select_from(predictions_table)) == 2


def test_interrupt_then_resume_gives_no_duplicates(tmp_path, model):
    names = [n for n, k in EXPECTED_FACES.items() if k][:5]
    lib = copy_photos(tmp_path / "lib", names)
    engine = open_engine(tmp_path / "lib.db")
    options = scan.ScanOptions(commit_every=1, workers=1)  # exact counts: no photo in flight at the cancel

    def crash_after_two(progress):
        if progress.files_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan.scan(engine, [lib], model=model, options=options, progress=crash_after_two)
    assert count(engine, select(func.count()).select_from(Photo)) == 2
    assert count(engine, select(ScanRun.status)) == "failed"

    cancel = threading.Event()

    def cancel_after_three(progress):
        if progress.files_done == 3:
            cancel.set()

    summary = scan.scan(engine, [lib], model=model, options=options, progress=cancel_after_three,
                        cancel=cancel)
    assert summary["cancelled"] and summary["photos_unchanged"] == 2 and summary["photos_new"] == 1

    final = scan.scan(engine, [lib], model=model)
    assert (final["photos_unchanged"], final["photos_new"]) == (3, 2)
    expected_faces = sum(EXPECTED_FACES[n] for n in names)
    assert count(engine, select(func.count()).select_from(Photo)) == 5
    assert count(engine, select(func.count()).select_from(Face)) == expected_faces
    assert count(engine, select(func.count()).select_from(predictions_table)) == expected_faces


def tiny_model(folder, attributes):
    """A real (untrained) Keras model on the same frame with fewer attributes, and its card."""
    import keras

    inputs = keras.Input((218, 178, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(attributes), activation="sigmoid")(x)
    path = folder / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    path.with_suffix(".json").write_text(json.dumps(
        {"name": "tiny", "attributes": attributes, "thresholds": {a: 0.5 for a in attributes}}))
    return AttributeModel.load(path)


def test_repredict_with_another_model_keeps_old_predictions(tmp_path, model, monkeypatch):
    lib = copy_photos(tmp_path / "lib", ["obama_biden_two_faces_blue_room_2010_crop.jpg",
                                         "astronaut_eileen_collins_nasa.png"])
    engine = open_engine(tmp_path / "lib.db")
    scan.scan(engine, [lib], model=model)
    tiny = tiny_model(tmp_path, ["Smiling", "Male", "Eyeglasses"])
    detections = []
    monkeypatch.setattr(scan.faces, "detect", lambda *a, **k: detections.append(1) or [])
    result = scan.repredict(engine, tiny)
    assert (result["faces"], result["photos"], result["errors"]) == (3, 2, 0)
    assert detections == []  # aligned again from the stored landmarks, not re-detected
    with session_factory(engine)() as s:
        per_model = dict(s.execute(select(ModelVersion.name, func.count())
                                   .join(predictions_table).group_by(ModelVersion.name)).all())
        assert per_model == {model.name: 3, "tiny": 3}
        assert s.scalar(select(ModelVersion.name).where(ModelVersion.active)) == "tiny"
        row = s.execute(select(predictions_table).where(predictions_table.c.model_id == result["model_id"])).mappings().first()
        assert row["Smiling"] is not None and row["Bald"] is None
    assert len(query.faces(engine, "Male or not Male")) == 3
    with pytest.raises(query.QueryError, match="unknown attribute 'Bald'"):
        query.faces(engine, "Bald")
    assert scan.repredict(engine, tiny)["faces"] == 0  # resumable: nothing left to do


def test_cli_scan_query_and_errors(tmp_path, capsys):
    db = tmp_path / "cli.db"
    lib = copy_photos(tmp_path / "lib", ["astronaut_eileen_collins_nasa.png"])
    assert cli_main(["scan", str(lib), "--db", str(db), "--json", "--min-face", "30"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["photos_new"] == 1 and summary["faces"] == 1 and "seconds" in summary
    assert cli_main(["scan", str(lib), "--db", str(db), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["photos_unchanged"] == 1 and again["device"] is None  # the model was not loaded
    assert cli_main(["faces", "--where", "Smiling >= 0", "--db", str(db), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)
    assert len(faces) == 1 and len(faces[0]["box"]) == 4
    assert cli_main(["photos", "--where", "Smilng", "--db", str(db)]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown attribute 'Smilng'; did you mean Smiling?"
    assert cli_main(["scan", str(tmp_path / "nowhere"), "--db", str(db)]) == 2
    assert "the folder is not there (unmounted?)" in capsys.readouterr().err
    assert cli_main(["errors", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_small_faces_are_cut_from_full_resolution(tmp_path):
    """A face that is small in a large photo is aligned from the full-resolution decode, so its
    frame is sharper than one cut from the detection copy."""
    face = imaging.open_photo(SAMPLE_PHOTOS / "astronaut_eileen_collins_nasa.png").image()
    canvas = Image.new("RGB", (3600, 2400), (90, 110, 130))
    canvas.paste(face.resize((256, 256), Image.Resampling.LANCZOS), (1700, 1100))
    path = tmp_path / "wide.jpg"
    canvas.save(path, quality=95)
    photo = imaging.open_photo(path)
    small = photo.image(1024)
    found = scan.faces.detect(small, scale=photo.scale_of(small))
    assert len(found) == 1
    frame = scan._frames(photo, [found[0].landmarks], 1024)[0]
    blurry = scan.align.to_celeba(small, np.asarray(found[0].landmarks) / photo.scale_of(small))

    def sharpness(rgb):
        grey = rgb.mean(axis=2)
        return np.var(grey[2:, 1:-1] + grey[:-2, 1:-1] + grey[1:-1, 2:] + grey[1:-1, :-2] - 4 * grey[1:-1, 1:-1])

    assert sharpness(frame) > 5 * sharpness(blurry)
