"""CelebA training: tf.data input pipeline, model builder, losses, fit with checkpoints and resume.

Every image the pipeline yields is the aligned 178x218 frame as uint8 RGB, the same frame the scan
produces; the model resizes and normalises inside itself, so training, evaluation and the app all
feed it the same thing.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from photo_sorter.model import FRAME_HEIGHT, FRAME_WIDTH

# The article's ImageDataGenerator settings (shear in degrees, as ImageDataGenerator reads it).
ARTICLE_AUGMENT = dict(rotation=20.0, shift=0.2, shear=0.2, zoom=0.2, flip=True)
LIGHT_AUGMENT = dict(rotation=10.0, shift=0.05, shear=0.0, zoom=0.1, flip=True)
AUGMENTS = {"article": ARTICLE_AUGMENT, "light": LIGHT_AUGMENT, "none": None}


@dataclass
class TrainConfig:
    celeba: str
    out: str
    attributes: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    image_size: int = 96
    alpha: float = 1.0
    init: str = "none"               # none | imagenet | tflite:PATH
    epochs: int = 5
    batch_size: int = 32
    loss: str = "bce"                # bce | weighted_bce | focal | cosine
    optimizer: str = "adam"          # adam | adadelta
    learning_rate: float = 1e-3      # head warm-up, and everything when init is none
    finetune_learning_rate: float = 1e-4  # whole network after the warm-up (pretrained starts)
    head_epochs: int = 1             # pretrained starts: epochs that train the head alone first
    augment: str = "article"         # article | light | none
    dropout: float = 0.5
    seed: int = 42
    max_images: int | None = None    # cap on training images, for quick runs
    patience: int = 3


class TrainingError(ValueError):
    """A training setting that cannot work (unknown init, loss, ...)."""


# ---------------------------------------------------------------- input pipeline

def _decode_frame(path):
    import tensorflow as tf

    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image = tf.image.resize(image, (FRAME_HEIGHT, FRAME_WIDTH), antialias=True)
    image.set_shape((FRAME_HEIGHT, FRAME_WIDTH, 3))
    return image  # float32 0..255


def _augment_transforms(batch: int, params: dict, seeds):
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


def make_dataset(paths, labels, batch_size: int = 32, augment: str | None = None,
                 shuffle: bool = False, seed: int = 0, repeat: bool = False):
    """tf.data pipeline of (uint8 aligned frames [B, 218, 178, 3], float32 labels [B, n]).

    Images of any size showing the aligned frame (e.g. the 89x109 copies) are resized to the frame.
    Augmentation is one projective transform per image, applied to whole batches, which keeps it
    a small share of the training time. Unreadable images are dropped, not fatal.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    labels = np.asarray(labels, np.float32)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(paths, str), labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda p, y: (_decode_frame(p), y), num_parallel_calls=autotune)
    ds = ds.ignore_errors(log_warning=True)
    ds = ds.batch(batch_size)
    params = AUGMENTS[augment] if isinstance(augment, str) else augment
    if params:
        counter = tf.data.Dataset.counter()
        ds = tf.data.Dataset.zip((ds, counter))

        def _augment(batch, step):
            images, y = batch
            n = tf.shape(images)[0]
            seeds = tf.stack([tf.cast(seed, tf.int64), step])
            transforms = _augment_transforms(n, params, seeds)
            out = tf.raw_ops.ImageProjectiveTransformV3(
                images=images, transforms=transforms,
                output_shape=tf.constant([FRAME_HEIGHT, FRAME_WIDTH]),
                fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
            return out, y

        ds = ds.map(_augment, num_parallel_calls=autotune)
    ds = ds.map(lambda x, y: (tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y),
                num_parallel_calls=autotune)
    return ds.prefetch(autotune)


# ---------------------------------------------------------------- model

def build_model(n_attributes: int, image_size: int = 96, alpha: float = 1.0, init: str = "none",
                dropout: float = 0.5, dense: int = 1536):
    """MobileNetV2 -> GAP -> Dense(1536, relu) -> BatchNorm -> Dropout -> Dense(n, sigmoid), as in
    the article, with the resize and MobileNetV2's [-1, 1] scaling inside: input is uint8 RGB of
    any size (the 178x218 aligned frame)."""
    import keras

    if init not in ("none", "imagenet") and not init.startswith("tflite:"):
        raise TrainingError(f"unknown init {init!r}; use none, imagenet or tflite:PATH")
    weights = "imagenet" if init == "imagenet" else None
    inputs = keras.Input((None, None, 3), dtype="uint8", name="frame")
    x = keras.layers.Resizing(image_size, image_size, antialias=True, name="resize")(inputs)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(x)
    backbone = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), alpha=alpha, include_top=False, weights=weights)
    if init.startswith("tflite:"):
        from photo_sorter.tflite_init import TFLiteWeights, load_into

        try:
            load_into(backbone, TFLiteWeights(init.split(":", 1)[1]))
        except ValueError as exc:  # the file does not fit this backbone (alpha other than 1.0)
            raise TrainingError(str(exc)) from None
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # A pretrained start fine-tunes with batch norm in inference mode (batch statistics of
            # small CPU batches would replace the pretrained ones); from scratch, moving averages
            # must settle within the few thousand steps a CPU run has (Keras' default is 0.999).
            layer.trainable = init == "none"
            layer.momentum = 0.9
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(dense, activation="relu")(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)  # settles within the first steps
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_attributes, activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name="celeba_mobilenetv2")


