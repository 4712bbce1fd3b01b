"""XMP that other tools read: sidecars read back with exiftool (Subject, HierarchicalSubject,
TagsList, MWG regions on rotated photos), merging into sidecars exiftool wrote, re-export after
re-prediction, unreliable attributes, stem collisions, deep packets and thread safety."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps
from sqlalchemy import update

from library_factory import make_library, scene
from photo_sorter import export, imaging, scan, selection, xmp
from photo_sorter.store import predictions_table

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool (libimage-exiftool-perl) is not installed")


def exiftool(*args) -> dict:
    done = subprocess.run([EXIFTOOL, "-j", *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)[0]


def _library(tmp_path, photos, **kwargs):
    return make_library(tmp_path / "lib.db", photos, photo_dir=tmp_path / "photos", **kwargs)


SMILE = {"Smiling": 0.9, "Eyeglasses": 0.8}


@needs_exiftool
def test_exiftool_reads_our_keywords_and_regions(tmp_path):
    engine, _, _ = _library(tmp_path, [{"name": "a.jpg", "faces": [
        {"probs": SMILE, "box": (20, 30, 40, 48)}, {"probs": {"Wearing_Hat": 0.9}, "box": (100, 20, 30, 36)}]}])
    export.export(engine, "xmp")
    tags = exiftool("-XMP:all", tmp_path / "photos" / "album" / "a.jpg.xmp")
    assert tags["Subject"] == ["Eyeglasses", "Smiling", "Wearing hat"]
    assert tags["HierarchicalSubject"] == ["Faces|Eyeglasses", "Faces|Smiling", "Faces|Wearing hat"]
    assert tags["TagsList"] == ["Faces/Eyeglasses", "Faces/Smiling", "Faces/Wearing hat"]
    info = exiftool("-struct", "-XMP:RegionInfo", tmp_path / "photos" / "album" / "a.jpg.xmp")["RegionInfo"]
    assert info["AppliedToDimensions"] == {"W": 160, "H": 120, "Unit": "pixel"}
    areas = [r["Area"] for r in info["RegionList"]]
    assert [r["Type"] for r in info["RegionList"]] == ["Face", "Face"]
    assert {k: areas[0][k] for k in "XYWH"} == pytest.approx({"X": 0.25, "Y": 0.45, "W": 0.25, "H": 0.4})


def _rotated_photo(orientation: int) -> tuple[np.ndarray, tuple, tuple]:
    """Stored pixels (200x120) with a bright block, and that block's box in the displayed
    (EXIF-oriented) picture: (stored, displayed box, displayed size)."""
    stored = np.zeros((120, 200, 3), np.uint8)
    stored[20:60, 140:170] = 255  # x 140..170, y 20..60 in the stored frame
    image = Image.fromarray(stored)
    image.getexif()[ExifTags.Base.Orientation] = orientation
    shown = ImageOps.exif_transpose(image)
    ys, xs = np.nonzero(np.asarray(shown)[..., 0] > 128)
    box = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    return stored, tuple(map(float, box)), shown.size


@pytest.mark.parametrize("orientation", range(1, 9))
def test_regions_are_in_the_stored_frame_for_every_orientation(orientation):
    _stored, box, size = _rotated_photo(orientation)
    (x, y, w, h), frame = xmp.stored_area(box, size, orientation)
    assert frame == (200, 120)
    assert (x * 200, y * 120, w * 200, h * 120) == pytest.approx((155, 40, 30, 40))


@needs_exiftool
@pytest.mark.parametrize("orientation", [6, 8])
def test_exiftool_reads_regions_of_rotated_photos_in_the_stored_frame(tmp_path, orientation):
    stored, box, size = _rotated_photo(orientation)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    engine, _, _ = _library(tmp_path, [{"name": "r.jpg", "pixels": stored, "width": size[0], "height": size[1],
                                        "save": {"exif": exif}, "faces": [{"probs": SMILE, "box": box}]}])
    photo = tmp_path / "photos" / "album" / "r.jpg"
    assert imaging.open_photo(photo).width == size[0] == 120  # what the scan stores: displayed size
    export.export(engine, "xmp")
    info = exiftool("-struct", "-XMP:RegionInfo", str(photo) + ".xmp")["RegionInfo"]
    assert info["AppliedToDimensions"] == {"W": 200, "H": 120, "Unit": "pixel"}
    area = info["RegionList"][0]["Area"]
    # Cut the region out of the stored pixels: it is the bright block.
    x0, y0 = round((area["X"] - area["W"] / 2) * 200), round((area["Y"] - area["H"] / 2) * 120)
    x1, y1 = round((area["X"] + area["W"] / 2) * 200), round((area["Y"] + area["H"] / 2) * 120)
    decoded = np.asarray(Image.open(photo))  # Pillow does not rotate: the stored frame
    assert (x0, y0, x1, y1) == (140, 20, 170, 60) and decoded[y0:y1, x0:x1].mean() > 200


def _set(engine, face_ids, **values):
    with engine.begin() as conn:
        conn.execute(update(predictions_table).where(predictions_table.c.face_id.in_(face_ids)).values(**values))


@needs_exiftool
def test_reexport_replaces_ours_and_keeps_what_exiftool_wrote(tmp_path):
    engine, _, faces = _library(tmp_path, [{"name": "a.jpg", "faces": [{"probs": SMILE, "box": (20, 30, 40, 48)}]}])
    sidecar = tmp_path / "photos" / "album" / "a.jpg.xmp"
    subprocess.run([EXIFTOOL, "-q", "-o", sidecar, "-XMP-dc:Subject=Holiday", "-XMP-dc:Subject=Smiling",
                    "-XMP-lr:HierarchicalSubject=Places|Paris", "-XMP-xmp:Rating=4",
                    "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=160,H=120,Unit=pixel},RegionList=["
                    "{Area={X=0.8,Y=0.2,W=0.1,H=0.1,Unit=normalized},Name=Bob,Type=Face}]}"], check=True)
    export.export(engine, "xmp")
    tags = exiftool("-struct", "-XMP:all", sidecar)
    assert tags["Subject"] == ["Holiday", "Smiling", "Eyeglasses"] and tags["Rating"] == 4
    assert tags["HierarchicalSubject"] == ["Places|Paris", "Faces|Eyeglasses", "Faces|Smiling"]
    assert [r.get("Name") for r in tags["RegionInfo"]["RegionList"]] == ["Bob", None]

    # Re-prediction: no longer smiling nor in glasses, but bald; the face moved.
    _set(engine, faces["a.jpg"], Smiling=0.1, Eyeglasses=0.1, Bald=0.9)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE faces SET x = 60")
    export.export(engine, "xmp")
    tags = exiftool("-struct", "-XMP:all", sidecar)
    assert tags["Subject"] == ["Holiday", "Smiling", "Bald"]  # the user's own "Smiling" stays
    assert tags["HierarchicalSubject"] == ["Places|Paris", "Faces|Bald"]
    assert tags["TagsList"] == ["Faces/Bald"] and tags["Rating"] == 4
    regions = tags["RegionInfo"]["RegionList"]
    assert [(r.get("Name"), r.get("Description")) for r in regions] == [("Bob", None), (None, "Bald")]
    assert regions[1]["Area"]["X"] == pytest.approx(80 / 160)
    # Nothing of ours left once the face has no attribute above its threshold.
    _set(engine, faces["a.jpg"], Bald=0.1)
    export.export(engine, "xmp")
    tags = exiftool("-struct", "-XMP:all", sidecar)
    assert tags["Subject"] == ["Holiday", "Smiling"] and tags["HierarchicalSubject"] == ["Places|Paris"]
    assert "TagsList" not in tags and len(tags["RegionInfo"]["RegionList"]) == 2  # Bob + the face


def test_sidecar_of_an_earlier_version_is_cleaned_too(tmp_path):
    """Before the marker existed, our regions were unnamed faces described by attribute labels."""
    engine, _, _ = _library(tmp_path, [{"name": "a.jpg", "faces": [{"probs": {"Bald": 0.9}, "box": (20, 30, 40, 48)}]}])
    old = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
           b'xmlns:lr="http://ns.adobe.com/lightroom/1.0/" '
           b'xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
           b'xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">'
           b'<dc:subject><rdf:Bag><rdf:li>Smiling</rdf:li><rdf:li>Trip</rdf:li></rdf:Bag></dc:subject>'
           b'<lr:hierarchicalSubject><rdf:Bag><rdf:li>Faces|Smiling</rdf:li></rdf:Bag></lr:hierarchicalSubject>'
           b'<mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>'
           b'<rdf:li rdf:parseType="Resource"><mwg-rs:Type>Face</mwg-rs:Type>'
           b'<mwg-rs:Description>Smiling</mwg-rs:Description><mwg-rs:Area stArea:x="0.1" stArea:y="0.1" '
           b'stArea:w="0.1" stArea:h="0.1"/></rdf:li></rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>'
           b'</rdf:Description></rdf:RDF></x:xmpmeta>')
    (tmp_path / "photos" / "album" / "a.jpg.xmp").write_bytes(old)
    export.export(engine, "xmp")
    root = ET.fromstring((tmp_path / "photos" / "album" / "a.jpg.xmp").read_bytes())
    texts = [li.text for li in root.iter("{%s}li" % xmp.NS["rdf"]) if li.text and li.text.strip()]
    assert texts == ["Trip", "Bald", "Faces|Bald", "Faces/Bald", "Bald"]  # the last: AddedSubjects
    descriptions = [d.text for d in root.iter("{%s}Description" % xmp.NS["mwg-rs"])]
    assert descriptions == ["Bald"]


def test_unreliable_attributes_are_never_keywords(tmp_path):
    card = {"unreliable": {"Eyeglasses": "its tags are too often wrong"}}
    engine, _, _ = _library(tmp_path, [{"name": "a.jpg", "faces": [{"probs": SMILE}]}], card=card)
    result = export.export(engine, "xmp")
    assert result["not_written_as_keywords"] == ["Eyeglasses"]
    text = (tmp_path / "photos" / "album" / "a.jpg.xmp").read_text()
    assert "Faces|Smiling" in text and "Eyeglasses" not in text
    if EXIFTOOL:
        tags = exiftool("-XMP:all", tmp_path / "photos" / "album" / "a.jpg.xmp")
        assert tags["Subject"] == "Smiling" and tags["RegionDescription"] == "Smiling"
    row = next(csv.DictReader(io.StringIO(export.export(engine, "csv")["text"])))
    assert row["attributes"] == "Eyeglasses;Smiling" and float(row["Eyeglasses"]) == pytest.approx(0.8)
    face = json.loads(export.export(engine, "json")["text"])[0]["faces"][0]
    assert face["attributes"] == ["Eyeglasses", "Smiling"]


def test_stem_names_that_would_collide_fall_back_to_full_names(tmp_path):
    engine, _, _ = _library(tmp_path, [
        {"name": "IMG_0001.jpg", "faces": [{"probs": SMILE, "box": (10, 10, 20, 20)}]},
        {"name": "IMG_0001.png", "faces": [{"probs": {"Bald": 0.9}, "box": (100, 10, 20, 20)}]},
        {"name": "other.jpg", "faces": [{"probs": SMILE}]}])
    result = export.export(engine, "xmp", sidecar_name="stem")
    assert sorted(Path(f).name for f in result["files"]) == ["IMG_0001.jpg.xmp", "IMG_0001.png.xmp", "other.xmp"]
    assert result["notes"] == ["IMG_0001.jpg and IMG_0001.png would share one sidecar; "
                               "each got its own full-name sidecar (photo.jpg.xmp)"]
    assert not (tmp_path / "photos" / "album" / "IMG_0001.xmp").exists()
    png = (tmp_path / "photos" / "album" / "IMG_0001.png.xmp").read_text()
    assert "Faces|Bald" in png and "Smiling" not in png and png.count("<mwg-rs:Area") == 1


DEEP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
        'GCamera:BurstID="b-1">' + "<a>" * 3000 + "</a>" * 3000 + "</rdf:Description></rdf:RDF></x:xmpmeta>")


def test_deep_embedded_xmp_costs_only_that_photos_marker(tmp_path):
    smile = [{"probs": {"Smiling": 0.9}}]
    engine, ids, _ = _library(tmp_path, [
        {"name": "deep.jpg", "save": {"xmp": DEEP.encode()}, "faces": smile, "pixels": scene(3)},
        {"name": "ok.jpg", "faces": smile, "pixels": scene(3)}])
    path = tmp_path / "photos" / "album" / "deep.jpg"
    with Image.open(path) as im:
        packet = imaging.embedded_xmp(im)
    assert len(packet) > 6000 and xmp.read(packet) is None
    with pytest.raises(xmp.XmpError, match="nested deeper than 64"):
        xmp.parse(packet)
    photo = imaging.open_photo(path)  # the photo itself reads as always, without the packet's marker
    assert photo.burst_id is None and (photo.width, photo.height) == (160, 120)
    assert scan.fill_photo_facts(engine) == 2
    groups = selection.best_smiling(engine)
    assert [g["photo_ids"] for g in groups] == [ids]
    # Entities are never expanded, and a DTD is refused.
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    with pytest.raises(xmp.XmpError, match="DTD"):
        xmp.parse(bomb)


def test_prefixes_are_kept_per_document_without_global_state(tmp_path):
    """Two sidecars bind the same prefix to different namespaces; merged in parallel, each keeps
    its own binding, and ElementTree's process-wide prefix registry is untouched."""
    registry = dict(ET._namespace_map)

    def doc(uri: str) -> bytes:
        return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{xmp.NS["rdf"]}">'
                f'<rdf:Description rdf:about="" xmlns:p="{uri}" p:Label="{uri}"/></rdf:RDF></x:xmpmeta>').encode()

    faces = [{"box": (10, 10, 20, 20), "keywords": ["Smiling"]}]
    jobs = [doc(f"urn:tool{i % 2}") for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        merged = list(pool.map(lambda d: xmp.merge_sidecar(d, faces, (160, 120)), jobs))
    for i, out in enumerate(merged):
        assert f'xmlns:p="urn:tool{i % 2}"'.encode() in out and f'p:Label="urn:tool{i % 2}"'.encode() in out
        assert b"ns0:" not in out
    assert dict(ET._namespace_map) == registry
