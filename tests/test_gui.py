"""The desktop app on a temp DB, temp settings and temp thumbnail cache (nothing leaks out)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings  # noqa: E402

from photo_sorter.gui import listings  # noqa: E402
from photo_sorter.gui.config import Settings  # noqa: E402
from photo_sorter.store import open_engine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PHOTOS = REPO / "resources" / "sample_photos"
ARTIFACTS = REPO / "test-artifacts"


def shot(widget, name: str) -> Path:
    """Save a screenshot for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert widget.grab().save(str(path))
    return path


def make_settings(tmp_path: Path) -> Settings:
    q = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    q.setValue("library/cache_dir", str(tmp_path / "cache"))
    settings = Settings(q)
    settings.db_path = str(tmp_path / "library.db")
    return settings


@pytest.fixture
def window(qtbot, tmp_path):
    from photo_sorter.gui.main_window import MainWindow

    settings = make_settings(tmp_path)
    win = MainWindow(settings, open_engine(settings.db_path), model_path=tmp_path / "none.keras")
    qtbot.addWidget(win)
    win.show()
    return win


def test_empty_library_offers_the_sample_library(window):
    assert window.grid_stack.currentWidget() is window.empty
    assert window.empty.sample_button.isEnabled()
    assert window.counts_label.text().startswith("0 photos")
    shot(window, "main_empty")


def test_settings_round_trip(tmp_path):
    settings = make_settings(tmp_path)
    settings.folders = ["/a", "/b", "/a"]
    settings.saved_filters = {"smiles": "Smiling and not Wearing_Hat"}
    settings.detection_size = 800
    again = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert again.folders == ["/a", "/b"]
    assert again.saved_filters == {"smiles": "Smiling and not Wearing_Hat"}
    assert again.detection_size == 800
    assert again.db_path == str(tmp_path / "library.db")