def make_loss(name: str, positive_rates: np.ndarray | None = None, gamma: float = 2.0):
    """bce (default); weighted_bce (positives weighted by the negative/positive ratio of each
    attribute); focal; cosine (the article's cosine-proximity loss)."""
    import keras
    from keras import ops

    if name == "bce":
        return keras.losses.BinaryCrossentropy()
    if name == "cosine":
        return keras.losses.CosineSimilarity(axis=-1)
    if name == "focal":
        return keras.losses.BinaryFocalCrossentropy(gamma=gamma)
    if name == "weighted_bce":
        rates = np.clip(np.asarray(positive_rates, np.float32), 1e-3, 1 - 1e-3)
        w_pos, w_neg = 0.5 / rates, 0.5 / (1 - rates)

        def weighted_bce(y_true, y_pred):
            y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)
            per = -(w_pos * y_true * ops.log(y_pred) + w_neg * (1 - y_true) * ops.log(1 - y_pred))
            return ops.mean(per, axis=-1)

        return weighted_bce
    raise TrainingError(f"unknown loss {name!r}; use bce, weighted_bce, focal or cosine")


# ---------------------------------------------------------------- fit

def _cancel_callback(cancelled):
    """Keras callback that stops training once cancelled() is true (checked after each batch)."""
    import keras

    class Cancel(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if cancelled():
                self.model.stop_training = True

    return Cancel()


def train(config: TrainConfig, callbacks=(), cancel=None, log=print) -> dict:
    """Train, checkpoint the best validation loss, calibrate thresholds on the validation
    partition, and write the model with its card. Resumes from `<out>.work/` if it exists.

    Returns the card (a dict)."""
    import keras
    import tensorflow as tf

    from photo_sorter import celeba, evaluation

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    data = celeba.load(config.celeba).select(config.attributes, config.drop)
    log(f"CelebA: {data.summary}")
    train_set, val_set = data.partition("train"), data.partition("val")
    if config.max_images and len(train_set.names) > config.max_images:
        pick = np.random.default_rng(config.seed).choice(len(train_set.names), config.max_images, replace=False)
        train_set = train_set.subset(np.sort(pick))
    if not len(train_set.names):
        raise celeba.CelebAError(f"{config.celeba}: no training images found")
    if not len(val_set.names):  # a folder without validation images: hold out 10 % of train
        idx = np.random.default_rng(config.seed).permutation(len(train_set.names))
        n_val = max(1, len(idx) // 10)
        val_set, train_set = train_set.subset(np.sort(idx[:n_val])), train_set.subset(np.sort(idx[n_val:]))
    log(f"train {len(train_set.names):,} images, validation {len(val_set.names):,}")

    out = Path(config.out)
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(asdict(config), indent=2))

    model = build_model(len(data.attributes), config.image_size, config.alpha, config.init, config.dropout)
    loss = make_loss(config.loss, train_set.labels.mean(0))
    steps = math.ceil(len(train_set.names) / config.batch_size)
    train_ds = make_dataset(train_set.paths, train_set.labels, config.batch_size, config.augment,
                            shuffle=True, seed=config.seed, repeat=True)
    val_ds = make_dataset(val_set.paths, val_set.labels, config.batch_size)
    best, head_done = work / "best.keras", work / "head.weights.h5"

    def fit(lr, first, last, backup, extra=()):
        opt = (keras.optimizers.Adadelta(learning_rate=lr) if config.optimizer == "adadelta"
               else keras.optimizers.Adam(learning_rate=lr))
        model.compile(optimizer=opt, loss=loss, metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
        # kept after the run: a later call with more epochs, or after a cancel, resumes from it
        cbs = [keras.callbacks.BackupAndRestore(str(work / backup), delete_checkpoint=False),
               keras.callbacks.CSVLogger(str(work / "log.csv"), append=True),
               _cancel_callback(cancelled), *extra, *callbacks]
        model.fit(train_ds, validation_data=val_ds, initial_epoch=first, epochs=last,
                  steps_per_epoch=steps, callbacks=cbs, verbose=2 if log is print else 0)

    start = time.time()
    head_epochs = min(config.head_epochs, config.epochs) if config.init != "none" else 0
    fine_lr = config.learning_rate if config.init == "none" else config.finetune_learning_rate
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    if head_epochs and head_done.exists():
        model.load_weights(head_done)
    elif head_epochs:
        _set_trainable(backbone, False, config.init)
        fit(config.learning_rate, 0, head_epochs, "backup_head")
        if not cancelled():
            model.save_weights(head_done)
    if config.epochs > head_epochs and not cancelled():
        _set_trainable(backbone, True, config.init)
        fit(fine_lr, head_epochs, config.epochs, "backup", [
            keras.callbacks.ModelCheckpoint(
                str(best), monitor="val_loss", save_best_only=True,
                initial_value_threshold=_best_val_loss(work / "log.csv", head_epochs) if best.exists() else None),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)])
    seconds = time.time() - start
    if cancelled():
        return {"cancelled": True, "work_dir": str(work)}
    if best.exists():
        model = keras.saving.load_model(best, compile=False)
    history = _read_log(work / "log.csv")

    val_probs, val_labels = evaluation.predict_dataset(  # unreadable images are left out
        lambda x: model(x, training=False), make_dataset(val_set.paths, val_set.labels, 64))
    thresholds, metrics = evaluation.calibrate(val_probs, val_labels, data.attributes, config.seed)
    card = {
        "name": out.stem,
        "attributes": data.attributes,
        "input_size": config.image_size,
        "frame": {"width": FRAME_WIDTH, "height": FRAME_HEIGHT,
                  "definition": "CelebA aligned frame (img_align_celeba geometry), uint8 RGB"},
        "preprocessing": "inside the model: resize to input_size x input_size (bilinear, antialias), x/127.5-1",
        "thresholds": thresholds,
        "metrics": metrics,
        "history": history,
        "training": {**asdict(config), "seconds": round(seconds, 1), "epochs_run": len(history.get("loss", [])),
                     "train_images": int(len(train_set.names)), "val_images": int(len(val_set.names)),
                     "machine": _machine()},
        "data": f"CelebA ({data.summary}); {data.layout} layout; image folders: "
                + ", ".join(d.name for d in data.image_dirs),
        "seed": config.seed,
        "training_command": training_command(config),
        "license": "Trained on CelebA: for non-commercial research purposes only.",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2))
    return card


