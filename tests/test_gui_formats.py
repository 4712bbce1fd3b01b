"""The photo view shows HEIC and RAW photos (Qt has no reader for them) in the frame their face
boxes refer to: oriented, and for RAW the preview or demosaic the scan decoded."""

from __future__ import annotations

from PIL import Image

from photo_sorter import imaging
from photo_sorter.gui.photo_view import read_display_image
from raw_factory import make_dng
from test_formats import exif, halves, scene


def test_heic_and_raw_are_displayed_oriented(tmp_path, qtbot, monkeypatch):
    halves().save(tmp_path / "a.heic", exif=exif(6))
    monkeypatch.setattr(imaging, "RAW_PREVIEW_MIN_SIDE", 40)
    make_dng(tmp_path / "b.dng", scene(), Image.fromarray(scene()).resize((40, 30)), orientation=8)
    make_dng(tmp_path / "c.dng", scene(), None)
    for name, size in (("a.heic", (30, 40)), ("b.dng", (30, 40)), ("c.dng", (48, 32))):
        image = read_display_image(str(tmp_path / name))
        assert (image.width(), image.height()) == size, name
        assert (image.width(), image.height()) == imaging.open_photo(tmp_path / name).image().size
    assert read_display_image(str(tmp_path / "b.dng"), max_side=20).width() == 15
    (tmp_path / "broken.nef").write_bytes(b"nothing")
    assert read_display_image(str(tmp_path / "broken.nef")).isNull()
    pixel = read_display_image(str(tmp_path / "b.dng")).pixelColor(1, 38)  # red ends bottom-left
    assert pixel.red() > pixel.blue() + 80
