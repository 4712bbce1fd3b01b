"""CelebA frames for training and evaluation: the pipeline-frame cache and the tf.data pipelines.

The scan never sees a CelebA frame: it sees what MTCNN and the aligner make of a photo. So the
default training input is the same thing: every CelebA image run once through the scan's detector
(its default settings) and aligner, cached on disk as uint8 frames with a manifest of the
template, the detector settings, the fill and the source files. A change of any of them gives a
new cache; a change of template or fill alone re-aligns from the cached landmarks without
detecting again. The original frames stay available (`frames="original"`).

Augmentation works on whole batches inside the tf.data graph: the article's geometric transform,
and the "robust" set that makes CelebA frames look like frames of real photos (grey scans, colour
casts, small faces, JPEG, blur, landmark noise and context loss, the last filled as the aligner
fills what lies outside a photo).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH

# The article's ImageDataGenerator settings (shear in degrees, as ImageDataGenerator reads it).
ARTICLE_AUGMENT = dict(rotation=20.0, shift=0.2, shear=0.2, zoom=0.2, flip=True)
LIGHT_AUGMENT = dict(rotation=10.0, shift=0.05, shear=0.0, zoom=0.1, flip=True)
# Real-photo robustness: geometry the size of MTCNN landmark noise, then each degradation on a
# random share of the images (probabilities), so most frames still look clean.
ROBUST_AUGMENT = dict(rotation=5.0, shift=0.03, shear=0.0, zoom=0.06, flip=True,
                      gray=0.15, color=0.5, lowres=0.2, jpeg=0.2, blur=0.1, context=0.3)
AUGMENTS = {"robust": ROBUST_AUGMENT, "article": ARTICLE_AUGMENT, "light": LIGHT_AUGMENT, "none": None}

# The face box the context-loss augmentation never cuts into, in frame pixels. MTCNN's boxes on
# CelebA frames are a few pixels larger (median over 300 train frames: 47.5, 66.1, 130.5, 181.0);
# random_boxes adds a 0-10 % margin around this one.
FACE_BOX = (49.0, 71.0, 129.0, 177.0)  # x0, y0, x1, y1 in frame pixels

# Cache entry states.
PENDING, FOUND, NO_FACE, UNREADABLE = 0, 1, 2, 3


# ---------------------------------------------------------------- pipeline-frame cache

@dataclass(frozen=True)
class DetectorSettings:
    """The scan's detection defaults (scan.ScanOptions); the cache records them."""

    detect_size: int = 1024
    min_face: int | None = None
    confidence: float = 0.9


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("photo_sorter", appauthor=False)) / "celeba_frames"


@dataclass
class FrameCache:
    """Pipeline frames of a list of CelebA images: frames[i] is valid where status[i] == FOUND."""

    directory: Path
    names: list[str]
    status: np.ndarray      # int8 [N]
    landmarks: np.ndarray   # float32 [N, 5, 2], in source-image pixels
    frames: np.ndarray      # uint8 [N, 218, 178, 3] (memory-mapped)
    manifest: dict
    work: dict              # what this call did: {"detected": n, "realigned": n}

    def index(self, names) -> np.ndarray:
        """Row of each name, -1 where the name is not cached or has no face."""
        pos = {n: i for i, n in enumerate(self.names)}
        rows = np.array([pos.get(n, -1) for n in names], np.int64)
        ok = rows >= 0
        rows[ok] = np.where(self.status[rows[ok]] == FOUND, rows[ok], -1)
        return rows

    @property
    def counts(self) -> dict[str, int]:
        return {"images": len(self.names), "found": int((self.status == FOUND).sum()),
                "no_face": int((self.status == NO_FACE).sum()),
                "unreadable": int((self.status == UNREADABLE).sum())}


def _nearest(found, centre):
    """The face a CelebA label describes: the one nearest where the person is (aligned CelebA
    images centre their person; others may stand in the background)."""
    def distance(face):
        x, y, w, h = face.box
        return math.hypot(x + w / 2 - centre[0], y + h / 2 - centre[1])

    return min(found, key=distance) if found else None


def _grayscale(rgb, box):
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).convert("L").convert("RGB")), None


