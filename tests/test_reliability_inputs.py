"""The scan against a messy folder: a corpus of bad and odd files generated here (no committed
blobs). Every file ends as a clean success or an error row with a readable one-line reason, the
scan never stops, and a rescan converges without duplicates."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from conftest import SAMPLE_PHOTOS
from library_factory import jpeg_bytes, scene
from photo_sorter import imaging, scan
from photo_sorter.store import Face, Photo, open_engine, session_factory

FACE_PHOTO = SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg"
LONG = "L" * 200  # one long folder name; nested 12 times the path passes 2,400 characters
NON_UTF8 = b"caf\xe9 latin-1.jpg"  # a Latin-1 name, not valid UTF-8


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(side: int = 50_000) -> bytes:
    """A valid PNG header declaring side x side pixels (far past Pillow's limit) in 100 bytes."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def build_corpus(root: Path) -> dict[str, Path]:
    """One file (or folder) per kind of trouble; returns kind -> path."""
    rgb = Image.fromarray(scene(1))
    good_jpeg = jpeg_bytes(scene(1))
    gray16 = Image.fromarray((np.arange(120 * 160).reshape(120, 160) * 3).astype(np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 (width and height swap)
    palette = Image.fromarray(scene(3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    frames = [Image.fromarray(scene(s)) for s in (4, 5, 6)]
    files = {
        "zero-byte file": ("zero.jpg", b""),
        "truncated JPEG": ("truncated.jpg", good_jpeg[: len(good_jpeg) // 2]),
        "random bytes named .jpg": ("random.jpg", np.random.default_rng(0).bytes(4096)),
        "PNG named .jpg": ("png_inside.jpg", encoded(rgb, "PNG")),
        "decompression bomb": ("bomb.png", bomb_png()),
        "1x1 image": ("one_pixel.png", encoded(Image.new("RGB", (1, 1), "red"), "PNG")),
        "30000x20 image": ("wide.jpg", encoded(Image.new("RGB", (30000, 20), "blue"), "JPEG")),
        "CMYK JPEG": ("cmyk.jpg", encoded(rgb.convert("CMYK"), "JPEG")),
        "16-bit PNG": ("gray16.png", encoded(gray16, "PNG")),
        "palette PNG with transparency": ("palette.png", encoded(palette, "PNG", transparency=0)),
        "grayscale JPEG": ("gray.jpg", encoded(rgb.convert("L"), "JPEG")),
        "animated WebP": ("animated.webp", encoded(frames[0], "WEBP", save_all=True,
                                                   append_images=frames[1:], duration=100)),
        "broken EXIF": ("broken_exif.jpg", encoded(rgb, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f"
                                                   + bytes(range(256)) * 2)),
        "EXIF orientation 6": ("rotated.jpg", encoded(rgb, "JPEG", exif=exif.tobytes())),
        "unreadable (mode 000)": ("unreadable.jpg", good_jpeg),
        "emoji file name": ("smile \U0001f600 \u00e9t\u00e9.jpg", jpeg_bytes(scene(7))),
        "same photo, first name": ("copy_a.jpg", jpeg_bytes(scene(8))),
        "same photo, second name": ("copy_b.jpg", jpeg_bytes(scene(8))),
        "a photo with a face": ("face.jpg", FACE_PHOTO.read_bytes()),
        "file changing while read": ("changing.jpg", jpeg_bytes(scene(9))),
        "file deleted during scan": ("zz_later/deleted.jpg", jpeg_bytes(scene(10))),
        "folder deleted during scan": ("zz_gone/inside.jpg", jpeg_bytes(scene(11))),
    }
    paths = {}
    for kind, (name, data) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[kind] = path
    paths["unreadable (mode 000)"].chmod(0)
    os.mkfifo(root / "pipe.jpg")  # opening it for reading would block forever
    paths["named pipe with a photo name"] = root / "pipe.jpg"
    (root / "loop").mkdir()
    (root / "loop" / "back").symlink_to(root, target_is_directory=True)  # a symlink loop
    paths["symlink loop (folder)"] = root / "loop" / "back"
    (root / "self.jpg").symlink_to(root / "self.jpg")
    paths["symlink loop (file)"] = root / "self.jpg"
    (root / "dangling.jpg").symlink_to(root / "nowhere.jpg")
    paths["dangling symlink"] = root / "dangling.jpg"
    os.link(paths["same photo, first name"], root / "hardlink.jpg")
    paths["hard link to a photo"] = root / "hardlink.jpg"
    (root / "folder.jpg").mkdir()  # a folder with a photo's name
    paths["folder named .jpg"] = root / "folder.jpg"
    raw = os.path.join(os.fsencode(root), NON_UTF8)
    with open(raw, "wb") as fh:
        fh.write(jpeg_bytes(scene(12)))
    paths["non-UTF-8 file name"] = Path(os.fsdecode(raw))
    deep = root.joinpath(*[f"{LONG}{i}" for i in range(12)])
    deep.mkdir(parents=True)
    long_file = deep / ("n" * 240 + ".jpg")
    long_file.write_bytes(jpeg_bytes(scene(13)))
    paths["very long path"] = long_file
    return paths


def photo_rows(engine) -> dict[str, Photo]:
    with session_factory(engine)() as s:
        return {p.path: p for p in s.scalars(select(Photo))}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus scanned once; during the scan one file and one folder vanish (after discovery)
    and one file is rewritten between its hash and its decode."""
    root = tmp_path_factory.mktemp("messy")
    paths = build_corpus(root)
    engine = open_engine(tmp_path_factory.mktemp("db") / "library.db")
    first = sorted(root.glob("*.jpg"))[0]
    changing = paths["file changing while read"]
    real_open = imaging.open_photo

    def rewriting_open(path, *args):
        if Path(path) == changing and changing.stat().st_size < 10_000:
            changing.write_bytes(jpeg_bytes(scene(14, size=(320, 240))))  # a different, larger photo
        return real_open(path, *args)

    def progress(p):
        if p.current == str(first) and paths["file deleted during scan"].exists():
            paths["file deleted during scan"].unlink()
            shutil.rmtree(root / "zz_gone")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(imaging, "open_photo", rewriting_open)
        summary = scan.scan(engine, [root], progress=progress)
    return root, paths, engine, summary


OK_KINDS = ["PNG named .jpg", "1x1 image", "30000x20 image", "CMYK JPEG", "16-bit PNG",
            "palette PNG with transparency", "grayscale JPEG", "animated WebP", "broken EXIF",
            "EXIF orientation 6", "emoji file name", "same photo, first name",
            "same photo, second name", "hard link to a photo", "a photo with a face",
            "file changing while read", "very long path", "non-UTF-8 file name"]
ERROR_KINDS = {  # kind -> (status: the kind of problem, words the recorded reason contains)
    "zero-byte file": ("error", "not an image"), "truncated JPEG": ("error", "truncated"),
    "random bytes named .jpg": ("error", "not an image"), "decompression bomb": ("error", "too large"),
    "named pipe with a photo name": ("skipped", "not a regular file"),
    "symlink loop (file)": ("unreadable", "symbolic links"),
    "symlink loop (folder)": ("skipped", "a loop"),
    "dangling symlink": ("unreadable", "No such file"),
    "file deleted during scan": ("unreadable", "No such file"),
    "folder deleted during scan": ("unreadable", "No such file"),
}


def test_corpus_has_twenty_kinds(corpus):
    _, paths, _, _ = corpus
    assert len(paths) >= 20 and set(OK_KINDS) | set(ERROR_KINDS) <= set(paths)


@pytest.mark.parametrize("kind", OK_KINDS)
def test_good_but_odd_files_scan_cleanly(corpus, kind):
    _, paths, engine, _ = corpus
    row = photo_rows(engine)[scan.path_key(paths[kind])]
    assert (row.status, row.error) == ("ok", None)
    assert row.width >= 1 and row.height >= 1


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_bad_files_become_one_line_errors(corpus, kind):
    _, paths, engine, _ = corpus
    row = photo_rows(engine)[scan.path_key(paths[kind])]
    status, words = ERROR_KINDS[kind]
    assert row.status == status and words.lower() in row.error.lower()
    assert "\n" not in row.error and "Traceback" not in row.error


def test_summary_and_error_list_agree(corpus):
    _, paths, engine, summary = corpus
    listed = {e["path"] for e in scan.list_errors(engine)}
    expected = {scan.path_key(paths[k]) for k in ERROR_KINDS}
    if os.geteuid() != 0:  # root reads a mode-000 file anyway
        expected.add(scan.path_key(paths["unreadable (mode 000)"]))
    assert listed == expected and summary["errors"] == len(expected)
    by_kind = {kind: sum(e["kind"] == kind for e in scan.list_errors(engine)) for kind in scan.PROBLEMS}
    assert by_kind == scan.problem_counts(engine) == summary["problems"]
    assert min(by_kind.values()) > 0  # each kind is exercised
    assert summary["faces"] == 1 and not summary["cancelled"]


def test_details_of_odd_files(corpus):
    _, paths, engine, _ = corpus
    rows = photo_rows(engine)
    assert (rows[str(paths["EXIF orientation 6"])].width, rows[str(paths["EXIF orientation 6"])].height) == (120, 160)
    assert rows[str(paths["30000x20 image"])].n_faces == 0
    assert rows[str(paths["a photo with a face"])].n_faces == 1
    same = [rows[str(paths[k])] for k in ("same photo, first name", "same photo, second name",
                                          "hard link to a photo")]
    assert len({r.id for r in same}) == 3 and len({r.content_hash for r in same}) == 1
    assert str(paths["folder named .jpg"]) not in rows
    assert not any("/back/" in p for p in rows)  # the loop was not followed


def test_rescan_converges_without_duplicates(corpus):
    root, paths, engine, _ = corpus
    before = photo_rows(engine)
    summary = scan.scan(engine, [root])
    after = photo_rows(engine)
    assert set(after) == set(before) and summary["photos_new"] == 0
    changing = after[str(paths["file changing while read"])]
    assert changing.content_hash == hashlib.sha256(paths["file changing while read"].read_bytes()).hexdigest()
    assert (changing.width, changing.height, changing.status) == (320, 240, "ok")
    for kind in ("file deleted during scan", "folder deleted during scan"):
        assert after[str(paths[kind])].status == "missing"
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count(Face.id))) == 1
        assert s.scalar(select(func.count()).select_from(Photo)) == len(after)


def _scan_unprivileged(unprivileged, db: Path, folder: Path) -> None:
    unprivileged("from photo_sorter import scan; from photo_sorter.store import open_engine; "
                 f"scan.scan(open_engine({str(db)!r}), [{str(folder)!r}])")


def test_unreadable_file_reason(tmp_path, unprivileged):
    path = tmp_path / "lib" / "locked.jpg"
    path.parent.mkdir()
    path.write_bytes(jpeg_bytes(scene(1)))
    path.chmod(0)
    _scan_unprivileged(unprivileged, tmp_path / "db" / "library.db", path.parent)
    engine = open_engine(tmp_path / "db" / "library.db")
    assert [e["error"] for e in scan.list_errors(engine)] == ["cannot read file: Permission denied"]


def test_pipe_is_not_opened(tmp_path):
    """A FIFO named like a photo is reported without being opened (opening would block)."""
    os.mkfifo(tmp_path / "fifo.jpg")
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo.jpg").st_mode)
    engine = open_engine(tmp_path / "db" / "library.db")
    summary = scan.scan(engine, [tmp_path])
    assert summary["errors"] == 1
    assert "not a regular file" in scan.list_errors(engine)[0]["error"]


def deep_chain(base: Path, depth: int = 20) -> None:
    """Folders nested past the system's path limit (built through directory handles, as no
    single path can reach there), with a photo at the bottom."""
    fd = os.open(base, os.O_RDONLY)
    try:
        for i in range(depth):
            os.mkdir(f"{'d' * 250}{i:02d}", dir_fd=fd)
            inner = os.open(f"{'d' * 250}{i:02d}", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        photo = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(photo, jpeg_bytes(scene(1)))
        os.close(photo)
    finally:
        os.close(fd)


def test_folder_beyond_the_path_limit_is_reported(tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    (library / "ok.jpg").write_bytes(jpeg_bytes(scene(2)))
    deep_chain(library)
    engine = open_engine(tmp_path / "library.db")
    summary = scan.scan(engine, [library])
    errors = scan.list_errors(engine)
    assert summary["photos_new"] == 1 and summary["errors"] == 1 and len(errors) == 1
    assert errors[0]["error"] == "cannot list folder: File name too long"
    assert errors[0]["path"].startswith(str(library / ("d" * 250 + "00")))
    again = scan.scan(engine, [library])  # the report stays one row, it is not marked missing
    assert again["errors"] == 1 and again["photos_missing"] == 0 and len(scan.list_errors(engine)) == 1


def test_unreadable_folder_is_reported(tmp_path, unprivileged):
    locked = tmp_path / "lib" / "locked"
    locked.mkdir(parents=True)
    (locked / "a.jpg").write_bytes(jpeg_bytes(scene(1)))
    locked.chmod(0)
    try:
        _scan_unprivileged(unprivileged, tmp_path / "library.db", tmp_path / "lib")
        engine = open_engine(tmp_path / "library.db")
        assert [(e["path"], e["error"]) for e in scan.list_errors(engine)] == [
            (str(locked), "cannot list folder: Permission denied")]
    finally:
        locked.chmod(0o755)
