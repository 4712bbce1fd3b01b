"""Open any photo safely: EXIF orientation, any mode to RGB, reduced-scale JPEG decode, thumbnails.

Photos are only ever opened for reading. Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS)
is kept: an oversized file becomes a PhotoError that the scan records, like any other bad file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

SUPPORTED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp"})

try:  # HEIC/HEIF when the (optional) pillow-heif plugin is installed
    from pillow_heif import register_heif_opener
except ImportError:
    pass
else:
    register_heif_opener()
    SUPPORTED_EXTENSIONS = SUPPORTED_EXTENSIONS | {".heic", ".heif"}

_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_DATETIME = "%Y:%m:%d %H:%M:%S"


class PhotoError(Exception):
    """A file that cannot be read as a photo; the message is one readable line."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large (decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise PhotoError("file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PhotoError(_describe(exc)) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: 16/32-bit integer greys are scaled (not clipped) to 8 bits,
    transparency is flattened onto white, CMYK/palette/YCbCr go through Pillow's converters."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float32) / 257.0
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _exif_datetime(value: object, subsec: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.strptime(value.strip().rstrip("\x00")[:19], _EXIF_DATETIME)
    except ValueError:
        return None
    digits = "".join(ch for ch in str(subsec or "") if ch.isdigit())[:6]
    if digits:
        moment = moment.replace(microsecond=int(digits.ljust(6, "0")))
    return moment


@dataclass
class OpenedPhoto:
    """A photo's header facts plus on-demand decodes of its oriented RGB pixels.

    Coordinates everywhere (boxes, landmarks) refer to the oriented full-resolution image of
    `width` x `height`; `image(max_side)` gives a reduced copy for detection and `image()` the
    full-resolution one for sharp crops of small faces.
    """

    path: Path
    format: str | None
    width: int
    height: int
    captured_at: datetime
    capture_source: str  # "exif" | "mtime"
    camera: str | None
    _decoded: dict = field(default_factory=dict, repr=False)

    def image(self, max_side: int | None = None) -> Image.Image:
        """Oriented RGB whose long side is at most max_side (None: full resolution).

        JPEGs are decoded at reduced scale (Pillow draft) when that is enough."""
        if max_side is not None and max_side >= max(self.width, self.height):
            max_side = None
        if max_side not in self._decoded:
            self._decoded[max_side] = self._decode(max_side)
        return self._decoded[max_side]

    def scale_of(self, image: Image.Image) -> float:
        """Full-resolution pixels per pixel of `image` (a decode of this photo)."""
        return self.width / image.width

    def _decode(self, max_side: int | None) -> Image.Image:
        with _open(self.path) as im:
            try:
                if max_side is not None and im.format == "JPEG":
                    factor = max(self.width, self.height) / max_side
                    im.draft("RGB", (max(1, int(im.width / factor)), max(1, int(im.height / factor))))
                im.load()
                ImageOps.exif_transpose(im, in_place=True)  # a copy would cost 40 ms at 12 MP
                rgb = to_rgb(im)
                if max_side is not None:
                    rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                raise PhotoError(_describe(exc)) from None
        return rgb


def open_photo(path: str | Path) -> OpenedPhoto:
    """Read a photo's header: oriented size, capture time (EXIF DateTimeOriginal with
    SubSecTimeOriginal, else the file's mtime), camera. Pixels are decoded later, on demand."""
    path = Path(path)
    with _open(path) as im:
        try:
            exif = im.getexif()
            sub = exif.get_ifd(ExifTags.IFD.Exif)
        except Exception:  # noqa: BLE001 - a damaged EXIF block must not lose the photo
            exif, sub = {}, {}
        width, height = im.size
        if exif.get(ExifTags.Base.Orientation) in _TRANSPOSED_ORIENTATIONS:
            width, height = height, width
        fmt = im.format
    captured = _exif_datetime(
        sub.get(ExifTags.Base.DateTimeOriginal), sub.get(ExifTags.Base.SubsecTimeOriginal)
    )
    source = "exif"
    if captured is None:
        captured = datetime.fromtimestamp(path.stat().st_mtime)
        source = "mtime"
    make = str(exif.get(ExifTags.Base.Make, "")).strip().strip("\x00")
    model = str(exif.get(ExifTags.Base.Model, "")).strip().strip("\x00")
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return OpenedPhoto(path, fmt, width, height, captured, source, camera or None)


def thumbnail(path: str | Path, size: int) -> Image.Image:
    """An oriented RGB thumbnail whose long side is at most `size` (cheap for JPEGs: draft)."""
    return open_photo(path).image(size)