def _closeup(rgb, box):
    """The photo cropped to the face box plus 10 %: a selfie or a tight portrait."""
    x, y, w, h = box
    x0, y0 = max(0, int(x - 0.1 * w)), max(0, int(y - 0.1 * h))
    return rgb[y0:int(np.ceil(y + 1.1 * h)), x0:int(np.ceil(x + 1.1 * w))], None


def _small_face(rgb, box):
    """The photo reduced so that the face box is about 40 px wide."""
    from PIL import Image

    factor = 40.0 / box[2]
    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)), factor


def _jpeg20(rgb, box):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=20)
    return np.asarray(Image.open(out).convert("RGB")), None


def _edge(rgb, box):
    """The face near the photo's edge: all context left of the face box (plus 10 %) cut off,
    half of the frame's sideways context."""
    x0 = max(0, int(box[0] - 0.1 * box[2]))
    return rgb[:, x0:], -x0


# Degradations of bench_robustness.py: (rgb, face box) -> (rgb, how the face centre moved:
# None, a scale factor or an x offset).
CONDITIONS = {"original": None, "grayscale": _grayscale, "close-up": _closeup,
              "small face": _small_face, "jpeg q20": _jpeg20, "edge": _edge}


def _frame_of(rgb: np.ndarray, settings: dict, fill: str, condition: str | None):
    """(status, landmarks, frame) of the labelled face, optionally under a CONDITIONS entry
    (applied with the face found on the undegraded image, then detected again)."""
    from PIL import Image

    from photo_sorter import align, faces

    def find(image, centre):
        """The scan's detection: on a copy reduced to its detection side, coordinates back in `image`."""
        side = faces.detection_side(image.shape[1], image.shape[0], settings["detect_size"], settings["min_face"])
        small = Image.fromarray(image)
        small.thumbnail((side, side), Image.Resampling.LANCZOS)  # no-op for an image within the side
        found = faces.detect(small, scale=image.shape[1] / small.width, min_face=settings["min_face"],
                             confidence=settings["confidence"])
        return _nearest(found, centre)

    face = find(rgb, (rgb.shape[1] / 2, rgb.shape[0] / 2))
    if face is not None and CONDITIONS.get(condition):
        x, y, w, h = face.box
        rgb, moved = CONDITIONS[condition](rgb, face.box)
        centre = (x + w / 2, y + h / 2)
        if condition == "close-up":
            centre = (rgb.shape[1] / 2, rgb.shape[0] / 2)
        elif isinstance(moved, float):
            centre = (centre[0] * moved, centre[1] * moved)
        elif isinstance(moved, int):
            centre = (centre[0] + moved, centre[1])
        face = find(rgb, centre)
    if face is None:
        return NO_FACE, None, None
    return FOUND, np.asarray(face.landmarks, np.float32), align.to_celeba(rgb, face.landmarks, fill)


def _detect_chunk(paths: list[str], settings: dict, fill: str, condition: str | None = None):
    """Worker: (status, landmarks, frame) for each image path. CelebA images are smaller than
    the detection size, so MTCNN sees them whole, as the scan would."""
    from PIL import Image

    out = []
    for path in paths:
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError):
            out.append((UNREADABLE, None, None))
            continue
        out.append(_frame_of(rgb, settings, fill, condition))
    return out


