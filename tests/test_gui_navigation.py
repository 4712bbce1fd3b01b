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
