"""Align a face onto the CelebA frame (178x218) with a 5-point similarity transform.

The template (resources/celeba_template.json) holds where MTCNN puts the 5 landmarks on aligned
CelebA images (scripts/make_template.py), so a photo's face aligned to it looks to the model like
its training frames. Large faces are first reduced with an antialiasing resize, because Pillow's
affine transform samples without a low-pass filter.
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from photo_sorter import faces
from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "resources" / "celeba_template.json"
CROP_SIZE = (FRAME_WIDTH // 2, FRAME_HEIGHT // 2)  # the stored crop: 89x109
# What fills the parts of the frame that lie outside the photo. Chosen by measurement
# (models/README.md, "Fill"): training's context-loss augmentation uses the same rule.
FILLS = ("black", "edge", "reflect")
FILL = "reflect"


@cache
def template() -> np.ndarray:
    """The 5 template landmarks [5, 2] in frame pixels (LANDMARK_NAMES order)."""
    return np.asarray(json.loads(TEMPLATE_PATH.read_text())["landmarks"], dtype=np.float64)


def similarity(src, dst) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src points onto
    dst points, as a 3x3 matrix."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    rows = np.zeros((2 * len(src), 4))
    rows[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))])
    rows[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]])


def frame_scale(landmarks) -> float:
    """Frame pixels per image pixel for this face: above 1 means the face is upsampled."""
    m = similarity(landmarks, template())
    return float(np.hypot(m[0, 0], m[1, 0]))


def to_celeba(image: Image.Image | np.ndarray, landmarks, fill: str | None = None) -> np.ndarray:
    """The aligned CelebA frame, uint8 [218, 178, 3], of the face whose 5 landmarks (in `image`
    pixel coordinates) are given. Parts of the frame outside the image are filled by `fill`
    (FILL when None): close-ups and faces at a photo's edge look, to the model, like the
    context-loss augmentation it was trained with (data.context_loss uses the same rule)."""
    fill = fill or FILL
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; use one of {', '.join(FILLS)}")
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.asarray(image, np.uint8))
    if image.mode != "RGB":  # convert() copies even to its own mode: 40 ms for a 12 MP photo
        image = image.convert("RGB")
    # Pillow's crop, resize and transform put pixel centres at +0.5: work in that convention.
    to_frame = similarity(np.asarray(landmarks, np.float64) + 0.5, template() + 0.5)
    scale = np.hypot(to_frame[0, 0], to_frame[1, 0])
    # Only the face's region is read (never a whole-photo copy), with a margin for the filter.
    corners = np.array([[0, 0, 1], [FRAME_WIDTH, 0, 1], [0, FRAME_HEIGHT, 1],
                        [FRAME_WIDTH, FRAME_HEIGHT, 1]], np.float64)
    src = (np.linalg.inv(to_frame) @ corners.T)[:2]
    x0, y0 = (int(v) for v in np.floor(src.min(axis=1)) - 3)
    x1, y1 = (int(v) for v in np.ceil(src.max(axis=1)) + 3)
    region = _region(image, (x0, y0, x1, y1), fill)
    size = region.size
    if scale < 1.0:  # reduce the region first, with antialiasing
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        region = region.resize(size, Image.Resampling.LANCZOS)
    region_to_src = np.array([[(x1 - x0) / size[0], 0, x0], [0, (y1 - y0) / size[1], y0], [0, 0, 1]])
    inverse = np.linalg.inv(to_frame @ region_to_src)[:2].reshape(-1)
    frame = region.transform(
        (FRAME_WIDTH, FRAME_HEIGHT), Image.Transform.AFFINE, tuple(inverse),
        resample=Image.Resampling.BICUBIC,
    )
    return np.asarray(frame, dtype=np.uint8)


def _region(image: Image.Image, box: tuple[int, int, int, int], fill: str) -> Image.Image:
    """image[box], where the box may reach outside the image: the outside is filled with
    black, the replicated edge ("edge") or the mirrored image ("reflect")."""
    x0, y0, x1, y1 = box
    w, h = image.size
    if fill == "black" or (x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h):
        return image.crop(box)  # Pillow fills outside the image with black
    cx0, cy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
    inside = np.asarray(image.crop((cx0, cy0, max(min(x1, w), cx0 + 1), max(min(y1, h), cy0 + 1))))
    pad = ((cy0 - y0, y1 - cy0 - inside.shape[0]), (cx0 - x0, x1 - cx0 - inside.shape[1]), (0, 0))
    mode = "symmetric" if fill == "reflect" else "edge"
    return Image.fromarray(np.pad(inside, [(max(0, a), max(0, b)) for a, b in pad], mode=mode))


def pipeline_frame(rgb_image: np.ndarray, detector=None) -> np.ndarray | None:
    """The photo pipeline on one image: detect (scan defaults), take the largest face and
    return its aligned frame, or None when no face is found."""
    found = faces.detect(rgb_image, detector=detector)
    return to_celeba(rgb_image, found[0].landmarks) if found else None


def encode_crop(frame: np.ndarray) -> bytes:
    """The stored per-face crop: the aligned frame at half size (89x109), JPEG."""
    out = io.BytesIO()
    Image.fromarray(frame).resize(CROP_SIZE, Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()

