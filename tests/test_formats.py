"""Formats beyond JPEG/PNG: HEIC/AVIF (pillow-heif, Pillow), camera RAW (rawpy/LibRaw, DNGs written
by tests/raw_factory.py), first frames of GIF/animated WebP/MPO, capture-time fallbacks, and the
scan's count of skipped files. All files are generated here by the libraries themselves."""

from __future__ import annotations

import io
import os
from datetime import datetime

import numpy as np
import pytest
from PIL import ExifTags, Image, TiffImagePlugin
from sqlalchemy import select

from conftest import SAMPLE_PHOTOS
from photo_sorter import imaging, query, scan
from photo_sorter.store import Photo, open_engine, session_factory
from raw_factory import make_dng

TAKEN = "2021:06:01 10:15:00"


def halves() -> Image.Image:
    """40 x 30, red left half, blue right half: orientation shows in where red ends up."""
    a = np.zeros((30, 40, 3), np.uint8)
    a[:, :20], a[:, 20:] = (255, 0, 0), (0, 0, 255)
    return Image.fromarray(a)


def exif(orientation: int = 1, taken: str | None = TAKEN, maker_note: bytes | None = None) -> bytes:
    ex = Image.Exif()
    ex[ExifTags.Base.Orientation] = orientation
    sub = ex.get_ifd(ExifTags.IFD.Exif)
    if taken:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if maker_note:
        sub[ExifTags.Base.MakerNote] = maker_note
    return ex.tobytes()


def is_red(pixel) -> bool:
    return int(pixel[0]) > int(pixel[2]) + 80


# Upright, orientation 6 and 8 each put red at the top-left / bottom-left / top-right.
ORIENTED = {1: ((40, 30), (1, 1)), 6: ((30, 40), (1, 1)), 8: ((30, 40), (-2, 1))}


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_heic_avif_orientation_and_capture_time(tmp_path, suffix, orientation):
    path = tmp_path / f"photo{suffix}"
    halves().save(path, exif=exif(orientation), quality=90)
    photo = imaging.open_photo(path)
    (w, h), (row, col) = ORIENTED[orientation]
    pixels = np.asarray(photo.image())
    assert (photo.width, photo.height) == (w, h) and pixels.shape[:2] == (h, w)
    assert is_red(pixels[row, col]) and not is_red(pixels[-1 - row, -1 - col])
    assert (photo.captured_at, photo.capture_source) == (datetime(2021, 6, 1, 10, 15), "exif")


def apple_maker_note(burst: str) -> bytes:
    ifd = TiffImagePlugin.ImageFileDirectory_v2(b"MM\x00\x2a\x00\x00\x00\x08")
    ifd[0x000B] = burst
    ifd.tagtype[0x000B] = 2
    return b"Apple iOS\0\0\x01MM" + ifd.tobytes(14)


def test_heic_burst_id_from_apple_maker_note(tmp_path):
    path = tmp_path / "IMG_0001.heic"
    halves().save(path, exif=exif(maker_note=apple_maker_note("7C1F5E3A-BURST-0001")))
    assert imaging.open_photo(path).burst_id == "7C1F5E3A-BURST-0001"
    halves().save(tmp_path / "plain.heic", exif=exif())
    assert imaging.open_photo(tmp_path / "plain.heic").burst_id is None