def training_command(config: TrainConfig) -> str:
    """The headless command line that reproduces this training."""
    defaults = TrainConfig(celeba="", out="")
    parts = ["python main.py --headless train", f"--celeba {config.celeba}"]
    for key, value in asdict(config).items():
        if key in ("celeba", "out") or value == getattr(defaults, key):
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(f"{flag} {' '.join(value)}" if isinstance(value, list) else f"{flag} {value}")
    return " ".join([*parts, f"--out {config.out}"])


def _set_trainable(backbone, trainable: bool, init: str) -> None:
    """Freeze or unfreeze the backbone; batch norm of a pretrained start stays frozen."""
    import keras

    backbone.trainable = trainable
    if trainable and init != "none":
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def _read_log(path: Path) -> dict[str, list[float]]:
    """The CSV log of all epochs, across resumes, as {metric: [value per epoch]}."""
    import csv

    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def _best_val_loss(log_csv: Path, first_epoch: int) -> float | None:
    """Lowest validation loss already checkpointed, so a resumed run keeps a better earlier best."""
    losses = _read_log(log_csv).get("val_loss", [])[first_epoch:]
    return min(losses) if losses else None


def _machine() -> str:
    import platform

    from photo_sorter.model import device_name

    return f"{platform.machine()}, {os.cpu_count()} cores, {device_name()}"
