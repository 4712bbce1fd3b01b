"""The scan's states and bounds on generated files: problem rows are read again, a folder that
cannot be listed or a root that is not there loses nothing, names that are not UTF-8 never
collide, one refused row never loses its batch, the scan stays inside its roots, moves match in
linear time, and each row comes from the bytes that were read. Detection is stubbed (no faces)
except where a test says otherwise, so these run in seconds."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update

from library_factory import jpeg_bytes, scene
from photo_sorter import export, imaging, scan
from photo_sorter.cli import emit
from photo_sorter.cli import main as cli_main
from photo_sorter.store import BestChoice, Face, Photo, PhotoHash, open_engine, session_factory


@pytest.fixture(autouse=True)
def no_detection(monkeypatch):
    monkeypatch.setattr(scan.faces, "detect", lambda *a, **k: [])


def rows(engine) -> dict[str, Photo]:
    with session_factory(engine)() as s:
        return {p.path: p for p in s.scalars(select(Photo))}


def photos(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"p{i:05d}.jpg" for i in range(start, start + n)]
    for i, path in enumerate(paths, start):
        path.write_bytes(jpeg_bytes(scene(i, size=(32, 24))))
    return paths


# --- issue 12 item 4: a problem row is read again on every scan -----------------------------------

def test_a_photo_that_failed_once_is_read_again(tmp_path, monkeypatch):
    path = photos(tmp_path / "lib", 1)[0]
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    real_read = imaging.read_file

    def failing(p):
        raise imaging.PhotoError("cannot read file: Input/output error")

    monkeypatch.setattr(imaging, "read_file", failing)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # touched
    failed = scan.scan(engine, [tmp_path / "lib"])
    assert failed["problems"]["unreadable"] == 1 and rows(engine)[str(path)].status == "unreadable"
    monkeypatch.setattr(imaging, "read_file", real_read)
    # readable again, same content, and (the old bug) the stored size/mtime still match: read again
    with session_factory(engine).begin() as s:
        s.execute(update(Photo).values(size=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns))
    again = scan.scan(engine, [tmp_path / "lib"])
    row = rows(engine)[str(path)]
    assert (row.status, row.error, again["photos_rechecked"], again["errors"]) == ("ok", None, 1, 0)
    assert row.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scan.scan(engine, [tmp_path / "lib"])["photos_unchanged"] == 1  # and then it rests


# --- issue 12 item 5: listing failures and absent roots lose nothing --------------------------------

def test_a_folder_that_cannot_be_listed_keeps_its_photos(tmp_path, monkeypatch):
    inner = photos(tmp_path / "lib" / "inner", 2)
    outer = photos(tmp_path / "lib", 1, start=5)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    with session_factory(engine).begin() as s:
        s.add(BestChoice(group_key="burst", photo_id=rows(engine)[str(inner[0])].id))
    real_walk = os.walk

    def walk_failing_inner(top, **kwargs):
        for folder, dirs, files in real_walk(top, **kwargs):
            if Path(folder).name == "inner":
                kwargs["onerror"](PermissionError(13, "Permission denied", folder))
                continue
            yield folder, dirs, files

    monkeypatch.setattr(scan.os, "walk", walk_failing_inner)
    summary = scan.scan(engine, [tmp_path / "lib"])
    after = rows(engine)
    assert summary["photos_missing"] == 0 and summary["problems"]["unreadable"] == 1
    assert [after[str(p)].status for p in inner + outer] == ["ok", "ok", "ok"]
    assert after[str(tmp_path / "lib" / "inner")].error == "cannot list folder: Permission denied"
    assert scan.list_missing(engine) == [] and scan.purge_missing(engine) == 0
    monkeypatch.setattr(scan.os, "walk", real_walk)  # listable again: the report goes
    assert scan.scan(engine, [tmp_path / "lib"])["errors"] == 0
    assert sorted(rows(engine)) == sorted(str(p) for p in inner + outer) and scan.list_missing(engine) == []


def test_a_root_that_is_not_there_marks_nothing_missing(tmp_path):
    drive = tmp_path / "drive"
    kept = photos(drive / "album", 2)
    other = photos(tmp_path / "other", 1)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [drive, tmp_path / "other"])
    drive.rename(tmp_path / "unmounted")  # the drive is gone, mount point and all
    summary = scan.scan(engine, [drive, tmp_path / "other"])
    assert summary["photos_missing"] == 0 and summary["roots_absent"] == [str(drive)]
    assert summary["photos_unchanged"] == 1
    with pytest.raises(scan.ScanError, match=r"the folder is not there \(unmounted\?\)"):
        scan.scan(engine, [drive])  # scanning only it is refused, one line
    assert {rows(engine)[str(p)].status for p in kept + other} == {"ok"}
    # an empty mount point: its photos go missing, and come back whole (no re-analysis) when it
    # is mounted again, as long as they were not purged
    drive.mkdir()
    assert scan.scan(engine, [drive])["photos_missing"] == 2
    drive.rmdir()
    (tmp_path / "unmounted").rename(drive)
    back = scan.scan(engine, [drive])
    assert (back["photos_unchanged"], back["photos_new"]) == (2, 0)
    assert {rows(engine)[str(p)].status for p in kept} == {"ok"}


def test_list_missing_shows_what_purge_deletes(tmp_path, capsys):
    paths = photos(tmp_path / "lib", 3)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    with session_factory(engine).begin() as s:
        s.add(BestChoice(group_key="burst", photo_id=rows(engine)[str(paths[0])].id))
    paths[0].unlink()
    paths[1].unlink()
    assert scan.scan(engine, [tmp_path / "lib"])["photos_missing"] == 2
    listed = scan.list_missing(engine)
    assert [(r["path"], r["picked"]) for r in listed] == [(str(paths[0]), True), (str(paths[1]), False)]
    assert cli_main(["purge-missing", "--dry-run", "--db", str(tmp_path / "library.db")]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{paths[0]}: 0 face(s), picked", f"{paths[1]}: 0 face(s)"]
    assert scan.purge_missing(engine, [listed[1]["id"]]) == 1  # only what was confirmed
    assert [r["path"] for r in scan.list_missing(engine)] == [str(paths[0])]


# --- issue 11 item 1: names that are not UTF-8 -------------------------------------------------------

def test_a_non_utf8_name_and_its_escape_text_are_two_photos(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    raw = os.path.join(os.fsencode(lib), b"caf\xe9.jpg")
    with open(raw, "wb") as fh:
        fh.write(jpeg_bytes(scene(1)))
    (lib / "caf\\xe9.jpg").write_bytes(jpeg_bytes(scene(2)))  # a UTF-8 name: its escape's text
    (lib / "caf\uffffdce9.jpg").write_bytes(jpeg_bytes(scene(3)))  # and the store's escape's text
    engine = open_engine(tmp_path / "library.db")
    for _ in range(2):
        summary = scan.scan(engine, [lib])
        assert summary["errors"] == 0 and summary["not_stored"] == []
    stored = rows(engine)
    assert len(stored) == 3 and {p.status for p in stored.values()} == {"ok"}
    native = os.fsdecode(raw)
    assert stored[native].content_hash == hashlib.sha256(Path(native).read_bytes()).hexdigest()
    assert scan.display_path(native).endswith("caf\\xe9.jpg")


def test_non_utf8_names_print_and_export(tmp_path, capsys):
    lib = tmp_path / "lib"
    lib.mkdir()
    raw = os.path.join(os.fsencode(lib), b"caf\xe9.jpg")
    with open(raw, "wb") as fh:
        fh.write(jpeg_bytes(scene(1)))
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib])
    export.export(engine, "csv", out=tmp_path / "out.csv")
    assert raw in (tmp_path / "out.csv").read_bytes()  # the file's own name, byte for byte
    emit({}, False, "\n".join(r.path for r in rows(engine).values()))
    assert capsys.readouterr().out.strip().endswith("caf\\xe9.jpg")


def test_errors_lists_one_line_per_problem_whatever_the_name(tmp_path, capsys):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "two\nlines.jpg").write_bytes(b"not a photo")
    os.symlink(tmp_path, lib / "out\rside")
    scan.scan(open_engine(tmp_path / "library.db"), [lib])
    assert cli_main(["errors", "--db", str(tmp_path / "library.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "two\\x0alines.jpg: error: not an image" in lines[1]
    assert "out\\x0dside: skipped: link leads out" in lines[0]


def test_one_refused_row_never_loses_its_batch(tmp_path, monkeypatch):
    paths = photos(tmp_path / "lib", 6)
    engine = open_engine(tmp_path / "library.db")
    real_store = scan._store

    def refusing(Session, model, model_id, batch):
        if any(item.values.get("path") == str(paths[2]) for item in batch):
            raise scan.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: photos.path"))
        return real_store(Session, model, model_id, batch)

    monkeypatch.setattr(scan, "_store", refusing)
    summary = scan.scan(engine, [tmp_path / "lib"], options=scan.ScanOptions(commit_every=16))
    assert summary["not_stored"] == [f"{paths[2]}: UNIQUE constraint failed: photos.path"]
    assert sorted(rows(engine)) == sorted(str(p) for p in paths if p != paths[2])


# --- the scan stays inside what it was asked to scan ------------------------------------------------

def test_links_out_of_the_roots_are_reported_once_not_followed(tmp_path):
    outside = photos(tmp_path / "outside", 2)
    lib = tmp_path / "lib"
    photos(lib, 1)
    (lib / "to_outside").symlink_to(tmp_path / "outside", target_is_directory=True)
    (lib / "photo_outside.jpg").symlink_to(outside[0])
    (lib / "to_parent").symlink_to(tmp_path, target_is_directory=True)
    engine = open_engine(tmp_path / "library.db")
    for _ in range(2):
        summary = scan.scan(engine, [lib])
        assert (summary["photos_seen"], summary["problems"]["skipped"]) == (1, 3)
    stored = rows(engine)
    assert not any(p.startswith(str(tmp_path / "outside")) or "/to_outside/" in p for p in stored)
    reasons = {Path(p).name: r.error for p, r in stored.items() if r.status == "skipped"}
    assert set(reasons) == {"to_outside", "photo_outside.jpg", "to_parent"}
    assert all("out of the scanned folders" in reason for reason in reasons.values())


def test_scanning_one_file_or_subfolder_changes_nothing_outside_it(tmp_path):
    lib = tmp_path / "lib"
    a = photos(lib, 1)[0]
    sibling = lib / (a.name + "2.jpg")  # its name starts with the scanned file's name
    sibling.write_bytes(jpeg_bytes(scene(9)))
    sub = photos(lib / "sub", 1, start=3)[0]
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib])
    before = {p: (r.id, r.status, r.scanned_at) for p, r in rows(engine).items()}
    (lib / "sub2").mkdir()
    os.replace(sub, lib / "sub2" / "moved_here.jpg")  # its old row lies outside what is scanned
    scan.scan(engine, [a])
    scan.scan(engine, [lib / "sub2"])
    after = {p: (r.id, r.status, r.scanned_at) for p, r in rows(engine).items()}
    assert {p: v for p, v in after.items() if p != str(a) and "sub2" not in p} == {
        p: v for p, v in before.items() if p != str(a)}
    assert after[str(lib / "sub2" / "moved_here.jpg")][0] not in {v[0] for v in before.values()}


def test_folders_nested_past_the_depth_limit_are_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "MAX_DEPTH", 3)
    deep = tmp_path / "lib" / "a" / "b" / "c" / "d"
    photos(deep, 1)
    photos(tmp_path / "lib", 1)
    engine = open_engine(tmp_path / "library.db")
    summary = scan.scan(engine, [tmp_path / "lib"])
    assert (summary["photos_seen"], summary["problems"]["skipped"]) == (1, 1)
    assert "nested more than 3 levels" in scan.list_errors(engine)[0]["error"]


# --- bounded work per input -------------------------------------------------------------------------

def test_only_supported_formats_are_decoded_and_nothing_is_started(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("started a program"))
    eps = tmp_path / "lib" / "postscript.jpg"
    eps.parent.mkdir()
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    pcx = tmp_path / "lib" / "pcx_named.jpg"
    Image.new("RGB", (8, 8)).save(pcx, "PCX")  # a format Pillow reads but we do not register
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    errors = {Path(e["path"]).name: e["error"] for e in scan.list_errors(engine)}
    assert set(errors) == {"postscript.jpg", "pcx_named.jpg"} and not started
    assert all("not an image of a supported format" in e for e in errors.values())
    assert set(imaging.SUPPORTED_EXTENSIONS) == {e for exts in imaging.SUPPORTED.values() for e in exts}


def test_huge_sparse_file_is_refused_unread(tmp_path, monkeypatch):
    huge = tmp_path / "lib" / "sparse.jpg"
    huge.parent.mkdir()
    with open(huge, "wb") as fh:
        fh.truncate(4 << 40)  # 4 TB, no blocks
    reads = []
    real_read = imaging.read_file
    monkeypatch.setattr(imaging, "read_file", lambda p: reads.append(p) or real_read(p))
    engine = open_engine(tmp_path / "library.db")
    started = time.monotonic()
    summary = scan.scan(engine, [tmp_path / "lib"])
    assert time.monotonic() - started < 10 and reads == [] and summary["problems"]["skipped"] == 1
    assert "file too large" in scan.list_errors(engine)[0]["error"]
    with pytest.raises(imaging.PhotoError, match="file too large"):
        real_read(huge)


def test_file_times_out_of_range_are_per_file(tmp_path, monkeypatch):
    """A time past the year 2262 (ext4 holds up to 2446) does not fit the database's integers:
    that file is reported, the others of its batch are stored."""
    paths = photos(tmp_path / "lib", 2)
    real_stat = Path.stat

    def far_future(self, **kwargs):
        st = real_stat(self, **kwargs)
        if self == paths[0]:
            fields = list(st)
            return os.stat_result(fields[:7] + [4e10, 4e10, 4e10], {"st_mtime_ns": 4 * 10**19})
        return st

    monkeypatch.setattr(Path, "stat", far_future)
    engine = open_engine(tmp_path / "library.db")
    summary = scan.scan(engine, [tmp_path / "lib"])
    assert (summary["photos_new"], summary["problems"]["skipped"], summary["not_stored"]) == (1, 1, [])
    assert "modification time is out of range" in scan.list_errors(engine)[0]["error"]


def test_detection_options_are_bounded():
    with pytest.raises(scan.ScanError):
        scan.ScanOptions(min_face=0)
    with pytest.raises(scan.ScanError):
        scan.ScanOptions(detect_size=100_000)
    huge = imaging.OpenedPhoto(Path("x.jpg"), "JPEG", 20_000, 10_000, None, None, None)
    assert scan.ScanOptions(min_face=1).detection_side(huge) == scan.MAX_DETECT_SIDE


# --- issue 11 item 11: moves match in linear time ----------------------------------------------------

class CountingSet(set):
    checks = 0

    def __contains__(self, item):
        CountingSet.checks += 1
        return super().__contains__(item)


def test_move_matching_examines_each_candidate_once(tmp_path):
    """A moved folder of n files of one content (the worst case: one hash, n candidates): every
    candidate is looked at once in all, not once per new file (n*n/2: 180,000 for 600 files)."""
    n = 600
    lib = tmp_path / "lib"
    data = jpeg_bytes(scene(1, size=(16, 12)))
    (lib / "old").mkdir(parents=True)
    for i in range(n):
        (lib / "old" / f"{i:05d}.jpg").write_bytes(data)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib])
    (lib / "old").rename(lib / "new")
    known = scan._known_under(session_factory(engine), [lib])
    by_hash = {hashlib.sha256(data).hexdigest(): scan.deque(known.values())}
    seen, moved_from = CountingSet(), set()
    claimed = [scan._claim_moved(by_hash[hashlib.sha256(data).hexdigest()], seen, moved_from)
               for _ in range(n)]
    assert len({c.id for c in claimed}) == n and CountingSet.checks <= n
    summary = scan.scan(engine, [lib])
    assert (summary["photos_moved"], summary["photos_missing"], summary["photos_new"]) == (n, 0, 0)


# --- issue 14 item 6: a touched or moved library is not decoded again ------------------------------

def test_touched_and_moved_files_keep_their_facts_without_a_decode(tmp_path, monkeypatch):
    """The perceptual hash and burst marker (PhotoHash) of a file whose content is unchanged
    follow it to its new stat (touched) or path (moved) instead of being read again, one decode
    per file (649 s for a touched 100k-file library); facts read for an older stat are read."""
    lib = tmp_path / "lib"
    touched, moved, stale = photos(lib / "a", 3)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib])
    with session_factory(engine)() as s:
        looks = dict(s.execute(select(Photo.path, PhotoHash.dhash).join(PhotoHash)).all())
        s.execute(update(PhotoHash).where(PhotoHash.photo_id == rows(engine)[str(stale)].id)
                  .values(size=1, dhash=None))
        s.commit()
    for path in (touched, stale):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    (lib / "b").mkdir()
    moved.rename(lib / "b" / moved.name)
    opened = []
    real_open = imaging.open_photo
    monkeypatch.setattr(imaging, "open_photo", lambda path, *a: opened.append(path) or real_open(path, *a))
    summary = scan.scan(engine, [lib])
    assert (summary["photos_unchanged"], summary["photos_moved"]) == (2, 1)
    assert opened == [str(stale)]  # only the photo whose facts were for another stat
    with session_factory(engine)() as s:
        facts = s.execute(select(Photo.path, Photo.size, Photo.mtime_ns, PhotoHash.size, PhotoHash.mtime_ns,
                                 PhotoHash.dhash).join(PhotoHash)).all()
    assert {f[0]: f[5] for f in facts} == {str(touched): looks[str(touched)], str(stale): looks[str(stale)],
                                           str(lib / "b" / moved.name): looks[str(moved)]}
    assert all(f[1:3] == f[3:5] for f in facts)
    assert scan.fill_photo_facts(engine) == 0


def test_rows_only_refreshed_are_stored_in_large_batches(tmp_path, monkeypatch):
    """Touched files (nothing decoded) are not stored 16 to a transaction (commit_every counts
    analysed photos): one transaction per REFRESH_BATCH rows, not four statements per 16 files."""
    paths = photos(tmp_path / "lib", 40)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    for path in paths:
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    writes = []
    real_write = scan._write
    monkeypatch.setattr(scan, "_write", lambda session, model, model_id, batch, *a:
                        writes.append(len(batch)) or real_write(session, model, model_id, batch, *a))
    assert scan.scan(engine, [tmp_path / "lib"])["photos_unchanged"] == 40
    assert writes == [40]
    assert {(p.size, p.mtime_ns) for p in rows(engine).values()} == {(p.stat().st_size, p.stat().st_mtime_ns)
                                                                     for p in paths}


# --- issue 11 item 12: each row is written from the bytes that were read ------------------------------

def test_a_file_rewritten_during_the_scan_is_stored_consistently(tmp_path, monkeypatch):
    path = photos(tmp_path / "lib", 1)[0]
    original = path.read_bytes()
    real_open = imaging.open_photo

    def rewrite_then_open(p, *args):
        if Path(p) == path and path.read_bytes() == original:
            path.write_bytes(jpeg_bytes(scene(7, size=(64, 48))))  # rewritten between read and decode
        return real_open(p, *args)

    monkeypatch.setattr(imaging, "open_photo", rewrite_then_open)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    row = rows(engine)[str(path)]
    assert (row.content_hash, row.width) == (hashlib.sha256(original).hexdigest(), 32)
    assert scan.scan(engine, [tmp_path / "lib"])["photos_changed"] == 1  # the rewrite is seen
    row = rows(engine)[str(path)]
    assert (row.content_hash, row.width) == (hashlib.sha256(path.read_bytes()).hexdigest(), 64)


def test_read_file_refuses_a_file_changing_while_read(tmp_path, monkeypatch):
    path = photos(tmp_path, 1)[0]
    real_fstat = os.fstat
    calls = []

    def growing(fd):
        calls.append(fd)
        st = real_fstat(fd)
        if len(calls) == 2:
            path.write_bytes(path.read_bytes() + b"more")
            return real_fstat(fd)
        return st

    monkeypatch.setattr(imaging.os, "fstat", growing)
    with pytest.raises(imaging.PhotoError, match="changed while being read"):
        imaging.read_file(path)


def test_repredict_uses_only_the_content_the_landmarks_came_from(tmp_path, monkeypatch):
    path = photos(tmp_path / "lib", 1)[0]
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [tmp_path / "lib"])
    with session_factory(engine).begin() as s:  # a face found then (detection is stubbed here)
        photo = s.scalars(select(Photo)).one()
        s.add(Face(content_hash=photo.content_hash, index=0, x=1, y=1, w=10, h=10, confidence=0.99,
                                landmarks=[[10, 10], [20, 10], [15, 14], [11, 18], [19, 18]]))
    path.write_bytes(jpeg_bytes(scene(5, size=(32, 24))))  # rewritten after the scan
    predicted = []
    monkeypatch.setattr(scan, "_predict", lambda model, frames: predicted.extend(frames) or [])
    result = scan.repredict(engine)
    assert (result["faces"], result["errors"], predicted) == (0, 1, [])