def pipeline_frames(paths, condition: str | None = None, fill: str | None = None,
                    settings: DetectorSettings | None = None, workers: int | None = None,
                    chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(status [N], frames [N, 218, 178, 3]) of images run through detect + align now, without
    the cache: evaluation under a degradation (CONDITIONS) or another fill."""
    from photo_sorter import align

    settings, fill = settings or DetectorSettings(), fill or align.FILL
    paths = [str(p) for p in paths]
    status = np.full(len(paths), PENDING, np.int8)
    frames = np.zeros((len(paths), FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
    parts = [np.arange(i, min(i + chunk, len(paths))) for i in range(0, len(paths), chunk)]
    with _pool(workers) as pool:
        jobs = [(rows, pool.submit(_detect_chunk, [paths[i] for i in rows], asdict(settings), fill, condition))
                for rows in parts]
        for rows, job in jobs:
            for i, (state, _, frame) in zip(rows, job.result()):
                status[i] = state
                if state == FOUND:
                    frames[i] = frame
    return status, frames


def _render_chunk(paths: list[str], landmarks: np.ndarray, fill: str):
    """Worker: aligned frames from cached landmarks (a new template or fill, no detection)."""
    from PIL import Image

    from photo_sorter import align

    frames = []
    for path, points in zip(paths, landmarks):
        with Image.open(path) as im:
            frames.append(align.to_celeba(np.asarray(im.convert("RGB")), points, fill))
    return frames


def _pool(workers: int | None):
    """Worker processes for detection (MTCNN holds the GIL); 0 runs in this process (tests,
    a handful of images)."""
    import multiprocessing

    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers == 0 or multiprocessing.current_process().daemon:  # a daemon may not have children
        return ThreadPoolExecutor(1)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _open_array(path: Path, shape, dtype, fresh: bool):
    if fresh or not path.is_file():
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    return np.load(path, mmap_mode="r+")


class IncompleteCache(RuntimeError):
    """The build was cancelled before every image was done (finished chunks are kept)."""


def build_frame_cache(paths, names, root: str | Path | None = None, settings: DetectorSettings | None = None,
                      fill: str | None = None, workers: int | None = None, chunk: int = 256,
                      progress=None, cancel=None, log=print) -> FrameCache:
    """Run the scan's detector and aligner over the images once and cache the frames.

    Resumable: finished chunks are kept, so a cancelled or killed build continues where it
    stopped. progress(done, total) is called after each chunk; cancel() -> True stops after the
    current chunk (the cache is then partial and raises on use)."""
    from photo_sorter import align

    settings = settings or DetectorSettings()
    fill = fill or align.FILL
    root = Path(root) if root else default_cache_root()
    paths, names = [str(p) for p in paths], [str(n) for n in names]
    sources = [[n, os.stat(p).st_size] for n, p in zip(names, paths)]
    detection = {"detector": asdict(settings), "mtcnn": _mtcnn_version(), "sources": _digest(sources)}
    frame_key = {"template": align.template().round(4).tolist(), "fill": fill,
                 "frame": [FRAME_HEIGHT, FRAME_WIDTH]}
    det_dir = root / f"det-{_digest(detection)}"
    frame_dir = det_dir / f"frames-{_digest(frame_key)}"
    frame_dir.mkdir(parents=True, exist_ok=True)
    n = len(paths)
    manifest = {**detection, **frame_key, "source_root": str(Path(paths[0]).parent) if paths else "",
                "n": n, "names_file": "names.json"}
    if not (det_dir / "names.json").is_file():
        (det_dir / "names.json").write_text(json.dumps(sources))
    fresh_det = not (det_dir / "status.npy").is_file()
    status = _open_array(det_dir / "status.npy", (n,), np.int8, fresh_det)
    landmarks = _open_array(det_dir / "landmarks.npy", (n, 5, 2), np.float32, fresh_det)
    fresh_frames = not (frame_dir / "done.npy").is_file()
    done = _open_array(frame_dir / "done.npy", (n,), np.bool_, fresh_frames)
    frames = _open_array(frame_dir / "frames.npy", (n, FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8, fresh_frames)
    (frame_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))

    # Rows detected before (another fill or template) are only re-aligned; the rest detected.
    todo_render = np.flatnonzero((status == FOUND) & ~done)
    todo_detect = np.flatnonzero(status == PENDING)
    total = n
    if len(todo_render) or len(todo_detect):
        log(f"frame cache {frame_dir}: {len(todo_detect):,} images to detect, {len(todo_render):,} to re-align")
    with _pool(workers) as pool:
        jobs = [(rows, pool.submit(_render_chunk, [paths[i] for i in rows], landmarks[rows], fill), "render")
                for rows in np.array_split(todo_render, max(1, math.ceil(len(todo_render) / chunk)))
                if len(rows)]
        jobs += [(rows, pool.submit(_detect_chunk, [paths[i] for i in rows], asdict(settings), fill), "detect")
                 for rows in np.array_split(todo_detect, max(1, math.ceil(len(todo_detect) / chunk)))
                 if len(rows)]
        for rows, job, kind in jobs:
            if cancel is not None and cancel():
                for _, other, _ in jobs:
                    other.cancel()
                break
            result = job.result()
            if kind == "render":
                frames[rows] = np.stack(result)
            else:
                for i, (state, points, frame) in zip(rows, result):
                    if state == FOUND:
                        landmarks[i], frames[i] = points, frame
                    status[i] = state
            frames.flush()
            landmarks.flush()
            done[rows] = True
            status.flush()
            done.flush()
            if progress:
                progress(int(done.sum() + (status > FOUND).sum()), total)
    cache = FrameCache(frame_dir, names, np.asarray(status), np.asarray(landmarks),
                       np.load(frame_dir / "frames.npy", mmap_mode="r"), manifest,
                       {"detected": len(todo_detect), "realigned": len(todo_render)})
    if (status == PENDING).any() or ((status == FOUND) & ~done).any():
        raise IncompleteCache(f"frame cache {frame_dir} is incomplete (cancelled); run again to finish it")
    log(f"frame cache: {cache.counts}")
    return cache


def _mtcnn_version() -> str:
    from importlib.metadata import version

    return version("mtcnn")


# ---------------------------------------------------------------- augmentation (batched, in graph)

def _augment_transforms(batch, params: dict, seeds):
    """One combined projective transform per image (flip, rotation, shift, shear, zoom), as the
    8 parameters ImageProjectiveTransformV3 takes: output pixel -> input pixel."""
    import tensorflow as tf

    h, w = float(FRAME_HEIGHT), float(FRAME_WIDTH)
    u = tf.random.stateless_uniform((batch, 6), seed=seeds, minval=-1.0, maxval=1.0)
    theta = u[:, 0] * params["rotation"] * math.pi / 180
    shear = u[:, 1] * params["shear"] * math.pi / 180
    zx = 1.0 + u[:, 2] * params["zoom"]
    zy = 1.0 + u[:, 3] * params["zoom"]
    tx = u[:, 4] * params["shift"] * w
    ty = u[:, 5] * params["shift"] * h
    flip = tf.cast(tf.random.stateless_uniform((batch,), seed=seeds + 1) < 0.5, tf.float32) \
        if params["flip"] else tf.zeros((batch,))
    sx = 1.0 - 2.0 * flip  # -1 mirrors x
    # A = Rotation @ Shear @ Zoom @ Flip (ImageDataGenerator's matrices), about the centre.
    a00 = tf.cos(theta) * zx * sx
    a01 = -tf.sin(theta + shear) * zy
    a10 = tf.sin(theta) * zx * sx
    a11 = tf.cos(theta + shear) * zy
    cx, cy = (w - 1) / 2, (h - 1) / 2
    b0 = cx - a00 * cx - a01 * cy + tx
    b1 = cy - a10 * cx - a11 * cy + ty
    zeros = tf.zeros_like(a00)
    return tf.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1)


def geometric(images, params: dict, seeds):
    """The projective jitter; outside the frame the image is mirrored, like the aligner's fill."""
    import tensorflow as tf

    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=_augment_transforms(tf.shape(images)[0], params, seeds),
        output_shape=tf.constant([FRAME_HEIGHT, FRAME_WIDTH]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")


def grayscale(images):
    """A black-and-white scan: equal channels (ITU-R 601 luma, as Pillow's convert('L'))."""
    import tensorflow as tf

    return tf.repeat(tf.image.rgb_to_grayscale(images), 3, axis=-1)


def color_jitter(images, seeds):
    """White balance (per-channel gain ±15 %), brightness ±12 %, contrast and saturation ×0.7-1.3."""
    import tensorflow as tf

    b = tf.shape(images)[0]
    u = tf.random.stateless_uniform((b, 6), seed=seeds, minval=-1.0, maxval=1.0)
    gains = 1.0 + 0.15 * u[:, 0:3]
    x = images * gains[:, None, None, :] + 30.0 * u[:, 3, None, None, None]
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = mean + (x - mean) * (1.0 + 0.3 * u[:, 4, None, None, None])
    gray = grayscale(x)
    x = gray + (x - gray) * (1.0 + 0.3 * u[:, 5, None, None, None])
    return tf.clip_by_value(x, 0.0, 255.0)


def down_up(images, factor):
    """A face 30-60 px wide in its photo: the frame reduced by `factor` (antialiased), then
    enlarged back, as the aligner enlarges small faces."""
    import tensorflow as tf

    small = tf.cast(tf.round(tf.constant([FRAME_HEIGHT, FRAME_WIDTH], tf.float32) * factor), tf.int32)
    x = tf.image.resize(images, small, antialias=True)
    return tf.image.resize(x, (FRAME_HEIGHT, FRAME_WIDTH), method="bicubic")


def blur(images, sigma):
    """Mild Gaussian blur (focus, motion), sigma in pixels."""
    import tensorflow as tf

    r = tf.range(-3.0, 4.0)
    k = tf.exp(-(r ** 2) / (2.0 * sigma ** 2))
    k = k / tf.reduce_sum(k)
    kx = tf.tile(tf.reshape(k, (1, 7, 1, 1)), (1, 1, 3, 1))
    ky = tf.tile(tf.reshape(k, (7, 1, 1, 1)), (1, 1, 3, 1))
    pad = tf.pad(images, [[0, 0], [3, 3], [3, 3], [0, 0]], mode="SYMMETRIC")
    x = tf.nn.depthwise_conv2d(pad, kx, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, ky, [1, 1, 1, 1], "VALID")


def jpeg(images, quality):
    """JPEG re-compression at `quality` (int32 scalar), image by image."""
    import tensorflow as tf

    def one(image):
        return tf.image.adjust_jpeg_quality(image / 255.0, quality) * 255.0

    return tf.map_fn(one, images, fn_output_signature=tf.float32)


def fill_indices(n: int, lo, hi, fill: str):
    """Source index of each of n positions when only [lo, hi) is kept: the aligner's rule for
    what lies outside a photo (align._region). lo, hi: int32 [B]."""
    import tensorflow as tf

    i = tf.range(n)[None, :]
    lo, hi = lo[:, None], hi[:, None]
    if fill == "reflect":  # numpy's "symmetric": the edge pixel repeated, then mirrored
        period = 2 * (hi - lo)
        j = tf.math.floormod(i - lo, period)
        return lo + tf.where(j < hi - lo, j, period - 1 - j)
    return tf.minimum(tf.maximum(i, lo), hi - 1)


def context_loss(images, boxes, fill: str):
    """Keep each image's box (int32 [B, 4]: x0, y0, x1, y1) and fill the rest of the frame as
    the aligner fills what lies outside a photo: a close-up, or a face at the photo's edge."""
    import tensorflow as tf

    rows = fill_indices(FRAME_HEIGHT, boxes[:, 1], boxes[:, 3], fill)
    cols = fill_indices(FRAME_WIDTH, boxes[:, 0], boxes[:, 2], fill)
    x = tf.gather(images, rows, axis=1, batch_dims=1)
    x = tf.gather(x, cols, axis=2, batch_dims=1)
    if fill == "black":
        inside_r = (tf.range(FRAME_HEIGHT)[None] >= boxes[:, 1:2]) & (tf.range(FRAME_HEIGHT)[None] < boxes[:, 3:4])
        inside_c = (tf.range(FRAME_WIDTH)[None] >= boxes[:, 0:1]) & (tf.range(FRAME_WIDTH)[None] < boxes[:, 2:3])
        mask = tf.cast(inside_r[:, :, None] & inside_c[:, None, :], x.dtype)
        x = x * mask[..., None]
    return x


def random_boxes(batch, seeds):
    """Face-centred boxes: each side anywhere between the face box (plus 0-10 %) and the frame
    edge, so tight close-ups and one-sided cuts (a face at the photo's edge) both occur."""
    import tensorflow as tf

    u = tf.random.stateless_uniform((batch, 4), seed=seeds)
    fx0, fy0, fx1, fy1 = FACE_BOX
    mx, my = 0.1 * (fx1 - fx0), 0.1 * (fy1 - fy0)
    x0 = (fx0 - mx) * u[:, 0]
    y0 = (fy0 - my) * u[:, 1]
    x1 = fx1 + mx + (FRAME_WIDTH - fx1 - mx) * u[:, 2]
    y1 = fy1 + my + (FRAME_HEIGHT - fy1 - my) * u[:, 3]
    return tf.cast(tf.round(tf.stack([x0, y0, x1, y1], axis=1)), tf.int32)


def augment_batch(images, params: dict, seed, step, fill: str | None = None):
    """Apply an AUGMENTS entry to a float32 batch [B, 218, 178, 3] (0..255). Photo degradations
    first (colour, grey, size, blur, JPEG), then landmark noise, then the aligner's context loss."""
    import tensorflow as tf

    from photo_sorter import align

    fill = fill or align.FILL
    b = tf.shape(images)[0]
    seeds = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64) * 16])
    pick = tf.random.stateless_uniform((b, 8), seed=seeds + 2)

    def maybe(x, column, p, fn):
        """fn on the images picked with probability p only (the ops cost CPU time per image)."""
        idx = tf.where(pick[:, column] < p)[:, 0]
        return tf.cond(tf.size(idx) > 0,
                       lambda: tf.tensor_scatter_nd_update(x, idx[:, None], fn(tf.gather(x, idx))),
                       lambda: x)

    x = images
    if params.get("color"):
        x = maybe(x, 0, params["color"], lambda v: color_jitter(v, seeds + 3))
    if params.get("gray"):
        x = maybe(x, 1, params["gray"], grayscale)
    if params.get("lowres"):
        f = tf.random.stateless_uniform((), seed=seeds + 4, minval=0.3, maxval=0.7)
        x = maybe(x, 2, params["lowres"], lambda v: down_up(v, f))
    if params.get("blur"):
        s = tf.random.stateless_uniform((), seed=seeds + 5, minval=0.6, maxval=1.5)
        x = maybe(x, 3, params["blur"], lambda v: blur(v, s))
    if params.get("jpeg"):
        q = tf.random.stateless_uniform((), seed=seeds + 6, minval=15, maxval=60, dtype=tf.int32)
        x = maybe(x, 4, params["jpeg"], lambda v: jpeg(tf.clip_by_value(v, 0.0, 255.0), q))
    x = geometric(x, params, seeds)
    if params.get("context"):
        x = maybe(x, 5, params["context"],
                  lambda v: context_loss(v, random_boxes(tf.shape(v)[0], seeds + 7), fill))
    return x


