"""The user's photos are only ever read. Every file of a library is hashed (content, size, mtime,
mode) before and after a scan, a rescan, queries, clustering, best-smiling and exports, with the
library folder made read-only; an audit hook also records any attempt to open a file under the
library for writing, or to rename, delete, chmod or touch one (this holds even for root, whom
permissions do not stop). The one exception: XMP sidecars when asked for, new files only, an
existing sidecar merged."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import SAMPLE_PHOTOS
from photo_sorter import clusters, export, files, outputs, query, scan, selection
from photo_sorter.model import AttributeModel
from photo_sorter.store import open_engine

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CHANGING_EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
                   "os.utime", "os.truncate", "os.link", "os.symlink", "os.setxattr",
                   "os.removexattr", "shutil.copyfile", "shutil.move", "shutil.rmtree"}
COPY_EVENTS = {"shutil.copyfile", "os.link", "os.symlink"}
_watch: dict = {"root": None, "seen": []}


def _audit(event: str, args: tuple) -> None:
    root = _watch["root"]
    if root is None or (event != "open" and event not in CHANGING_EVENTS) or not args:
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS)
        if not writing:
            return
        paths = [path]
    else:
        paths = args[1:2] if event in COPY_EVENTS else args[:2]  # a copy's source is only read
    for path in paths:
        if not isinstance(path, (str, bytes, os.PathLike)):
            continue
        if os.path.abspath(os.fsdecode(path)).startswith(root):
            _watch["seen"].append((event, os.fsdecode(path)))


sys.addaudithook(_audit)  # hooks cannot be removed; it records only inside watching()


@contextmanager
def watching(root: Path):
    """Record write attempts under root while the block runs; yields the list of them."""
    _watch.update(root=str(root) + os.sep, seen=[])
    try:
        yield _watch["seen"]
    finally:
        _watch["root"] = None


def fingerprint(root: Path) -> dict[str, tuple]:
    """relative path -> (sha256, size, mtime_ns, mode) of every file under root."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size,
                                            st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out


def set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/>
</rdf:RDF></x:xmpmeta>
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A copy of the sample photos (with a burst of three copies of one portrait, and one existing
    sidecar), made read-only, scanned with the bundled model."""
    root = tmp_path_factory.mktemp("library") / "photos"
    shutil.copytree(SAMPLE_PHOTOS, root / "samples", ignore=shutil.ignore_patterns("*.md", "SHA256SUMS"))
    (root / "burst").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg", root / "burst" / name)
    (root / "burst" / "b.jpg.xmp").write_text(SIDECAR)
    out = tmp_path_factory.mktemp("outside")
    engine = open_engine(out / "library.db")
    before = fingerprint(root)
    set_writable(root, False)
    before_ro = fingerprint(root)
    with watching(root) as seen:
        summary = scan.scan(engine, [root], model=AttributeModel.load())
        attempts = list(seen)
    yield root, out, engine, summary, before, before_ro, attempts
    set_writable(root, True)


def test_scan_of_a_read_only_library(library):
    root, _, _, summary, before, before_ro, attempts = library
    assert summary["errors"] == 0 and summary["photos_new"] == len([k for k in before if k.endswith(
        (".jpg", ".png"))]) and summary["faces"] >= 8
    assert attempts == [] and fingerprint(root) == before_ro
    assert {k: v[:3] for k, v in before.items()} == {k: v[:3] for k, v in before_ro.items()}


def test_reading_commands_touch_nothing(library):
    root, out, engine, _, _, before_ro, _ = library
    with watching(root) as seen:
        assert scan.scan(engine, [root])["photos_unchanged"] > 0
        assert query.photos(engine, "Male or not Male")
        query.faces(engine, "Smiling > 0.1 and not Eyeglasses")
        clusters.run_clustering(engine, k=2, out_dir=out / "sheets")
        groups = selection.best_smiling(engine)
        assert groups and all(g["best"]["path"].startswith(str(root)) for g in groups)
        selection.choose_best(engine, groups[0]["key"], groups[0]["photo_ids"][-1])
        selection.copy_best(groups, out / "best")
        export.export(engine, "csv", out / "faces.csv")
        export.export(engine, "json", out / "faces.json")
        export.export(engine, "xmp", out / "sidecars")  # into another folder: the library stays as is
        scan.repredict(engine)
        assert seen == []
    assert fingerprint(root) == before_ro
    assert len([p for p in (out / "best").iterdir() if not p.name.startswith(".")]) == len(groups)


def test_xmp_beside_photos_adds_sidecars_and_merges_only(library):
    root, _, engine, _, _, _, _ = library
    set_writable(root, True)
    before = fingerprint(root)
    try:
        with watching(root) as seen:
            summary = export.export(engine, "xmp")
    finally:
        set_writable(root, False)
    after = fingerprint(root)
    assert summary["sidecars"] >= 3 and not summary["errors"]
    assert {k for k in before if after[k][:2] != before[k][:2]} == {"burst/b.jpg.xmp"}  # merged
    assert all(k.endswith(".jpg.xmp") or k.endswith(".png.xmp") for k in set(after) - set(before))
    photos = [k for k in before if not k.endswith(".xmp")]
    assert [after[k][:3] for k in photos] == [before[k][:3] for k in photos]
    # every write attempt was a sidecar (or its temporary file); mkdir only of existing folders
    assert all(".xmp" in Path(path).name or files.TEMP_NAME.fullmatch(Path(path).name)
               or (event == "os.mkdir" and Path(path).is_dir()) for event, path in seen)
    merged = (root / "burst" / "b.jpg.xmp").read_text()
    assert 'Rating="4"' in merged and "Regions" in merged


def test_the_watch_sees_every_kind_of_write(tmp_path):
    """The audit hook is not blind: each way of changing a photo is recorded."""
    from PIL import Image

    photo = tmp_path / "p.jpg"
    Image.new("RGB", (8, 8)).save(photo)
    with watching(tmp_path) as seen:
        Image.open(photo).save(photo)
        with open(photo, "r+b"):
            pass
        os.utime(photo)
        photo.chmod(0o644)
        shutil.copyfile(photo, tmp_path / "q.jpg")
        os.replace(tmp_path / "q.jpg", photo)
        photo.unlink()
    assert [(event, Path(path).name) for event, path in seen] == [
        ("open", "p.jpg"), ("open", "p.jpg"), ("os.utime", "p.jpg"), ("os.chmod", "p.jpg"),
        ("shutil.copyfile", "q.jpg"), ("open", "q.jpg"), ("os.rename", "q.jpg"),
        ("os.rename", "p.jpg"), ("os.remove", "p.jpg")]
