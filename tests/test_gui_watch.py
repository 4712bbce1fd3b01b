"""The window watches its library folders while open (Preferences: on/off) through the core
Watcher: a photo copied into a folder shows up in the grid by itself."""

from __future__ import annotations

import shutil
import time

import pytest
from PIL import Image

from test_gui import SAMPLE_PHOTOS, window  # noqa: F401 - the shared window fixture

pytestmark = pytest.mark.slow


def test_window_scans_files_added_to_its_folders_until_turned_off(window, qtbot, tmp_path):
    win = window
    lib = tmp_path / "photos"
    lib.mkdir()
    win.settings.folders = [str(lib)]
    win.start_background()
    assert win.folder_watch.watcher is not None
    shutil.copy(SAMPLE_PHOTOS / "obama_official_portrait_2012.jpg", lib / "portrait.jpg")
    qtbot.waitUntil(lambda: win.grid_model.rowCount() == 1, timeout=120000)
    assert "1 new" in win.statusBar().currentMessage()

    win.settings.watch_folders = False
    win.apply_watch()
    assert win.folder_watch.watcher is None
    Image.new("RGB", (64, 48)).save(lib / "later.jpg")
    time.sleep(3)
    win.refresh()
    assert win.grid_model.rowCount() == 1
