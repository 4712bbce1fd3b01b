"""The desktop app on a temp DB, temp settings and temp thumbnail cache (nothing leaks out)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402

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
    q.setValue("library/models_dir", str(tmp_path / "models"))
    settings = Settings(q)
    settings.db_path = str(tmp_path / "library.db")
    return settings


@pytest.fixture
def window(qtbot, tmp_path):
    from photo_sorter.gui.main_window import MainWindow

    settings = make_settings(tmp_path)
    win = MainWindow(settings, open_engine(settings.db_path))
    qtbot.addWidget(win)
    win.show()
    return win


def test_empty_library_offers_the_sample_library(window):
    assert window.grid_stack.currentWidget() is window.empty
    assert window.grid_tools.isHidden()  # no order or thumbnail size to choose for nothing
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


def crafted_library(tmp_path: Path):
    """12 photos in two bursts, one face each: six smiling men, six with eyeglasses; the
    'smiling' burst's best smile is photo s3."""
    from datetime import datetime

    import numpy as np
    from library_factory import make_library, scene

    rng = np.random.default_rng(0)
    party, office = scene(1), scene(2)  # one look per burst, so no visual split
    photos = []
    for i in range(6):
        crop = rng.integers(0, 255, (109, 89, 3))
        photos.append({"name": f"s{i}.jpg", "folder": "party", "pixels": party, "captured_at": datetime(2024, 5, 1, 10, 0, i),
                       "faces": [{"probs": {"Smiling": 0.6 + 0.05 * i if i != 3 else 0.99, "Male": 0.9},
                                  "crop": crop}]})
    for i in range(6):
        crop = rng.integers(0, 255, (109, 89, 3))
        photos.append({"name": f"g{i}.jpg", "folder": "office", "pixels": office,
                       "captured_at": datetime(2024, 6, 1, 9, 0, i),
                       "faces": [{"probs": {"Eyeglasses": 0.95, "Smiling": 0.05}, "crop": crop}]})
    return make_library(tmp_path / "library.db", photos, photo_dir=tmp_path / "photos")


@pytest.fixture
def crafted_window(qtbot, tmp_path):
    from photo_sorter.gui.main_window import MainWindow

    engine, ids, _faces = crafted_library(tmp_path)
    settings = make_settings(tmp_path)
    settings.folders = [str(tmp_path / "photos")]
    win = MainWindow(settings, engine)
    qtbot.addWidget(win)
    win.show()
    win.ids = ids
    return win


def test_grid_lists_photos_and_loads_thumbnails(crafted_window, qtbot):
    win = crafted_window
    assert win.grid_model.rowCount() == 12
    win.grid.setCurrentIndex(win.grid_model.index(3))
    assert len(win.photo_view.detail["faces"]) == 1
    bars = win.face_panel.bars.rows
    assert bars[0][0] == "Smiling" and bars[0][1] == pytest.approx(0.99)
    qtbot.waitUntil(lambda: all(win.loader.get(r["path"]) is not None for r in win.grid_model.rows),
                    timeout=20000)
    cached = list((Path(win.settings.cache_dir)).rglob("*.jpg"))
    assert len(cached) == 12
    shot(win, "main_grid_crafted")


def test_clusters_run_and_open(crafted_window, qtbot):
    win = crafted_window
    view = win.clusters_view
    win.tabs.setCurrentWidget(view)
    assert view.cluster_list.count() == 0
    shot(win, "clusters_empty")
    view.k_spin.setValue(2)
    view.run_button.click()
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    assert view.cluster_list.count() == 2, view.summary.text()
    clusters = view.run_data["clusters"]
    assert sorted(c["size"] for c in clusters) == [6, 6]
    assert any(c["name"].startswith("Eyeglasses") for c in clusters), [c["name"] for c in clusters]
    assert not view.sheet.pixmap().isNull()
    shot(win, "clusters")
    smiling = next(i for i, c in enumerate(clusters) if c["mean_probabilities"]["Smiling"] > 0.5)
    view.cluster_list.setCurrentRow(smiling)
    assert "Smiling" in view.sheet.accessibleDescription()  # the sheet's picture, in words
    qtbot.keyClick(view.cluster_list, Qt.Key.Key_Return)  # Enter, like a double-click or the button
    assert win.tabs.currentWidget() is win.photos_split
    shown = sorted(Path(r["path"]).name for r in win.grid_model.rows)
    assert shown == [f"s{i}.jpg" for i in range(6)]


