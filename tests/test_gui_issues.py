"""Regression tests for the desktop app's reported bugs (issue 13, items 1-10), each on a crafted
library in an offscreen window."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from library_factory import make_library, scene
from photo_sorter import library
from photo_sorter.gui import listings
from photo_sorter.store import Photo, session_factory
from test_gui import crafted_window, make_settings, shot  # noqa: F401 - the shared fixture


def add_unreadable(engine, folder: Path) -> list[str]:
    """A truncated JPEG and a text file named .jpg, stored as the scan stores them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trunc.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20)
    (folder / "text.jpg").write_text("not a photo")
    errors = {"trunc.jpg": "OSError: image file is truncated (31 bytes not processed)",
              "text.jpg": "not an image Pillow can read"}
    with session_factory(engine)() as s:
        for name, error in errors.items():
            s.add(Photo(path=str(folder / name), folder=str(folder), status="error", error=error))
        s.commit()
    return [str(folder / n) for n in errors]


def names(win) -> list[str]:
    return [Path(r["path"]).name for r in win.grid_model.rows]


def cell(win, row: int = 0):
    return win.grid.visualRect(win.grid_model.index(row)).size()


def test_1_grid_cells_keep_their_size_after_a_folder_of_unreadable_files(crafted_window, qtbot, tmp_path):
    win = crafted_window
    add_unreadable(win.engine, tmp_path / "bad")
    win.add_folders([str(tmp_path / "bad")], scan=False)
    before = cell(win)
    assert before.width() >= win.grid.iconSize().width()
    win.library_panel.list.setCurrentRow(2)  # the "bad" folder
    assert sorted(names(win)) == ["text.jpg", "trunc.jpg"]
    qtbot.waitUntil(lambda: all(win.loader.failed(r["path"]) for r in win.grid_model.rows), timeout=10000)
    assert cell(win) == before
    win.library_panel.list.setCurrentRow(0)  # All photos
    assert win.grid_model.rowCount() == 14
    assert cell(win) == before and cell(win, 13) == before
    win.grid.set_thumbnail_size(96)  # the size slider still resizes every cell
    assert cell(win).width() < before.width()
    shot(win, "bug1_grid_after_unreadable_folder")


def test_2_remove_takes_the_folder_out_of_grid_counts_and_problems(crafted_window, tmp_path):
    win = crafted_window
    add_unreadable(win.engine, tmp_path / "bad")
    win.add_folders([str(tmp_path / "bad")], scan=False)
    assert win.problems.rowCount() == 2 and "2 unreadable" in win.counts_label.text()
    win.library_panel.list.setCurrentRow(2)
    win.library_panel.remove_button.click()
    assert win.settings.folders == [str(tmp_path / "photos")]
    assert win.library_panel.list.currentRow() == 0 and win.source == ("all", None)
    assert win.grid_model.rowCount() == 12 and "trunc.jpg" not in names(win)
    assert win.problems.rowCount() == 0 and "unreadable" not in win.counts_label.text()
    assert not win.problems_dock.isVisible()  # no empty panel left behind
    assert library.counts(win.engine) == {"photos": 12, "errors": 0, "faces": 12}
    assert (tmp_path / "bad" / "trunc.jpg").is_file()  # the files stay


def test_3_new_results_open_at_the_top(crafted_window, qtbot):
    win = crafted_window
    win.resize(700, 500)
    win.grid.set_thumbnail_size(256)
    qtbot.waitUntil(lambda: win.grid.verticalScrollBar().maximum() > 0, timeout=5000)
    bar = win.grid.verticalScrollBar()
    bar.setValue(bar.maximum())
    win.filter_panel.set_choice("Smiling", "yes")
    qtbot.waitUntil(lambda: win.source[0] == "photos", timeout=20000)
    assert names(win)[0] == "s3.jpg" and bar.value() == 0  # the best match is in view
    bar.setValue(bar.maximum())
    win.filter_panel.set_choice("Smiling", "any")
    win.filter_panel.set_choice("Eyeglasses", "yes")
    qtbot.waitUntil(lambda: names(win)[:1] == ["g0.jpg"] and len(names(win)) == 6, timeout=20000)
    assert bar.value() == 0


