"""Open any photo safely: EXIF orientation, any mode to RGB, reduced-scale JPEG decode, thumbnails.

Formats: what Pillow reads (JPEG, PNG, WebP, TIFF, BMP, AVIF; GIF, animated WebP and MPO by their
first frame), HEIC/HEIF through pillow-heif, and camera RAW through rawpy/LibRaw (the embedded
preview when it is large enough, else a half-size demosaic). Photos are only ever opened for
reading, and each input's work is bounded: a file is read once into memory (at most
MAX_FILE_BYTES) and everything (hash, header, pixels) comes from those bytes; only the formats of
SUPPORTED are tried (never a Pillow plugin that starts an external program, such as EPS through
Ghostscript); an image over MAX_PIXELS and an XMP packet over MAX_XMP_BYTES are refused. Every
refusal is a PhotoError with one readable line, which the scan records.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import rawpy
from PIL import ExifTags, Image, ImageOps, JpegImagePlugin, TiffImagePlugin, UnidentifiedImageError
from pillow_heif import register_heif_opener

from photo_sorter import xmp

register_heif_opener()

# The one registry of what we decode: format -> the file extensions the scan picks up. Pillow
# tries only these formats (whatever a file is named; MPO opens through JPEG); RAW goes to rawpy.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".mpo"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "TIFF": (".tif", ".tiff"),
    "BMP": (".bmp",),
    "GIF": (".gif",),
    "HEIF": (".heic", ".heif", ".hif"),
    "AVIF": (".avif",),
    "RAW": (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"),
}
_PILLOW_FORMATS = [f for f in SUPPORTED if f != "RAW"]
RAW_EXTENSIONS = frozenset(SUPPORTED["RAW"])
SUPPORTED_EXTENSIONS = frozenset(ext for exts in SUPPORTED.values() for ext in exts)

MAX_FILE_BYTES = 1 << 30    # a larger file (a sparse multi-terabyte one, say) is refused unread
MAX_PIXELS = 200_000_000    # 600 MB as RGB; past every camera sensor, below any decompression bomb
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow refuses from twice this (warns from once)
MAX_XMP_BYTES = 1 << 20     # a larger XMP packet is not parsed (its capture time is not needed)
# A progressive JPEG has about ten scans; each scan is a pass over the whole image, so thousands
# of tiny ones take minutes to decode. Markers counted: an upper bound (EXIF thumbnails add some).
MAX_JPEG_SCANS = 500
# Beside a RAW of the same name, one of these is the shot's photo and the RAW is only listed.
PAIRED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".heic", ".heif", ".hif"})
# What the scan skips on purpose, by reason (anything else not supported is "unsupported").
SKIPPED_KINDS = {
    "videos": frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".mts", ".m2ts", ".3gp", ".wmv",
                         ".webm", ".mpg", ".mpeg"}),
    "sidecars": frozenset({".xmp", ".aae", ".thm", ".json"}),
}
# A RAW's embedded preview is used when its long side reaches this (the scan's default detection
# size); otherwise a half-size demosaic. Fixed, so a photo's coordinates never depend on options.
RAW_PREVIEW_MIN_SIDE = 1024

_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_DATETIME = "%Y:%m:%d %H:%M:%S"


class PhotoError(Exception):
    """A file that cannot be read as a photo; the message is one readable line."""


def skip_reason(path: str | Path) -> str | None:
    """Why the scan leaves this file (a path or a name) alone ("videos", "sidecars", "hidden",
    "unsupported"), or None. String operations: a rescan asks it of every file."""
    name = os.path.basename(path)
    if name.startswith("."):
        return "hidden"
    suffix = os.path.splitext(name)[1].lower()
    if suffix in SUPPORTED_EXTENSIONS:
        return None
    return next((kind for kind, suffixes in SKIPPED_KINDS.items() if suffix in suffixes), "unsupported")


# What a damaged or hostile file makes Pillow's decoders raise (struct.error: short headers).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError,
                  Image.DecompressionBombError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return "not a RAW file LibRaw can read"
    if isinstance(exc, rawpy.LibRawError):
        return f"LibRaw: {type(exc).__name__.removeprefix('LibRaw')}: {exc}"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large (more than {MAX_PIXELS:,} pixels)"
    if isinstance(exc, UnidentifiedImageError):
        return f"not an image of a supported format ({', '.join(_PILLOW_FORMATS)})"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _regular_file(path: str | Path):
    """The file opened for reading and its stat, refused as a PhotoError unless it is a regular
    file (it is opened non-blocking, so a pipe never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise PhotoError("file not found") from None
    except OSError as exc:
        raise PhotoError(f"cannot read file: {exc.strerror or exc}") from None
    fh = open(fd, "rb")
    try:
        st = os.fstat(fd)
    except OSError as exc:
        fh.close()
        raise PhotoError(f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        fh.close()
        raise PhotoError("not a regular file (a pipe, socket or device); skipped without reading")
    return fh, st


def read_file(path: str | Path) -> tuple[bytes, os.stat_result]:
    """The file's bytes and the stat they belong to, read once (so the caller hashes, decodes and
    stores the same content). Refused as a PhotoError: not a regular file (a pipe would block),
    over MAX_FILE_BYTES, or changed while being read (size or mtime moved under us)."""
    fh, before = _regular_file(path)
    with fh:
        fd = fh.fileno()
        try:
            if before.st_size > MAX_FILE_BYTES:
                raise PhotoError(f"file too large ({before.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
            data = fh.read(MAX_FILE_BYTES + 1)
            after = os.fstat(fd)
        except OSError as exc:
            raise PhotoError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) != before.st_size or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise PhotoError("file changed while being read; the next scan reads it again")
    return data, before


def _open(data: bytes) -> Image.Image:
    """Pillow's lazy opener over in-memory bytes, trying only the SUPPORTED formats."""
    try:
        im = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except _DECODE_ERRORS as exc:
        raise PhotoError(_describe(exc)) from None
    if im.width * im.height > MAX_PIXELS:  # an opener without Pillow's decompression-bomb check
        im.close()
        raise PhotoError(_describe(Image.DecompressionBombError()))
    if im.format in ("JPEG", "MPO") and data.count(b"\xff\xda") > MAX_JPEG_SCANS:
        im.close()
        raise PhotoError(f"JPEG with more than {MAX_JPEG_SCANS} scans (start-of-scan markers)")
    return im


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


def _xmp_datetime(packet) -> datetime | None:
    """XMP photoshop:DateCreated (ISO 8601, local wall time kept, zone dropped like EXIF's)."""
    value = xmp.value(packet, ("DateCreated",))
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None) if value else None
    except ValueError:
        return None


# Dates in file names of phones, cameras and apps: IMG_20210601_101500, PXL_20210601_101500123,
# 20210601_101500, 2021-06-01 10.15.00, Screenshot 2021-06-01 at 10.15.00, IMG-20210601-WA0001.
_NAME_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)([-_.]?)(\d\d)\2(\d\d)"
    r"(?:(?:[ _T-]|\s+at\s+)(\d\d)([-_.: ]?)(\d\d)\6(\d\d)(\d{3})?)?(?!\d)")


