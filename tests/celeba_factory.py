"""Generate tiny CelebA folders (official or Kaggle layout) whose labels are visible in the images:
each attribute k that is positive lights up its own horizontal band of the frame, so a model can
learn (and overfit) them in a few seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from photo_sorter.attributes import CELEBA_ATTRIBUTES


def frame_for(labels: np.ndarray, rng: np.random.Generator, size=(178, 218)) -> Image.Image:
    w, h = size
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    band = h // len(labels)
    for k, on in enumerate(labels):
        if on:
            img[k * band:(k + 1) * band, :, k % 3] = 230
    return Image.fromarray(img)


def make_celeba(root: Path, layout: str = "official", n: int = 24, attributes=("Smiling", "Male"),
                missing: int = 0, partitions=(0.75, 0.25), seed: int = 0, size=(178, 218),
                val_repeats_train: bool = False) -> Path:
    """Write a CelebA folder with n annotated images (the last `missing` of them not on disk).
    The attribute file has all 40 columns; `attributes` are the ones drawn in the image, the
    others are -1. With val_repeats_train, the validation images are copies of the first training
    images (for tests that want a model to fit exactly what it saw)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    img_dir = root / "img_align_celeba"
    if layout == "kaggle":
        img_dir = img_dir / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    labels = rng.integers(0, 2, (n, len(attributes))).astype(np.uint8)
    full = -np.ones((n, len(CELEBA_ATTRIBUTES)), int)
    for j, a in enumerate(attributes):
        full[:, CELEBA_ATTRIBUTES.index(a)] = 2 * labels[:, j].astype(int) - 1
    n_train = int(round(n * partitions[0]))
    parts = [0 if i < n_train else 1 for i in range(n)]
    images = [frame_for(labels[i], rng, size) for i in range(n)]
    if val_repeats_train:
        for i in range(n_train, n):
            images[i], labels[i] = images[i - n_train], labels[i - n_train]
            full[i] = full[i - n_train]
    for name, image in zip(names[: n - missing], images):
        image.save(img_dir / name, quality=95)
    if layout == "kaggle":
        rows = [",".join(["image_id", *CELEBA_ATTRIBUTES])]
        rows += [",".join([nm, *map(str, r)]) for nm, r in zip(names, full)]
        (root / "list_attr_celeba.csv").write_text("\n".join(rows) + "\n")
        prow = ["image_id,partition"] + [f"{nm},{p}" for nm, p in zip(names, parts)]
        (root / "list_eval_partition.csv").write_text("\n".join(prow) + "\n")
    else:
        rows = [str(n), " ".join(CELEBA_ATTRIBUTES)]
        rows += [nm + " " + " ".join(f"{v:2d}" for v in r) for nm, r in zip(names, full)]
        (root / "list_attr_celeba.txt").write_text("\n".join(rows) + "\n")
        (root / "list_eval_partition.txt").write_text(
            "\n".join(f"{nm} {p}" for nm, p in zip(names, parts)) + "\n")
    return root
