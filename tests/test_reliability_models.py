"""Model files that are missing, damaged, of the wrong shape, unsafe or mismatched with their card
give one clear line; installing a model keeps the previous one and never half-installs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import select

from conftest import REPO
from photo_sorter.attributes import CELEBA_ATTRIBUTES
from photo_sorter.model import BUNDLED_MODEL, AttributeModel, ModelError, card_path, install_model
from photo_sorter.store import ModelVersion, open_engine, session_factory

pytestmark = pytest.mark.slow  # model faults (installs, TensorFlow loads)

ATTRS = [a for a in CELEBA_ATTRIBUTES if a != "Attractive"]


def save_model(path, n_out=len(ATTRS), input_shape=(218, 178, 3), side_effect=None, card=None, seed=0):
    """A tiny model honouring the frame contract (uint8 frame in, one sigmoid per attribute out),
    with its card; side_effect: a file a Lambda layer creates whenever its code runs."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    if side_effect is not None:
        x = keras.layers.Lambda(lambda t: (open(side_effect, "w").close(), t)[1])(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(n_out, activation="sigmoid")(x)
    keras.Model(inputs, outputs).save(path)
    card = card if card is not None else {"name": path.stem, "attributes": ATTRS,
                                          "thresholds": {a: 0.5 for a in ATTRS}}
    card_path(path).write_text(json.dumps(card))
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("models") / "tiny.keras")


def copy_with_card(src, dest, card=None):
    shutil.copy(src, dest)
    card_path(dest).write_text(json.dumps(card) if card is not None else card_path(src).read_text())
    return dest


def test_good_tiny_model_loads_and_predicts(good):
    import numpy as np

    model = AttributeModel.load(good)
    out = model.predict(np.zeros((2, 218, 178, 3), np.uint8))
    assert out.shape == (2, len(ATTRS)) and model.attributes == ATTRS


BASE_CARD = {"name": "tiny", "attributes": ATTRS, "thresholds": {a: 0.5 for a in ATTRS}}


@pytest.mark.parametrize("card_text, message", [
    (None, "card .* is missing"),
    ("{attributes: oops", "card .* is unreadable"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"attributes": ATTRS}), "has no 'thresholds'"),
    (json.dumps({**BASE_CARD, "attributes": ["Smiling", "Sparkly"]}), "Sparkly"),
    (json.dumps({**BASE_CARD, "thresholds": {"Smiling": 7}}), "numbers in 0..1"),
    (json.dumps({**BASE_CARD, "attributes": ATTRS[:5]}), "predicts 39 attributes but its card lists 5"),
], ids=["missing", "not JSON", "a list", "no thresholds", "unknown attribute", "threshold 7",
        "fewer attributes"])
def test_card_problems_are_one_line_errors(good, tmp_path, card_text, message):
    path = copy_with_card(good, tmp_path / "model.keras")
    if card_text is None:
        card_path(path).unlink()
    else:
        card_path(path).write_text(card_text)
    with pytest.raises(ModelError, match=message) as info:
        AttributeModel.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("damage, message", [
    ("missing", "does not exist"),
    ("truncated", "cannot be loaded"),
    ("random bytes", "cannot be loaded"),
    ("empty", "cannot be loaded"),
    ("h5 suffix", "only .keras models are loaded"),
])
def test_damaged_model_files(good, tmp_path, damage, message):
    path = copy_with_card(good, tmp_path / ("model.h5" if damage == "h5 suffix" else "model.keras"))
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "random bytes":
        path.write_bytes(bytes(range(256)) * 64)
    elif damage == "empty":
        path.write_bytes(b"")
    with pytest.raises(ModelError, match=message) as info:
        AttributeModel.load(path)
    assert "\n" not in str(info.value)


def test_wrong_shapes(tmp_path):
    with pytest.raises(ModelError, match=r"predicts 5 attributes but its card lists 39"):
        AttributeModel.load(save_model(tmp_path / "five.keras", n_out=5))
    with pytest.raises(ModelError, match=r"takes input \(96, 96, 3\), not the aligned \(218, 178, 3\)"):
        AttributeModel.load(save_model(tmp_path / "small_input.keras", input_shape=(96, 96, 3)))


