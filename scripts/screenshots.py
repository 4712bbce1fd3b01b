"""Open the real app (xcb, under Xvfb when there is no display), drive its main flows on a
generated library and save a PNG of each view to test-artifacts/screens/ for a person to look at.

    python scripts/screenshots.py [--out DIR]

Re-runs itself under `xvfb-run` when no X display is set and xvfb-run is installed; exits 0
with a note otherwise. The library, settings and caches live in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def build_library(tmp: Path):
    """Two bursts of generated portraits (one with two faces), plus an unreadable folder."""
    import numpy as np
    from library_factory import make_library, scene
    from PIL import Image

    sample = sorted(p for p in (REPO / "resources" / "sample_photos").iterdir()
                    if p.suffix.lower() in (".jpg", ".png"))
    rng = np.random.default_rng(0)
    photos = []
    for i, path in enumerate(sample[:10]):
        pixels = np.asarray(Image.open(path).convert("RGB").resize((480, 360)))
        w, h = 480, 360
        faces = [{"probs": {"Smiling": 0.3 + 0.07 * i, "Male": 0.2 + 0.08 * i, "Eyeglasses": 0.1,
                            "Mouth_Slightly_Open": 0.7, "Double_Chin": 0.6},
                  "box": (w * 0.55, h * 0.2, 90, 110), "crop": rng.integers(0, 255, (109, 89, 3))}]
        if i == 3:
            faces.insert(0, {"probs": {"Smiling": 0.9}, "box": (w * 0.1, h * 0.25, 80, 100),
                             "crop": rng.integers(0, 255, (109, 89, 3))})
        photos.append({"name": path.stem + ".jpg", "folder": "holiday" if i < 5 else "office",
                       "pixels": pixels, "width": w, "height": h, "faces": faces,
                       "captured_at": datetime(2024, 5 if i < 5 else 6, 1, 10, 0, i)})
    for i in range(6):
        photos.append({"name": f"party_{i}.jpg", "folder": "party", "pixels": scene(40, (480, 360)),
                       "width": 480, "height": 360, "captured_at": datetime(2024, 7, 1, 20, 0, i),
                       "faces": [{"probs": {"Smiling": 0.5 + 0.08 * i, "Male": 0.9}, "box": (200, 90, 90, 110),
                                  "crop": rng.integers(0, 255, (109, 89, 3))}]})
    engine, _ids, _ = make_library(tmp / "library.db", photos, photo_dir=tmp / "photos")
    from sqlalchemy import update

    from photo_sorter.store import ModelVersion, Photo, session_factory

    bad = tmp / "photos" / "incoming"
    bad.mkdir(parents=True)
    (bad / "half_copied.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    (bad / "notes.jpg").write_text("not a photo")
    with session_factory(engine)() as s:
        s.add(Photo(path=str(bad / "half_copied.jpg"), folder=str(bad), status="error",
                    error="OSError: image file is truncated (31 bytes not processed)"))
        s.add(Photo(path=str(bad / "notes.jpg"), folder=str(bad), status="error",
                    error="not an image Pillow can read"))
        s.execute(update(ModelVersion).values(card={"unreliable": {
            "Double_Chin": "tags right only 8 % of the time on validation photos"}}))
        s.commit()
    return engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "test-artifacts" / "screens"))
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb":
        if shutil.which("xvfb-run") is None:
            print("no X display and no xvfb-run (apt-get install xvfb): nothing to do")
            return 0
        return subprocess.call(["xvfb-run", "-a", "-s", "-screen 0 1440x900x24", sys.executable,
                                *sys.argv])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="photo_sorter_screens_"))
    os.environ["HOME"] = str(tmp)  # QSettings, caches and logs of this run stay in tmp
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from photo_sorter.gui.config import Settings
    from photo_sorter.gui.main_window import MainWindow
    from photo_sorter.store import open_engine

    def pump(ms: int = 300) -> None:
        from PySide6.QtCore import QDeadlineTimer, QEventLoop

        deadline = QDeadlineTimer(ms)
        while not deadline.hasExpired():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    def wait(condition, ms: int = 60000) -> None:
        from PySide6.QtCore import QDeadlineTimer

        deadline = QDeadlineTimer(ms)
        while not condition() and not deadline.hasExpired():
            pump(100)

    shots: list[str] = []

    def shot(widget, name: str) -> None:
        pump(400)
        path = out / f"{name}.png"
        widget.grab().save(str(path))
        shots.append(str(path))

    def settings_for(name: str) -> Settings:
        q = QSettings(str(tmp / f"{name}.ini"), QSettings.Format.IniFormat)
        q.setValue("library/cache_dir", str(tmp / "cache"))
        q.setValue("library/models_dir", str(tmp / "models"))
        return Settings(q)

    # the empty library
    empty = MainWindow(settings_for("empty"), open_engine(tmp / "empty.db"))
    empty.show()
    shot(empty, "01_empty_library")
    empty.close()

    engine = build_library(tmp)
    settings = settings_for("main")
    settings.db_path = str(tmp / "library.db")  # the remembered library: these are its folders
    settings.folders = [str(tmp / "photos" / f) for f in ("holiday", "office", "party", "incoming")]
    win = MainWindow(settings, engine)
    win.resize(1400, 860)
    win.show()
    wait(lambda: all(win.loader.get(r["path"]) is not None or win.loader.failed(r["path"])
                     for r in win.grid_model.rows), 30000)
    shot(win, "02_all_photos_problems")
    win.grid.setCurrentIndex(win.grid_model.index(3))
    shot(win, "03_photo_two_faces_greyed_attribute")
    win.library_panel.list.setCurrentRow(3)  # party
    shot(win, "04_folder_scope")
    win.size_slider.setValue(96)
    win.sort.setCurrentIndex(win.sort.findData("date"))
    win.library_panel.list.itemClicked.emit(win.library_panel.list.item(0))
    shot(win, "05_small_thumbnails_by_date")
    win.sort.setCurrentIndex(win.sort.findData("attr:Smiling"))
    win.size_slider.setValue(180)
    win.library_panel.list.itemClicked.emit(win.library_panel.list.item(0))
    win.filter_panel.set_choice("Smiling", "yes")
    win.filter_panel.set_choice("Male", "yes")
    wait(lambda: win.source[0] == "photos")
    shot(win, "06_filter_results")
    viewer = win.open_viewer(win.grid_model.rows[0]["id"])
    viewer.resize(1000, 720)
    shot(viewer, "07_viewer")
    viewer.step(1)
    viewer.set_zoom(1.6)
    shot(viewer, "08_viewer_zoomed")
    viewer.close()
    win.tabs.setCurrentWidget(win.clusters_view)
    win.clusters_view.k_spin.setValue(3)
    win.clusters_view.run_button.click()
    wait(lambda: win.clusters_view.task is None)
    shot(win, "09_clusters")
    win.clusters_view.zoom_sheet(1.5)
    shot(win, "10_clusters_zoomed")
    win.clusters_view.open_current()
    shot(win, "11_cluster_scope")
    win.tabs.setCurrentWidget(win.best_view)
    win.best_view.refresh()
    wait(lambda: win.best_view.task is None)
    shot(win, "12_best_smiling")
    models = win.open_models()
    shot(models, "13_model_manager")
    models.close()
    wizard = win.open_wizard()
    wizard.resize(860, 640)
    shot(wizard, "14_wizard_folder")
    from celeba_factory import make_celeba

    wizard.page_folder.path.setText(str(make_celeba(tmp / "celeba", n=24)))
    wizard.page_folder.check()
    wait(wizard.page_folder.isComplete, 20000)
    wizard.next()
    wizard.next()
    shot(wizard, "15_wizard_settings_default_start")
    wizard.reject()
    from photo_sorter.gui.preferences import PreferencesDialog
    from photo_sorter.gui import listings

    prefs = PreferencesDialog(settings, listings.active_model(engine)["thresholds"], win)
    prefs.show()
    shot(prefs, "16_preferences")
    prefs.reject()

    def shot_modal(name: str) -> None:
        """Save the message box the app is waiting on, then close it."""
        box = app.activeModalWidget()
        shot(box, name)
        box.reject()

    from PySide6.QtCore import QTimer

    win.tabs.setCurrentIndex(0)
    win.size_slider.setValue(160)
    win.library_panel.list.itemClicked.emit(win.library_panel.list.item(0))
    win.sort.setCurrentIndex(win.sort.findData("date"))
    win.grid.setCurrentIndex(win.grid_model.photo_index(5))
    shot(win, "17_date_headers")
    from photo_sorter.gui.open_library import OpenLibraryDialog

    dialog = OpenLibraryDialog(settings.recent_libraries, str(tmp / "library.db"), win)
    dialog.show()
    shot(dialog, "18_open_library")
    dialog.reject()
    damaged = tmp / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    QTimer.singleShot(300, lambda: shot_modal("19_open_library_damaged"))
    win.open_library(str(damaged))
    gone = Path(win.grid_model.rows[0]["path"])  # deleted for good, as a rescan finds it
    gone.unlink()
    from sqlalchemy import update

    from photo_sorter.store import Photo, session_factory

    with session_factory(engine).begin() as s:
        s.execute(update(Photo).where(Photo.path == str(gone)).values(status="missing"))
    QTimer.singleShot(300, lambda: shot_modal("20_remove_missing"))
    win.purge_missing()
    win.resize(1024, 700)  # the small window: nothing cut, nothing scrolled sideways
    win.grid.setCurrentIndex(win.grid_model.photo_index(3))
    shot(win, "21_small_window")
    win.close()
    print("\n".join(shots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
