"""The wizard's training runs in a child process: partial epochs are neither plotted nor counted,
a crash of the child is a message, the default start is the bundled offline ImageNet file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from celeba_factory import make_celeba

from photo_sorter.gui.wizard import BUNDLED_TFLITE, SettingsPage, TrainPage
from photo_sorter.training import TrainConfig


class FakeProcess:
    """Stands in for train_process.TrainingProcess: hands out scripted events."""

    def __init__(self, events):
        self.events, self.cancelled, self.ended = list(events), False, False

    def poll(self):
        out, self.events = self.events, []
        self.ended = any(e[0] in ("done", "failed") for e in out)
        return out

    def running(self):
        return not self.ended

    def cancel(self):
        self.cancelled = True

    def kill(self):
        self.killed = self.ended = True


def test_default_start_is_the_bundled_imagenet_file_and_fine_tuning_is_offered(qtbot, tmp_path):
    assert BUNDLED_TFLITE.is_file() and BUNDLED_TFLITE.stat().st_size == 3_577_952
    assert (BUNDLED_TFLITE.parent / "LICENSE_google-coral_edgetpu.txt").is_file()
    installed = tmp_path / "installed.keras"
    installed.write_bytes(b"model")
    page = SettingsPage(tmp_path, BUNDLED_TFLITE, installed)
    qtbot.addWidget(page)
    assert page.init.currentData() == "tflite"
    assert [page.init.itemData(i) for i in range(page.init.count())] == ["tflite", "keras", "imagenet", "none"]
    assert page.config(tmp_path, ["Smiling"]).init == f"tflite:{BUNDLED_TFLITE}"
    page.init.setCurrentIndex(page.init.findData("keras"))
    assert page.config(tmp_path, ["Smiling"]).init == f"keras:{installed}"
    without = SettingsPage(tmp_path, BUNDLED_TFLITE, tmp_path / "gone.keras")
    qtbot.addWidget(without)
    assert without.init.findData("keras") == -1  # nothing to fine-tune


def test_a_cancelled_partial_epoch_is_not_plotted_and_resume_is_offered(qtbot, tmp_path):
    page = TrainPage()
    qtbot.addWidget(page)
    page.config = TrainConfig(celeba=str(tmp_path), out=str(tmp_path / "m.keras"), epochs=3)
    page.process = FakeProcess([
        ("epoch_begin", 0), ("batch", 6, 6, 0.5), ("epoch_end", 0, {"loss": 0.5, "val_loss": 0.6}),
        ("epoch_begin", 1), ("batch", 3, 7, 0.4)])
    page._poll()
    assert list(page.curves.history) == [0] and page.bar.value() == 3
    page.process.cancelled = True
    page.process.events = [("partial_epoch", 1, 3, 7), ("done", {"cancelled": True, "work_dir": str(tmp_path)})]
    page._poll()
    assert list(page.curves.history) == [0]  # the 3/7 epoch is not an epoch
    assert "1 of 3 epochs finished" in page.epoch_label.text()
    assert page.resume_button.isEnabled() and not page.isComplete() and page.process is None
    assert "not kept" in page.log.toPlainText()


def test_a_crashed_training_is_a_message(qtbot, tmp_path):
    page = TrainPage()
    qtbot.addWidget(page)
    page.config = TrainConfig(celeba=str(tmp_path), out=str(tmp_path / "m.keras"), epochs=1)
    page.process = FakeProcess([("failed", "the training process stopped unexpectedly (exit code -9)")])
    page._poll()
    assert "stopped unexpectedly" in page.epoch_label.text() and page.resume_button.isEnabled()


@pytest.mark.slow
def test_training_process_streams_epochs_and_survives_a_killed_child(tmp_path):
    """A real child: one tiny epoch streams its batches and epoch; a second run killed midway
    (as the out-of-memory killer would) ends in a 'failed' event, and this process lives on."""
    import time

    from photo_sorter.train_process import TrainingProcess

    had_tf = "tensorflow" in sys.modules
    celeba = make_celeba(tmp_path / "celeba", n=12, attributes=("Smiling", "Male"))
    # the smallest run that has an epoch of several batches: what is tested is the process, not the model
    config = TrainConfig(celeba=str(celeba), out=str(tmp_path / "m.keras"), attributes=["Male", "Smiling"],
                         image_size=32, alpha=0.35, augment="none", epochs=1, batch_size=4, frames="original")
    run = TrainingProcess(config, tmp_path / "training.log")
    run.start()
    events = []
    deadline = time.monotonic() + 900  # a loaded 2-core machine
    while run.running() and time.monotonic() < deadline:
        events += run.poll()
        time.sleep(0.1)
    kinds = [e[0] for e in events]
    assert kinds[-1] == "done", events[-3:]
    assert "epoch_end" in kinds and "batch" in kinds and "partial_epoch" not in kinds
    assert Path(config.out).is_file()
    assert ("tensorflow" in sys.modules) == had_tf  # TensorFlow never loaded here

    config2 = TrainConfig(**{**config.__dict__, "out": str(tmp_path / "k.keras"), "epochs": 50})
    run = TrainingProcess(config2, tmp_path / "training.log")
    run.start()
    events = []
    while "batch" not in [e[0] for e in events] and time.monotonic() < deadline + 300:
        events += run.poll()
        time.sleep(0.1)
    run.process.kill()
    run.process.join(10)
    while run.running():
        events += run.poll()
    assert events[-1][0] == "failed" and "stopped unexpectedly" in events[-1][1]


def test_cancel_while_preparing_stops_at_once_and_resume_starts_again(qtbot, tmp_path):
    page = TrainPage()
    qtbot.addWidget(page)
    page.config = TrainConfig(celeba=str(tmp_path), out=str(tmp_path / "m.keras"), epochs=3)
    page.process, page._began = FakeProcess([("log", "frame cache: 80 images to detect")]), False
    page._poll()
    process = page.process
    page.cancel_button.click()  # no epoch began: the preparation would not look at Cancel for minutes
    assert getattr(process, "killed", False) and page.process is None
    assert page.resume_button.isEnabled() and "before the first epoch" in page.epoch_label.text()
    page.process, page._began = FakeProcess([("epoch_begin", 0), ("batch", 2, 6, 0.5)]), False
    page._poll()
    page.cancel()  # inside an epoch: after this batch, finished epochs kept
    assert page.process.cancelled and not getattr(page.process, "killed", False)
