"""The real scan worker behind the window: sample photos end to end, and a cancelled scan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photo_sorter.store import Face, Photo, ScanRun, predictions_table
from test_gui import SAMPLE_PHOTOS, shot, window  # noqa: F401 - the shared window fixture

pytestmark = pytest.mark.slow


def assert_consistent(engine) -> None:
    """Every stored photo's face count matches its face rows, and every face of a readable photo
    has a prediction from the active model (a photo is written with its faces in one go)."""
    with Session(engine) as s:
        for photo in s.scalars(select(Photo)):
            assert photo.n_faces == len(photo.faces), photo.path
        faces = s.scalar(select(func.count()).select_from(Face))
        predicted = s.scalar(select(func.count()).select_from(predictions_table))
        assert predicted == faces


def test_scan_sample_library_through_the_worker(window, qtbot):
    win = window
    win.add_sample_library()
    assert win.scan_task is not None and win.scan_progress.isVisible()
    reports = []
    win.scan_task.progressed.connect(reports.append)
    qtbot.waitUntil(lambda: win.scan_task is None, timeout=300000)
    summary = win.last_scan_summary
    assert summary.get("cancelled") is False, summary
    n_images = len([p for p in SAMPLE_PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".png")])
    assert summary["photos_new"] == n_images
    assert win.grid_model.rowCount() == n_images
    assert any(r.phase == "scanning" for r in reports)
    with Session(win.engine) as s:
        faces_per_photo = dict(s.execute(select(Photo.path, Photo.n_faces)).all())
    assert all(n == 0 for p, n in faces_per_photo.items() if Path(p).name.startswith("noface_"))
    two = next(p for p in faces_per_photo if "two_faces" in p)
    assert faces_per_photo[two] == 2
    assert_consistent(win.engine)
    assert win.model_label.text().startswith("Model: ") and "loading" not in win.model_label.text()
    row = next(i for i, r in enumerate(win.grid_model.rows) if r["path"] == two)
    win.grid.setCurrentIndex(win.grid_model.index(row))
    assert len(win.photo_view.detail["faces"]) == 2
    assert len(win.face_panel.bars.rows) >= 30
    win.photo_view.select_face(1)
    assert win.face_panel.caption.text().startswith("<b>Face 2")
    qtbot.waitUntil(lambda: all(win.loader.get(r["path"]) is not None for r in win.grid_model.rows),
                    timeout=30000)
    folder_item = win.library_panel.list.item(1)
    assert "11 photos" in folder_item.text() and "scanned" in folder_item.text()
    shot(win, "main_after_scan")


def test_cancel_scan_midway_keeps_the_db_consistent(window, qtbot):
    win = window
    win.add_sample_library()
    task = win.scan_task
    task.progressed.connect(lambda r: r.phase == "scanning" and r.files_done >= 2 and win.cancel_scan())
    qtbot.waitUntil(lambda: win.scan_task is None, timeout=300000)
    assert win.last_scan_summary["cancelled"] is True
    with Session(win.engine) as s:
        run = s.scalars(select(ScanRun)).one()
        assert run.status == "cancelled" and run.finished_at is not None
        n_photos = s.scalar(select(func.count()).select_from(Photo))
    assert 2 <= n_photos < 11
    assert_consistent(win.engine)
    assert not win.scan_progress.isVisible()
    assert win.grid_model.rowCount() == n_photos
    # A new scan picks up where the cancelled one stopped.
    win.start_scan(win.settings.folders)
    qtbot.waitUntil(lambda: win.scan_task is None, timeout=300000)
    assert win.last_scan_summary["photos_unchanged"] == n_photos
    assert win.grid_model.rowCount() == 11


def test_window_opens_without_importing_tensorflow(tmp_path):
    """The window is built before TensorFlow is imported (it loads in the background later)."""
    code = f"""
import sys, time
t = time.monotonic()
from PySide6.QtWidgets import QApplication
app = QApplication([])
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_gui import make_settings
from pathlib import Path
from photo_sorter.gui.main_window import MainWindow
from photo_sorter.store import open_engine
s = make_settings(Path({str(tmp_path)!r}))
w = MainWindow(s, open_engine(s.db_path)); w.show(); app.processEvents()
print("tensorflow" in sys.modules, round(time.monotonic() - t, 2))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    imported, seconds = out.stdout.split()
    assert imported == "False"
    print(f"window shown in {seconds} s")
