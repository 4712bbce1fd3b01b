"""The retraining wizard on a tiny generated CelebA-layout folder (tests/celeba_factory.py), one
short epoch, up to the results table."""

from __future__ import annotations

from pathlib import Path

import pytest
from celeba_factory import make_celeba
from PySide6.QtCore import Qt

from test_gui import shot

pytestmark = pytest.mark.slow


def test_wizard_trains_to_the_results_and_installs(qtbot, tmp_path):
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from photo_sorter.gui.main_window import MainWindow
    from photo_sorter.store import ModelVersion, predictions_table
    from test_gui import crafted_library, make_settings

    engine, _ids, _faces = crafted_library(tmp_path)
    window = MainWindow(make_settings(tmp_path), engine)
    qtbot.addWidget(window)
    installed = {"metrics": {"validation": {"per_attribute": {
        "Smiling": {"accuracy": 1.0}, "Male": {"accuracy": 0.0}}}}}
    wizard = window.open_wizard()
    wizard.page_results.installed_card = installed
    folder = wizard.page_folder
    folder.path.setText(str(tmp_path / "nothing-here"))
    folder.check()
    qtbot.waitUntil(lambda: "Not a usable CelebA folder" in folder.info.text(), timeout=10000)
    assert not folder.isComplete()
    shot(wizard, "wizard_folder_error")

    # 26 annotated images, the last two (validation) absent, as in a partial download.
    celeba_dir = make_celeba(tmp_path / "celeba", n=26, missing=2,
                             attributes=("Smiling", "Male", "Eyeglasses"))
    folder.path.setText(str(celeba_dir))
    folder.check()
    qtbot.waitUntil(folder.isComplete, timeout=10000)
    assert "26 annotated images" in folder.info.text() and "24 image files found" in folder.info.text()
    assert "20 train, 4 validation" in folder.info.text()
    shot(wizard, "wizard_folder")

    wizard.next()
    attrs = wizard.page_attributes
    assert "Attractive" not in attrs.chosen() and len(attrs.chosen()) == 39
    attrs._tick(lambda a: a in ("Smiling", "Male", "Eyeglasses"))
    assert attrs.chosen() == ["Eyeglasses", "Male", "Smiling"]
    wizard.next()
    settings = wizard.page_settings
    assert "20 training images" in settings.estimate.text()
    settings.init.setCurrentIndex(settings.init.findData("none"))
    settings.image_size.setCurrentIndex(settings.image_size.findData(32))
    settings.epochs.setValue(1)
    settings.batch_size.setValue(8)
    assert settings.frames.currentData() == "pipeline" and settings.augment.currentData() == "robust"
    settings.frames.setCurrentIndex(settings.frames.findData("original"))  # generated images: no faces to detect
    shot(wizard, "wizard_settings")

    wizard.next()
    train = wizard.page_train
    qtbot.waitUntil(lambda: train.task is None, timeout=240000)
    assert train.card is not None, train.epoch_label.text()
    assert train.curves.history and "loss" in train.curves.history[0]
    assert Path(train.config.out).is_file()
    assert wizard.button(wizard.WizardButton.NextButton).isEnabled()
    shot(wizard, "wizard_training")

    wizard.next()
    results = wizard.page_results
    table = results.table
    assert table.rowCount() == 4  # three attributes and the mean
    assert [table.item(r, 0).text() for r in range(4)] == ["Eyeglasses", "Male", "Smiling", "Mean"]
    smiling_row = 2
    assert table.item(smiling_row, 3).text() == "100.0"
    assert table.item(smiling_row, 0).background().color().name() == "#f5b7b1"  # installed is better
    assert table.item(1, 0).background().style() == Qt.BrushStyle.NoBrush  # Male: not worse than 0 %
    assert table.item(smiling_row, 4).text() not in ("", "–")  # LNet+ANet reference present
    shot(wizard, "wizard_results")

    wizard.next()
    assert "active model" in wizard.page_install.info.text()
    wizard.page_install.repredict.setChecked(False)
    with qtbot.waitSignal(wizard.install, timeout=5000) as signal:
        wizard.accept()
    assert signal.args == [train.config.out, False]
    qtbot.waitUntil(lambda: window.scan_task is None, timeout=60000)
    with Session(engine) as s:
        active = s.scalars(select(ModelVersion).where(ModelVersion.active)).one()
        assert active.path == train.config.out and active.attributes == ["Eyeglasses", "Male", "Smiling"]
        assert s.scalar(select(func.count()).select_from(predictions_table)) == 12  # old ones kept
    qtbot.waitUntil(lambda: Path(train.config.out).stem in window.model_label.text(), timeout=60000)
