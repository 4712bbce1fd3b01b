"""The grid's date headers, File › Open library and the keyboard/accessibility pass (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from test_gui import crafted_window, shot  # noqa: E402, F401 - the shared fixture
from test_store_open import HOLD  # noqa: E402 - a process holding a SQLite file locked


def test_date_headers_group_the_grid_and_are_skipped_by_selection_keys_and_viewer(crafted_window, qtbot):
    from photo_sorter.gui.photo_grid import HeaderRole, PhotoIdRole

    win = crafted_window
    model, grid = win.grid_model, win.grid
    win.sort.setCurrentIndex(win.sort.findData("date"))
    headers = [(i, model.index(i).data(HeaderRole)) for i in range(model.rowCount())
               if model.index(i).data(HeaderRole)]
    assert headers == [(0, ("Wednesday 1 May 2024", "6 photos")), (7, ("Saturday 1 June 2024", "6 photos"))]
    assert model.index(1).data() == "s0.jpg"  # the day is in the header, not under each photo
    assert not model.flags(model.index(0)) & (Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    # a header spans the grid's width, at the smallest and the largest thumbnails, after a resize
    for size, width in ((64, 1000), (256, 1400)):
        win.size_slider.setValue(size)
        win.resize(width, 800)
        qtbot.waitUntil(lambda: grid.visualRect(model.index(7)).width() >= grid.viewport().width() - 20)
        header, photo = grid.visualRect(model.index(7)), grid.visualRect(model.index(8))
        assert header.height() >= grid.fontMetrics().height() and photo.top() >= header.bottom()
    grid.selectAll()
    assert grid.selected_ids() == [r["id"] for r in model.rows]
    grid.setFocus()
    grid.setCurrentIndex(model.index(6))  # the last photo of May
    qtbot.keyClick(grid, Qt.Key.Key_Right)
    assert grid.currentIndex().row() == 8  # over the June header
    qtbot.keyClick(grid, Qt.Key.Key_Left)
    assert grid.currentIndex().row() == 6
    qtbot.keyClick(grid, Qt.Key.Key_End)
    assert grid.currentIndex().row() == 13
    qtbot.keyClick(grid, Qt.Key.Key_Home)
    assert grid.currentIndex().row() == 1  # the first photo, under its header
    grid.setCurrentIndex(model.index(6))
    viewer = win.open_viewer()
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert grid.currentIndex().row() == 8 and viewer.view.detail["id"] == grid.currentIndex().data(PhotoIdRole)
    viewer.close()
    shot(win, "grid_date_headers")
    win.sort.setCurrentIndex(win.sort.findData("date/month"))
    assert model.index(0).data(HeaderRole) == ("May 2024", "6 photos")
    assert model.index(1).data() == "s0.jpg\n01 May 2024"
    win.sort.setCurrentIndex(win.sort.findData("date/none"))
    assert model.rowCount() == 12 and model.index(0).data() == "s0.jpg\n01 May 2024"

def test_open_library_switches_libraries_and_a_failure_keeps_the_open_one(crafted_window, tmp_path, monkeypatch):
    import sqlite3
    import subprocess
    import sys

    from library_factory import make_library
    from PySide6.QtWidgets import QMessageBox

    from photo_sorter.store import ScanRun, db, open_engine, session_factory

    win = crafted_window
    first, folders = str(tmp_path / "library.db"), list(win.settings.folders)
    assert win.windowTitle() == "library.db — photo_sorter"
    other = tmp_path / "other" / "trip.db"
    engine, _ids, _faces = make_library(other, [{"name": "a.jpg"}, {"name": "b.jpg"}], photo_dir=tmp_path / "trip")
    with session_factory(engine).begin() as s:  # made by the CLI: the app finds its folder from the scan
        s.add(ScanRun(roots=[str(tmp_path / "trip")], status="finished"))
    engine.dispose()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    newer = tmp_path / "newer.db"
    open_engine(newer).dispose()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    locked = tmp_path / "locked.db"
    open_engine(locked).dispose()
    messages = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text: messages.append(text))
    monkeypatch.setattr(db, "CHECK_SECONDS", 0.2)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(locked)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = (win.engine, win.windowTitle(), [r["id"] for r in win.grid_model.rows])
        for target, words in ((damaged, "damaged"), (newer, "newer version"), (locked, "locked by another program"),
                              ("postgresql+psycopg://nobody@127.0.0.1:9/photos", "127.0.0.1")):
            assert not win.open_library(str(target))
            assert (win.engine, win.windowTitle(), [r["id"] for r in win.grid_model.rows]) == before
            problem, _blank, stays = messages[-1].split("\n")
            assert words in problem and stays == "library.db is still open; nothing was changed."
    finally:
        holder.kill()
        holder.wait()
    sheets = win.clusters_view.sheets_dir
    viewer = win.open_viewer(win.grid_model.rows[0]["id"])
    assert win.open_library(str(other))
    assert not viewer.isVisible()  # it stepped through the other library's photos
    assert win.windowTitle() == "trip.db — photo_sorter" and sorted(names(win)) == ["a.jpg", "b.jpg"]
    assert win.clusters_view.sheets_dir != sheets  # both number their runs from 1: no sheet overwrites another
    assert win.settings.folders == [str(tmp_path / "trip")] and win.settings.db_path == first  # not remembered
    assert win.library_panel.list.count() == 2  # All photos + trip
    assert win.settings.recent_libraries[:2] == [str(other), first]
    assert win.open_library(first, remember=True)
    assert len(names(win)) == 12 and win.settings.folders == folders
    assert win.open_library(str(other), remember=True)  # the app opens it at start; each keeps its folders
    assert win.settings.db_path == str(other) and win.settings.folders == [str(tmp_path / "trip")]
    win.settings.library = str(first)
    assert win.settings.folders == folders


def names(win) -> list[str]:
    return [Path(r["path"]).name for r in win.grid_model.rows]


def focus_chain(top) -> list:
    """The widgets Tab reaches in `top`, in order (a spin box's or combo box's own editor, and a
    widget whose focus goes to another, count as their owner)."""
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox

    chain, w = [], top
    while True:
        w = w.nextInFocusChain()
        if w is top or w in chain:
            return [c for c in chain if c.isVisible() and c.isEnabled() and c.window() is top.window()
                    and c.focusPolicy() & Qt.FocusPolicy.TabFocus and c.focusProxy() is None
                    and not isinstance(c.parentWidget(), (QAbstractSpinBox, QComboBox))]
        chain.append(w)


def spoken_name(widget) -> str:
    """What a screen reader announces for the widget: its accessible name, else what Qt derives
    (a button's text, a buddy label's text, a combo box's current entry)."""
    from PySide6.QtGui import QAccessible

    iface = QAccessible.queryAccessibleInterface(widget)
    return (widget.accessibleName() or (iface.text(QAccessible.Text.Name) if iface else "")).strip("&: ")


def test_every_control_tab_reaches_has_a_name_and_the_order_follows_the_window(crafted_window, qtbot):
    from PySide6.QtWidgets import QToolButton

    from photo_sorter.gui.open_library import OpenLibraryDialog
    from photo_sorter.gui.preferences import PreferencesDialog

    win = crafted_window
    win.grid.setCurrentIndex(win.grid_model.index(0))
    tops = []
    for tab in range(win.tabs.count()):
        win.tabs.setCurrentIndex(tab)
        tops.append(("window", tab, focus_chain(win)))
    win.tabs.setCurrentIndex(0)
    dialogs = [PreferencesDialog(win.settings, {"Smiling": 0.5}, win), OpenLibraryDialog(["/a.db"], "/b.db", win),
               win.open_models(), win.open_viewer(), win.open_wizard()]
    for dialog in dialogs:
        dialog.show()
        tops.append((type(dialog).__name__, 0, focus_chain(dialog)))
    assert all(len(chain) >= 2 for _where, _tab, chain in tops)
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget

    wizard = dialogs[-1]
    for page in (wizard.page(i) for i in wizard.pageIds()):  # the later pages, not shown yet
        tops.append((type(page).__name__, 0, [
            w for w in page.findChildren(QWidget) if w.isVisibleTo(page) and w.focusPolicy() & Qt.FocusPolicy.TabFocus
            and w.focusProxy() is None and not isinstance(w.parentWidget(), (QAbstractSpinBox, QComboBox))]))
    unnamed = [(where, tab, type(w).__name__) for where, tab, chain in tops for w in chain if not spoken_name(w)]
    assert unnamed == []
    photos = tops[0][2]
    names = [spoken_name(w) for w in photos]
    # left to right, top to bottom; the grid before the many Any/Yes/No buttons
    assert names[names.index("Library folders"):names.index("Photo thumbnails") + 1] == [
        "Library folders", "Add folder…", "Remove", "Rescan", "Filter expression", "Clear", "Minimum confidence",
        "Saved filters", "Save…", "Delete", "Sort and group the photos", "Thumbnail size", "Photo thumbnails"]
    buttons = [w for w in photos if isinstance(w, QToolButton)]
    assert photos.index(buttons[0]) > names.index("Photo with face boxes")
    assert spoken_name(buttons[1]) == "Smiling: Yes" and buttons[1].isCheckable()
    # at a large system font nothing is cut: whole threshold headers, the bursts' status on its own line
    prefs = dialogs[0]
    font = prefs.font()
    font.setPointSizeF(font.pointSizeF() * 1.6)
    prefs.setFont(font)
    header = prefs.table.horizontalHeader()
    for column in (1, 2):
        text = prefs.table.horizontalHeaderItem(column).text()
        assert header.sectionSize(column) >= header.fontMetrics().horizontalAdvance(text)
    win.tabs.setCurrentWidget(win.best_view)
    assert win.best_view.status.width() > win.best_view.width() // 2
    for dialog in dialogs:
        dialog.close()


def test_face_panes_follow_the_font_and_the_keyboard_and_never_tell_by_colour_alone(qtbot, tmp_path):
    from PIL import Image
    from PySide6.QtGui import QFont

    from photo_sorter.gui.photo_view import AttributeBars, PhotoView

    bars = AttributeBars()
    qtbot.addWidget(bars)
    values = ({"Smiling": 0.9, "Double_Chin": 0.2}, {"Smiling": 0.5, "Double_Chin": 0.5}, "",
              {"Double_Chin": "tags right only 8 % of the time"})
    bars.set_values(*values)
    small = bars.minimumHeight()
    font = QFont(bars.font())
    font.setPointSizeF(font.pointSizeF() * 2)
    bars.setFont(font)
    bars.set_values(*values)
    assert bars.minimumHeight() > small and bars.ROW > bars.fontMetrics().height()  # rows grow, never clip
    assert bars.accessibleDescription() == "Smiling 90% (yes); Double chin ⚠ 20%"  # greyed is also marked
    view = PhotoView()
    qtbot.addWidget(view)
    view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    Image.new("RGB", (100, 100)).save(tmp_path / "x.jpg")
    view.set_photo({"path": str(tmp_path / "x.jpg"), "status": "ok", "error": None, "width": 100, "height": 100,
                    "faces": [{"number": 1, "box": (0, 0, 10, 10)}, {"number": 2, "box": (50, 0, 10, 10)}]})
    assert view.accessibleDescription() == "x.jpg, 2 faces; Left and Right choose a face"
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.selected == 1
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.selected == 0


def test_open_library_on_a_server(crafted_window, postgres):
    from photo_sorter.store import open_engine

    win = crafted_window
    url = postgres.new_database()
    open_engine(url).dispose()  # a library made elsewhere (e.g. by the CLI)
    assert win.open_library(url.replace("postgres@", "postgres:secret@"))  # (the test server trusts anyone)
    assert win.engine.dialect.name == "postgresql" and win.grid_model.rowCount() == 0
    assert win.windowTitle() == f"{url.replace('postgres@', 'postgres:***@')} — photo_sorter"
    assert win.settings.recent_libraries[0] == url  # the password is never stored
    assert win.open_library(str(win.settings.recent_libraries[1]))  # back to the file
    assert win.grid_model.rowCount() == 12


def test_a_scan_adding_a_photo_mid_way_keeps_the_grouped_grid_where_it_was(crafted_window, qtbot):
    from datetime import datetime

    from photo_sorter.store import Photo, session_factory

    win = crafted_window
    win.resize(1000, 600)
    win.sort.setCurrentIndex(win.sort.findData("date"))
    grid, model = win.grid, win.grid_model
    grid.setCurrentIndex(model.photo_index(11))  # g5, the last photo
    grid.scrollToBottom()
    qtbot.waitUntil(lambda: grid.verticalScrollBar().value() > 0)
    scrolled, last = grid.verticalScrollBar().value(), model.rows[11]["id"]
    win.refresh(live=True)  # a second of a scan that found nothing new: nothing moves
    assert grid.verticalScrollBar().value() == scrolled and model.photo(grid.currentIndex())["id"] == last
    with session_factory(win.engine).begin() as s:  # the scan reads a photo taken between the two days
        s.add(Photo(path=str(win.settings.folders[0]) + "/party/new.jpg", folder=win.settings.folders[0] + "/party",
                    status="ok", n_faces=0, captured_at=datetime(2024, 5, 15, 12)))
    win.refresh(live=True)
    assert model.index(7).data(HeaderRole) == ("Wednesday 15 May 2024", "1 photo")
    assert grid.verticalScrollBar().value() >= scrolled  # not back at the top: the chosen photo in view
    assert grid.viewport().rect().contains(grid.visualRect(grid.currentIndex()))
    assert model.photo(grid.currentIndex())["id"] == last and grid.selected_ids() == [last]


from photo_sorter.gui.photo_grid import HeaderRole  # noqa: E402
