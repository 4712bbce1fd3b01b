"""faces (MTCNN on a reduced copy) and align (5-point similarity to the CelebA template)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE_PHOTOS
from photo_sorter import align, faces, imaging
from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH


def rotation(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty], [0, 0, 1]])


def apply(matrix, points):
    points = np.asarray(points, np.float64)
    return (matrix @ np.column_stack([points, np.ones(len(points))]).T).T[:, :2]


def test_similarity_recovers_a_known_transform():
    src = np.array([[10, 20], [50, 22], [30, 45], [15, 60], [48, 61]], np.float64)
    known = rotation(25, 1.7, 12, -8)
    assert np.allclose(align.similarity(src, apply(known, src)), known, atol=1e-9)


@pytest.mark.parametrize("scale", [3.0, 1.0, 0.6])  # face larger than, as large as, smaller than the frame
def test_to_celeba_puts_landmarks_on_the_template(scale):
    """Dark spots where a rotated, scaled face's landmarks would be land on the template,
    to a tenth of a pixel (both the antialiased-reduction and the direct path)."""
    template = align.template()
    to_photo = rotation(20, scale, 300, 250) @ rotation(0, 1, -FRAME_WIDTH / 2, -FRAME_HEIGHT / 2)
    points = apply(to_photo, template)
    ys, xs = np.mgrid[0:600, 0:700]
    ink = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * (2 * scale) ** 2)) for x, y in points)
    photo = Image.fromarray((255 * (1 - np.clip(ink, 0, 1))).astype(np.uint8)).convert("RGB")
    frame = align.to_celeba(photo, points)
    assert frame.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) and frame.dtype == np.uint8
    dark = 255 - frame[:, :, 0].astype(np.float64)
    for tx, ty in template:
        window = (slice(int(ty) - 9, int(ty) + 10), slice(int(tx) - 9, int(tx) + 10))
        weight = dark[window]
        wy, wx = np.mgrid[window]
        assert weight.sum() > 1000  # the spot is there
        cx, cy = (wx * weight).sum() / weight.sum(), (wy * weight).sum() / weight.sum()
        assert abs(cx - tx) < 0.15 and abs(cy - ty) < 0.15


def test_template_is_a_plausible_celeba_geometry():
    t = align.template()
    assert t.shape == (5, 2)
    assert t[0, 0] < t[2, 0] < t[1, 0]                 # nose between the eyes
    assert t[0, 1] < t[2, 1] < t[3, 1]                 # eyes above nose above mouth
    assert 30 < t[1, 0] - t[0, 0] < 50                 # CelebA eye distance is ~39 px


def test_detection_side_rule():
    assert faces.detection_side(4000, 3000, 1024, 40) == 2000    # 40 px faces need 20 px there
    assert faces.detection_side(4000, 3000, 1024, 200) == 1024   # big faces: the cap applies
    assert faces.detection_side(600, 400, 1024, 10) == 600       # never upscaled
    assert faces.detection_side(4000, 3000, 1024) == 1024        # default: the cap


@pytest.fixture(scope="module")
def portrait():
    return imaging.open_photo(SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg")


def test_detect_maps_reduced_copy_back_to_full_resolution(portrait):
    full = faces.detect(portrait.image(), min_face=40)
    small_image = portrait.image(400)
    small = faces.detect(small_image, scale=portrait.scale_of(small_image), min_face=40)
    assert len(full) == len(small) == 1
    face_size = full[0].size
    assert np.allclose(small[0].box, full[0].box, atol=0.06 * face_size)
    assert np.allclose(small[0].landmarks, full[0].landmarks, atol=0.05 * face_size)
    assert max(small[0].box[:2]) > 100  # really in full-resolution coordinates
    assert faces.detect(small_image, scale=portrait.scale_of(small_image), min_face=2000) == []


def test_large_min_face_does_not_break_mtcnn():
    """mtcnn 1.0's pyramid runs below PNet's input size when min_face_size is large."""
    rgb = imaging.open_photo(SAMPLE_PHOTOS / "astronaut_eileen_collins_nasa.png").image()
    assert len(faces.detect(rgb, min_face=90)) == 1
    assert faces.detect(Image.new("RGB", (10, 10)), min_face=4) == []


def round_trip(frame: np.ndarray) -> tuple[float, float]:
    """Run an aligned frame through detect + align: (largest displacement of the frame's corners
    and centre under the re-alignment, in pixels; correlation of the central face region)."""
    again = align.pipeline_frame(frame)
    assert again is not None and again.shape == frame.shape
    landmarks = faces.detect(frame)[0].landmarks
    assert np.array_equal(again, align.to_celeba(frame, landmarks))
    m = align.similarity(landmarks, align.template())
    points = np.array([[0, 0], [FRAME_WIDTH, 0], [0, FRAME_HEIGHT], [FRAME_WIDTH, FRAME_HEIGHT],
                       [FRAME_WIDTH / 2, FRAME_HEIGHT / 2]], np.float64)
    displacement = np.abs(apply(m, points) - points).max()
    centre = (slice(60, 180), slice(40, 140))
    return displacement, np.corrcoef(again[centre].ravel(), frame[centre].ravel())[0, 1]


def test_aligned_frame_through_the_pipeline_comes_back_to_itself(portrait):
    """A CelebA-style frame (a sample face aligned to the template) survives detect + align:
    re-detection moves MTCNN's landmarks by a few pixels, no more."""
    found = faces.detect(portrait.image(), min_face=40)
    frame = align.to_celeba(portrait.image(), found[0].landmarks)
    displacement, correlation = round_trip(frame)
    assert displacement < 6 and correlation > 0.85
    crop = Image.open(io.BytesIO(align.encode_crop(frame)))
    assert crop.size == (89, 109)


def test_real_celeba_frames_come_back_close(shared_dir):
    """CelebA's own alignment differs from MTCNN's landmarks by several pixels per image."""
    paths = sorted((shared_dir / "celeba" / "img_align_celeba").glob("*.jpg"))[-8:]
    results = [round_trip(np.asarray(Image.open(p).convert("RGB"))) for p in paths]
    displacements, correlations = zip(*results)
    assert np.median(displacements) < 10 and np.median(correlations) > 0.85


def test_no_face_gives_none():
    rgb = np.asarray(imaging.open_photo(SAMPLE_PHOTOS / "noface_coffee_cc0.png").image())
    assert align.pipeline_frame(rgb) is None