# ---------------------------------------------------------------- datasets

def _decode_frame(path):
    import tensorflow as tf

    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image = tf.image.resize(image, (FRAME_HEIGHT, FRAME_WIDTH), antialias=True)
    image.set_shape((FRAME_HEIGHT, FRAME_WIDTH, 3))
    return image  # float32 0..255


def _finish(ds, augment, seed: int):
    """Augment (batched) and convert to uint8, the model's input."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    params = AUGMENTS[augment] if isinstance(augment, str) else augment
    if params:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter()))
        ds = ds.map(lambda batch, step: (augment_batch(batch[0], params, seed, step), batch[1]),
                    num_parallel_calls=autotune)
    ds = ds.map(lambda x, y: (tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y),
                num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def make_dataset(paths, labels, batch_size: int = 32, augment: str | None = None,
                 shuffle: bool = False, seed: int = 0, repeat: bool = False):
    """tf.data pipeline of (uint8 frames [B, 218, 178, 3], float32 labels [B, n]) from image
    files showing the aligned frame (the original CelebA frames; other sizes are resized).
    Unreadable images are dropped, not fatal."""
    import tensorflow as tf

    labels = np.asarray(labels, np.float32)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(paths, str), labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda p, y: (_decode_frame(p), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors(log_warning=True).batch(batch_size)
    return _finish(ds, augment, seed)


def cache_dataset(frames: np.ndarray, rows, labels, batch_size: int = 32, augment: str | None = None,
                  shuffle: bool = False, seed: int = 0, repeat: bool = False):
    """The same pipeline over cached frames (rows of a FrameCache.frames array)."""
    import tensorflow as tf

    labels = np.asarray(labels, np.float32)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(rows, np.int64), labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)

    def gather(idx, y):
        x = tf.numpy_function(lambda i: frames[i].astype(np.float32), [idx], tf.float32)
        x.set_shape((None, FRAME_HEIGHT, FRAME_WIDTH, 3))
        return x, y

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return _finish(ds, augment, seed)