def scene(h: int = 64, w: int = 96) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2], a[:, w // 2:] = (220, 60, 40), (40, 60, 220)
    return a


@pytest.mark.parametrize("jpeg", [True, False])
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_raw_uses_a_large_preview_oriented_like_the_raw(tmp_path, monkeypatch, orientation, jpeg):
    monkeypatch.setattr(imaging, "RAW_PREVIEW_MIN_SIDE", 40)
    preview = Image.fromarray(scene()).resize((40, 30))
    path = make_dng(tmp_path / "shot.dng", scene(), preview, orientation=orientation, jpeg_preview=jpeg)
    photo = imaging.open_photo(path)
    (w, h), (row, col) = ORIENTED[orientation]
    pixels = np.asarray(photo.image())
    assert photo.preview is not None and (photo.width, photo.height) == (w, h) == pixels.shape[1::-1]
    assert is_red(pixels[row, col]) and not is_red(pixels[-1 - row, -1 - col])
    assert (photo.captured_at, photo.capture_source) == (datetime(2021, 6, 1, 10, 15), "exif")


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_raw_without_a_large_preview_is_demosaiced_at_half_size(tmp_path, orientation):
    small_preview = Image.fromarray(scene()).resize((40, 30))  # < RAW_PREVIEW_MIN_SIDE
    for path in (make_dng(tmp_path / "a.dng", scene(), small_preview, orientation=orientation),
                 make_dng(tmp_path / "b.dng", scene(), None, orientation=orientation)):
        photo = imaging.open_photo(path)
        pixels = np.asarray(photo.image())
        w, h = (48, 32) if orientation == 1 else (32, 48)
        assert photo.preview is None and (photo.width, photo.height) == (w, h) == pixels.shape[1::-1]
        (_, _), (row, col) = ORIENTED[orientation]
        assert is_red(pixels[row * 2, col * 2]) and not is_red(pixels[-1 - row * 2, -1 - col * 2])
        assert np.asarray(photo.image(24)).shape[:2] == ((16, 24) if orientation == 1 else (24, 16))


def test_raw_capture_time_falls_back_and_bad_raw_is_a_photo_error(tmp_path):
    path = make_dng(tmp_path / "IMG_20200102_030405.dng", scene(), None, taken=None)
    photo = imaging.open_photo(path)
    assert (photo.captured_at, photo.capture_source) == (datetime(2020, 1, 2, 3, 4, 5), "filename")
    (tmp_path / "broken.nef").write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(imaging.PhotoError, match="LibRaw"):
        imaging.open_photo(tmp_path / "broken.nef")


@pytest.mark.parametrize("fmt,suffix", [("GIF", ".gif"), ("WEBP", ".webp"), ("MPO", ".mpo")])
def test_animations_and_mpo_give_their_first_frame(tmp_path, fmt, suffix):
    red, blue = Image.new("RGB", (64, 48), (255, 0, 0)), Image.new("RGB", (64, 48), (0, 0, 255))
    path = tmp_path / f"anim{suffix}"
    red.save(path, fmt, save_all=True, append_images=[blue, blue])
    photo = imaging.open_photo(path)
    assert is_red(photo.image().getpixel((10, 10))) and is_red(photo.image(32).getpixel((5, 5)))


@pytest.mark.parametrize("name,expected", [
    ("IMG_20210601_101500.jpg", datetime(2021, 6, 1, 10, 15)),
    ("PXL_20210601_101500123.jpg", datetime(2021, 6, 1, 10, 15, 0, 123000)),
    ("2021-06-01 10.15.00.jpg", datetime(2021, 6, 1, 10, 15)),
    ("20210601_101500(1).jpg", datetime(2021, 6, 1, 10, 15)),
    ("Screenshot 2021-06-01 at 10.15.00.png", datetime(2021, 6, 1, 10, 15)),
    ("Screenshot_20210601-101500.png", datetime(2021, 6, 1, 10, 15)),
    ("IMG-20210601-WA0001.jpg", datetime(2021, 6, 1)),
    ("signal-2021-06-01-101500.jpg", datetime(2021, 6, 1, 10, 15)),
    ("IMG_1234.jpg", None), ("DSC_20211399.jpg", None), ("scan_99999999.jpg", None),
])
def test_capture_time_from_file_names(name, expected):
    assert imaging.name_datetime(name) == expected


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
       b'photoshop:DateCreated="2019-12-24T18:30:05+01:00"/></rdf:RDF></x:xmpmeta>')


def test_capture_time_order_exif_xmp_filename_mtime(tmp_path):
    sources = {}
    for name, kwargs in {"IMG_20210601_101500.jpg": {"exif": exif()},
                         "IMG_20210601_101501.jpg": {"xmp": XMP},
                         "IMG_20210601_101502.jpg": {},
                         "holiday.jpg": {}}.items():
        halves().save(tmp_path / name, **kwargs)
        photo = imaging.open_photo(tmp_path / name)
        sources[name] = (photo.captured_at, photo.capture_source)
    os.utime(tmp_path / "holiday.jpg", (1e9, 1e9))
    assert sources == {
        "IMG_20210601_101500.jpg": (datetime(2021, 6, 1, 10, 15), "exif"),
        "IMG_20210601_101501.jpg": (datetime(2019, 12, 24, 18, 30, 5), "xmp"),
        "IMG_20210601_101502.jpg": (datetime(2021, 6, 1, 10, 15, 2), "filename"),
        "holiday.jpg": sources["holiday.jpg"],
    }
    photo = imaging.open_photo(tmp_path / "holiday.jpg")
    assert (photo.captured_at, photo.capture_source) == (datetime.fromtimestamp(1e9), "mtime")