def name_datetime(name: str) -> datetime | None:
    """The capture time a file name states, or None (impossible dates are ignored)."""
    for m in _NAME_DATE.finditer(Path(name).stem):
        year, month, day = int(m[1]), int(m[3]), int(m[4])
        hour, minute, second = (int(v) for v in (m[5] or 0, m[7] or 0, m[8] or 0))
        try:
            moment = datetime(year, month, day, hour, minute, second, int(m[9] or 0) * 1000)
        except ValueError:
            continue
        if moment.year <= datetime.now().year + 1:
            return moment
    return None


def _capture_time(path: Path, exif_time: datetime | None, packet,
                  mtime: float) -> tuple[datetime | None, str | None]:
    """Capture time and its source: EXIF (or the RAW's own), XMP, the file name, the file's
    mtime; (None, None) when even the mtime is outside what a datetime holds."""
    for moment, source in ((exif_time, "exif"), (_xmp_datetime(packet), "xmp"),
                           (name_datetime(path.name), "filename")):
        if moment is not None:
            return moment, source
    try:
        return datetime.fromtimestamp(mtime), "mtime"
    except (OverflowError, OSError, ValueError):
        return None, None


def _apple_burst_id(note: object) -> str | None:
    """BurstUUID (tag 0x000B) of an Apple MakerNote: 'Apple iOS\0', version, 'MM', then an IFD
    whose offsets count from the note's start."""
    if not isinstance(note, bytes) or not note.startswith(b"Apple iOS\0") or note[12:14] != b"MM":
        return None
    ifd = TiffImagePlugin.ImageFileDirectory_v2(b"MM\x00\x2a\x00\x00\x00\x08")
    try:
        fp = io.BytesIO(note)
        fp.seek(14)
        ifd.load(fp)
        value = ifd.get(0x000B)
    except Exception:  # noqa: BLE001 - a damaged maker note only loses the burst id
        return None
    return value.strip("\x00 ") or None if isinstance(value, str) else None


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
    captured_at: datetime | None
    capture_source: str | None  # "exif" | "xmp" | "filename" | "mtime" | None (no usable time)
    camera: str | None
    burst_id: str | None = None
    data: bytes = field(default=b"", repr=False)  # the file as read once: every decode uses it
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

    def _source(self) -> Image.Image:
        """The (lazy) Pillow image to decode; its EXIF orientation is applied after loading."""
        return _open(self.data)

    def _decode(self, max_side: int | None) -> Image.Image:
        with self._source() as im:
            try:
                if max_side is not None and isinstance(im, JpegImagePlugin.JpegImageFile):
                    factor = max(self.width, self.height) / max_side
                    im.draft("RGB", (max(1, int(im.width / factor)), max(1, int(im.height / factor))))
                im.load()
                ImageOps.exif_transpose(im, in_place=True)  # a copy would cost 40 ms at 12 MP
                rgb = to_rgb(im)
                if max_side is not None:
                    rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            except _DECODE_ERRORS as exc:
                raise PhotoError(_describe(exc)) from None
        return rgb


