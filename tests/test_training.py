import json

import numpy as np
import pytest
from celeba_factory import make_celeba

from photo_sorter import celeba
from photo_sorter.data import make_dataset
from photo_sorter.training import TrainConfig, TrainingError, build_model, make_loss, train

pytestmark = pytest.mark.slow  # training


@pytest.fixture(scope="module")
def tiny_celeba(tmp_path_factory):
    return make_celeba(tmp_path_factory.mktemp("celeba"), n=20, partitions=(0.8, 0.2), seed=5,
                       val_repeats_train=True)


def test_pipeline_yields_aligned_frames_from_any_size(tmp_path):
    root = make_celeba(tmp_path, n=6, size=(89, 109))
    data = celeba.load(root)
    x, y = next(iter(make_dataset(data.paths, data.labels, batch_size=6)))
    assert x.shape == (6, 218, 178, 3) and x.dtype.name == "uint8"
    assert y.shape == (6, 40)
    plain = x.numpy()
    again = next(iter(make_dataset(data.paths, data.labels, batch_size=6)))[0].numpy()
    np.testing.assert_array_equal(plain, again)  # validation/test: no augmentation
    aug = next(iter(make_dataset(data.paths, data.labels, batch_size=6, augment="article", seed=1)))[0].numpy()
    assert np.abs(aug.astype(int) - plain).mean() > 3
    aug2 = next(iter(make_dataset(data.paths, data.labels, batch_size=6, augment="article", seed=1)))[0].numpy()
    np.testing.assert_array_equal(aug, aug2)  # deterministic for a seed


def test_unreadable_images_are_dropped(tmp_path):
    root = make_celeba(tmp_path, n=5)
    (root / "img_align_celeba" / "000002.jpg").write_bytes(b"not an image")
    data = celeba.load(root)
    batches = list(make_dataset(data.paths, data.labels, batch_size=8))
    assert sum(len(b[0]) for b in batches) == 4


def test_model_takes_uint8_frames_and_returns_probabilities():
    model = build_model(3, image_size=32, alpha=0.35)
    out = np.asarray(model(np.zeros((2, 218, 178, 3), np.uint8)))
    assert out.shape == (2, 3) and ((out > 0) & (out < 1)).all()
    assert model.inputs[0].dtype == "uint8"


def test_unknown_settings_are_clear_errors():
    with pytest.raises(TrainingError, match="unknown init"):
        build_model(3, 32, init="resnet")
    with pytest.raises(TrainingError, match="unknown loss"):
        make_loss("hinge")


@pytest.mark.parametrize("name", ["bce", "weighted_bce", "focal", "cosine"])
def test_losses_prefer_right_answers(name):
    loss = make_loss(name, np.array([0.2, 0.5]))
    y = np.array([[1.0, 0.0]], np.float32)
    good = float(np.mean(loss(y, np.array([[0.9, 0.1]], np.float32))))
    bad = float(np.mean(loss(y, np.array([[0.1, 0.9]], np.float32))))
    assert good < bad


def _tiny_config(root, out, **kw):
    base = dict(celeba=str(root), out=str(out), attributes=["Smiling", "Male"], image_size=32,
                alpha=0.35, epochs=15, batch_size=8, augment="none", learning_rate=3e-3, patience=100,
                dropout=0.0, seed=7, frames="original")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny_model(tiny_celeba, tmp_path_factory):
    """The one long tiny training (15 epochs of 2 steps: each epoch also saves checkpoints, ~3 s),
    shared by the tests that only read it: (model path, card, the process-wide state train()
    found and left)."""
    from tensorflow.python.framework import config

    out = tmp_path_factory.mktemp("tiny") / "a.keras"
    np.random.seed(123)
    before = (np.random.get_state()[1].copy(), config.is_op_determinism_enabled())
    card = train(_tiny_config(tiny_celeba, out), log=lambda *_: None)
    after = (np.random.get_state()[1].copy(), config.is_op_determinism_enabled())
    return out, card, (before, after)


