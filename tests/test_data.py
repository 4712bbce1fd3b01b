"""Pipeline-frame cache and the robustness augmentations (photo_sorter/data.py). No ../shared."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from photo_sorter import align, data
from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "sample_photos"


def _smooth_frame(seed=0) -> np.ndarray:
    """A synthetic frame with structure everywhere (gradients + blobs), uint8 [218, 178, 3]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:FRAME_HEIGHT, 0:FRAME_WIDTH].astype(np.float32)
    chans = [127 + 60 * np.sin(xx / (9 + 4 * c) + rng.random() * 6) * np.cos(yy / (13 + 3 * c)) for c in range(3)]
    return np.clip(np.stack(chans, -1) + rng.normal(0, 8, (FRAME_HEIGHT, FRAME_WIDTH, 3)), 0, 255).astype(np.uint8)


def _batch(*frames) -> tf.Tensor:
    return tf.constant(np.stack(frames).astype(np.float32))


def test_grayscale_has_equal_channels_and_keeps_luma():
    frame = _smooth_frame()
    out = data.grayscale(_batch(frame)).numpy()[0]
    assert np.allclose(out[..., 0], out[..., 1]) and np.allclose(out[..., 1], out[..., 2])
    luma = np.asarray(Image.fromarray(frame).convert("L"), np.float32)
    assert np.abs(out[..., 0] - luma).mean() < 1.0


def test_color_jitter_changes_colour_balance_within_range():
    frames = _batch(*[_smooth_frame(i) for i in range(8)])
    out = data.color_jitter(frames, tf.constant([3, 4], tf.int64)).numpy()
    assert out.min() >= 0 and out.max() <= 255
    ratios = out.mean(axis=(1, 2)) / frames.numpy().mean(axis=(1, 2))
    assert np.abs(ratios - 1).max() > 0.03          # something changed
    assert np.ptp(ratios, axis=1).max() > 0.02      # channels moved differently: white balance


def test_down_up_removes_fine_detail_but_keeps_the_picture():
    frame = _smooth_frame()
    out = data.down_up(_batch(frame), 0.35).numpy()[0]
    assert out.shape == frame.shape
    detail = lambda a: np.abs(np.diff(a.astype(np.float32), axis=1)).mean()  # noqa: E731
    assert detail(out) < 0.7 * detail(frame)
    assert abs(out.mean() - frame.mean()) < 2


def test_blur_and_jpeg_degrade_without_moving_the_image():
    frame = _smooth_frame()
    blurred = data.blur(_batch(frame), tf.constant(1.2)).numpy()[0]
    assert blurred.shape == frame.shape and blurred.std() < frame.std()
    assert abs(blurred.mean() - frame.mean()) < 1
    jpg = data.jpeg(_batch(frame), tf.constant(15)).numpy()[0]
    assert jpg.shape == frame.shape and abs(jpg.mean() - frame.mean()) < 3
    assert 1 < np.abs(jpg - frame).mean() < 25


def test_geometric_jitter_is_small_and_identity_without_parameters():
    frame = _smooth_frame()
    still = dict(rotation=0.0, shift=0.0, shear=0.0, zoom=0.0, flip=False)
    out = data.geometric(_batch(frame), still, tf.constant([1, 2], tf.int64)).numpy()[0]
    assert np.abs(out - frame).max() < 1e-3
    moved = data.geometric(_batch(frame), data.ROBUST_AUGMENT, tf.constant([1, 2], tf.int64)).numpy()[0]
    assert moved.shape == frame.shape and moved.min() >= 0


