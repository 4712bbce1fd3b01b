"""CelebA training: model builder, losses, fit with checkpoints and resume, threshold choice.

The model sees what the scan produces: by default the pipeline frames of data.py (CelebA images
run through the scan's detector and aligner), as uint8 RGB; it resizes and normalises inside
itself. Model selection (best epoch, thresholds) uses an identity-disjoint slice of the train
partition; the official validation partition gives the final figures only.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from photo_sorter.data import AUGMENTS

@dataclass
class TrainConfig:
    celeba: str
    out: str
    attributes: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    image_size: int = 96
    alpha: float = 1.0
    init: str = "none"               # none | imagenet | tflite:PATH | keras:PATH (fine-tune a model)
    epochs: int = 5
    batch_size: int = 32
    loss: str = "bce"                # bce | weighted_bce | focal | cosine
    optimizer: str = "adam"          # adam | adadelta
    learning_rate: float = 1e-3      # head warm-up, and everything when init is none
    finetune_learning_rate: float = 1e-4  # whole network after the warm-up (pretrained starts)
    head_epochs: int = 1             # pretrained starts: epochs that train the head alone first
    augment: str = "robust"          # robust | article | light | none (data.AUGMENTS)
    frames: str = "pipeline"         # pipeline (detect + align, cached) | original (CelebA frames)
    frame_cache: str | None = None   # cache folder (default: the user cache folder)
    selection_fraction: float = 0.1  # share of train identities held out for model selection
    precision_floor: float = 0.75    # thresholds: tags must be at least this precise
    dropout: float = 0.5
    seed: int = 42
    max_images: int | None = None    # cap on training images, for quick runs
    patience: int = 3
    devices: int | str = 1           # N or "all": MirroredStrategy over the first N GPUs (batch_size per device)


class TrainingError(ValueError):
    """A training setting that cannot work (unknown init, loss, ...)."""


# ---------------------------------------------------------------- model

def build_model(n_attributes: int, image_size: int = 96, alpha: float = 1.0, init: str = "none",
                dropout: float = 0.5, dense: int = 1536):
    """MobileNetV2 -> GAP -> Dense(1536, relu) -> BatchNorm -> Dropout -> Dense(n, sigmoid), as in
    the article, with the resize and MobileNetV2's [-1, 1] scaling inside: input is uint8 RGB of
    any size (the 178x218 aligned frame)."""
    import keras

    if init.startswith("keras:"):
        return _from_model(init.split(":", 1)[1], n_attributes)
    if init not in ("none", "imagenet") and not init.startswith("tflite:"):
        raise TrainingError(f"unknown init {init!r}; use none, imagenet, tflite:PATH or keras:PATH")
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


def _from_model(path: str, n_attributes: int):
    """Fine-tune an existing attribute model (e.g. the installed one): its weights, its input
    size; a new output layer only when the number of attributes differs."""
    import keras

    from photo_sorter.model import AttributeModel, ModelError

    try:
        model = AttributeModel.load(path).keras_model
    except ModelError as exc:
        raise TrainingError(str(exc)) from None
    if model.outputs[0].shape[-1] != n_attributes:
        features = model.get_layer("attributes").input
        outputs = keras.layers.Dense(n_attributes, activation="sigmoid", name="attributes")(features)
        model = keras.Model(model.inputs, outputs, name=model.name)
    return model


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


# ---------------------------------------------------------------- devices

def _visible_devices() -> list:
    """The logical GPUs, or the logical CPUs when there is no GPU (one, unless configured)."""
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")


def _strategy(devices: int | str):
    """(tf.distribute strategy, device names) for `devices` (N or "all"): one device keeps the
    default strategy, more mirror the model over the first N visible devices."""
    import tensorflow as tf

    visible = _visible_devices()
    names = [d.name.split("device:")[-1] for d in visible]
    if devices == "all":
        n = len(visible)
    elif isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        n = devices
    else:
        raise TrainingError(f"devices must be a positive whole number or 'all', not {devices!r}")
    if n > len(visible):
        raise TrainingError(f"{n} devices asked for, but {len(visible)} visible: {', '.join(names)}")
    if n == 1:
        return tf.distribute.get_strategy(), names[:1]
    return tf.distribute.MirroredStrategy([d.name for d in visible[:n]]), names[:n]


def _batch_norms(model):
    """The batch-norm layers of the model and of the backbone inside it."""
    import keras

    for layer in model.layers:
        yield from (_batch_norms(layer) if isinstance(layer, keras.Model)
                    else [layer] if isinstance(layer, keras.layers.BatchNormalization) else [])


def _synchronize_batch_norm(model, on: bool) -> None:
    """Several replicas: batch norm takes its statistics over the global batch (SyncBatchNorm),
    so N devices train as one device with the N-times batch, not N small batches; the saved
    model is left as a one-device one."""
    for layer in _batch_norms(model):
        layer.synchronized = on


# ---------------------------------------------------------------- fit

class Cancelled(Exception):
    """Raised inside fit when the user cancels: Keras would otherwise validate and log the
    partial epoch as finished. The last finished epoch's backup stays for Resume."""