def test_best_smiling_pick_and_export(crafted_window, qtbot, tmp_path):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from photo_sorter.store import BestChoice

    win = crafted_window
    view = win.best_view
    win.tabs.setCurrentWidget(view)
    view.refresh_button.click()
    qtbot.waitUntil(lambda: view.task is None, timeout=30000)
    assert len(view.groups) == 2, view.status.text()
    party = next(g for g in view.groups if g["folder"].endswith("party"))
    assert Path(party["best"]["path"]).name == "s3.jpg" and not party["manual"]
    qtbot.waitUntil(lambda: all(not it.icon().isNull() for row in view.rows for it in row.items.values()),
                    timeout=20000)
    shot(win, "best_smiling")
    other = next(r["photo_id"] for r in party["ranking"] if Path(r["path"]).name == "s1.jpg")
    view.choose(party["key"], other)
    qtbot.waitUntil(lambda: view.task is None, timeout=30000)
    party = next(g for g in view.groups if g["folder"].endswith("party"))
    assert party["manual"] and Path(party["best"]["path"]).name == "s1.jpg"
    with Session(win.engine) as s:
        assert s.scalars(select(BestChoice.photo_id)).all() == [other]
    originals = {p: p.stat().st_mtime_ns for p in (tmp_path / "photos").rglob("*.jpg")}
    copied = view.copy_to(str(tmp_path / "picks"))
    assert sorted(Path(c).name for c in copied) == ["g0.jpg", "s1.jpg"]
    view.save_list(str(tmp_path / "picks.txt"))
    assert (tmp_path / "picks.txt").read_text().count("\n") == 2
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "photos").rglob("*.jpg")} == originals


def test_attribute_filter_panel_expression_and_saved_filters(crafted_window, qtbot):
    win = crafted_window
    panel = win.filter_panel
    names = lambda: sorted(Path(r["path"]).name for r in win.grid_model.rows)  # noqa: E731
    panel.set_choice("Smiling", "yes")
    assert panel.expression.text() == "Smiling"
    qtbot.waitUntil(lambda: win.source[0] == "photos" and win.grid_model.rowCount() == 6, timeout=20000)
    assert names() == [f"s{i}.jpg" for i in range(6)]
    scores = [r["score"] for r in win.grid_model.rows]
    assert scores == sorted(scores, reverse=True) and Path(win.grid_model.rows[0]["path"]).name == "s3.jpg"
    shot(win, "filter_smiling")
    panel.slider.setValue(80)  # Smiling >= 0.80: s3 (0.99), s4 (0.80), s5 (0.85)
    assert panel.expression.text() == "Smiling >= 0.80"
    qtbot.waitUntil(lambda: names() == ["s3.jpg", "s4.jpg", "s5.jpg"], timeout=20000)
    panel.slider.setValue(50)
    panel.set_choice("Smiling", "any")
    panel.set_choice("Eyeglasses", "no")
    qtbot.waitUntil(lambda: names() == [f"s{i}.jpg" for i in range(6)], timeout=20000)
    panel.save_current("no glasses")
    panel.expression.setText("Eyeglasses and not Male")
    panel.run()
    qtbot.waitUntil(lambda: names() == [f"g{i}.jpg" for i in range(6)], timeout=20000)
    panel.expression.setText("Smilng")
    panel.run()
    qtbot.waitUntil(lambda: "Smilng" in panel.message.text(), timeout=20000)
    assert "Smiling" in panel.message.text()  # the core suggests the right name
    panel.apply_saved("no glasses")
    qtbot.waitUntil(lambda: names() == [f"s{i}.jpg" for i in range(6)], timeout=20000)
    assert win.settings.saved_filters == {"no glasses": "not Eyeglasses"}
    panel.clear()
    assert win.source == ("all", None) and win.grid_model.rowCount() == 12