@pytest.fixture(scope="module")
def three_epochs(tiny_celeba, tmp_path_factory):
    """The same training stopped after 3 epochs: (model path, card)."""
    out = tmp_path_factory.mktemp("three") / "b.keras"
    return out, train(_tiny_config(tiny_celeba, out, epochs=3), log=lambda *_: None)


def test_tiny_training_overfits_and_is_deterministic(tiny_model, three_epochs):
    out, card, _ = tiny_model
    # Keras' training-mode accuracy on the images it sees; inference-mode batch-norm averages of a
    # from-scratch net lag behind in so few steps (the app's model starts from ImageNet instead)
    assert max(card["history"]["accuracy"][-5:]) >= 0.95
    assert card["history"]["loss"][-1] < card["history"]["loss"][0] / 4
    assert set(card["thresholds"]) == {"Smiling", "Male"}
    assert json.loads(out.with_suffix(".json").read_text())["attributes"] == ["Smiling", "Male"]
    assert card["best_epoch"] is not None and 1 <= card["best_epoch"] <= 15
    # a second run of the same settings retraces the first one exactly
    assert three_epochs[1]["history"]["loss"] == card["history"]["loss"][:3]


def test_training_leaves_process_wide_state_as_it_was(tiny_model):
    (numpy_before, determinism_before), (numpy_after, determinism_after) = tiny_model[2]
    assert np.array_equal(numpy_after, numpy_before)
    assert not determinism_before and not determinism_after


