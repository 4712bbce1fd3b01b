"""Training input pipeline: the article's Keras ImageDataGenerator against our tf.data pipeline.

    python benchmarks/bench_input.py [--images 2048] [--batch 32] [--batches 40]

Both read the real aligned CelebA JPEGs of ../shared/celeba/img_align_celeba with their 39 labels
and yield batches of --batch augmented images with the article's augmentation (rotation 20,
width/height shift 0.2, shear 0.2, zoom 0.2, horizontal flip), shuffled, at the same output size:
the 178x218 aligned frame. (Our model resizes to its input size inside, so the frame is what our
pipeline produces; the article's rescale=1/255 makes float32 batches, ours are uint8.)
  - article: ImageDataGenerator(...).flow_from_dataframe(class_mode="raw"), Keras' legacy
    generator (keras.src.legacy: Keras 3 keeps it only there); needs pandas;
  - ours: photo_sorter.data.make_dataset(paths, labels, batch, augment="article").
Each runs in a fresh process; the first 3 batches (start-up) are not timed, then --batches are.
The last line printed is the JSON of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import in_fresh_process  # noqa: E402

CELEBA = REPO.parent / "shared" / "celeba"
WARMUP_BATCHES = 3


def _data(images: int):
    from photo_sorter import celeba

    data = celeba.load(CELEBA, image_dirs=[CELEBA / "img_align_celeba"])
    return data.paths[:images], data.labels[:images].astype("float32"), data.attributes


def _time_batches(iterator, batches: int, batch: int) -> dict:
    for _ in range(WARMUP_BATCHES):
        next(iterator)
    start = time.perf_counter()
    shape = None
    for _ in range(batches):
        x, _y = next(iterator)
        shape = tuple(x.shape)
    seconds = time.perf_counter() - start
    return {"images_per_s": round(batches * batch / seconds, 1), "seconds": round(seconds, 2),
            "batch_shape": shape, "dtype": str(x.dtype)}


def run_article(images: int, batch: int, batches: int) -> dict:
    import pandas as pd
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    paths, labels, attributes = _data(images)
    frame = pd.DataFrame(labels, columns=attributes)
    frame.insert(0, "path", paths)
    generator = ImageDataGenerator(rotation_range=20, width_shift_range=0.2, height_shift_range=0.2,
                                   shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                                   rescale=1.0 / 255)
    flow = generator.flow_from_dataframe(frame, x_col="path", y_col=attributes, class_mode="raw",
                                         target_size=(218, 178), batch_size=batch, shuffle=True,
                                         seed=0, validate_filenames=False)
    return _time_batches(iter(flow), batches, batch)


def run_ours(images: int, batch: int, batches: int) -> dict:
    from photo_sorter.data import make_dataset

    paths, labels, _ = _data(images)
    dataset = make_dataset(paths, labels, batch_size=batch, augment="article", shuffle=True,
                           repeat=True)
    return _time_batches(dataset.as_numpy_iterator(), batches, batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    if not (CELEBA / "img_align_celeba").is_dir():
        print(f"CelebA images not found at {CELEBA}", file=sys.stderr)
        return 2
    results = {"images": args.images, "batch": args.batch, "batches_timed": args.batches,
               "output": "178x218 aligned frame", "load_before": [round(v, 2) for v in os.getloadavg()]}
    results["article_imagedatagenerator"] = in_fresh_process(run_article, args.images, args.batch, args.batches)
    results["ours_tf_data"] = in_fresh_process(run_ours, args.images, args.batch, args.batches)
    results["ratio"] = round(results["ours_tf_data"]["images_per_s"]
                             / results["article_imagedatagenerator"]["images_per_s"], 2)
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