def test_3_picking_a_best_photo_keeps_the_view_where_it_was(qtbot, tmp_path):
    from photo_sorter.gui.main_window import MainWindow

    photos = []
    for b in range(12):  # twelve bursts of three photos
        for i in range(3):
            photos.append({"name": f"b{b:02d}_{i}.jpg", "folder": f"f{b:02d}", "pixels": scene(b),
                           "captured_at": datetime(2024, 1, 1 + b, 10, 0, i),
                           "faces": [{"probs": {"Smiling": 0.5 + 0.1 * i}}]})
    engine, _ids, _ = make_library(tmp_path / "library.db", photos, photo_dir=tmp_path / "photos")
    settings = make_settings(tmp_path)
    win = MainWindow(settings, engine)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    view = win.best_view
    win.tabs.setCurrentWidget(view)
    view.refresh()
    qtbot.waitUntil(lambda: view.task is None, timeout=30000)
    assert len(view.groups) == 12
    bar = view.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=5000)
    bar.setValue(bar.maximum() // 2)
    where = bar.value()
    row = next(r for r in view.rows if r.y() + r.height() > where)  # a burst in view
    group = row.group
    other = next(r["photo_id"] for r in group["ranking"] if r["photo_id"] != group["best"]["photo_id"])
    row.photos.setCurrentRow(1)
    qtbot.keyClick(row.photos, Qt.Key.Key_Return)  # keyboard picking
    qtbot.waitUntil(lambda: view.task is None and any(g["manual"] for g in view.groups), timeout=30000)
    picked = next(g for g in view.groups if g["key"] == group["key"])
    assert picked["best"]["photo_id"] == other
    again = next(r for r in view.rows if r.group["key"] == group["key"])
    assert again.photos.hasFocus() and again.photos.currentRow() == 0  # keep picking from the keyboard
    qtbot.waitUntil(lambda: bar.value() == where, timeout=3000)
    texts = [view.rows[0].photos.item(i).text() for i in range(3)]
    assert texts[0].startswith("★ ") and texts[1].startswith("2nd: ")
    assert not any("photo " in t and any(ch.isdigit() for ch in t.split("photo ")[-1][:2]) for t in texts)
    shot(win, "best_smiling_plain_words")


def test_6_attribute_lists_follow_the_active_model(crafted_window):
    from sqlalchemy import update

    from photo_sorter.store import ModelVersion

    win = crafted_window
    clusters = win.clusters_view
    offered = [clusters.attribute_list.item(i).data(Qt.ItemDataRole.UserRole + 1)
               for i in range(clusters.attribute_list.count())]
    assert "Attractive" not in offered and offered == listings.active_model(win.engine)["attributes"]
    card = {"unreliable": {"Male": "its tags are right less than half the time"}}
    with session_factory(win.engine)() as s:  # a model with three attributes is installed
        s.execute(update(ModelVersion).values(attributes=["Eyeglasses", "Male", "Smiling"], card=card))
        s.commit()
    win.model_changed()
    assert clusters.attribute_list.count() == 3
    assert sorted(win.filter_panel.groups) == ["Eyeglasses", "Male", "Smiling"]
    male = next(clusters.attribute_list.item(i) for i in range(3)
                if clusters.attribute_list.item(i).data(Qt.ItemDataRole.UserRole + 1) == "Male")
    assert "less than half" in male.toolTip()  # issue 10: unreliable greyed with the reason
    assert win.filter_panel.legend.isVisibleTo(win.filter_panel)
    win.grid.setCurrentIndex(win.grid_model.index(0))
    assert "Male" in win.face_panel.bars.unreliable
    shot(win, "unreliable_greyed")


def test_7_every_count_agrees(crafted_window, tmp_path):
    from photo_sorter.gui.main_window import scan_message

    win = crafted_window
    add_unreadable(win.engine, tmp_path / "photos" / "bad")
    win.refresh()
    # what the scan reports after a rescan of an unchanged library with two unreadable files
    summary = {"photos_new": 0, "photos_changed": 0, "photos_unchanged": 14, "faces": 12,
               "errors": 0, "seconds": 1.0, "cancelled": False}
    message = scan_message(summary, library.counts(win.engine), len(win._problems()))
    assert "12 photos" in message and "2 files could not be read" in message
    assert win.counts_label.text().startswith("12 photos") and "2 unreadable" in win.counts_label.text()
    assert win.problems.rowCount() == 2
    assert win.library_panel.list.item(0).text().endswith("12 photos")
    assert "12 photos · 2 unreadable" in win.scope.text()
    assert win.problems.item(1, 1).text() == "The file ends early (damaged, or still being copied)."
    win.problems.setCurrentCell(1, 0)
    win.ignore_problem()
    assert win.problems.rowCount() == 1 and "1 unreadable" in win.counts_label.text()


def test_8_the_scope_is_shown_and_every_pane_follows_it(crafted_window, qtbot):
    win = crafted_window
    assert "All photos" in win.scope.text() and not win.back_button.isVisible()
    win.grid.setCurrentIndex(win.grid_model.index(7))  # g1.jpg: not in the smiling cluster
    assert win.photo_view.detail is not None
    win.filter_panel.set_choice("Eyeglasses", "yes")
    qtbot.waitUntil(lambda: win.source[0] == "photos", timeout=20000)
    assert "Filter: Eyeglasses" in win.scope.text()
    view = win.clusters_view
    view.k_spin.setValue(2)
    view.run_button.click()
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    smiling = next(i for i, c in enumerate(view.run_data["clusters"]) if c["mean_probabilities"]["Smiling"] > 0.5)
    view.cluster_list.setCurrentRow(smiling)
    view.open_button.click()
    assert "Cluster" in win.scope.text() and win.back_button.isVisible()
    assert sorted(names(win)) == [f"s{i}.jpg" for i in range(6)]
    assert win.photo_view.detail is None  # g1 is not in the grid any more
    assert win.library_panel.list.currentItem() is None  # the panel does not claim "All photos"
    assert win.filter_panel.expression.text() == "" and win.filter_panel.choices() == {}
    shot(win, "scope_cluster")
    all_item = win.library_panel.list.item(0)
    win.library_panel.list.itemClicked.emit(all_item)
    assert win.source == ("all", None) and win.grid_model.rowCount() == 12
    assert win.library_panel.list.currentRow() == 0
    win.clusters_view.open_current()
    win.back_button.click()
    assert win.source == ("all", None) and "All photos" in win.scope.text()


def test_9_faces_are_numbered_left_to_right(tmp_path):
    # the detector stored the right-hand face first
    photos = [{"name": "two.jpg", "faces": [{"box": (100, 20, 30, 36)}, {"box": (10, 20, 30, 36)}]}]
    engine, ids, _ = make_library(tmp_path / "library.db", photos)
    faces = listings.photo_detail(engine, ids[0])["faces"]
    assert [f["number"] for f in faces] == [1, 2] and [f["box"][0] for f in faces] == [10, 100]


def test_10_names_and_filters_are_never_cut_off(crafted_window, qtbot):
    from PySide6.QtGui import QFont, QFontMetrics

    from photo_sorter.attributes import label

    win = crafted_window
    win.grid.setCurrentIndex(win.grid_model.index(0))
    bars = win.face_panel.bars
    bold = QFont(bars.font())
    bold.setBold(True)
    widest = max(QFontMetrics(bold).horizontalAdvance(label(a)) for a, _p, _t in bars.rows)
    assert "Mouth_Slightly_Open" in [a for a, _p, _t in bars.rows]
    assert bars.text_width() >= widest and bars.minimumWidth() > widest
    panel = win.filter_panel
    for name in ("Smiling", "Eyeglasses", "Mouth_Slightly_Open", "Wearing_Hat"):
        panel.set_choice(name, "yes" if name != "Wearing_Hat" else "no")
    edit = panel.expression
    text = edit.text()
    assert sorted(text.split(" and ")) == ["Eyeglasses", "Mouth_Slightly_Open", "Smiling", "not Wearing_Hat"]
    lines = edit.document().documentLayout().documentSize().height()
    assert lines <= edit.viewport().height() and edit.horizontalScrollBar().maximum() == 0
    assert panel.scroll.horizontalScrollBar().maximum() == 0  # no horizontal scrollbar
    panel.save_current("smiling with glasses, mouth open, no hat")
    assert panel.saved.minimumSizeHint().width() > 0 and panel.saved.minimumContentsLength() >= 12
    shot(win.filter_dock, "filter_panel")


def test_typed_expression_moves_the_buttons(crafted_window):
    panel = crafted_window.filter_panel
    panel.expression.setText("smiling and not Wearing_Hat")
    panel._typed()
    assert panel.choices() == {"Smiling": "yes", "Wearing_Hat": "no"}
    panel.expression.setText("Smiling or Eyeglasses")
    panel._typed()
    assert panel.choices() == {}


def test_plain_problem_messages():
    assert library.plain_problem("OSError: image file is truncated (31 bytes not processed)") \
        == "The file ends early (damaged, or still being copied)."
    assert library.plain_problem("not an image Pillow can read").startswith("Not a picture")
    assert library.plain_problem("PermissionError: [Errno 13] Permission denied: '/x.jpg'") \
        == "No permission to read this file."
    assert library.plain_problem("ValueError: something new") == "Something new"
    assert library.plain_problem("file too large (2 bytes); skipped", "skipped") \
        == "Skipped on purpose: file too large (2 bytes); skipped"


def test_viewer_steps_zooms_and_hides_boxes(crafted_window, qtbot):
    win = crafted_window
    win.resize(1024, 700)
    win.grid.setCurrentIndex(win.grid_model.index(2))
    qtbot.keyClick(win.grid, Qt.Key.Key_Space)
    viewer = win.viewer
    qtbot.addWidget(viewer)
    assert viewer.size() == win.size()  # over the window, never larger than a small screen
    assert viewer.row == 2 and viewer.view.detail["id"] == win.grid_model.rows[2]["id"]
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.row == 3 and win.grid.currentIndex().row() == 3
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert viewer.row == 1
    qtbot.keyClick(viewer, Qt.Key.Key_Plus)
    assert viewer.zoom is not None and viewer.view.width() > 0
    qtbot.keyClick(viewer, Qt.Key.Key_0)
    assert viewer.zoom is None and viewer.caption.text().endswith("· fit")
    qtbot.keyClick(viewer, Qt.Key.Key_End)
    qtbot.keyClick(viewer, Qt.Key.Key_1)  # actual pixels, said in the caption
    assert viewer.row == 11 and viewer.zoom == 1.0 and viewer.caption.text().endswith("· 100%")
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    assert viewer.row == 0 and win.grid.currentIndex().row() == 0
    qtbot.keyClick(viewer, Qt.Key.Key_F)
    assert not viewer.view.show_boxes
    shot(viewer, "viewer")
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not viewer.isVisible()


def test_copy_selection_copies_without_touching_originals(crafted_window, tmp_path):
    win = crafted_window
    win.grid.selectAll()
    assert "12 photos · 12 selected" in win.scope.text()  # what the copy takes, said above the grid
    copied = win.copy_selection(str(tmp_path / "out"))
    assert len(copied) == 12 and all(Path(c).is_file() for c in copied)


def test_model_manager_activates_and_deletes(crafted_window, qtbot, tmp_path):
    from photo_sorter.store import ModelVersion

    win = crafted_window
    with session_factory(win.engine)() as s:
        s.add(ModelVersion(name="guesser", sha256="1" * 64, path=str(tmp_path / "g.keras"), attributes=["Smiling"],
                           thresholds={"Smiling": 0.5}, active=False,
                           card={"metrics": {"validation": {"mean_accuracy": 0.7, "mean_balanced_accuracy": 0.5,
                                                            "per_attribute": {"Smiling": {"balanced_accuracy": 0.5}}}}}))
        s.commit()
    dialog = win.open_models()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 2
    assert "no better than guessing" in dialog.table.item(0, 5).text()
    assert dialog.table.item(1, 5).text().startswith("active")
    shot(dialog, "models")
    dialog.table.selectRow(0)
    assert not dialog.activate_button.isEnabled()  # its file is missing
    guesser = tmp_path / "guesser.keras"
    guesser.write_bytes(b"x")
    guesser.with_suffix(".json").write_text(json.dumps(
        {**dialog.models[0]["card"], "attributes": ["Smiling"], "thresholds": {"Smiling": 0.5}}))
    asked = []
    assert not dialog.install(str(guesser), confirm=lambda text: asked.append(text) or False)
    assert "no better than always giving the more common answer" in asked[0]
    assert not dialog.install(str(tmp_path / "nothing.keras"), confirm=lambda text: True)
    assert "Cannot install" in dialog.message.text()
    dialog.delete(dialog.models[0]["id"])
    assert dialog.table.rowCount() == 1
    with pytest.raises(ValueError, match="active model"):
        library.delete_model(win.engine, dialog.models[0]["id"])


def test_sort_by_name_and_date(crafted_window):
    win = crafted_window
    assert win.sort.currentData() == "added" and win.sort.currentText() == "Sort: Date added"
    win.sort.setCurrentIndex(win.sort.findData("name"))
    assert names(win) == sorted(names(win), key=str.lower)
    win.sort.setCurrentIndex(win.sort.findData("date/none"))  # (grouped by day: test_gui_navigation)
    assert names(win)[:6] == [f"s{i}.jpg" for i in range(6)]  # May before June
    assert win.grid_model.index(0).data().endswith("\n01 May 2024")  # the day under the name
    assert np.all(np.diff([r["captured_at"].timestamp() for r in win.grid_model.rows]) >= 0)
    win.sort.setCurrentIndex(win.sort.findData("attr:Smiling"))
    assert names(win)[:3] == ["s3.jpg", "s5.jpg", "s4.jpg"]  # 0.99, 0.85, 0.80
    assert win.grid.verticalScrollBar().value() == 0


def test_activate_model_switches_the_active_one(crafted_window, tmp_path):
    from photo_sorter.store import ModelVersion

    win = crafted_window
    with session_factory(win.engine)() as s:
        s.add(ModelVersion(name="other", sha256="2" * 64, path=str(tmp_path / "o.keras"),
                           attributes=["Smiling"], thresholds={"Smiling": 0.5}, card={}, active=False))
        s.commit()
    other = next(m for m in library.models(win.engine) if m["name"] == "other")
    library.activate_model(win.engine, other["id"])
    assert [m["name"] for m in library.models(win.engine) if m["active"]] == ["other"]
    win.model_changed()
    assert sorted(win.filter_panel.groups) == ["Smiling"]
    with pytest.raises(ValueError):
        library.activate_model(win.engine, 999)


@pytest.mark.slow
def test_screenshots_script_saves_every_view(tmp_path):
    """scripts/screenshots.py opens the real (xcb) app under Xvfb and saves each view."""
    import shutil
    import subprocess
    import sys

    from test_gui import REPO

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb)")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 21 and all(p.stat().st_size > 5000 for p in pngs)


