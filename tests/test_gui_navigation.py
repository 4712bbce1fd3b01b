"""The grid's date headers, File › Open library and the keyboard/accessibility pass (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from test_gui import crafted_window, make_settings, shot  # noqa: E402, F401 - the shared fixture


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


HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode=EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("held", flush=True)
time.sleep(60)
"""


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
            assert words in problem and stays == "library.db stays open."
    finally:
        holder.kill()
        holder.wait()
    assert win.open_library(str(other))
    assert win.windowTitle() == "trip.db — photo_sorter" and sorted(names(win)) == ["a.jpg", "b.jpg"]
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