def _cancel_callback(cancelled):
    """Keras callback that aborts training once cancelled() is true (checked after each batch)."""
    import keras

    class Cancel(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if cancelled():
                raise Cancelled()

    return Cancel()


class _ProcessState:
    """train() sets process-wide seeds and op determinism; this puts them back afterwards, so a
    caller (the app, a test) is left as it was."""

    def __enter__(self):
        from tensorflow.python.framework import config  # the public API has no getter/disable

        self.python, self.numpy = random.getstate(), np.random.get_state()
        self.deterministic = config.is_op_determinism_enabled()
        return self

    def __exit__(self, *exc):
        from tensorflow.python.framework import config

        random.setstate(self.python)
        np.random.set_state(self.numpy)
        if not self.deterministic:
            config.disable_op_determinism()
        return False


def _datasets(config: TrainConfig, data, log, cancelled=lambda: False):
    """(fit, selection, val) as (frame source, rows or paths, labels): frame source is the cache's
    frame array for pipeline frames, None for the original files. Images where the scan's
    detector finds no face are skipped and counted. Building the frame cache (minutes on a first
    run) logs its progress and stops with Cancelled when cancelled() (it resumes next time)."""
    from photo_sorter import celeba, data as frames_data

    train_all, val_set = data.partition("train"), data.partition("val")
    if config.max_images and len(train_all.names) > config.max_images:
        pick = np.random.default_rng(config.seed).choice(len(train_all.names), config.max_images, replace=False)
        train_all = train_all.subset(np.sort(pick))
    if not len(train_all.names):
        raise celeba.CelebAError(f"{config.celeba}: no training images found")
    fit_set, selection = train_all.split_by_identity(config.selection_fraction, config.seed)
    if not len(val_set.names):  # no validation images: the final figures come from the selection slice
        val_set = selection
    log(f"train {len(fit_set.names):,} images, selection {len(selection.names):,} "
        f"(identity-disjoint, from train), validation {len(val_set.names):,}")
    if config.frames == "original":
        return [(None, s.paths, s.labels) for s in (fit_set, selection, val_set)], {}
    if config.frames != "pipeline":
        raise TrainingError(f"unknown frames {config.frames!r}; use pipeline or original")
    every = data.subset(np.isin(data.partitions, [0, 1]))  # one cache for train and validation
    tenths = [-1]

    def progress(done: int, total: int) -> None:  # a line per tenth: the wizard's log shows it
        if done * 10 // max(total, 1) > tenths[0]:
            tenths[0] = done * 10 // max(total, 1)
            log(f"face frames: {done:,} of {total:,} images detected and aligned")

    try:
        cache = frames_data.build_frame_cache(every.paths, every.names, config.frame_cache,
                                              progress=progress, cancel=cancelled, log=log)
    except frames_data.IncompleteCache:
        raise Cancelled() from None
    if cancelled():
        raise Cancelled()
    out, skipped = [], {}
    for name, part in (("train", fit_set), ("selection", selection), ("validation", val_set)):
        rows = cache.index(part.names)
        skipped[name] = int((rows < 0).sum())
        out.append((cache.frames, rows[rows >= 0], part.labels[rows >= 0]))
    log(f"pipeline frames: no face found in {skipped} images (skipped)")
    if not len(out[0][2]) or not len(out[1][2]):
        raise TrainingError("the face detector found no face in the training images; "
                            "for frames that are not photos of faces use frames=original")
    return out, skipped


def selection_frames(card: dict, celeba_root: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames, labels) of the selection slice a model was trained with, rebuilt from its card:
    where model-selection measurements (flip averaging, the precision floor) are made."""
    from photo_sorter import celeba

    known = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in card["training"].items() if k in known})
    config.celeba = celeba_root
    data = celeba.load(celeba_root).select(card["attributes"])
    (_, (frames, items, labels), _), _ = _datasets(config, data, log=lambda *_: None)
    if frames is None:
        raise TrainingError("the model was trained on original frames; its selection slice has no cached frames")
    return np.asarray(frames[items]), labels


def _dataset(source, batch_size, **kw):
    from photo_sorter import data

    frames, items, labels = source
    if frames is None:
        return data.make_dataset(items, labels, batch_size, **kw)
    return data.cache_dataset(frames, items, labels, batch_size, **kw)


def train(config: TrainConfig, callbacks=(), cancel=None, log=print) -> dict:
    """Train, keep the epoch with the best selection loss, choose thresholds on the selection
    slice, measure the final figures on the validation partition, and write the model, its card
    and the result files (`<out>.results/`). Resumes from `<out>.work/` if it exists.

    Returns the card (a dict), or {"cancelled": True, ...}."""
    with _ProcessState():
        return _train(config, callbacks, cancel, log)


def _train(config: TrainConfig, callbacks, cancel, log) -> dict:
    import keras
    import tensorflow as tf

    from photo_sorter import celeba, evaluation, model_card

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    if config.augment not in AUGMENTS:
        raise TrainingError(f"unknown augment {config.augment!r}; use robust, article, light or none")
    strategy, devices = _strategy(config.devices)
    replicas = len(devices)
    config = replace(config, devices=replicas)  # "all" is recorded as the count it meant here
    distribution = {"devices": devices, "batch_per_device": config.batch_size,
                    "global_batch": config.batch_size * replicas, "learning_rate_scale": replicas,
                    "batch_norm": "synchronized across devices" if replicas > 1 else "one device"}
    if replicas > 1:
        log(f"MirroredStrategy over {replicas} devices ({', '.join(devices)}): global batch "
            f"{distribution['global_batch']} ({config.batch_size} per device), learning rates x {replicas}, "
            "batch norm synchronized across devices")
    data = celeba.load(config.celeba).select(config.attributes, config.drop)
    log(f"CelebA: {data.summary}")
    out = Path(config.out)
    work = out.with_name(out.name + ".work")
    try:
        (fit_src, sel_src, val_src), skipped = _datasets(config, data, log, cancelled)
    except Cancelled:
        return {"cancelled": True, "work_dir": str(work)}
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(asdict(config), indent=2))

    with strategy.scope():
        model = build_model(len(data.attributes), config.image_size, config.alpha, config.init, config.dropout)
    _synchronize_batch_norm(model, replicas > 1)
    loss = make_loss(config.loss, fit_src[2].mean(0))
    # the pipeline makes global batches; model.fit splits each one over the replicas. Under a
    # strategy Keras 3 builds the model on a batch of one iterator over train_ds and trains on a
    # new one, so N devices see another (as random) shuffle order than one device does.
    batch = distribution["global_batch"]
    steps = math.ceil(len(fit_src[2]) / batch)
    train_ds = _dataset(fit_src, batch, augment=config.augment, shuffle=True, seed=config.seed, repeat=True)
    sel_ds = _dataset(sel_src, 64)
    best, head_done = work / "best.keras", work / "head.weights.h5"

    def fit(lr, first, last, backup, extra=()):
        lr *= replicas  # linear scaling: N times the batch, N times the step
        opt = (keras.optimizers.Adadelta(learning_rate=lr) if config.optimizer == "adadelta"
               else keras.optimizers.Adam(learning_rate=lr))
        model.compile(optimizer=opt, loss=loss, metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
        # kept after the run: a later call with more epochs, or after a cancel, resumes from it
        cbs = [_cancel_callback(cancelled),
               keras.callbacks.BackupAndRestore(str(work / backup), delete_checkpoint=False),
               keras.callbacks.CSVLogger(str(work / "log.csv"), append=True), *extra, *callbacks]
        model.fit(train_ds, validation_data=sel_ds, initial_epoch=first, epochs=last,
                  steps_per_epoch=steps, callbacks=cbs, verbose=2 if log is print else 0)

    start = time.time()
    pretrained = config.init != "none"
    head_epochs = min(config.head_epochs, config.epochs) if pretrained and not config.init.startswith("keras:") else 0
    fine_lr = config.finetune_learning_rate if pretrained else config.learning_rate
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    try:
        with strategy.scope():  # the optimizer's variables are mirrored too
            if head_epochs and head_done.exists():
                model.load_weights(head_done)
            elif head_epochs:
                _set_trainable(backbone, False, config.init)
                fit(config.learning_rate, 0, head_epochs, "backup_head")
                model.save_weights(head_done)
            if config.epochs > head_epochs:
                _set_trainable(backbone, True, config.init)
                fit(fine_lr, head_epochs, config.epochs, "backup", [
                    keras.callbacks.ModelCheckpoint(
                        str(best), monitor="val_loss", save_best_only=True,
                        initial_value_threshold=_best_val_loss(work / "log.csv", head_epochs) if best.exists() else None),
                    keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)])
    except Cancelled:
        return {"cancelled": True, "work_dir": str(work)}
    seconds = time.time() - start
    if best.exists():
        model = keras.saving.load_model(best, compile=False)  # outside the strategy: a plain model
    _synchronize_batch_norm(model, False)
    history = _read_log(work / "log.csv")

    serve = tf.function(lambda x: model(x, training=False))
    sel_probs, sel_labels = evaluation.predict_dataset(serve, sel_ds)
    thresholds, unreliable, selection = evaluation.calibrate(sel_probs, sel_labels, data.attributes,
                                                             config.precision_floor)
    val_probs, val_labels = evaluation.predict_dataset(serve, _dataset(val_src, 64))
    results = {
        "history": history,
        "selection": {**selection, "thresholds": thresholds, "unreliable": unreliable},
        "validation": evaluation.evaluate_predictions(val_probs, val_labels, data.attributes,
                                                      thresholds, unreliable),
        "validation_threshold_0.5": evaluation.evaluate_predictions(val_probs, val_labels, data.attributes,
                                                                    unreliable=unreliable),
        "run": {"config": asdict(config), "seconds": round(seconds, 1), "machine": _machine(),
                "training_command": training_command(config), "skipped_no_face": skipped,
                "distribution": distribution,
                "images": {"train": len(fit_src[2]), "selection": len(sel_src[2]), "validation": len(val_src[2])},
                "data": f"CelebA ({data.summary}); {data.layout} layout; image folders: "
                        + ", ".join(d.name for d in data.image_dirs)},
    }
    # a fine-tuned model keeps its own input size (keras:PATH)
    results["run"]["input_size"] = int(getattr(model.get_layer("resize"), "height", config.image_size))
    out.parent.mkdir(parents=True, exist_ok=True)
    model_card.write_results(model_card.results_dir(out), results)
    card = model_card.build_card(out.stem, data.attributes, results["run"]["input_size"], results)
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