def test_safe_mode_refuses_stored_code(tmp_path):
    """A model carrying a Lambda (Python bytecode) is refused and its code never runs."""
    marker = tmp_path / "code_ran"
    path = save_model(tmp_path / "lambda.keras", side_effect=str(marker))
    marker.unlink()  # building the model ran it once; loading must not
    with pytest.raises(ModelError, match="cannot be loaded: .*safe_mode") as info:
        AttributeModel.load(path)
    assert "\n" not in str(info.value) and not marker.exists()


def test_no_pickle_loading_in_the_package():
    """Models load through Keras' safe format only: nothing in the package unpickles."""
    sources = "\n".join(p.read_text() for p in (REPO / "photo_sorter").rglob("*.py"))
    for needle in ("import pickle", "import joblib", "allow_pickle=True", "safe_mode=False", "marshal"):
        assert needle not in sources
    assert sources.count("keras.saving.load_model(") == sources.count("safe_mode=True") + \
        sources.count("keras.saving.load_model(best")  # the training run's own checkpoint


def active_rows(engine):
    with session_factory(engine)() as s:
        return [(m.name, m.path, m.active) for m in s.scalars(select(ModelVersion).order_by(ModelVersion.id))]


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_install_keeps_the_previous_model_and_never_overwrites(tmp_path, good):
    engine = open_engine(tmp_path / "library.db")
    models = tmp_path / "installed"
    first = install_model(good, engine, models)
    assert first == models / "tiny.keras" and sha(first) == sha(good)
    assert card_path(first).read_text() == card_path(good).read_text()
    (tmp_path / "new").mkdir()
    other = save_model(tmp_path / "new" / "tiny.keras", seed=1)  # same name, other weights
    second = install_model(other, engine, models)
    assert second != first and second.parent == models and sha(second) == sha(other)
    assert sha(first) == sha(good)  # the earlier model is untouched
    assert active_rows(engine) == [("tiny", str(first), False), ("tiny", str(second), True)]
    assert install_model(good, engine, models) == first  # reinstalling switches back
    assert [r[2] for r in active_rows(engine)] == [True, False]
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_failed_install_changes_nothing(tmp_path, good):
    engine = open_engine(tmp_path / "library.db")
    models = tmp_path / "installed"
    install_model(good, engine, models)
    before = (active_rows(engine), sorted(models.iterdir()))
    bad = save_model(tmp_path / "five.keras", n_out=5)
    with pytest.raises(ModelError):
        install_model(bad, engine, models)
    assert (active_rows(engine), sorted(models.iterdir())) == before


def test_cli_install_model(tmp_path, good):
    db, models = tmp_path / "library.db", tmp_path / "installed"
    run = [sys.executable, "main.py", "--headless", "install-model"]
    ok = subprocess.run([*run, good, "--db", db, "--models-dir", models, "--json"], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"installed": str(models / "tiny.keras"), "active": True}
    bad = copy_with_card(good, tmp_path / "broken.keras")
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    fail = subprocess.run([*run, bad, "--db", db, "--models-dir", models], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    last = fail.stderr.strip().splitlines()[-1]  # earlier lines: TensorFlow's own start-up log
    assert fail.returncode == 2 and last.startswith("error: model file") and "Traceback" not in fail.stderr
    assert active_rows(open_engine(db)) == [("tiny", str(models / "tiny.keras"), True)]


def test_bundled_model_card_matches(tmp_path):
    """The shipped model passes every check above."""
    model = AttributeModel.load(BUNDLED_MODEL)
    assert len(model.attributes) == model.keras_model.outputs[0].shape[-1]


def test_gui_install_goes_through_install_model(qtbot, tmp_path, good):
    """The wizard's Finish installs through the same routine: a bad model leaves the active one."""
    pytest.importorskip("PySide6")
    from test_gui import make_settings

    from photo_sorter.gui.main_window import MainWindow

    settings = make_settings(tmp_path)
    engine = open_engine(settings.db_path)
    win = MainWindow(settings, engine)
    qtbot.addWidget(win)
    assert win.install_model(str(good), False)
    qtbot.waitUntil(lambda: win.scan_task is None, timeout=120_000)
    installed = settings.models_dir / "tiny.keras"
    assert active_rows(engine) == [("tiny", str(installed), True)] and sha(installed) == sha(good)
    assert "Installed tiny" in win.statusBar().currentMessage()
    assert win.install_model(str(save_model(tmp_path / "five.keras", n_out=5)), False)
    qtbot.waitUntil(lambda: win.scan_task is None, timeout=120_000)
    assert active_rows(engine) == [("tiny", str(installed), True)]
