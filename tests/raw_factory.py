"""Small valid DNG files for tests, written here (no DNG writer library needed): a little-endian
TIFF whose IFD0 holds an optional JPEG preview and whose SubIFD holds a 12-bit RGGB mosaic of the
given scene, with the DNG tags LibRaw needs (version, colour matrix, CFA pattern, white level)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

# ColorMatrix1 (XYZ -> camera) as the XYZ -> linear sRGB matrix: the mosaic holds sRGB values.
_XYZ_TO_SRGB = tuple(v for c in (32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570)
                     for v in (c, 10000))
_TYPES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 10: "ii"}  # BYTE ASCII SHORT LONG (S)RATIONAL


def _pack(kind: int, values) -> tuple[int, bytes]:
    if kind == 2:
        data = values.encode() + b"\0"
        return len(data), data
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    fmt = _TYPES[kind]
    count = len(values) // len(fmt)
    return count, struct.pack("<" + fmt * count, *values)


def _ifd(entries: dict, offset: int) -> bytes:
    """One IFD at `offset` (entries: tag -> (type, values)), its long values right after it."""
    n = len(entries)
    data_at = offset + 2 + 12 * n + 4
    head, tail = [struct.pack("<H", n)], []
    for tag in sorted(entries):
        kind, values = entries[tag]
        count, data = _pack(kind, values)
        if len(data) <= 4:
            head.append(struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\0"))
        else:
            head.append(struct.pack("<HHII", tag, kind, count, data_at + sum(map(len, tail))))
            tail.append(data + b"\0" * (len(data) % 2))
    return b"".join(head) + struct.pack("<I", 0) + b"".join(tail)


def make_dng(path: Path, scene: np.ndarray, preview: Image.Image | None = None, orientation: int = 1,
             taken: str | None = "2021:06:01 10:15:00", jpeg_preview: bool = True) -> Path:
    """Write `scene` (H x W x 3 uint8, even sides) as a DNG; `preview` is embedded as JPEG, or
    as uncompressed 8-bit RGB (which LibRaw hands over as a bitmap)."""
    h, w, _ = scene.shape
    s = scene.astype(np.uint16) * 16
    cfa = np.empty((h, w), "<u2")
    cfa[0::2, 0::2], cfa[0::2, 1::2] = s[0::2, 0::2, 0], s[0::2, 1::2, 1]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = s[1::2, 0::2, 1], s[1::2, 1::2, 2]
    raw = cfa.tobytes()
    jpeg = b""
    if preview is not None:
        buf = io.BytesIO()
        if jpeg_preview:
            preview.convert("RGB").save(buf, "JPEG", quality=90)
        else:
            buf.write(preview.convert("RGB").tobytes())
        jpeg = buf.getvalue() + b"\0" * (len(buf.getvalue()) % 2)
    raw_at = 8 + len(jpeg)
    raw_ifd_at = raw_at + len(raw)
    raw_tags = {256: (4, w), 257: (4, h), 258: (3, 16), 259: (3, 1), 262: (3, 32803),
                273: (4, raw_at), 277: (3, 1), 278: (4, h), 279: (4, len(raw)),
                33421: (3, (2, 2)), 33422: (1, (0, 1, 1, 2)), 50717: (4, 4095)}
    main = {271: (2, "TestMake"), 272: (2, "TestMake Cam"), 274: (3, orientation),
            50706: (1, (1, 4, 0, 0)), 50708: (2, "TestMake Cam"),
            50721: (10, _XYZ_TO_SRGB),
            50778: (3, 21), 50728: (5, (1, 1, 1, 1, 1, 1))}
    if taken:
        main[306] = (2, taken)
    if preview is None:  # the mosaic is IFD0 itself
        main_at, sub = raw_ifd_at, b""
        main.update(raw_tags)
    else:  # IFD0 is the preview, the mosaic its SubIFD
        sub = _ifd({254: (4, 0), **raw_tags}, raw_ifd_at)
        main_at = raw_ifd_at + len(sub)
        main.update({254: (4, 1), 256: (4, preview.width), 257: (4, preview.height),
                     258: (3, (8, 8, 8)), 259: (3, 7 if jpeg_preview else 1),
                     262: (3, 6 if jpeg_preview else 2), 273: (4, 8), 277: (3, 3),
                     278: (4, preview.height), 279: (4, len(jpeg)), 330: (4, raw_ifd_at)})
    Path(path).write_bytes(b"II*\0" + struct.pack("<I", main_at) + jpeg + raw + sub + _ifd(main, main_at))
    return Path(path)