# LibRaw's `flip` as the EXIF orientation that undoes it (bits: 1 mirror, 2 flip, 4 transpose).
_LIBRAW_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


@dataclass
class RawPhoto(OpenedPhoto):
    """A camera RAW: decoded from its embedded preview (JPEG bytes or an RGB array, oriented
    like the RAW) when that is at least RAW_PREVIEW_MIN_SIDE, else by a half-size demosaic."""

    preview: bytes | np.ndarray | None = field(default=None, repr=False)
    orientation: int = 1

    def _source(self) -> Image.Image:
        if self.preview is None:
            with _read_raw(self.data) as raw:
                try:  # LibRaw applies the orientation itself
                    return Image.fromarray(raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8))
                except (rawpy.LibRawError, MemoryError) as exc:
                    raise PhotoError(_describe(exc)) from None
        im = Image.fromarray(self.preview) if isinstance(self.preview, np.ndarray) else _open(self.preview)
        im.getexif()[ExifTags.Base.Orientation] = self.orientation  # the RAW's, not the preview's
        return im


def _read_raw(data: bytes) -> rawpy.RawPy:
    try:
        return rawpy.imread(io.BytesIO(data))
    except (rawpy.LibRawError, OSError) as exc:
        raise PhotoError(_describe(exc)) from None


def _open_raw(path: Path, data: bytes, mtime: float) -> RawPhoto:
    """A RAW's header: size, orientation and capture time from LibRaw; the preview if big enough."""
    with _read_raw(data) as raw:
        sizes, stamp = raw.sizes, raw.other.timestamp
        try:
            thumb = raw.extract_thumb()
        except (rawpy.LibRawError, MemoryError):  # no usable preview: demosaic
            thumb = None
    orientation = _LIBRAW_FLIP_TO_EXIF.get(sizes.flip, 1)
    exif, sub, packet, preview = {}, {}, None, None
    width, height = (sizes.width + 1) // 2, (sizes.height + 1) // 2
    if thumb is not None and thumb.format in (rawpy.ThumbFormat.JPEG, rawpy.ThumbFormat.BITMAP):
        shown = thumb.data
        if isinstance(shown, bytes):
            with _open(shown) as im:
                size = im.size
                exif, sub, packet = _metadata(im)
        else:
            size = (shown.shape[1], shown.shape[0])
        if max(size) >= RAW_PREVIEW_MIN_SIDE:
            preview, (width, height) = shown, size
    if preview is None:
        orientation = 1  # the demosaic comes out oriented
        if sizes.flip & 4:
            width, height = height, width
    elif orientation in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    when = stamp if stamp is not None and stamp.year > 1970 else None
    if width * height > MAX_PIXELS:
        raise PhotoError(_describe(Image.DecompressionBombError()))
    captured, source = _capture_time(path, when or _exif_time(sub), packet, mtime)
    return RawPhoto(path, path.suffix.lstrip(".").upper(), width, height, captured, source,
                    _camera(exif), xmp.value(packet, xmp.BURST_KEYS), data, preview=preview,
                    orientation=orientation)


