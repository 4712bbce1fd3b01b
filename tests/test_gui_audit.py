"""What a demanding user found in the real app at the default (1280x820) and a small (1024x700)
window (issue 13, second pass): cut text, empty space, scroll traps, jargon. Offscreen, on the
shared crafted library."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QTextDocument, QWheelEvent
from PySide6.QtWidgets import QApplication

from photo_sorter import clusters, eigenfaces, selection
from test_gui import crafted_window, shot  # noqa: F401 - the shared fixture
from test_gui_issues import run_clustering


def one_line_width(label) -> float:
    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setHtml(label.text())
    return doc.idealWidth()


def test_small_window_keeps_scope_status_and_face_bars_whole(crafted_window, qtbot):
    win = crafted_window
    win.resize(1280, 820)  # the default size: a filter of three terms reads on one line
    win.show_source(("photos", [{"id": i, "score": 0.9} for i in win.ids[:6]]),
                    "Filter: Smiling and not Eyeglasses and Male")
    QApplication.processEvents()
    assert one_line_width(win.scope) <= win.scope.contentsRect().width()
    win.resize(1024, 700)
    QApplication.processEvents()
    assert (win.width(), win.height()) == (1024, 700)  # nothing holds the window wider (was 1118 px)
    # the scope line has the grid's width to itself (the order and size controls are under the grid)
    assert win.scope.width() + win.back_button.width() >= win.grid_stack.width() - 24
    assert win.grid_tools.y() > win.grid_stack.y() + win.grid_stack.height() - 4  # order and size: under the grid
    # the face's attribute bars: every name and percentage whole, no sideways scrolling
    win.grid.setCurrentIndex(win.grid_model.index(0))
    QApplication.processEvents()
    panel = win.face_panel
    assert panel.bars.rows and panel.scroll.viewport().width() >= panel.bars.minimumWidth()
    # a scan's closing line is not cut under the counts: it has the bar to itself while it shows
    bar = win.statusBar()
    bar.showMessage("Scan finished: 3 new, 0 changed (2 s). The library holds 188 photos with 190 faces; "
                    "2 files could not be read (see Scan problems).")
    assert not win.counts_label.isVisible()
    bar.clearMessage()
    assert win.counts_label.isVisible() and win.model_label.isVisible()
    bar.showMessage("Copied 3 photos.")
    assert win.counts_label.isVisible()
    # a library row: its name over its state, one entry (not two look-alike lines)
    rows = win.library_panel.list
    line = rows.fontMetrics().lineSpacing()
    assert all(2 * line <= rows.visualRect(rows.model().index(i, 0)).height() <= 2 * line + 12
               for i in range(rows.count()))
    shot(win, "audit_small_window_scope")


def test_best_smiling_rows_are_compact_scroll_with_the_page_and_follow_the_keys(crafted_window, qtbot):
    win = crafted_window
    view = win.best_view
    assert view.task is None and not view.groups
    win.tabs.setCurrentWidget(view)  # showing the tab finds the bursts, no button to press first
    qtbot.waitUntil(lambda: view.task is None and bool(view.groups), timeout=30000)
    assert len(view.rows) == 2
    for row in view.rows:
        strip = row.photos
        overflow = strip.horizontalScrollBar().maximum() > 0
        # every label whole, no vertical scrolling inside a row, and no band kept for a
        # scroll bar the row does not need
        assert strip.viewport().height() >= strip.gridSize().height()
        assert strip.verticalScrollBar().maximum() == 0
        assert (strip.height() > strip.gridSize().height() + strip.horizontalScrollBar().sizeHint().height()) == overflow
    strip = view.rows[0].photos
    wheel = QWheelEvent(QPointF(10, 10), QPointF(10, 10), QPoint(), QPoint(0, -120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    strip.wheelEvent(wheel)
    assert not wheel.isAccepted()  # goes on to the page
    strip.setCurrentRow(1)
    qtbot.keyClick(strip, Qt.Key.Key_Down)
    below = view.rows[1].photos
    assert below.currentRow() == 1 and QApplication.focusWidget() in (below, None)
    qtbot.keyClick(below, Qt.Key.Key_Up)
    assert strip.currentRow() == 1
    office = next(r for r in view.rows if r.group["folder"].endswith("office"))
    assert office.photos.item(0).text().endswith("not smiling")  # not "0 of 1 smiling"
    assert "best: picked automatically" in office.findChildren(type(win.scope))[0].text()


def test_plain_words_for_absent_attributes_and_a_burst_without_smiles():
    name = clusters.cluster_name({"No_Beard": 0.1, "Male": 0.95, "Smiling": 0.1},
                                 {"No_Beard": 0.8, "Male": 0.4, "Smiling": 0.5})
    assert name == "Beard · Male · not Smiling"
    faces = [{"smiling": 0.1, "blurry": 0.0}, {"smiling": 0.2, "blurry": 0.0}]
    ranked = [{"n_smiling": 0, "n_faces": 2, "everyone_smiling": False, "score": 0.1, "min_face_score": 0.1,
               "faces": faces}]
    assert selection.plain_ranking(ranked) == ["nobody smiles"]


def test_cluster_sheet_is_legible_fitted_at_the_default_window(crafted_window, qtbot):
    win = crafted_window
    view = run_clustering(win, qtbot)
    QApplication.processEvents()
    assert not view.sheet_pixmap.isNull()
    smallest_px = view._fit_scale() * eigenfaces.TEXT_PT * eigenfaces.SHEET_DPI / 72
    assert smallest_px >= 8.5, smallest_px
    assert view.zoom_label.text().startswith("Fit · ")
    view.zoom_sheet(1.0, absolute=True)
    assert view.zoom_label.text() == "100%"
    combo = view.runs_combo  # a run's date is never cut
    assert combo.fontMetrics().horizontalAdvance(combo.currentText()) <= combo.width() - 24
    shot(win, "audit_clusters_default_size")


def test_problem_actions_follow_the_chosen_file(crafted_window, tmp_path, monkeypatch):
    from sqlalchemy import update

    from photo_sorter.gui import main_window
    from photo_sorter.store import Photo, session_factory
    from test_gui_issues import add_unreadable

    win = crafted_window
    trunc, text = add_unreadable(win.engine, tmp_path / "bad")
    win.add_folders([str(tmp_path / "bad")], scan=False)
    assert win.problems.rowCount() == 2 and not any(b.isEnabled() for b in win.problem_buttons)
    win.problems.selectRow(next(i for i, r in enumerate(win.problem_rows) if r["path"] == trunc))
    assert win._problem_path() == trunc and all(b.isEnabled() for b in win.problem_buttons)
    with session_factory(win.engine)() as s:  # the folder watch read the finished file meanwhile
        s.execute(update(Photo).where(Photo.path == trunc).values(status="ok", error=None))
        s.commit()
    win.refresh()
    # Retry must not pass to the file that moved into the chosen row
    assert win.problems.rowCount() == 1 and win._problem_path() is None
    assert not any(b.isEnabled() for b in win.problem_buttons)
    win.problems.selectRow(0)
    monkeypatch.setattr(main_window.QDesktopServices, "openUrl", lambda _url: False)
    win.problem_buttons[0].click()  # Show in folder, where no file manager opens
    assert text in win.statusBar().currentMessage()
    summary = {"photos_new": 0, "photos_changed": 0, "photos_rechecked": 1, "photos_copied": 1,
               "photos_moved": 0, "seconds": 0.2, "cancelled": False}
    message = main_window.scan_message(summary, {"photos": 13, "faces": 12}, 1)
    assert message.startswith("Scan finished: 0 new, 0 changed, 1 read again, 1 copy of photos already")
    assert "1 file could not be read" in message


def test_photo_pane_and_viewer_say_a_problem_in_plain_words(qtbot):
    from photo_sorter.gui.photo_view import PhotoView

    view = PhotoView()
    qtbot.addWidget(view)
    view.set_photo({"id": 1, "path": "/photos/trunc.jpg", "status": "error", "faces": [],
                    "error": "OSError: image file is truncated (31 bytes not processed)"})
    assert "The file ends early" in view.message and "OSError" not in view.message


def test_prediction_progress_never_says_zero_faces(qtbot):
    from photo_sorter.gui.main_window import ScanProgress
    from photo_sorter.scan import ScanProgress as Report

    bar = ScanProgress()
    qtbot.addWidget(bar)
    bar.update_progress(Report("predicting", 188, 30, 0, 0))
    assert "0 faces" not in bar.text.text() and bar.bar.value() == 30
    bar.update_progress(Report("predicting", 188, 90, 64, 0))
    assert "64 faces predicted" in bar.text.text()
    bar.update_progress(Report("scanning", 188, 90, 0, 0))
    assert "0 faces" in bar.text.text()


def test_a_refresh_or_the_focus_never_swaps_a_filter_for_all_photos(crafted_window):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QFocusEvent

    win = crafted_window
    win.show_source(("photos", [{"id": i, "score": 0.9} for i in win.ids[:3]]), "Filter: Smiling")
    rows = win.library_panel.list
    assert rows.currentItem() is None
    win.refresh()  # a scan's or the folder watch's refresh
    assert rows.currentItem() is None and win.source[0] == "photos"
    # the focus lands on the list (Tab, or a hidden tab page handing it on): not a choice
    QApplication.sendEvent(rows, QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.TabFocusReason))
    assert win.source[0] == "photos" and rows.currentItem() is None
    win.tabs.setCurrentWidget(win.clusters_view)
    assert win.tabs.currentWidget() is win.clusters_view
    rows.setCurrentRow(1)  # a real choice (arrow keys, click) still switches
    assert win.source[0] == "folder"


def test_grid_columns_share_the_width(crafted_window):
    win = crafted_window
    grid = win.grid
    for width in (1280, 1024):
        win.resize(width, 760)
        QApplication.processEvents()
        cell = grid.delegate.sizeHint(None, grid.model().index(0, 0)).width() + 8
        columns = max(1, grid.viewport().width() // cell)
        assert grid.gridSize().width() * columns > grid.viewport().width() - columns  # no empty band at the right
        assert grid.visualRect(grid.model().index(0, 0)).width() == cell - 8  # the thumbnails keep their size