def test_preferences_store_settings_and_own_thresholds_reach_bars_and_filter(crafted_window, qtbot):
    from photo_sorter.gui.preferences import PreferencesDialog

    win = crafted_window
    calibrated = listings.active_model(win.engine)["thresholds"]
    dialog = PreferencesDialog(win.settings, calibrated, win)
    qtbot.addWidget(dialog)
    dialog.detect.setValue(1536)
    dialog.spins["Smiling"].setValue(0.75)
    shot(dialog, "preferences")
    dialog.accept()
    assert win.settings.detection_size == 1536
    assert win.settings.threshold_overrides == {"Smiling": 0.75}
    win.grid.setCurrentIndex(win.grid_model.index(0))  # s0: Smiling 0.60
    assert ("Smiling", pytest.approx(0.6), 0.75) in win.face_panel.bars.rows
    win.filter_panel.set_choice("Smiling", "yes")
    assert win.filter_panel.expression.text() == "Smiling >= 0.75"
    qtbot.waitUntil(lambda: sorted(Path(r["path"]).name for r in win.grid_model.rows)
                    == ["s3.jpg", "s4.jpg", "s5.jpg"], timeout=20000)


def test_qt_binding_keeps_references_across_many_signals():
    """PySide6 6.12.0 returns True from Signal.emit without a reference (and drops one to None
    per QThread.run): a long session aborts the interpreter. Run in a child process so a broken
    binding fails this test instead of killing the test run."""
    import subprocess
    import sys

    code = """
import sys, threading
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal
app = QCoreApplication([])
class O(QObject):
    s = Signal(str)
o = O(); o.s.connect(lambda text: None)
before = sys.getrefcount(True), sys.getrefcount(None)
for _ in range(3000):
    o.s.emit("x")
class T(QThread):
    def run(self): pass
for _ in range(200):
    t = T(); t.start(); t.wait()
app.processEvents()
print(sys.getrefcount(True) - before[0] >= 0 and sys.getrefcount(None) - before[1] >= -50)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-500:]


def test_a_new_filter_cancels_the_running_query_and_esc_cancels(crafted_window, qtbot, monkeypatch):
    from PySide6.QtCore import Qt

    from photo_sorter import query

    win, panel = crafted_window, crafted_window.filter_panel
    real, started = query.photos, []

    def slow(engine, expr, cancel=None, **kwargs):  # "Smiling" runs until it is cancelled
        if expr == "Smiling":
            started.append(cancel)
            assert cancel.wait(30)
            raise query.QueryCancelled("the query was cancelled")
        return real(engine, expr, cancel=cancel, **kwargs)

    monkeypatch.setattr(query, "photos", slow)
    panel.expression.setText("Smiling")
    panel.run()
    qtbot.waitUntil(lambda: len(started) == 1, timeout=20000)
    panel.expression.setText("Eyeglasses and not Male")
    panel.run()
    assert started[0].is_set()  # the running query was told to stop at once
    qtbot.waitUntil(lambda: sorted(Path(r["path"]).name for r in win.grid_model.rows)
                    == [f"g{i}.jpg" for i in range(6)], timeout=20000)
    panel.expression.setText("Smiling")
    panel.run()
    qtbot.waitUntil(lambda: len(started) == 2, timeout=20000)
    qtbot.keyClick(panel.expression, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: panel.task is None, timeout=20000)
    assert started[1].is_set() and panel.message.text() == "query cancelled"