def _metadata(im: Image.Image) -> tuple:
    """(EXIF, its Exif sub-IFD, XMP root element or None) of an open image; damaged blocks read
    as empty. The XMP goes through xmp.read, bounded in depth (Pillow's getxmp() recurses without
    a bound and fails on deep packets)."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not lose the photo
        exif, sub = {}, {}
    packet = embedded_xmp(im)
    return exif, sub, xmp.read(packet) if packet and len(packet) <= MAX_XMP_BYTES else None


def embedded_xmp(im: Image.Image) -> bytes | None:
    """The raw XMP packet a JPEG, WebP, PNG or TIFF carries."""
    data = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if data is None and hasattr(im, "tag_v2"):
        data = im.tag_v2.get(700)  # TIFF's XMP tag
    if isinstance(data, str):
        data = data.encode("utf-8")
    return data if isinstance(data, bytes) else None


def _exif_time(sub) -> datetime | None:
    return _exif_datetime(sub.get(ExifTags.Base.DateTimeOriginal), sub.get(ExifTags.Base.SubsecTimeOriginal))


def _camera(exif) -> str | None:
    make = str(exif.get(ExifTags.Base.Make, "")).strip().strip("\x00")
    model = str(exif.get(ExifTags.Base.Model, "")).strip().strip("\x00")
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return camera or None


def open_photo(path: str | Path, data: bytes | None = None, mtime: float | None = None) -> OpenedPhoto:
    """Read a photo's header: oriented size, capture time (see _capture_time), camera, burst id.
    Pixels are decoded later, on demand, from the same bytes: `data` (with the file's `mtime`)
    when the caller has read the file already, else the file is read here (read_file)."""
    path = Path(path)
    if data is None:
        data, st = read_file(path)
        mtime = st.st_mtime
    elif mtime is None:
        mtime = path.stat().st_mtime
    if path.suffix.lower() in RAW_EXTENSIONS:
        return _open_raw(path, data, mtime)
    with _open(data) as im:
        exif, sub, packet = _metadata(im)
        width, height = im.size
        if exif.get(ExifTags.Base.Orientation) in _TRANSPOSED_ORIENTATIONS:
            width, height = height, width
        fmt = im.format
    captured, source = _capture_time(path, _exif_time(sub), packet, mtime)
    burst = _apple_burst_id(sub.get(ExifTags.Base.MakerNote)) or xmp.value(packet, xmp.BURST_KEYS)
    return OpenedPhoto(path, fmt, width, height, captured, source, _camera(exif), burst, data)


def dhash(image: Image.Image) -> int:
    """64-bit difference hash of an image: near-duplicates differ in < 10 bits, unrelated
    scenes in ~32."""
    small = image.copy()
    small.thumbnail((64, 64), Image.Resampling.BILINEAR, reducing_gap=2.0)
    px = list(small.convert("L").resize((9, 8), Image.Resampling.BILINEAR).getdata())
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return bits


def stored_orientation(path: str | Path) -> int:
    """The EXIF orientation (1-8) of a photo's stored pixels (a RAW's: LibRaw's flip), from its
    header only; 1 when absent or not valid. MWG face regions are defined on the stored frame."""
    path = Path(path)
    if path.suffix.lower() in RAW_EXTENSIONS:
        with _read_raw(read_file(path)[0]) as raw:
            return _LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip, 1)
    fh, _st = _regular_file(path)
    with fh:
        try:
            with Image.open(fh, formats=_PILLOW_FORMATS) as im:
                value = im.getexif().get(ExifTags.Base.Orientation)
        except _DECODE_ERRORS as exc:
            raise PhotoError(_describe(exc)) from None
        except Exception:  # noqa: BLE001 - a damaged EXIF block reads as "no orientation"
            value = None
    return value if value in range(1, 9) else 1


def thumbnail(path: str | Path, size: int) -> Image.Image:
    """An oriented RGB thumbnail whose long side is at most `size` (cheap for JPEGs: draft)."""
    return open_photo(path).image(size)