def test_listed_shortcuts_exist(crafted_window):
    from PySide6.QtGui import QAction, QKeySequence

    from photo_sorter.gui.main_window import SHORTCUTS

    bound = {a.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
             for a in crafted_window.findChildren(QAction) if not a.shortcut().isEmpty()}
    for keys in ("Ctrl+O", "F5", "Ctrl+F", "Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+A", "Ctrl+Shift+C",
                 "Ctrl+Shift+E", "Alt+Left", "Ctrl+,", "F1", "Ctrl+Q"):
        assert keys in bound, keys
        assert any(keys in k for k, _what in SHORTCUTS) or keys.startswith("Ctrl+") and keys[-1] in "123"


def run_clustering(win, qtbot, k: int = 2):
    """Run a clustering from the Clusters tab and wait for it; returns the view."""
    view = win.clusters_view
    win.tabs.setCurrentWidget(view)
    view.k_spin.setValue(k)
    view.run_button.click()
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    return view


def test_a_cluster_run_older_than_the_library_says_so(crafted_window, qtbot):
    from sqlalchemy import insert

    from photo_sorter.store import Face, predictions_table

    win = crafted_window
    view = run_clustering(win, qtbot)
    assert not view.notice.isVisibleTo(view), view.outdated.text()
    win.tabs.setCurrentWidget(win.photos_split)
    with session_factory(win.engine)() as s:  # a later scan found (and predicted) one more face
        face = Face(content_hash=s.get(Photo, win.ids[0]).content_hash, index=1, x=1, y=1, w=30, h=30, confidence=0.99, landmarks=[[0, 0]] * 5)
        s.add(face)
        s.flush()
        model = listings.active_model(win.engine)
        s.execute(insert(predictions_table).values(face_id=face.id, model_id=model["id"],
                                                   **dict.fromkeys(model["attributes"], 0.2)))
        s.commit()
    win.tabs.setCurrentWidget(view)  # back on the tab, as a user comes back after a scan
    assert view.notice.isVisibleTo(view) and "13 faces" in view.outdated.text()
    view.rerun()
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    assert not view.notice.isVisibleTo(view) and view.run_data["k"] == 2


