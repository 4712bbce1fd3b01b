"""Load and run an attribute model together with its card (the JSON file beside it).

The model file takes uint8 RGB aligned frames (178x218, the CelebA geometry; any resize and
normalisation happen inside the model) and returns one probability per attribute, in the order
its card lists. The card carries the calibrated thresholds used everywhere afterwards.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from photo_sorter.attributes import validate
from photo_sorter.files import atomic_write, read_regular, sha256_file, sweep

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
BUNDLED_MODEL = MODELS_DIR / "celeba_mobilenetv2.keras"
FRAME_HEIGHT, FRAME_WIDTH = 218, 178
MAX_CARD_BYTES = 1 << 20          # a card is a few kB of JSON
MAX_KERAS_METADATA_BYTES = 64 << 20  # config.json and metadata.json inside a .keras, uncompressed
MAX_KERAS_BYTES = 4 << 30         # all members of a .keras, uncompressed (the weights dominate)


class ModelError(RuntimeError):
    """A model file or its card is missing, damaged or inconsistent."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def card_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read_card(model_path: Path) -> dict:
    """The card beside model_path, checked: attributes known, one threshold per attribute, each
    a real number in 0..1."""
    path = card_path(model_path)
    try:
        card = json.loads(read_regular(path, MAX_CARD_BYTES))  # a pipe never blocks
    except FileNotFoundError:
        raise ModelError(f"model card {path} is missing (it must sit beside {model_path})") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model card {path} is unreadable: {_first_line(exc)}") from None
    if not isinstance(card, dict):
        raise ModelError(f"model card {path} is not a JSON object")
    for key in ("attributes", "thresholds"):
        if key not in card:
            raise ModelError(f"model card {path} has no '{key}'")
    try:
        validate(card["attributes"])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model card {path}: {_first_line(exc)}") from None
    thresholds = card["thresholds"]
    if not isinstance(thresholds, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1
        for v in thresholds.values()
    ):
        raise ModelError(f"model card {path}: 'thresholds' must map attribute names to numbers in 0..1")
    missing = [a for a in card["attributes"] if a not in thresholds]
    if missing:
        raise ModelError(f"model card {path} has no threshold for {', '.join(missing[:3])}"
                         + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    return card


def _check_archive(path: Path) -> None:
    """Refuse a .keras whose members would inflate beyond what a model needs, before Keras reads
    them (a 2.5 GB config.json would otherwise be parsed in memory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"model file {path} cannot be loaded: {_first_line(exc)}") from None
    for info in members:
        if not info.filename.endswith(".h5") and info.file_size > MAX_KERAS_METADATA_BYTES:
            raise ModelError(f"model file {path}: {info.filename} inflates to {info.file_size} bytes; "
                             "refused (not a model this app made)")
    if sum(i.file_size for i in members) > MAX_KERAS_BYTES:
        raise ModelError(f"model file {path} inflates to more than {MAX_KERAS_BYTES >> 30} GB; refused")


def unreliable_attributes(card: dict) -> dict[str, str]:
    """Attributes whose tags the card marks as untrustworthy (validation precision below 0.5),
    with the short reason shown to the user. They are still predicted, stored and sortable, but
    never written as keywords and shown greyed."""
    marked = card.get("unreliable") or {}
    if isinstance(marked, list):
        return {name: "its tags are too often wrong" for name in marked}
    return {str(k): str(v) for k, v in marked.items()}


@cache
def device_name() -> str:
    """'GPU: <name>' when TensorFlow sees a GPU, else 'CPU'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU: {details.get('device_name', gpus[0].name)}"


@dataclass
class AttributeModel:
    path: Path
    card: dict
    keras_model: object = field(repr=False)
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.card.get("name", self.path.stem)

    @property
    def attributes(self) -> list[str]:
        return list(self.card["attributes"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {a: float(self.card["thresholds"][a]) for a in self.attributes}

    @property
    def unreliable(self) -> dict[str, str]:
        return unreliable_attributes(self.card)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AttributeModel:
        """Load with Keras safe_mode (no arbitrary code) and check the card matches the file."""
        path = Path(path) if path else BUNDLED_MODEL
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        if path.suffix != ".keras":  # the one format Keras loads without running stored code
            raise ModelError(f"model file {path} is not a .keras file; only .keras models are loaded")
        card = read_card(path)
        _check_archive(path)
        import keras

        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad file
            raise ModelError(f"model file {path} cannot be loaded: {_first_line(exc)}") from None
        frame = (FRAME_HEIGHT, FRAME_WIDTH, 3)
        shape = tuple(model.inputs[0].shape[1:])
        if len(shape) != 3 or any(d not in (None, want) for d, want in zip(shape, frame)):
            raise ModelError(f"model {path} takes input {shape}, not the aligned {frame} frames")
        n_out = model.outputs[0].shape[-1]
        if n_out != len(card["attributes"]):
            raise ModelError(
                f"model {path} predicts {n_out} attributes but its card lists "
                f"{len(card['attributes'])}"
            )
        return cls(path=path, card=card, keras_model=model, sha256=sha256_file(path))

    @cached_property
    def _serve(self):
        """The model as one traced graph: an eager call costs ~0.5 s of Python overhead, the
        graph 0.05 s for a few faces (benchmarks/README.md)."""
        import tensorflow as tf

        spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        return tf.function(lambda x: self.keras_model(x, training=False), input_signature=[spec])

    def predict(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """frames: uint8 [N, 218, 178, 3] aligned faces -> float32 [N, n_attributes]. Anything
        else is refused: a float frame (0..1 or 0..255?) cast silently would give wrong answers."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.shape[1:] != (FRAME_HEIGHT, FRAME_WIDTH, 3):
            raise ModelError(f"the model takes uint8 frames [N, {FRAME_HEIGHT}, {FRAME_WIDTH}, 3] "
                             f"(aligned faces, align.to_celeba); got {frames.dtype} {list(frames.shape)}")
        if len(frames) == 0:
            return np.zeros((0, len(self.attributes)), np.float32)
        out = [
            np.asarray(self._serve(frames[i : i + batch_size]))
            for i in range(0, len(frames), batch_size)
        ]
        return np.concatenate(out).astype(np.float32)

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean decisions with the calibrated per-attribute thresholds."""
        t = np.array([self.thresholds[a] for a in self.attributes], np.float32)
        return probabilities >= t


def user_models_dir() -> Path:
    """Where installed models live by default: models/ in the user data folder."""
    from photo_sorter.store import user_data_dir

    return user_data_dir() / "models"


def install_model(src_path: str | Path, engine=None, models_dir: str | Path | None = None) -> Path:
    """Check a model (loaded with its card), copy both into the models folder and make it the
    library's active model; earlier models keep their files, rows and predictions. The files are
    complete on disk (model first, card last) before one transaction switches the active row, so
    a crash at any point leaves the previous model active. Returns the installed model's path."""
    from photo_sorter.store import ModelVersion, library_lock, register_model, sessions

    Session = sessions(engine)
    with library_lock(Session, doing="install-model"):  # a running scan would re-activate its model
        model = AttributeModel.load(src_path)
        folder = Path(models_dir) if models_dir else user_models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / model.path.name
        in_place = dest.resolve() == model.path.resolve()
        if not in_place and dest.exists() and (sha256_file(dest) != model.sha256
                                               or read_card(dest) != model.card):
            dest = folder / f"{model.path.stem}-{_identity(model)[:12]}.keras"  # never overwrite another model
        if not in_place:
            sweep(folder)  # what an install killed mid-copy left
            atomic_write(dest, copy_from=model.path)
            atomic_write(card_path(dest), copy_from=card_path(model.path))
            if sha256_file(dest) != model.sha256 or read_card(dest) != model.card:
                raise ModelError(f"{model.path} changed while it was being installed; install it again")
        installed = AttributeModel(dest, model.card, model.keras_model, model.sha256)
        with Session.begin() as session:
            model_id = register_model(session, installed)
            session.get(ModelVersion, model_id).path = str(dest)
    return dest


def _identity(model: AttributeModel) -> str:
    """Weights and card together name a model (store.registry)."""
    from photo_sorter.store.models import card_sha256

    return hashlib.sha256(f"{model.sha256}:{card_sha256(model.card)}".encode()).hexdigest()


def active_model(db, load: bool = True) -> AttributeModel:
    """The library's active model when its file is still there, else the bundled one. With
    load=False only its card and hash are read (the scan loads the weights when first needed,
    so an unchanged rescan never imports TensorFlow)."""
    from photo_sorter.store import model_row, sessions

    with sessions(db)() as session:
        row = model_row(session)
        path = row.path if row is not None else None
    path = Path(path) if path and Path(path).is_file() else BUNDLED_MODEL
    if load:
        return AttributeModel.load(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    return AttributeModel(path=path, card=read_card(path), keras_model=None, sha256=sha256_file(path))


def _resize_matrices(size: int):
    """The model's antialiased resize of the 218x178 frame to size x size as two matrices
    (it is linear and separable): TFLite has no antialiased resize op, but it has matmul."""
    import tensorflow as tf

    def axis(n: int, vertical: bool):
        eye = tf.eye(n)[:, :, None, None] if vertical else tf.eye(n)[:, None, :, None]
        out = tf.image.resize(eye, (size, 1) if vertical else (1, size), antialias=True)
        return tf.reshape(out, (n, size))  # row i: where input line i lands

    return axis(FRAME_HEIGHT, True), axis(FRAME_WIDTH, False)


def export_model(model: AttributeModel, fmt: str, out: Path) -> Path:
    """Export for mobile/web: 'tflite' (float32, input uint8 [N, 218, 178, 3]) or 'savedmodel'.
    The card is copied beside the export so thresholds and attribute order travel with it."""
    import keras
    import tensorflow as tf

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = tf.TensorSpec([None, FRAME_HEIGHT, FRAME_WIDTH, 3], tf.uint8, name="frame")
    keras_model = model.keras_model
    if fmt not in ("savedmodel", "tflite"):
        raise ValueError(f"unknown export format {fmt!r}; use tflite or savedmodel")
    if fmt == "savedmodel":
        serve = tf.function(lambda frame: keras_model(frame, training=False), input_signature=[spec])
        module = tf.Module()
        module.serve = serve
        module.variables_ = keras_model.variables
        tf.saved_model.save(module, str(out), signatures={"serving_default": serve})
        card_out = out / "card.json"
    else:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        rows, cols = _resize_matrices(int(model.card.get("input_size", keras_model.get_layer("resize").height)))
        # dropout is the identity at inference, and its seed state would stay a TFLite variable
        after_resize = [layer for layer in keras_model.layers[keras_model.layers.index(keras_model.get_layer("resize")) + 1:]
                        if not isinstance(layer, keras.layers.Dropout)]

        @tf.function(input_signature=[spec])
        def serve(frame):
            x = tf.einsum("Hh,bHWc,Ww->bhwc", rows, tf.cast(frame, tf.float32), cols)
            for layer in after_resize:
                x = layer(x, training=False)
            return x

        frozen = convert_variables_to_constants_v2(serve.get_concrete_function())  # weights as constants
        out.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert())
        card_out = out.with_suffix(".json")
    atomic_write(card_out, json.dumps(model.card, indent=2).encode())
    return out