@pytest.mark.parametrize("fill", align.FILLS)
def test_context_loss_fills_like_the_aligner(fill):
    """A photo that shows only part of the frame, aligned by the scan's aligner, equals the full
    frame with the context-loss augmentation cutting the same box."""
    frame = _smooth_frame(3)
    x0, y0, x1, y1 = 40, 55, 140, 190
    photo = frame[y0:y1, x0:x1]
    aligned = align.to_celeba(photo, align.template() - [x0, y0], fill=fill).astype(np.float32)
    box = tf.constant([[x0, y0, x1, y1]], tf.int32)
    augmented = data.context_loss(_batch(frame), box, fill).numpy()[0]
    inside = np.zeros(frame.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    assert np.abs(aligned - augmented)[inside].mean() < 2.0      # the kept part
    assert np.abs(aligned - augmented)[~inside].mean() < 3.0     # the fill: same rule
    others = [f for f in align.FILLS if f != fill]
    for other in others:  # and the rules are really different
        different = data.context_loss(_batch(frame), box, other).numpy()[0]
        assert np.abs(aligned - different)[~inside].mean() > 3 * max(0.5, np.abs(aligned - augmented)[~inside].mean())


def test_random_boxes_never_cut_the_face():
    boxes = data.random_boxes(500, tf.constant([5, 6], tf.int64)).numpy()
    fx0, fy0, fx1, fy1 = data.FACE_BOX
    assert (boxes[:, 0] <= fx0).all() and (boxes[:, 1] <= fy0).all()
    assert (boxes[:, 2] >= fx1).all() and (boxes[:, 3] >= fy1).all()
    assert (boxes[:, 2] <= FRAME_WIDTH).all() and (boxes[:, 3] <= FRAME_HEIGHT).all()
    assert (boxes[:, 0] > 20).mean() > 0.3  # tight boxes do occur


def test_robust_augment_degrades_a_share_and_is_reproducible():
    frames = _batch(*[_smooth_frame(i) for i in range(16)])
    a = data.augment_batch(frames, data.ROBUST_AUGMENT, 1, 7).numpy()
    b = data.augment_batch(frames, data.ROBUST_AUGMENT, 1, 7).numpy()
    c = data.augment_batch(frames, data.ROBUST_AUGMENT, 1, 8).numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    gray = np.isclose(a[..., 0], a[..., 1]).all(axis=(1, 2)) & np.isclose(a[..., 1], a[..., 2]).all(axis=(1, 2))
    assert 0 < gray.sum() < len(a) or data.ROBUST_AUGMENT["gray"] < 0.1


@pytest.fixture(scope="module")
def face_images(tmp_path_factory) -> list[Path]:
    """Two small real photos with a face each (bundled sample photos, reduced)."""
    out = tmp_path_factory.mktemp("faces")
    paths = []
    for name in ("obama_official_portrait_2012.jpg", "biden_blue_room_2010_crop.jpg"):
        with Image.open(SAMPLES / name) as im:
            im = im.convert("RGB")
            im.thumbnail((260, 260))
            im.save(out / name)
        paths.append(out / name)
    return paths


def test_frame_cache_is_reused_and_rebuilt_when_settings_change(face_images, tmp_path, monkeypatch):
    names = [p.name for p in face_images]
    first = data.build_frame_cache(face_images, names, tmp_path, workers=0, log=lambda *_: None)
    assert first.work == {"detected": 2, "realigned": 0}
    assert first.counts["found"] == 2 and (first.index(names) >= 0).all()
    assert first.frames.shape == (2, FRAME_HEIGHT, FRAME_WIDTH, 3) and first.frames.max() > 0
    assert first.manifest["fill"] == align.FILL and first.manifest["detector"]["confidence"] == 0.9

    again = data.build_frame_cache(face_images, names, tmp_path, workers=0, log=lambda *_: None)
    assert again.work == {"detected": 0, "realigned": 0}
    assert np.array_equal(np.asarray(again.frames), np.asarray(first.frames))

    other_fill = next(f for f in align.FILLS if f != align.FILL)
    refilled = data.build_frame_cache(face_images, names, tmp_path, fill=other_fill, workers=0, log=lambda *_: None)
    assert refilled.work == {"detected": 0, "realigned": 2} and refilled.directory != first.directory

    moved = align.template() + [1.5, 0.0]
    monkeypatch.setattr(align, "template", lambda: moved)
    retemplated = data.build_frame_cache(face_images, names, tmp_path, workers=0, log=lambda *_: None)
    assert retemplated.work == {"detected": 0, "realigned": 2}
    monkeypatch.undo()

    stricter = data.build_frame_cache(face_images, names, tmp_path, settings=data.DetectorSettings(confidence=0.95),
                                      workers=0, log=lambda *_: None)
    assert stricter.work == {"detected": 2, "realigned": 0}


def test_frame_cache_skips_and_counts_images_without_a_face(face_images, tmp_path):
    blank = tmp_path / "blank.jpg"
    Image.fromarray(_smooth_frame()).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    paths = [*face_images, blank, broken]
    cache = data.build_frame_cache(paths, [p.name for p in paths], tmp_path / "c", workers=0, log=lambda *_: None)
    assert cache.counts == {"images": 4, "found": 2, "no_face": 1, "unreadable": 1}
    assert list(cache.index(["blank.jpg", "broken.jpg", face_images[0].name, "absent.jpg"]) >= 0) == [False, False, True, False]


def test_cache_dataset_yields_the_cached_frames_with_their_labels():
    frames = np.stack([_smooth_frame(i) for i in range(5)])
    labels = np.eye(5, 2, dtype=np.float32)
    x, y = next(iter(data.cache_dataset(frames, [4, 0, 2], labels[[4, 0, 2]], batch_size=3)))
    assert x.dtype == tf.uint8 and np.array_equal(x.numpy(), frames[[4, 0, 2]])
    assert np.array_equal(y.numpy(), labels[[4, 0, 2]])