def test_scan_decodes_heic_raw_and_gif_faces_and_counts_what_it_skips(tmp_path, model):
    """A phone/camera folder: the portrait as HEIC (orientation 6), as DNG with a large preview
    (orientation 8) and without one, as a GIF's first frame; a RAW+JPEG pair; files to skip."""
    portrait = Image.open(SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg").convert("RGB")
    lib = tmp_path / "photos"
    lib.mkdir()
    portrait.transpose(Image.Transpose.ROTATE_90).save(lib / "IMG_0001.heic", exif=exif(6), quality=80)
    big = portrait.resize((imaging.RAW_PREVIEW_MIN_SIDE * portrait.width // portrait.height,
                           imaging.RAW_PREVIEW_MIN_SIDE))
    make_dng(lib / "DSC_0002.dng", scene(), big.transpose(Image.Transpose.ROTATE_270), orientation=8)
    even = portrait.crop((0, 0, portrait.width // 2 * 2, portrait.height // 2 * 2))
    make_dng(lib / "DSC_0003.dng", np.asarray(even), None)
    portrait.save(lib / "anim.gif", save_all=True, append_images=[Image.new("RGB", portrait.size)])
    portrait.save(lib / "IMG_0004.JPG")
    (lib / "IMG_0004.CR2").write_bytes(b"listed beside its JPEG, never decoded")
    for name in ("clip.mp4", "clip.MOV", "notes.txt", ".DS_Store", "IMG_0001.xmp"):
        (lib / name).write_bytes(b"x")
    (lib / ".thumbnails").mkdir()
    portrait.save(lib / ".thumbnails" / "IMG_0001.jpg")
    engine = open_engine(tmp_path / "library.db")
    summary = scan.scan(engine, [lib], model=model)
    assert summary["skipped"] == {"hidden": 1, "hidden_folders": 1, "raw_with_jpeg": 1, "sidecars": 1,
                                  "unsupported": 1, "videos": 2}
    assert summary["errors"] == 0 and summary["photos_new"] == 5
    with session_factory(engine)() as s:
        rows = {p.path.rsplit("/", 1)[-1]: p for p in s.scalars(select(Photo))}
    assert set(rows) == {"IMG_0001.heic", "DSC_0002.dng", "DSC_0003.dng", "anim.gif", "IMG_0004.JPG"}
    assert {name: r.n_faces for name, r in rows.items()} == dict.fromkeys(rows, 1)
    assert (rows["IMG_0001.heic"].width, rows["IMG_0001.heic"].height) == portrait.size
    assert (rows["DSC_0002.dng"].width, rows["DSC_0002.dng"].height) == big.size
    assert (rows["DSC_0003.dng"].width, rows["DSC_0003.dng"].height) == (even.width // 2, even.height // 2)
    assert rows["IMG_0001.heic"].capture_source == "exif" and rows["anim.gif"].capture_source == "mtime"
    assert "2 video(s)" in scan.skipped_text(summary["skipped"])
    shown = {r["path"].rsplit("/", 1)[-1]: r for r in query.photos(engine, "Smiling >= 0")}
    assert shown["IMG_0001.heic"]["capture_source"] == "exif" and shown["anim.gif"]["capture_source"] == "mtime"
    assert shown["IMG_0004.JPG"]["companions"] == ["IMG_0004.CR2"] and shown["anim.gif"]["companions"] == []

    (lib / "IMG_0004.CR2").unlink()  # the JPEG is unchanged; its list follows the folder
    (lib / "IMG_0004.cr3").write_bytes(b"another RAW of the shot")
    (lib / "IMG_0004.NEF").write_bytes(b"and one more")
    summary = scan.scan(engine, [lib], model=model)
    assert summary["photos_unchanged"] == 5 and summary["skipped"]["raw_with_jpeg"] == 2
    with session_factory(engine)() as s:
        listed = s.scalar(select(Photo.companions).where(Photo.path.endswith("IMG_0004.JPG")))
    assert listed == ["IMG_0004.NEF", "IMG_0004.cr3"]


def test_a_raw_scanned_alone_joins_its_jpeg_when_that_arrives(tmp_path, model):
    """The RAW was the photo until its JPEG came: then it is listed on the JPEG's row (one shot,
    one photo), not marked missing while its file is still there; a pick of it passes on."""
    from photo_sorter.store import BestChoice

    portrait = Image.open(SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg").convert("RGB")
    lib = tmp_path / "photos"
    lib.mkdir()
    big = portrait.resize((imaging.RAW_PREVIEW_MIN_SIDE * portrait.width // portrait.height,
                           imaging.RAW_PREVIEW_MIN_SIDE))
    make_dng(lib / "DSC_0002.dng", scene(), big)
    engine = open_engine(tmp_path / "library.db")
    scan.scan(engine, [lib], model=model)
    with session_factory(engine).begin() as s:
        raw = s.scalars(select(Photo)).one()
        s.add(BestChoice(group_key=f"{lib}|0|DSC_0002.dng", photo_id=raw.id))
    portrait.save(lib / "DSC_0002.jpg")
    summary = scan.scan(engine, [lib], model=model)
    assert summary["photos_missing"] == 0 and summary["skipped"] == {"raw_with_jpeg": 1}
    with session_factory(engine)() as s:
        rows = {p.path.rsplit("/", 1)[-1]: p for p in s.scalars(select(Photo))}
        assert set(rows) == {"DSC_0002.jpg"} and rows["DSC_0002.jpg"].companions == ["DSC_0002.dng"]
        assert s.scalars(select(BestChoice.photo_id)).all() == [rows["DSC_0002.jpg"].id]
    assert [p["path"].rsplit("/", 1)[-1] for p in query.photos(engine, "Smiling >= 0")] == ["DSC_0002.jpg"]