def test_install_page_warns_about_a_majority_only_model(qtbot, tmp_path):
    from photo_sorter.gui.wizard import RetrainWizard
    from photo_sorter.training import TrainConfig

    wizard = RetrainWizard(tmp_path)
    qtbot.addWidget(wizard)
    page = wizard.page_install
    wizard.page_train.config = TrainConfig(celeba=str(tmp_path), out=str(tmp_path / "m.keras"))
    wizard.page_train.card = {"metrics": {"validation": {"per_attribute": {
        "Smiling": {"balanced_accuracy": 0.5}, "Male": {"balanced_accuracy": 0.5}}}}}
    page.initializePage()
    assert page.warning.isVisibleTo(page) and not page.isComplete()
    page.anyway.setChecked(True)
    assert page.isComplete()
    wizard.page_train.card["metrics"]["validation"]["per_attribute"]["Male"]["balanced_accuracy"] = 0.9
    page.initializePage()
    assert not page.warning.isVisibleTo(page) and page.isComplete()
    assert "Manage attribute models" in page.info.text()


def test_purge_missing_lists_what_goes_and_asks_first(crafted_window, monkeypatch):
    """Removing missing photos shows how many photos, faces and picks go, and the paths; Cancel
    keeps them, Remove deletes exactly the missing ones."""
    from PySide6.QtWidgets import QMessageBox
    from sqlalchemy import update

    from photo_sorter import scan
    from photo_sorter.store import Photo, session_factory

    win = crafted_window
    with session_factory(win.engine)() as s:
        s.execute(update(Photo).where(Photo.id.in_(win.ids[:2])).values(status="missing"))
        s.commit()
    shown = []

    def answer(button_text):
        def exec_(box):
            shown.append((box.text(), box.detailedText()))
            wanted = next((b for b in box.buttons() if b.text() == button_text), None)
            box.clickedButton = lambda: wanted  # noqa: B023 - the box is one-shot
            return 0
        return exec_

    monkeypatch.setattr(QMessageBox, "exec", answer("Cancel"))
    assert win.purge_missing() == 0 and len(scan.list_missing(win.engine)) == 2
    text, details = shown[-1]
    assert text.startswith("2 photos of the library are no longer on disk. Removing them also removes 2 faces.")
    assert len(details.splitlines()) == 2
    monkeypatch.setattr(QMessageBox, "exec", answer("Remove"))
    assert win.purge_missing() == 2 and scan.list_missing(win.engine) == []
    assert win.grid_model.rowCount() == 10
