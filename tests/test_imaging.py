"""imaging: orientation, modes, reduced decodes, EXIF facts and bad files, on generated images."""

from __future__ import annotations

import os
from datetime import datetime

import numpy as np
import pytest
from PIL import ExifTags, Image

from photo_sorter import imaging
from photo_sorter.imaging import PhotoError


def halves(width=40, height=20) -> Image.Image:
    """Red left half, blue right half."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2:] = (0, 0, 255)
    return Image.fromarray(pixels)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # display = raw rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    halves().save(path, exif=exif.tobytes(), quality=95)
    photo = imaging.open_photo(path)
    assert (photo.width, photo.height) == (20, 40)
    rgb = np.asarray(photo.image())
    assert rgb.shape == (40, 20, 3)
    assert rgb[5, 10, 0] > 200 and rgb[5, 10, 2] < 60    # the red half is now on top
    assert rgb[35, 10, 2] > 200 and rgb[35, 10, 0] < 60


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), (255, 0, 0)),
    (lambda: Image.new("L", (8, 8), 77), (77, 77, 77)),
    (lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
    (lambda: Image.new("RGBA", (8, 8), (10, 20, 30, 0)), (255, 255, 255)),  # transparent -> white
    (lambda: Image.new("LA", (8, 8), (0, 255)), (0, 0, 0)),
    (lambda: Image.new("RGB", (8, 8), (204, 51, 0)).convert("P"), (204, 51, 0)),
    (lambda: Image.fromarray(np.full((8, 8), 32896, np.uint16)), (128, 128, 128)),  # 16-bit scaled
])
def test_any_mode_becomes_8bit_rgb(make, expected):
    rgb = imaging.to_rgb(make())
    assert rgb.mode == "RGB"
    assert np.abs(np.asarray(rgb)[4, 4].astype(int) - expected).max() <= 2


def test_16bit_png_file_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    rgb = np.asarray(imaging.open_photo(path).image())
    assert rgb[:, :, 0].max() == pytest.approx(63000 / 257, abs=1)
    assert len(np.unique(rgb)) > 50


def test_large_jpeg_reduced_copy_matches_full_decode(tmp_path):
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).resize((4000, 3000), Image.BICUBIC)
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    photo = imaging.open_photo(path)
    small = photo.image(1000)
    assert max(small.size) == 1000 and photo.scale_of(small) == pytest.approx(4.0)
    reference = photo.image().resize(small.size, Image.BILINEAR)
    diff = np.abs(np.asarray(small, int) - np.asarray(reference, int)).mean()
    assert diff < 4
    assert photo.image(1000) is small  # decoded once per size
    assert max(imaging.thumbnail(path, 256).size) == 256


def test_exif_capture_time_subseconds_and_camera(tmp_path):
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS 5D"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2021:05:06 07:08:09"
    sub[ExifTags.Base.SubsecTimeOriginal] = "25"
    path = tmp_path / "exif.jpg"
    halves().save(path, exif=exif.tobytes())
    photo = imaging.open_photo(path)
    assert photo.captured_at == datetime(2021, 5, 6, 7, 8, 9, 250000)
    assert (photo.capture_source, photo.camera) == ("exif", "Canon EOS 5D")


def test_without_exif_the_file_time_is_used(tmp_path):
    path = tmp_path / "plain.png"
    halves().save(path)
    os.utime(path, (1_600_000_000, 1_600_000_000))
    photo = imaging.open_photo(path)
    assert photo.capture_source == "mtime" and photo.camera is None
    assert photo.captured_at == datetime.fromtimestamp(1_600_000_000)


def test_bad_files_raise_one_line_photo_errors(tmp_path, monkeypatch):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(PhotoError, match="not an image"):
        imaging.open_photo(text)
    truncated = tmp_path / "cut.jpg"
    full = tmp_path / "full.jpg"
    halves(400, 300).save(full)
    truncated.write_bytes(full.read_bytes()[:300])
    with pytest.raises(PhotoError) as info:
        imaging.open_photo(truncated).image()
    assert "\n" not in str(info.value)
    with pytest.raises(PhotoError, match="file not found"):
        imaging.open_photo(tmp_path / "absent.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 400x300 file is now a "bomb"
    with pytest.raises(PhotoError, match="too large"):
        imaging.open_photo(full)
