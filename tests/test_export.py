"""CSV/JSON exports, XMP sidecars read back with an XML parser, and the headless commands,
none of which may change a photo's bytes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import defusedxml.ElementTree as SafeET
import numpy as np
import pytest

from conftest import db_arg
from library_factory import make_library, scene
from photo_sorter import cli, export
from photo_sorter.export import LibraryError
from photo_sorter.outputs import OutputError
from photo_sorter.xmp import NS

T0 = datetime(2024, 6, 1, 9, 0, 0)
SMILE = {"Smiling": 0.9, "Eyeglasses": 0.8, "Male": 0.2}
FROWN = {"Smiling": 0.1, "Male": 0.9, "Wearing_Hat": 0.7}


def _crop(value):
    return np.full((109, 89, 3), value, np.uint8)


@pytest.fixture
def library(tmp_path, db_url):
    photos = [
        {"name": "pair.jpg", "folder": "trip", "captured_at": T0, "width": 160, "height": 120,
         "pixels": scene(5),
         "faces": [{"probs": SMILE, "box": (20, 30, 40, 48), "crop": _crop(90)},
                   {"probs": FROWN, "box": (100, 20, 30, 36), "crop": _crop(160)}]},
        {"name": "pair2.jpg", "folder": "trip", "captured_at": T0 + timedelta(seconds=1),
         "pixels": scene(5), "faces": [{"probs": FROWN, "crop": _crop(150)},
                                       {"probs": SMILE, "crop": _crop(100)}]},
        {"name": "cat.jpg", "folder": "trip/pets", "captured_at": T0 + timedelta(minutes=2), "faces": []},
        {"name": "solo.jpg", "folder": "home", "faces": [{"probs": SMILE, "crop": _crop(110)}]},
    ]
    engine, ids, _ = make_library(db_url, photos, photo_dir=tmp_path / "photos")
    return engine, ids, tmp_path


def _digests(root: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))}


def _li(desc_root, prop: str) -> list[str]:
    node = desc_root.find(f".//{prop}", NS)
    return [li.text for li in node.find("*").findall("rdf:li", NS)] if node is not None else []


def test_csv_and_json(library):
    engine, ids, tmp = library
    result = export.export(engine, "csv", out=tmp / "out" / "faces.csv")
    assert result["photos"] == 4 and result["faces"] == 5
    rows = list(csv.DictReader(io.StringIO((tmp / "out" / "faces.csv").read_text())))
    assert len(rows) == 6  # five faces and one row for the photo without faces
    first = next(r for r in rows if r["path"].endswith("pair.jpg") and r["face_index"] == "0")
    assert float(first["Smiling"]) == pytest.approx(0.9) and first["attributes"] == "Eyeglasses;Smiling"
    assert [r["face_index"] for r in rows if r["path"].endswith("cat.jpg")] == [""]

    doc = json.loads(export.export(engine, "json")["text"])
    pair = next(p for p in doc if p["path"].endswith("pair.jpg"))
    assert [f["attributes"] for f in pair["faces"]] == [["Eyeglasses", "Smiling"], ["Male", "Wearing_Hat"]]
    assert pair["captured_at"] == T0.isoformat() and pair["faces"][0]["box"] == [20, 30, 40, 48]
    # Photo-level quantifier: `all:` needs every face of the photo to match.
    everyone = json.loads(export.export(engine, "json", where="all:Smiling")["text"])
    assert [Path(p["path"]).name for p in everyone] == ["solo.jpg"]
    anyone = json.loads(export.export(engine, "json", where="Smiling")["text"])
    assert sorted(Path(p["path"]).name for p in anyone) == ["pair.jpg", "pair2.jpg", "solo.jpg"]
    with pytest.raises(LibraryError, match="bad --where expression: unknown attribute 'Smilng'"):
        export.export(engine, "csv", where="Smilng")
    with pytest.raises(LibraryError, match="unknown export format"):
        export.export(engine, "xls")
    with pytest.raises(OutputError, match="one of the library's photos"):
        export.export(engine, "csv", out=tmp / "photos" / "trip" / "pair.jpg")


def test_xmp_sidecar_fields_read_back(library):
    engine, ids, tmp = library
    before = _digests(tmp / "photos")
    result = export.export(engine, "xmp")
    photo = tmp / "photos" / "trip" / "pair.jpg"
    sidecar = Path(str(photo) + ".xmp")
    assert str(sidecar) in result["files"] and result["sidecars"] == 3
    assert not (tmp / "photos" / "trip" / "pets" / "cat.jpg.xmp").exists()  # no faces, no sidecar
    root = SafeET.parse(sidecar).getroot()
    assert root.tag == "{adobe:ns:meta/}xmpmeta"
    assert _li(root, "dc:subject") == ["Eyeglasses", "Male", "Smiling", "Wearing hat"]
    assert "Faces|Smiling" in _li(root, "lr:hierarchicalSubject")
    assert "Faces/Wearing hat" in _li(root, "digiKam:TagsList")
    dims = root.find(".//mwg-rs:AppliedToDimensions", NS)
    assert (dims.get(f"{{{NS['stDim']}}}w"), dims.get(f"{{{NS['stDim']}}}h")) == ("160", "120")
    areas = root.findall(".//mwg-rs:RegionList/rdf:Bag/rdf:li/mwg-rs:Area", NS)
    first = {k: float(areas[0].get(f"{{{NS['stArea']}}}{k}")) for k in "xywh"}
    assert first == pytest.approx({"x": 40 / 160, "y": 54 / 120, "w": 40 / 160, "h": 48 / 120})
    assert len(areas) == 2
    # stem naming and an export folder that mirrors the photo folders
    export.export(engine, "xmp", sidecar_name="stem")
    assert (tmp / "photos" / "trip" / "pair.xmp").is_file()
    export.export(engine, "xmp", out=tmp / "xmp")
    assert sorted(p.relative_to(tmp / "xmp").as_posix() for p in (tmp / "xmp").rglob("*.xmp")) == [
        "home/solo.jpg.xmp", "trip/pair.jpg.xmp", "trip/pair2.jpg.xmp"]
    assert _digests(tmp / "photos") == before


EXISTING = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"
    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#" xmp:Rating="4">
   <dc:subject><rdf:Bag><rdf:li>Holiday</rdf:li><rdf:li>Smiling</rdf:li></rdf:Bag></dc:subject>
   <mwg-rs:Regions rdf:parseType="Resource">
    <mwg-rs:AppliedToDimensions stDim:w="160" stDim:h="120" stDim:unit="pixel"/>
    <mwg-rs:RegionList><rdf:Bag>
     <rdf:li><rdf:Description mwg-rs:Name="Alice" mwg-rs:Type="Face">
      <mwg-rs:Area stArea:x="0.25" stArea:y="0.45" stArea:w="0.25" stArea:h="0.4" stArea:unit="normalized"/>
     </rdf:Description></rdf:li>
    </rdf:Bag></mwg-rs:RegionList>
   </mwg-rs:Regions>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def test_existing_sidecar_is_merged_not_clobbered(library):
    engine, ids, tmp = library
    sidecar = tmp / "photos" / "trip" / "pair.jpg.xmp"
    sidecar.write_text(EXISTING, encoding="utf-8")
    export.export(engine, "xmp")
    text = sidecar.read_text(encoding="utf-8")
    root = SafeET.fromstring(text.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    desc = root.find("rdf:RDF/rdf:Description", NS)
    assert desc.get("{http://ns.adobe.com/xap/1.0/}Rating") == "4" and "xmp:Rating" in text
    assert _li(root, "dc:subject") == ["Holiday", "Smiling", "Eyeglasses", "Male", "Wearing hat"]
    items = root.findall(".//mwg-rs:RegionList/rdf:Bag/rdf:li", NS)
    names = [li.find("rdf:Description", NS).get(f"{{{NS['mwg-rs']}}}Name")
             if li.find("rdf:Description", NS) is not None else None for li in items]
    assert names == ["Alice", None]  # Alice's region already covers face 0; face 1 is added
    assert len(root.findall(".//mwg-rs:Regions", NS)) == 1
    export.export(engine, "xmp")
    assert sidecar.read_text(encoding="utf-8") == text  # a second export changes nothing

    broken = tmp / "photos" / "home" / "solo.jpg.xmp"
    broken.write_text("<x:xmpmeta oops", encoding="utf-8")
    result = export.export(engine, "xmp")  # the other sidecars are still written
    assert result["sidecars"] == 2 and len(result["errors"]) == 1
    assert "solo.jpg.xmp is not valid XML" in result["errors"][0]
    assert broken.read_text(encoding="utf-8") == "<x:xmpmeta oops"


@pytest.fixture(autouse=True)
def only_these_commands(monkeypatch):
    """Build the CLI from this module's commands alone, independent of the other command modules."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("clusters",))


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_leaves_photos_untouched(library, capsys, user_data_folder):
    engine, ids, tmp = library
    db = db_arg(engine)
    sheets = tmp / "library_sheets" if engine.dialect.name == "sqlite" else \
        user_data_folder / "photo_sorter" / "cluster_sheets" / re.sub(r"[^\w.-]+", "_", db)
    before = _digests(tmp / "photos")
    code, out, _ = _run(capsys, "cluster", "--db", db, "--k", "2", "--json")  # sheets beside the db
    result = json.loads(out)
    assert code == 0 and result["k"] == 2 and sum(c["size"] for c in result["clusters"]) == 5
    assert all(Path(c["sheet"]).parent == sheets and Path(c["sheet"]).is_file()
               for c in result["clusters"])
    code, out, _ = _run(capsys, "best-smiling", "--db", db, "--json", "--out", str(tmp / "best"))
    groups = json.loads(out)["groups"]
    assert code == 0 and len(groups) == 1 and groups[0]["best"]["path"].endswith("pair.jpg")
    assert (tmp / "best" / "pair.jpg").is_file()
    code, out, _ = _run(capsys, "choose-best", groups[0]["key"], str(ids[1]), "--db", db, "--json")
    assert code == 0 and json.loads(out)["photo_id"] == ids[1]
    code, out, _ = _run(capsys, "best-smiling", "--db", db, "--no-visual-split", "--json")
    assert json.loads(out)["groups"][0]["best"]["photo_id"] == ids[1] and json.loads(out)["copied"] is None
    for fmt in ("csv", "json", "xmp"):
        code, out, _ = _run(capsys, "export", "--format", fmt, "--db", db, "--json")
        assert code == 0 and json.loads(out)["photos"] == 4
    code, out, _ = _run(capsys, "export", "--format", "csv", "--db", db)
    assert out.startswith("photo_id,path,")
    code, out, _ = _run(capsys, "export", "--format", "xmp", "--embed-none", "--where", "all:Smiling", "--out",
                        str(tmp / "xmp"), "--db", db, "--json")
    assert [Path(f).name for f in json.loads(out)["files"]] == ["solo.jpg.xmp"]
    assert _digests(tmp / "photos") == before


@pytest.mark.parametrize("argv, message", [
    (["cluster", "--k", "many"], "k must be a whole number or 'auto'"),
    (["cluster", "--k", "9"], "k=9 clusters need at least 9 faces; the library has 5"),
    (["cluster", "--attributes", "Smiling,Grumpy"], "unknown attribute name(s): Grumpy"),
    (["best-smiling", "--gap-seconds", "10", "--event-gap-seconds", "5"], "event gap"),
    (["choose-best", "nowhere|x"], "give either a PHOTO_ID or --clear"),
    (["choose-best", "nowhere|x", "999"], "no photo with id 999"),
])
def test_bad_input_is_one_line(library, capsys, argv, message):
    engine, _, _ = library
    code, out, err = _run(capsys, *argv, "--db", db_arg(engine))
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_empty_library_says_what_to_do(tmp_path, capsys):
    code, _, err = _run(capsys, "cluster", "--db", str(tmp_path / "empty.db"))
    assert code == 2 and "scan some photos first" in err
