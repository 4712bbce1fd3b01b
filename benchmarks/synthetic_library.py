"""A seeded library of large photos with known faces, for the scan benchmarks.

Composites: real aligned CelebA faces (../shared/celeba/img_align_celeba) with a feathered oval
mask, scaled so the face box is 60-1000 px wide (log-uniform; 25-1000 for SMALL_FACE_SIZES), rotated up to 25 degrees, pasted
without overlap onto varied backgrounds (smooth colour fields, clutter of shapes, the no-face
sample photos upscaled), with sensor-like grain, saved as JPEG quality 90. Plus the sample photos
themselves upscaled to a 4000-pixel long side.

Ground truth (truth.json beside the photos): per file, each face's centre, width (full-resolution
pixels) and rotation. A CelebA face's box is what MTCNN finds on the untouched 178x218 frame,
carried through the scale and rotation; a sample photo's boxes are what MTCNN finds on the
original (small, easy) file, scaled. Donors where MTCNN finds no single clear face are skipped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "resources" / "sample_photos"
CELEBA = REPO.parent / "shared" / "celeba" / "img_align_celeba"
NOFACE_BACKGROUNDS = sorted(SAMPLES.glob("noface_*"))
FACE_SIZES = (60, 1000)
SMALL_FACE_SIZES = (25, 1000)  # bench_scan.py --small-faces: recall where MTCNN's limit is


def _grain(canvas: Image.Image, rng, sigma: float = 4.0) -> Image.Image:
    noise = rng.normal(0.0, sigma, (canvas.height, canvas.width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.asarray(canvas, np.float32) + noise, 0, 255).astype(np.uint8))


def background(kind: int, size: tuple[int, int], rng) -> Image.Image:
    """0: smooth colour field; 1: clutter of shapes on a gradient; 2: an upscaled no-face photo."""
    w, h = size
    if kind == 0:
        small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
        return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    if kind == 1:
        canvas = Image.fromarray(rng.integers(0, 256, (2, 2, 3), dtype=np.uint8)).resize(
            size, Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(30, 80))):
            x0, y0 = rng.integers(0, w), rng.integers(0, h)
            dx, dy = rng.integers(20, w // 4), rng.integers(20, h // 4)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x0, y0, x0 + dx, y0 + dy), fill=colour)
        return canvas.filter(ImageFilter.GaussianBlur(2))
    source = Image.open(NOFACE_BACKGROUNDS[int(rng.integers(len(NOFACE_BACKGROUNDS)))]).convert("RGB")
    scale = max(w / source.width, h / source.height)
    source = source.resize((math.ceil(source.width * scale), math.ceil(source.height * scale)),
                           Image.Resampling.BICUBIC)
    left, top = (source.width - w) // 2, (source.height - h) // 2
    return source.crop((left, top, left + w, top + h))


def _oval_mask(size: tuple[int, int]) -> Image.Image:
    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((0.06 * w, 0.04 * h, 0.94 * w, 0.98 * h), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(0.04 * w))


def donors(count: int, rng, detect) -> list[tuple[Image.Image, tuple]]:
    """CelebA frames with their single MTCNN box (x, y, w, h) on the untouched frame."""
    names = sorted(p.name for p in CELEBA.iterdir())
    picked = []
    for index in rng.permutation(len(names)):
        frame = Image.open(CELEBA / names[index]).convert("RGB")
        found = detect(frame)
        if len(found) == 1 and found[0].confidence > 0.98:
            picked.append((frame, found[0].box))
            if len(picked) == count:
                break
    return picked


def composite(index: int, size: tuple[int, int], rng, pool: list,
              face_sizes: tuple[int, int] = FACE_SIZES) -> tuple[Image.Image, list[dict]]:
    """One photo with 0-4 CelebA faces, non-overlapping; returns it and its faces' truth."""
    canvas = background(index % 3, size, rng)
    placed: list[tuple[int, int, int, int]] = []
    truth = []
    for _ in range(int(rng.integers(0, 5))):
        frame, (bx, by, bw, bh) = pool.pop()
        face_w = float(np.exp(rng.uniform(*np.log(face_sizes))))
        scale = face_w / bw
        angle = float(rng.uniform(-25, 25))
        patch = frame.resize((max(1, round(frame.width * scale)), max(1, round(frame.height * scale))),
                             Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
        patch.putalpha(_oval_mask(patch.size))
        rotated = patch.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        # The face centre, from frame coordinates to the rotated patch (PIL rotates anticlockwise).
        fx, fy = (bx + bw / 2) * scale - patch.width / 2, (by + bh / 2) * scale - patch.height / 2
        a = math.radians(angle)
        rx = fx * math.cos(a) + fy * math.sin(a) + rotated.width / 2
        ry = -fx * math.sin(a) + fy * math.cos(a) + rotated.height / 2
        for _attempt in range(40):
            x = int(rng.integers(-rotated.width // 8, max(1, size[0] - rotated.width * 7 // 8)))
            y = int(rng.integers(-rotated.height // 8, max(1, size[1] - rotated.height * 7 // 8)))
            box = (x, y, x + rotated.width, y + rotated.height)
            cx, cy = x + rx, y + ry
            inside = face_w / 2 <= cx <= size[0] - face_w / 2 and face_w / 2 <= cy <= size[1] - face_w / 2
            if inside and not any(box[0] < p[2] and p[0] < box[2] and box[1] < p[3] and p[1] < box[3]
                                  for p in placed):
                canvas.paste(rotated, (x, y), rotated)
                placed.append(box)
                truth.append({"cx": round(cx, 1), "cy": round(cy, 1), "w": round(face_w, 1),
                              "angle": round(angle, 1), "source": "celeba"})
                break
    return _grain(canvas, rng), truth


def upscaled_sample(path: Path, long_side: int, detect) -> tuple[Image.Image, list[dict]]:
    """A sample photo enlarged to `long_side`, with the faces MTCNN finds on the original."""
    from photo_sorter import imaging

    original = imaging.open_photo(path).image()
    scale = long_side / max(original.size)
    big = original.resize((round(original.width * scale), round(original.height * scale)),
                          Image.Resampling.BICUBIC)
    truth = [{"cx": round((x + w / 2) * scale, 1), "cy": round((y + h / 2) * scale, 1),
              "w": round(w * scale, 1), "angle": 0.0, "source": "sample"}
             for x, y, w, h in (f.box for f in detect(original))]
    return big, truth


def make_library(folder: Path, photos: int, size=(4000, 3000), samples: int = 11, seed: int = 0,
                 face_sizes: tuple[int, int] = FACE_SIZES) -> dict:
    """Write `photos` JPEGs into folder (the first `samples` are upscaled sample photos) and
    truth.json; reuses a folder already made with the same settings. Returns the truth."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"photos": photos, "size": list(size), "samples": samples, "seed": seed}
    if tuple(face_sizes) != FACE_SIZES:  # the default library's settings (and cache) stay as they were
        settings["face_sizes"] = list(face_sizes)
    truth_file = folder / "truth.json"
    if truth_file.is_file():
        stored = json.loads(truth_file.read_text())
        if stored["settings"] == settings:
            return stored
    from photo_sorter import faces

    def detect(image):
        return faces.detect(image, confidence=0.9)

    rng = np.random.default_rng(seed)
    sample_paths = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    sample_paths = [sample_paths[i] for i in rng.permutation(len(sample_paths))[:samples]]
    pool = donors(4 * (photos - len(sample_paths)), rng, detect)
    files = {}
    for i in range(photos):
        name = f"photo_{i:04d}.jpg"
        if i < len(sample_paths):
            image, truth = upscaled_sample(sample_paths[i], max(size), detect)
        else:
            image, truth = composite(i, size, rng, pool, face_sizes)
        image.save(folder / name, quality=90)
        files[name] = truth
    stored = {"settings": settings, "files": files}
    truth_file.write_text(json.dumps(stored, indent=1))
    return stored
