"""Face detection with MTCNN (the `mtcnn` package) on a reduced copy of each photo.

MTCNN's cost grows with the pixel count (about 19 s on a 12 MP photo on two CPU cores, under 1 s
at 1 MP), so the scan detects on a copy whose long side is `detect_size` (1024: on 4000x3000
photos 0.8 s a photo against 2.7 s for the 2000-pixel copy that 40-pixel faces need, the same
18 faces of 120-700 px found; benchmarks/bench_scan.py). The copy is enlarged only when a minimum face size
is asked for that MTCNN would not resolve there. Boxes and the 5 landmarks come back in the
coordinates of the full-resolution oriented photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

# Faces smaller than this (in pixels of the image MTCNN sees) are missed or badly landmarked.
MTCNN_MIN_FACE = 20
# Landmark order, as MTCNN returns them; "left"/"right" as seen in the image.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]  # x, y, w, h
    confidence: float
    landmarks: tuple[tuple[float, float], ...]  # 5 (x, y) in LANDMARK_NAMES order

    @property
    def size(self) -> float:
        return max(self.box[2], self.box[3])


def _scale_pyramid(width, height, min_face_size, scale_factor, min_size=12):
    """mtcnn 1.0 counts pyramid levels as if they started at scale 1, so with min_face_size above
    12 its last levels shrink below PNet's 12-pixel input and Keras raises; stop at min_size."""
    first = min_size / min_face_size
    smallest = (min_size + 1) / (first * min(width, height))  # +1: TF truncates the resized size
    count = max(1, int(np.floor(np.log(smallest) / np.log(scale_factor))) + 1)
    return first * scale_factor ** np.arange(count)


def _standardize_batch(images, normalize=True, justification="center"):
    """mtcnn 1.0 normalises into a float64 array that every pyramid level and both refinement
    stages convert to a tensor again; one float32 tensor serves them all (same values)."""
    import tensorflow as tf
    from mtcnn.utils.images import pad_stack_np

    stacked, shapes, padding = pad_stack_np(images, justification=justification)
    stacked = tf.convert_to_tensor(stacked, tf.float32)
    return ((stacked - 127.5) / 128 if normalize else stacked), shapes, padding


@cache
def default_detector():
    """One MTCNN per process, on the GPU when TensorFlow sees one: building its three networks
    costs about a second. Its networks run as compiled graphs (tf.function) instead of layer by
    layer: half the CPU time of detection, the same boxes (benchmarks/README.md)."""
    import mtcnn.mtcnn
    import mtcnn.stages.stage_pnet
    import tensorflow as tf
    from mtcnn import MTCNN

    mtcnn.stages.stage_pnet.build_scale_pyramid = _scale_pyramid
    mtcnn.mtcnn.standarize_batch = _standardize_batch
    detector = MTCNN(device="GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0")
    for stage, side in zip(detector.stages, (None, 24, 48)):
        spec = tf.TensorSpec([None, side, side, 3], tf.float32)
        stage._model = tf.function(stage._model, input_signature=[spec])
    return detector


def detection_side(width: int, height: int, detect_size: int, min_face: int | None = None) -> int:
    """Long side of the copy to detect on: detect_size, unless faces of min_face pixels (full
    resolution) would then be smaller than MTCNN_MIN_FACE; never larger than the photo."""
    long_side = max(width, height)
    needed = int(np.ceil(long_side * MTCNN_MIN_FACE / min_face)) if min_face else 0
    return min(long_side, max(detect_size, needed))


def detect(
    image: Image.Image | np.ndarray,
    *,
    scale: float = 1.0,
    min_face: int | None = None,
    confidence: float = 0.9,
    detector=None,
) -> list[DetectedFace]:
    """Faces in `image` (RGB), largest first, with coordinates multiplied by `scale` (full-res
    pixels per pixel of `image`). min_face is in full-resolution pixels; None: as small as MTCNN
    resolves in `image` (MTCNN_MIN_FACE)."""
    min_face = min_face or 0
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    min_face_size = max(MTCNN_MIN_FACE, min_face / scale)
    if rgb.ndim != 3 or min(rgb.shape[:2]) < min_face_size:
        return []
    detector = detector or default_detector()
    rows = detector.detect_faces(
        rgb,
        min_face_size=min_face_size,
        threshold_onet=confidence,
        output_type="numpy",
        box_format="xywh",
    )
    faces = []
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
        x, y, w, h = row[1:5] * scale
        if max(w, h) < min_face or row[5] < confidence:
            continue
        points = np.stack([row[6:11], row[11:16]], axis=1) * scale
        faces.append(
            DetectedFace(
                box=(float(x), float(y), float(w), float(h)),
                confidence=float(row[5]),
                landmarks=tuple((float(px), float(py)) for px, py in points),
            )
        )
    return sorted(faces, key=lambda f: -f.size)
