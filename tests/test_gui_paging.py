"""The grid reads "All photos" and a folder in pages (issues #13/#14): the first screenful at
once, the rest on scroll; select all, the viewer, refresh and the counts see the whole listing."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, update

from library_factory import make_library
from photo_sorter.library import under
from photo_sorter.store import Photo

PHOTOS = ([{"name": f"a{i:03}.jpg"} for i in range(70)] + [{"name": f"s{i}.jpg", "folder": "album/sub"} for i in range(5)]
          + [{"name": f"b{i}.jpg", "folder": "album2"} for i in range(6)]  # shares the prefix "album"
          + [{"name": f"c{i}.jpg", "folder": "Album"} for i in range(4)]  # another case
          + [{"name": f"d{i}.jpg", "folder": "al_um"} for i in range(3)])  # '_' is a LIKE wildcard


@pytest.fixture
def library(db_url):
    engine, ids, _ = make_library(db_url, PHOTOS)
    with engine.begin() as conn:  # two unreadable, one gone: listed and counted apart, not listed
        conn.execute(update(Photo).where(Photo.id.in_(ids[:2])).values(status="error"))
        conn.execute(update(Photo).where(Photo.id == ids[2]).values(status="missing"))
    return engine, ids


def test_under_is_a_folder_and_its_subfolders_only(library):
    engine, ids = library
    with engine.connect() as conn:
        def names(folder):
            return {p.rsplit("/", 2)[-2] for p in conn.scalars(select(Photo.path).where(under(folder)))}
        assert names("/photos/album") == {"album", "sub"} and names("/photos/album/") == {"album", "sub"}
        assert names("/photos/al_um") == {"al_um"} and names("/photos/Album") == {"Album"}
        assert names("/photos") == {"album", "sub", "album2", "Album", "al_um"}
        assert names("/photo") == set()


@pytest.fixture
def paged_window(qtbot, tmp_path, library):
    pytest.importorskip("PySide6")
    from photo_sorter.gui.main_window import MainWindow
    from test_gui import make_settings

    engine, ids = library
    settings = make_settings(tmp_path)
    settings.folders = ["/photos"]
    settings.thumbnail_size = 256  # few per screen: the view itself asks for few pages
    win = MainWindow(settings, engine)
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    win.page_size = 10
    win.show_source(("all", None))
    return win, [i for i in ids if i != ids[2]]


def test_all_photos_open_with_a_page_and_read_the_rest_on_scroll(paged_window, qtbot):
    from photo_sorter.gui.photo_grid import PhotoIdRole

    win, listed = paged_window
    model, grid = win.grid_model, win.grid
    read = len(model.rows)
    assert read % 10 == 0 and read < len(listed) / 3 and model.canFetchMore()
    assert "<b>All photos</b> · 85 photos · 2 unreadable" in win.scope.text()  # counted, not read
    for _ in range(20):  # scrolling to the end reads page after page, in scan order
        grid.scrollToBottom()
        qtbot.wait(10)
    assert [r["id"] for r in model.rows] == listed and not model.canFetchMore()
    # a refresh keeps every page read and the scroll position
    grid.verticalScrollBar().setValue(grid.verticalScrollBar().maximum() // 2)
    scrolled = grid.verticalScrollBar().value()
    win.refresh()
    assert len(model.rows) == len(listed) and grid.verticalScrollBar().value() == scrolled

    # select all takes the pages not read yet; copy takes all of them
    win.show_source(("all", None))
    assert len(model.rows) < len(listed)
    win.grid.selectAll()
    assert win.grid.selected_ids() == listed and len(win._selected_paths()) == len(listed)
    assert f"{len(listed)} selected" in win.scope.text()

    # the photo pane keeps a photo of the listing on a page not read again
    grid.setCurrentIndex(model.index(len(listed) - 1))
    win.show_source(("all", None))
    assert len(model.rows) < len(listed) and win.current_detail["id"] == listed[-1]

    # a running scan's new photo: with the last page when pages are left, else appended at once
    def scanned(name):
        with win.engine.begin() as conn:
            conn.execute(insert(Photo).values(path=f"/photos/album/{name}", folder="/photos/album", status="ok"))
        win.refresh(live=True)
    scanned("new1.jpg")
    assert "86 photos" in win.scope.text() and model.rows[-1]["path"] != "/photos/album/new1.jpg"
    model.fetch_all()
    assert model.rows[-1]["path"] == "/photos/album/new1.jpg"
    scanned("new2.jpg")
    assert model.rows[-1]["path"] == "/photos/album/new2.jpg" and "87 photos" in win.scope.text()

    # the viewer goes on past the last photo read
    win.show_source(("all", None))
    last = len(model.rows) - 1
    grid.setCurrentIndex(model.index(last))
    viewer = win.open_viewer()
    viewer.step(1)
    assert viewer.view.detail["id"] == listed[last + 1] == grid.currentIndex().data(PhotoIdRole)
    assert f"{last + 2} of {len(listed) + 2}" in viewer.about  # the listing's size, not the rows read
    viewer.close()


def test_a_folder_is_paged_and_counted_without_its_prefix_siblings(paged_window, qtbot):
    win, listed = paged_window
    win.show_source(("folder", "/photos/album"))
    assert len(win.grid_model.rows) < 72 and win.grid_model.canFetchMore()
    assert "album</b> · 72 photos · 2 unreadable" in win.scope.text()
    win.grid.selectAll()
    assert len(win.grid.selected_ids()) == 74
    assert {r["path"].rsplit("/", 2)[-2] for r in win.grid_model.rows} == {"album", "sub"}
    win.show_source(("folder", "/photos/al_um"))
    assert "al_um</b> · 3 photos" in win.scope.text() and not win.grid_model.canFetchMore()