def test_cancel_mid_epoch_keeps_only_finished_epochs_and_resume_finishes(tiny_celeba, tmp_path):
    import threading

    import keras

    out = tmp_path / "k.keras"
    cancel = threading.Event()

    class CancelInSecondEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                cancel.set()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    seen = []

    class Ends(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    result = train(_tiny_config(tiny_celeba, out, epochs=2, batch_size=4), callbacks=[CancelInSecondEpoch(), Ends()],
                   cancel=cancel, log=lambda *_: None)
    assert result["cancelled"] and not out.exists()
    rows = (tmp_path / "k.keras.work" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0"]  # the partial second epoch is not logged
    assert seen == [0]                                    # nor reported as finished
    card = train(_tiny_config(tiny_celeba, out, epochs=2, batch_size=4), log=lambda *_: None)
    assert len(card["history"]["loss"]) == 2 and out.exists()


def test_fine_tuning_an_existing_model(tiny_celeba, tiny_model, tmp_path):
    source = tiny_model[0]
    card = train(_tiny_config(tiny_celeba, tmp_path / "f.keras", epochs=1, init=f"keras:{source}"),
                 log=lambda *_: None)
    assert card["attributes"] == ["Smiling", "Male"] and (tmp_path / "f.keras").exists()
    with pytest.raises(TrainingError, match="does not exist"):
        build_model(2, init=f"keras:{tmp_path / 'missing.keras'}")


def test_card_is_generated_from_the_result_files_and_a_hand_edit_is_detected(tiny_model):
    import subprocess
    import sys
    from pathlib import Path

    out = tiny_model[0]
    script = [sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "write_model_card.py"), str(out)]
    assert subprocess.run(script, capture_output=True).returncode == 0
    card = json.loads(out.with_suffix(".json").read_text())
    results = json.loads((out.parent / "a.results" / "selection.json").read_text())
    assert card["thresholds"] == results["thresholds"] and card["unreliable"] == results["unreliable"]
    assert f"--out {out}" in card["training_command"]
    readme = (out.parent / "README.md").read_text()
    assert "do not edit by hand" in readme and "| Smiling" in readme
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0
    edited = dict(card, thresholds={**card["thresholds"], "Smiling": 0.01})
    out.with_suffix(".json").write_text(json.dumps(edited, indent=2) + "\n")
    check = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "edited by hand" in check.stderr
    (out.parent / "README.md").write_text(readme.replace("Smiling", "Smiling!"))
    subprocess.run(script, check=True, capture_output=True)  # regenerate: both back
    assert json.loads(out.with_suffix(".json").read_text()) == card and "Smiling!" not in (out.parent / "README.md").read_text()


def test_training_resumes_from_its_work_folder(tiny_celeba, three_epochs, tmp_path):
    import shutil

    work = tmp_path / "b.keras.work"
    shutil.copytree(three_epochs[0].with_name("b.keras.work"), work)  # a finished 3-epoch run
    card = train(_tiny_config(tiny_celeba, tmp_path / "b.keras", epochs=4), log=lambda *_: None)
    rows = (work / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert len(card["history"]["loss"]) == 4  # the log spans both runs
    assert card["training"]["epochs_run"] == 4
    assert card["history"]["loss"][:3] == three_epochs[1]["history"]["loss"]


def test_two_logical_devices_train_as_one_device_with_the_double_batch(tmp_path):
    """--devices 2 on 2 logical CPUs (tests/mirrored_run.py, a child: logical devices must be set
    before TensorFlow starts) against 1 device at the same global batch and step: 1 device with
    batch 16 at rate L, 2 devices with batch 8 each at L / 2, which --devices 2 scales to L.

    Tolerances. Batch norm takes its statistics per replica under MirroredStrategy (8 frames, not
    16) unless synchronized: training synchronizes it, so the first epoch's loss (the forward pass
    over the same 16 frames) may differ only by the order of float sums (seen: 1e-7). After an
    update that order (two partial gradients added, not one sum) has moved the weights a little,
    and a from-scratch net at this rate amplifies it (Adadelta: Adam's sign-like first steps
    amplify it far more): seen 2 % on the second epoch's training loss, 1e-3 on the selection
    loss, 3e-5 on predictions. Not scaling the learning rate is 58 %, 5e-3 and 8e-3 off."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent / "mirrored_run.py"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    one, two = runs["one"], runs["two"]
    assert (one["devices"], two["devices"], two["summary_devices"]) == (1, 2, 2)
    assert two["log"] == ["MirroredStrategy over 2 devices (CPU:0, CPU:1): global batch 16 (8 per device), "
                          "learning rates x 2, batch norm synchronized across devices"]
    assert two["distribution"] == {"devices": ["CPU:0", "CPU:1"], "batch_per_device": 8, "global_batch": 16,
                                   "learning_rate_scale": 2, "batch_norm": "synchronized across devices"}
    np.testing.assert_allclose(two["history"]["loss"][0], one["history"]["loss"][0], rtol=1e-5)
    np.testing.assert_allclose(two["history"]["loss"][1], one["history"]["loss"][1], rtol=0.05)
    np.testing.assert_allclose(two["history"]["val_loss"], one["history"]["val_loss"], rtol=2e-3)
    np.testing.assert_allclose(two["probs"], one["probs"], atol=1e-3)  # saved models, loaded without a strategy
    assert runs["three"] == {"code": 2, "stderr": "error: 3 devices asked for, but 2 visible: CPU:0, CPU:1\n"}


def test_cancel_while_the_face_frames_are_built_stops_before_training(tiny_celeba, tmp_path):
    """The frame cache takes minutes on a first run: it reports progress, and a cancel stops
    there (nothing trained or written) instead of after the first epoch."""
    import threading

    cancel, lines = threading.Event(), []

    def log(line: str) -> None:  # the user presses Cancel once the progress shows
        lines.append(line)
        if line.startswith("face frames: "):
            cancel.set()

    out = tmp_path / "m.keras"
    result = train(_tiny_config(tiny_celeba, out, frames="pipeline", frame_cache=str(tmp_path / "frames")),
                   cancel=cancel, log=log)
    assert result["cancelled"] and not out.exists()
    assert any(line.startswith("face frames: ") and "images detected and aligned" in line for line in lines)
    assert not any(line.startswith("epoch") for line in lines)
