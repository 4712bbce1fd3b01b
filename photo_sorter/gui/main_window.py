"""The main window: library panel, thumbnail grid, photo view with faces, scan progress and status."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
    QMainWindow, QMenu, QMessageBox, QProgressBar, QPushButton, QSlider, QSplitter, QStackedWidget,
    QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget,
)
from sqlalchemy.engine import Engine

from photo_sorter import library
from photo_sorter.attributes import DEFAULT_ATTRIBUTES, label
from photo_sorter.gui import listings
from photo_sorter.scan import PROBLEMS
from photo_sorter.gui.best_view import BestView
from photo_sorter.gui.clusters_view import ClustersView
from photo_sorter.gui.config import Settings, log_dir, remember_folder, start_folder
from photo_sorter.gui.filter_panel import FilterPanel
from photo_sorter.gui.library_panel import LibraryPanel
from photo_sorter.gui.photo_grid import PathRole, PhotoGrid, PhotoGridModel, PhotoIdRole
from photo_sorter.gui.photo_view import FacePanel, PhotoView
from photo_sorter.gui.tasks import ModelProvider, Task, left_text
from photo_sorter.gui.thumbnails import ThumbnailCache, ThumbnailLoader
from photo_sorter.gui.wizard import RetrainWizard
from photo_sorter.store import DatabaseError, open_engine
from photo_sorter.store.db import address, describe, to_url

SAMPLE_LIBRARY = Path(__file__).resolve().parents[2] / "resources" / "sample_photos"
LIVE_REFRESH_MS = 1000
SHORTCUTS = (  # (keys, what): shown in Help > Keyboard shortcuts
    ("Ctrl+O", "Add a folder"), ("Ctrl+Shift+O", "Open another library"), ("F5", "Rescan the library"), ("Ctrl+F", "Type a filter expression"),
    ("Ctrl+1 / 2 / 3", "Photos / Clusters / Best smiling"), ("Enter or Space", "Open the photo in the viewer"),
    ("Left / Right", "Previous / next photo (viewer)"), ("Home / End", "First / last photo (viewer)"),
    ("+ / - / 0 / 1", "Zoom in / out / fit / actual pixels (viewer)"),
    ("Up / Down", "The burst above / below (Best smiling)"),
    ("F", "Face boxes on or off (viewer)"), ("Esc", "Close the viewer"),
    ("Ctrl+A", "Select all photos in the grid"), ("Ctrl+Shift+C", "Copy the selected photos to a folder"),
    ("Ctrl+Shift+E", "Show the selected photo in its folder"), ("Alt+Left", "Back to all photos"),
    ("Ctrl+,", "Preferences"), ("F1", "This list"), ("Ctrl+Q", "Quit"),
)


class EmptyLibrary(QWidget):
    """Shown instead of the grid while the library has no folders: offers the sample library."""

    def __init__(self, add_sample, add_folder, parent=None):
        super().__init__(parent)
        title = QLabel("<h2>Your library is empty</h2>")
        text = QLabel("Add a folder of photos to find the faces in them, or start with the "
                      "bundled sample library (11 public-domain photos). Your photos are only "
                      "read, never changed or moved.")
        text.setWordWrap(True)
        self.sample_button = QPushButton("Add the sample library")
        self.sample_button.setEnabled(SAMPLE_LIBRARY.is_dir())
        self.sample_button.clicked.connect(add_sample)
        self.folder_button = QPushButton("Add a folder…")
        self.folder_button.clicked.connect(add_folder)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.sample_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch()
        # at most 520 px wide, narrower in a small window (the text wraps): a fixed width here
        # kept the whole window from shrinking below about 1120 px
        column = QWidget()
        column.setMaximumWidth(520)
        words = QVBoxLayout(column)
        for w in (title, text):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w.setWordWrap(True)
            words.addWidget(w)
        middle = QHBoxLayout()
        middle.addStretch()
        middle.addWidget(column, 1)
        middle.addStretch()
        outer = QVBoxLayout(self)
        outer.addStretch()
        outer.addLayout(middle)
        outer.addLayout(buttons)
        outer.addStretch()


class ScanProgress(QWidget):
    """Status-bar progress: bar with counts, ETA text and a Cancel button."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setFormat("%v / %m")
        self.text = QLabel()
        self.cancel_button = QPushButton("Cancel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)

    def update_progress(self, report) -> None:
        """report: scan.ScanProgress (phase, files_found, files_done, faces, errors, eta_seconds)."""
        busy = report.phase in ("discovering", "predicting") and not report.files_found
        self.bar.setMaximum(0 if busy else report.files_found)  # 0 = busy indicator
        self.bar.setValue(report.files_done)
        # re-prediction stores its faces in batches: "0 faces" at 30 of 188 photos read as lost work
        faces = (f"{report.faces} faces predicted" if report.faces else "") if report.phase == "predicting" \
            else f"{report.faces} faces"
        parts = [report.phase.capitalize(), faces]
        if report.errors:
            parts.append(f"{report.errors} unreadable")
        parts.append(left_text(report.eta_seconds))
        self.text.setText(" · ".join(p for p in parts if p))


class MainWindow(QMainWindow):
    """The library window. `engine` is the open library database; settings persist the rest."""

    def __init__(self, settings: Settings, engine: Engine, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.engine = engine
        self._library_opened()
        self.resize(1280, 820)
        self.scan_task: Task | None = None
        self.folder_watch = None  # gui.watching.FolderWatch, from start_background on
        self.scanning: set[str] = set()
        self.source: tuple[str, object] = ("all", None)
        self.source_title = ""
        self.current_detail: dict | None = None
        self.page_size = listings.PAGE
        self.scope_counts = (0, 0)  # (readable, unreadable) in the folder or library shown

        size = settings.thumbnail_size
        self.loader = ThumbnailLoader(ThumbnailCache(settings.cache_dir), 256, memory_items=1500, parent=self)
        self.grid_model = PhotoGridModel(self.loader, size, self)
        self.grid = PhotoGrid(self.grid_model, size)
        self.grid.selectionModel().currentChanged.connect(self._photo_chosen)
        self.grid.selectionModel().selectionChanged.connect(
            lambda *_: self.scope.setText(self._scope_text(self.grid_model.rows)))
        self.grid.photoActivated.connect(self.open_viewer)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._grid_menu)
        self.grid.setAccessibleName("Photo thumbnails")
        self.photo_view = PhotoView()
        self.photo_view.setAccessibleName("Photo with face boxes")
        self.photo_view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Left / Right choose a face
        self.face_panel = FacePanel()
        self.photo_view.faceSelected.connect(self._face_chosen)

        self.empty = EmptyLibrary(self.add_sample_library, lambda: self.library_panel.ask_folder())
        self.grid_stack = QStackedWidget()
        self.grid_stack.addWidget(self.grid)
        self.grid_stack.addWidget(self.empty)
        self.scope = QLabel()
        self.scope.setTextFormat(Qt.TextFormat.RichText)
        self.scope.setWordWrap(True)  # a long filter or cluster name wraps rather than being cut
        self.back_button = QPushButton("Show all photos")
        self.back_button.setToolTip("Back to all photos (Alt+Left)")
        self.back_button.clicked.connect(lambda: self.show_source(("all", None)))
        self.sort = QComboBox()
        self.sort.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sort.setMinimumContentsLength(22)
        self.sort.setToolTip("Order of the photos (a filter's matches are always best first)")
        self.sort.currentIndexChanged.connect(lambda _i: self._refresh_grid(new_scope=True))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(64, 256)
        self.size_slider.setValue(size)
        self.size_slider.setMaximumWidth(140)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.setAccessibleName("Thumbnail size")
        self.sort.setAccessibleName("Sort and group the photos")
        self.size_slider.valueChanged.connect(self._thumbnail_size)
        # the scope line has the grid's whole width (a filter or cluster name stays on one line
        # at the default size); the order and size controls sit under the grid, as in
        # Lightroom's toolbar
        head = QHBoxLayout()
        head.setContentsMargins(4, 2, 4, 2)
        head.addWidget(self.scope, 1)
        head.addWidget(self.back_button)
        self.grid_tools = QWidget()  # hidden with the empty library: nothing to order or size
        tools = QHBoxLayout(self.grid_tools)
        tools.setContentsMargins(4, 2, 4, 2)
        tools.addWidget(self.sort)
        tools.addStretch(1)
        tools.addWidget(QLabel("Size:"))
        tools.addWidget(self.size_slider)
        grid_side = QWidget()
        grid_layout = QVBoxLayout(grid_side)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.setSpacing(2)
        grid_layout.addLayout(head)
        grid_layout.addWidget(self.grid_stack, 1)
        grid_layout.addWidget(self.grid_tools)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.photo_view)
        right.addWidget(self.face_panel)
        right.setSizes([420, 380])
        self.photos_split = QSplitter()
        self.photos_split.addWidget(grid_side)
        self.photos_split.addWidget(right)
        self.photos_split.setSizes([840, 300])  # the grid first; the photo pane keeps what its bars need
        self.tabs = QTabWidget()
        self.tabs.addTab(self.photos_split, "Photos")
        self.clusters_view = ClustersView(engine, self._sheets_dir())
        self.clusters_view.photosRequested.connect(
            lambda rows, title: self.show_source(("photos", rows), title))
        self.tabs.addTab(self.clusters_view, "Clusters")
        self.best_view = BestView(engine, self.loader)
        self.tabs.addTab(self.best_view, "Best smiling")
        self.setCentralWidget(self.tabs)

        self.library_panel = LibraryPanel()
        self.library_panel.folderChosen.connect(
            lambda folder: self.show_source(("folder", folder) if folder else ("all", None)))
        self.library_panel.addRequested.connect(self.add_folder)
        self.library_panel.removeRequested.connect(self.remove_folder)
        self.library_panel.rescanRequested.connect(lambda fs: self.start_scan(fs or self.settings.folders))
        self.library_dock = self._dock("Library", self.library_panel, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.filter_panel = FilterPanel(engine, settings, list(DEFAULT_ATTRIBUTES))
        self.filter_panel.results.connect(
            lambda rows: self.show_source(("photos", rows), f"Filter: {self.filter_panel.expression.text()}",
                                          from_filter=True))
        self.filter_panel.cleared.connect(
            lambda: self.source[0] == "photos" and self.show_source(("all", None)))
        self.filter_dock = self._dock("Filter by attribute", self.filter_panel, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.problems = QTableWidget(0, 2)
        self.problems.setAccessibleName("Scan problems")
        self.problems.setHorizontalHeaderLabels(["File", "Problem"])
        self.problems.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.problems.horizontalHeader().setStretchLastSection(True)
        self.problems.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.problems.verticalHeader().hide()
        self.problems.itemActivated.connect(lambda _item: self.show_in_folder(self._problem_path()))  # or Enter
        problem_buttons = QHBoxLayout()
        self.problem_buttons: list[QPushButton] = []  # act on the chosen file: off until one is
        for text, tip, slot in (
                ("Show in folder", "Open the folder that holds the file", lambda: self.show_in_folder(self._problem_path())),
                ("Retry", "Read the file again (after it finished copying, or was repaired)", self.retry_problem),
                ("Ignore this file", "Stop listing this file here (it stays unreadable to the library)", self.ignore_problem)):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            b.setEnabled(False)
            self.problem_buttons.append(b)
            problem_buttons.addWidget(b)
        problem_buttons.addStretch()
        self.problems.itemSelectionChanged.connect(self._problem_buttons_state)
        problems_box = QWidget()
        problems_layout = QVBoxLayout(problems_box)
        problems_layout.setContentsMargins(4, 4, 4, 4)
        problems_layout.addWidget(self.problems, 1)
        problems_layout.addLayout(problem_buttons)
        self.problem_rows: list[dict] = []
        self.problems_dock = self._dock("Scan problems", problems_box, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.problems_dock.hide()
        self.resizeDocks([self.problems_dock], [170], Qt.Orientation.Vertical)

        self.scan_progress = ScanProgress()
        self.scan_progress.cancel_button.clicked.connect(self.cancel_scan)
        self.scan_progress.hide()
        self.model_label = QLabel("Model: loading…")
        self.device_label = QLabel("Device: …")
        self.counts_label = QLabel()
        bar = self.statusBar()
        bar.addWidget(self.scan_progress)
        for w in (self.counts_label, self.model_label, self.device_label):
            bar.addPermanentWidget(w)
        bar.messageChanged.connect(self._message_room)

        self._build_menus()
        self._tab_order()
        self.live_timer = QTimer(self)
        self.live_timer.setInterval(LIVE_REFRESH_MS)
        self.live_timer.timeout.connect(lambda: self.refresh(live=True))

        self.model_provider = ModelProvider(engine, self)
        self.model_provider.succeeded.connect(self._model_loaded)
        self.model_provider.failed.connect(self._model_failed)
        self.attributes: list[str] = []
        self.model_changed()
        self._restore_layout()
        self.refresh()

    # --- construction helpers -------------------------------------------------------------
    def _tab_order(self) -> None:
        """Tab follows the window left to right, top to bottom: library, filter, the grid's
        controls, the grid, the photo and its face; the many Any/Yes/No buttons come last (Ctrl+F
        jumps to the filter) so the grid is a few presses away."""
        lp, fp = self.library_panel, self.filter_panel
        chain = [lp.list, lp.add_button, lp.remove_button, lp.rescan_button, fp.expression, fp.clear_button,
                 fp.slider, fp.saved, fp.save_button, fp.delete_button, self.back_button, self.sort,
                 self.size_slider, self.grid, self.photo_view, self.face_panel.scroll, fp.scroll]
        for before, after in zip(chain, chain[1:]):
            self.setTabOrder(before, after)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open &library…", self.ask_open_library, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self._action(file_menu, "&Add folder…", self.library_panel.ask_folder, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Add the &sample library", self.add_sample_library)
        self._action(file_menu, "&Rescan library", lambda: self.start_scan(self.settings.folders), "F5")
        self._action(file_menu, "Remove &missing photos…", self.purge_missing)
        file_menu.addSeparator()
        self._action(file_menu, "&Preferences…", self.open_preferences, "Ctrl+,")
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")
        edit = self.menuBar().addMenu("&Edit")
        self._action(edit, "Select &all photos", self.grid.selectAll, QKeySequence.StandardKey.SelectAll)
        self._action(edit, "&Copy the selected photos to a folder…", self.ask_copy_selection, "Ctrl+Shift+C")
        self._action(edit, "&Save the list of selected photos…", self.ask_export_selection)
        self._action(edit, "Show in &folder", lambda: self.show_in_folder(self._current_path()), "Ctrl+Shift+E")
        self._action(edit, "&Filter by expression", self._focus_filter, QKeySequence.StandardKey.Find)
        view_menu = self.menuBar().addMenu("&View")
        for i, (name, widget) in enumerate((("&Photos", self.photos_split), ("&Clusters", self.clusters_view),
                                            ("&Best smiling", self.best_view)), 1):
            self._action(view_menu, name, lambda _=False, w=widget: self.tabs.setCurrentWidget(w), f"Ctrl+{i}")
        self._action(view_menu, "Back to all photos", lambda: self.show_source(("all", None)), "Alt+Left")
        self._action(view_menu, "Open the photo in the &viewer", lambda: self.open_viewer())
        view_menu.addSeparator()
        for dock in (self.library_dock, self.filter_dock, self.problems_dock):
            view_menu.addAction(dock.toggleViewAction())
        tools = self.menuBar().addMenu("&Tools")
        self._action(tools, "&Manage attribute models…", self.open_models)
        self._action(tools, "&Retrain the attribute model…", self.open_wizard)
        self._action(tools, "Re-run attribute &prediction on the library", lambda: self.start_repredict())
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "Open &log folder", self.open_log_folder)

    # --- the library ---------------------------------------------------------------------------
    def _library_opened(self) -> None:
        """Title, folder list and recent list for the open library (self.engine)."""
        name = address(self.engine.url)
        self.settings.library = None if name == address(to_url(self.settings.db_path)) else name
        if not self.settings.folders:  # a library made elsewhere: the folders its scans covered
            self.settings.folders = library.scanned_folders(self.engine)
        self.settings.add_recent_library(name)
        url = self.engine.url
        shown = Path(url.database).name if url.get_backend_name() == "sqlite" else describe(url)
        self.setWindowTitle(f"{shown} — photo_sorter")

    def _sheets_dir(self) -> Path:
        """Where the open library's cluster sheets go: a folder per library, since every
        library numbers its runs from 1 (the sheets are named after the run)."""
        key = hashlib.sha1(address(self.engine.url).encode()).hexdigest()[:12]
        return self.settings.cache_dir / "cluster_sheets" / key

    def ask_open_library(self) -> bool:
        from photo_sorter.gui.open_library import OpenLibraryDialog

        dialog = OpenLibraryDialog(self.settings.recent_libraries, address(self.engine.url), self)
        if not dialog.exec():
            return False
        return self.open_library(dialog.target(), remember=dialog.remember.isChecked())

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        current = address(self.engine.url)
        for name in self.settings.recent_libraries:
            action = self.recent_menu.addAction(name, lambda n=name: self.open_library(n))
            action.setEnabled(name != current)
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("No library opened yet").setEnabled(False)

    def open_library(self, target: str, remember: bool = False) -> bool:
        """Show another library in this window (a file's path or a server URL). When it cannot
        be opened, the user reads why in one line and the open library stays as it was."""
        if self.scan_task is not None:
            QMessageBox.information(self, "Open library", "A scan is running in this library: wait for "
                                    "it to finish or cancel it, then open the other library.")
            return False
        try:
            engine = open_engine(target)
        except DatabaseError as exc:
            problem = str(exc).rstrip(".")  # names the library already
            QMessageBox.warning(self, "Open library", f"{problem[:1].upper()}{problem[1:]}.\n\n"
                                f"{self.windowTitle().split(' — ')[0]} is still open; nothing was changed.")
            return False
        for task in (self.clusters_view.task, self.best_view.task, self.filter_panel.task):
            if task is not None:
                task.cancel()
                task.wait()
        for window in (getattr(self, "viewer", None), getattr(self, "models_dialog", None)):
            if window is not None:
                window.close()  # they show the other library's photos and models
        self.viewer = self.models_dialog = None
        if self.folder_watch is not None:
            self.folder_watch.stop()
            self.folder_watch.engine = engine
        old, self.engine = self.engine, engine
        self.filter_panel.engine = engine
        self.filter_panel.clear()
        self.clusters_view.set_engine(engine, self._sheets_dir())
        self.best_view.set_engine(engine)
        if remember:
            self.settings.remember_library(address(engine.url))
        self._library_opened()
        self.show_photo(None)
        self.show_source(("all", None))
        self.reload_model()
        self.apply_watch()
        self.refresh()
        old.dispose()
        self.statusBar().showMessage(f"Opened {describe(engine.url)}.", 10000)
        return True

    def _message_room(self, message: str) -> None:
        """A status message too long to share the bar has it to itself while it shows (its
        figures are the counts it hides), instead of being cut under the permanent labels."""
        bar = self.statusBar()
        permanent = (self.counts_label, self.model_label, self.device_label)
        room = bar.width() - sum(w.sizeHint().width() + 12 for w in permanent) - 24
        fits = bar.fontMetrics().horizontalAdvance(message) <= room
        for w in permanent:
            w.setVisible(fits)

    def _restore_layout(self) -> None:
        geometry = self.settings.q.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.q.value("window/state")
        if state is not None:
            self.restoreState(state)

    def start_background(self) -> None:
        """Start loading TensorFlow and the model, and watching the folders (after the window is shown)."""
        if not self.model_provider.isRunning() and not self.model_provider.future.done():
            self.model_provider.start()
        if self.folder_watch is None:
            from photo_sorter.gui.watching import FolderWatch

            self.folder_watch = FolderWatch(self.engine, self)
            self.folder_watch.scanned.connect(self._watch_scanned)
            self.folder_watch.failed.connect(lambda msg: self.statusBar().showMessage(f"Watching: {msg}", 10000))
        self.apply_watch()

    def apply_watch(self) -> None:
        """Watch the library folders while the preference is on (once start_background ran)."""
        if self.folder_watch is not None:
            self.folder_watch.apply(self.settings.folders if self.settings.watch_folders else [],
                                    self.settings.detection_size)

    def _watch_scanned(self, summary: dict) -> None:
        self.statusBar().showMessage(
            f"Watched folders: {summary['photos_new']} new, {summary['photos_changed']} changed, "
            f"{summary['photos_moved']} moved, {summary['photos_missing']} missing", 10000)
        self.refresh(live=True)

    # --- model ------------------------------------------------------------------------------
    def model_changed(self) -> None:
        """Rebuild every attribute list from the active model (its attributes, and the ones its
        card marks unreliable), e.g. after a model with other attributes was installed."""
        model = listings.active_model(self.engine)
        attributes = model["attributes"] if model else list(DEFAULT_ATTRIBUTES)
        from photo_sorter.model import unreliable_attributes

        unreliable = unreliable_attributes(model["card"]) if model else {}
        if (attributes, unreliable) == (self.attributes, getattr(self, "unreliable", None)):
            return
        self.attributes, self.unreliable = attributes, unreliable
        self._fill_sort(attributes)
        self.filter_panel.set_attributes(attributes, unreliable)
        self.clusters_view.set_attributes(attributes, unreliable)
        self.face_panel.unreliable = unreliable

    def _fill_sort(self, attributes: list[str]) -> None:
        """Date, name, then 'Most likely: <attribute>' for each attribute of the active model."""
        current = self.sort.currentData()
        self.sort.blockSignals(True)
        self.sort.clear()
        for key, text in listings.ORDERS.items():
            self.sort.addItem(f"Sort: {text}", key)
            if key == "date":  # "date" groups by day, like a photo app; the others say how
                self.sort.setItemText(self.sort.count() - 1, f"Sort: {text}, by day")
                for group, how in (("month", "by month"), ("year", "by year"), ("none", "no groups")):
                    self.sort.addItem(f"Sort: {text}, {how}", f"date/{group}")
        self.sort.insertSeparator(self.sort.count())
        for a in sorted(attributes, key=label):
            self.sort.addItem(f"Sort: most {label(a).lower()} first", f"attr:{a}")
        self.sort.setCurrentIndex(max(0, self.sort.findData(current)) if current else 0)  # (a separator has no data)
        self.sort.blockSignals(False)

    def _model_loaded(self, info: dict) -> None:
        self.model_label.setText(f"Model: {info['name']}")
        self.device_label.setText(f"Device: {info['device']}")

    def _model_failed(self, message: str) -> None:
        self.model_label.setText("Model: none")
        self.model_label.setToolTip(message)
        self.device_label.setText("Device: —")
        self.statusBar().showMessage(f"No attribute model: {message}", 15000)

    # --- library folders ------------------------------------------------------------------------
    def add_sample_library(self) -> None:
        self.add_folder(str(SAMPLE_LIBRARY))

    def add_folder(self, folder: str) -> None:
        self.add_folders([folder])

    def add_folders(self, folders: list[str], scan: bool = True) -> None:
        """Add folders to the library (bad ones are reported in the status bar) and scan them."""
        good = []
        for folder in folders:
            path = Path(folder).expanduser().resolve()
            if path.is_dir():
                good.append(str(path))
            else:
                self.statusBar().showMessage(f"Not a folder: {folder}", 10000)
        if not good:
            return
        self.settings.folders = [*self.settings.folders, *good]
        self.apply_watch()
        self.refresh()
        if scan:
            self.start_scan(good)

    def remove_folder(self, folder: str) -> None:
        """Take a folder out of the library: its photos leave the grid, the counts, the problems
        and every view (the files themselves are untouched)."""
        self.settings.folders = [f for f in self.settings.folders if f != folder]
        self.apply_watch()
        removed = library.forget_folder(self.engine, folder, keep=self.settings.folders)
        self.statusBar().showMessage(f"Removed {Path(folder).name} from the library ({removed} photos "
                                     "forgotten; the files were not touched).", 10000)
        self.show_source(("all", None))
        self.refresh()

    def purge_missing(self) -> int:
        """Forget the photos whose files are gone, after the user has seen what goes with them
        (their faces and their burst picks); returns how many rows were removed."""
        from photo_sorter import scan
        from photo_sorter.store.lock import LibraryBusy

        missing = scan.list_missing(self.engine)
        if not missing:
            QMessageBox.information(self, "Remove missing photos", "No photo of the library is missing.")
            return 0
        faces = sum(m["faces"] or 0 for m in missing)
        picks = sum(m["picked"] for m in missing)
        one = len(missing) == 1
        goes = [counted(faces, "face")] * bool(faces) + [counted(picks, "of your best-photo picks", "")] * bool(picks)
        box = QMessageBox(QMessageBox.Icon.Question, "Remove missing photos",
                          (f"{Path(missing[0]['path']).name} is" if one else f"{len(missing)} photos of the library are")
                          + " no longer on disk." + (f" Removing {'it' if one else 'them'} also removes "
                                                     f"{' and '.join(goes)}." if goes else "")
                          + " A drive that is only unplugged comes back by itself: remove only what is gone "
                          "for good.", QMessageBox.StandardButton.Cancel, self)
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Enter never deletes by mistake
        box.setDetailedText("\n".join(str(m["path"]) for m in missing))
        box.exec()
        if box.clickedButton() is not remove:
            return 0
        try:
            removed = scan.purge_missing(self.engine, [m["id"] for m in missing])
        except LibraryBusy as exc:
            QMessageBox.warning(self, "Remove missing photos", str(exc))
            return 0
        self.statusBar().showMessage(f"Removed {counted(removed, 'missing photo')} from the library.", 10000)
        self.refresh()
        return removed

    # --- scanning ----------------------------------------------------------------------------------
    def start_scan(self, folders: list[str]) -> bool:
        """Scan folders in the background; returns False when a scan is already running."""
        if not folders:
            return False
        roots = list(folders)
        engine, provider = self.engine, self.model_provider
        detect_size = self.settings.detection_size

        def work(progress, cancel):
            from photo_sorter import scan

            try:
                model = provider.future.result()
            except Exception:  # noqa: BLE001 - the scan reports a missing model itself
                model = None
            return scan.scan(engine, roots, model=model, options=scan.ScanOptions(detect_size=detect_size),
                             progress=progress, cancel=cancel)

        def done(summary: dict) -> str:
            return scan_message(summary, library.counts(engine), len(self._problems()))

        return self._start_library_task(work, done, roots, "Scan")

    def start_repredict(self) -> bool:
        """Predict every face the active model has not predicted yet (earlier predictions stay)."""
        engine, provider = self.engine, self.model_provider

        def work(progress, cancel):
            from photo_sorter import scan

            return scan.repredict(engine, provider.future.result(), progress=progress, cancel=cancel)

        def done(result: dict) -> str:
            return (f"Attribute prediction finished: {result['faces']} faces of {result['photos']} "
                    f"photos ({result['errors']} unreadable, {result['seconds']:.0f} s)")

        return self._start_library_task(work, done, [], "Prediction")

    def _start_library_task(self, work, describe, roots: list[str], what: str) -> bool:
        """Run one library-writing task (scan or prediction) with the status-bar progress."""
        if self.scan_task is not None:
            self.statusBar().showMessage("A scan is already running.", 5000)
            return False
        self.start_background()
        task = Task(work, self)
        task.progressed.connect(self._scan_progressed)
        task.succeeded.connect(lambda result: self._scan_finished(result, describe(result)))
        task.failed.connect(lambda message: self._scan_failed(what, message))
        task.finished.connect(self._scan_ended)
        self.scan_task = task
        self.scanning = set(roots)
        self.scan_progress.bar.setMaximum(0)
        self.scan_progress.text.setText("Starting (loading the model)…")
        self.scan_progress.cancel_button.setEnabled(True)
        self.scan_progress.show()
        self.live_timer.start()
        task.start()
        self.refresh()
        return True

    def cancel_scan(self) -> None:
        if self.scan_task is not None:
            self.scan_task.cancel()
            self.scan_progress.cancel_button.setEnabled(False)
            self.scan_progress.text.setText("cancelling…")

    def _scan_progressed(self, report) -> None:
        if self.scan_task is not None and not self.scan_task.cancelled:
            self.scan_progress.update_progress(report)

    def _scan_finished(self, summary: dict, message: str) -> None:
        self.last_scan_summary = summary
        self.statusBar().showMessage(message, 20000)

    def _scan_failed(self, what: str, message: str) -> None:
        self.last_scan_summary = {"status": "failed", "error": message}
        self.statusBar().showMessage(f"{what} failed: {message}", 15000)

    def _scan_ended(self) -> None:
        self.scan_task = None
        self.scanning = set()
        self.live_timer.stop()
        self.scan_progress.hide()
        self.refresh()

    # --- showing photos ------------------------------------------------------------------------------
    def show_source(self, source: tuple[str, object], title: str = "", from_filter: bool = False) -> None:
        """What the grid shows: ("all", None), ("folder", path) or ("photos", [rows with score])
        under `title` (a filter's expression, a cluster's name). The scope line above the grid,
        the library panel's selection and the photo pane follow it."""
        self.source, self.source_title = source, title
        self.tabs.setCurrentWidget(self.photos_split)
        kind, value = source
        self.library_panel.set_folders(library.counts(self.engine)["photos"], self._folder_states(),
                                       self.scanning, chosen=self._panel_row())
        if not from_filter:  # the filter no longer describes the grid
            self.filter_panel.forget_results()
        self._refresh_grid(new_scope=True)

    def _panel_row(self):
        """The library panel's row for what the grid shows: a folder, None for All photos, False
        (no row) for a filter or a cluster, so a refresh never claims "All photos" for them."""
        kind, value = self.source
        return value if kind == "folder" else (None if kind == "all" else False)

    def _folder_states(self) -> list[tuple[str, dict]]:
        return [(f, listings.folder_state(self.engine, f)) for f in self.settings.folders]

    def _listed(self, photo_id: int) -> bool:
        """Whether the grid's listing has the photo, on a page read or not."""
        if any(r["id"] == photo_id for r in self.grid_model.rows):
            return True
        kind, value = self.source
        folder = value if kind == "folder" else None
        return self.grid_model.canFetchMore() and listings.listed(self.engine, photo_id, folder)

    def _scope_text(self, rows: list[dict]) -> str:
        """'All photos › party · 12 photos · 2 unreadable': the same figures as the status bar;
        a folder or the library counted by the database (a paged grid has not read them all)."""
        kind, value = self.source
        if kind == "photos":
            bad = sum(r["status"] in PROBLEMS for r in rows)
            n = len(rows) - bad
        else:
            n, bad = self.scope_counts
        count = f"{n} photo{'s' if n != 1 else ''}" + (f" · {bad} unreadable" if bad else "")
        chosen = len(self.grid.selected_ids())
        if chosen > 1:  # what Copy and Save the list will take, as Photos says "3 Photos Selected"
            count += f" · {chosen} selected"
        if kind == "all":
            return f"<b>All photos</b> · {count}"
        if kind == "folder":
            return f"All photos › <b>{Path(value).name or value}</b> · {count}"
        ranked = " · best first" if any(r.get("score") is not None for r in value) else ""
        return f"All photos › <b>{self.source_title or 'Chosen photos'}</b> · {count}{ranked}"

    def _thumbnail_size(self, size: int) -> None:
        self.settings.thumbnail_size = size
        self.grid_model.set_placeholder_size(size)
        self.grid.set_thumbnail_size(size)

    def _refresh_grid(self, live: bool = False, new_scope: bool = False) -> None:
        """live: only append the photos a running scan added since the last look (cheap on a
        large library); otherwise re-read the whole listing. new_scope: another listing (a new
        filter, folder or order), which opens at its top: its best matches, its first photos."""
        kind, value = self.source
        order, _, group = (self.sort.currentData() or "added").partition("/")
        self.sort.setEnabled(kind != "photos")
        self.back_button.setVisible(kind != "all")
        folder = value if kind == "folder" else None
        paged = kind != "photos" and order == "added"  # scan order: pages by photo id
        if kind != "photos":
            self.scope_counts = listings.photo_counts(self.engine, folder)
        if live and paged and self.grid_model.rows:
            if not self.grid_model.canFetchMore():  # else the new photos come with the last page
                last = self.grid_model.rows[-1]["id"]
                self.grid_model.append_rows(listings.photo_rows(self.engine, folder=folder, after_id=last))
            self.scope.setText(self._scope_text(self.grid_model.rows))
            return
        more = None
        if kind == "photos":
            scores = {r["id"]: r.get("score") for r in value}
            rows = listings.photo_rows(self.engine, ids=list(scores))
            for r in rows:
                r["score"] = scores[r["id"]]
            self.grid.empty_text = "No photo matches."
        else:
            # a re-read keeps the pages already read, so the view stays where the user was
            limit = (self.page_size if new_scope else max(self.page_size, len(self.grid_model.rows))) if paged else None
            rows = listings.photo_rows(self.engine, folder=folder, order=order, limit=limit)
            if paged and len(rows) == limit:
                more = lambda last: listings.photo_rows(self.engine, folder=folder, after_id=last,
                                                        limit=self.page_size)
            self.grid.empty_text = ("Scanning… photos appear here as they are read." if self.scanning
                                    else "No photos here yet.")
        dated = kind != "photos" and order == "date"
        scrolled, current = self.grid.verticalScrollBar().value(), self.grid_model.photo(self.grid.currentIndex())
        extended = self.grid_model.set_rows(rows, dates=(group or "day") if dated else None, more=more)
        if new_scope:
            self.grid.scrollToTop()
        elif not extended:  # the same listing re-read (a scan, the watcher): stay where the user was
            self.grid.executeDelayedItemsLayout()  # the scroll range of the new rows
            self.grid.verticalScrollBar().setValue(scrolled)
            at = next((i for i, r in enumerate(rows) if current and r["id"] == current["id"]), None)
            if at is not None:
                self.grid.selectionModel().setCurrentIndex(self.grid_model.photo_index(at),
                                                           QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if self.current_detail and not self._listed(self.current_detail["id"]):
            self.show_photo(None)  # the photo pane never keeps a photo the grid no longer has
        self.scope.setText(self._scope_text(rows))
        self.grid.viewport().update()
        no_library = not self.settings.folders and not rows and kind != "photos"
        self.grid_stack.setCurrentWidget(self.empty if no_library else self.grid)
        self.grid_tools.setHidden(no_library)

    def refresh(self, live: bool = False) -> None:
        """Re-read what the window shows from the database (live: each second of a scan)."""
        counts = library.counts(self.engine)
        problems = self._refresh_problems()
        self.counts_label.setText(f"{counts['photos']} photos · {counts['faces']} faces"
                                  + (f" · {problems} unreadable" if problems else ""))
        self.library_panel.set_folders(counts["photos"], self._folder_states(), self.scanning,
                                       chosen=self._panel_row())
        self._refresh_grid(live)

    def _problems(self) -> list[dict]:
        return library.problems(self.engine, set(self.settings.ignored_problems))

    def _refresh_problems(self) -> int:
        """Fill the problems panel (plain messages; the technical one in the tooltip); returns
        how many files it lists, the figure the status bar and the scan message give."""
        rows = self._problems()
        if bool(rows) == self.problems_dock.isHidden():  # shown while there is something to act on
            self.problems_dock.setVisible(bool(rows))
        if rows == self.problem_rows:
            return len(rows)
        chosen = self._problem_path()  # the selection follows the file, never a row number: a
        self.problems.clearSelection()  # fixed file leaving the list must not hand Retry to another
        self.problems.setCurrentCell(-1, -1)
        self.problem_rows = rows
        self.problems.setRowCount(len(rows))
        for i, r in enumerate(rows):
            item = QTableWidgetItem(Path(r["path"]).name)
            item.setToolTip(r["path"])
            self.problems.setItem(i, 0, item)
            problem = QTableWidgetItem(r["message"])
            problem.setToolTip(f"{r['path']}\n{r['error'] or ''}")
            self.problems.setItem(i, 1, problem)
            if r["path"] == chosen:
                self.problems.selectRow(i)
        self._problem_buttons_state()
        return len(rows)

    def _problem_buttons_state(self) -> None:
        for b in self.problem_buttons:
            b.setEnabled(self._problem_path() is not None)

    def _problem_path(self) -> str | None:
        row = self.problems.currentRow()
        return self.problem_rows[row]["path"] if 0 <= row < len(self.problem_rows) else None

    def retry_problem(self) -> None:
        path = self._problem_path()
        if path:
            self.start_scan([path])

    def ignore_problem(self) -> None:
        path = self._problem_path()
        if path:
            self.settings.ignored_problems = [*self.settings.ignored_problems, path]
            self.refresh()

    # --- selection: show in folder, copy, export ------------------------------------------------
    def _current_path(self) -> str | None:
        index = self.grid.currentIndex()
        return index.data(PathRole) if index.isValid() else None

    def show_in_folder(self, path: str | None) -> None:
        """Open the file manager on the folder that holds the file (the file is not touched)."""
        if path and not QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent))):
            self.statusBar().showMessage(f"No file manager could be opened: the file is {path}", 20000)

    def _grid_menu(self, pos) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction("Open in the viewer", lambda: self.open_viewer(index.data(PhotoIdRole)))
        menu.addAction("Show in folder", lambda: self.show_in_folder(index.data(PathRole)))
        menu.addSeparator()
        n = len(self.grid.selected_ids())
        menu.addAction(f"Copy {n} selected photo{'s' if n != 1 else ''} to a folder…", self.ask_copy_selection)
        menu.addAction("Save the list of selected photos…", self.ask_export_selection)
        menu.exec(self.grid.viewport().mapToGlobal(pos))

    def _selected_paths(self) -> list[str]:
        by_id = {r["id"]: r["path"] for r in self.grid_model.rows}
        return [by_id[i] for i in self.grid.selected_ids()]

    def ask_copy_selection(self) -> None:
        if not self._selected_paths():
            self.statusBar().showMessage("Select photos in the grid first.", 5000)
            return
        folder = QFileDialog.getExistingDirectory(self, "Copy the selected photos into", start_folder())
        if folder:
            remember_folder(folder)
            self.copy_selection(folder)

    def copy_selection(self, folder: str) -> list[str]:
        from photo_sorter.selection import copy_files

        try:
            copied = copy_files(self._selected_paths(), folder, self.engine)
        except ValueError as exc:
            self.statusBar().showMessage(f"Copy failed: {exc}", 10000)
            return []
        self.statusBar().showMessage(f"Copied {len(copied)} photos to {folder}.", 10000)
        return copied

    def ask_export_selection(self) -> None:
        paths = self._selected_paths()
        if not paths:
            self.statusBar().showMessage("Select photos in the grid first.", 5000)
            return
        target, _ = QFileDialog.getSaveFileName(self, "Save the list of selected photos",
                                                str(Path(start_folder()) / "photos.txt"), "Text files (*.txt)")
        if target:
            remember_folder(target)
            from photo_sorter.outputs import OutputError, Outputs

            try:
                Outputs(self.engine).write(target, "".join(f"{p}\n" for p in paths).encode())
            except OutputError as exc:
                self.statusBar().showMessage(f"Cannot save: {exc}", 10000)
                return
            self.statusBar().showMessage(f"Saved the list of {len(paths)} photos to {target}.", 10000)

    def _focus_filter(self) -> None:
        self.filter_dock.show()
        self.filter_panel.expression.setFocus()

    # --- help ---------------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{w}</td></tr>" for k, w in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def open_log_folder(self) -> None:
        log_dir().mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir())))

    def _photo_chosen(self, current, _previous) -> None:
        photo_id = current.data(PhotoIdRole) if current.isValid() else None
        self.show_photo(photo_id)

    def show_photo(self, photo_id: int | None) -> None:
        self.current_detail = listings.photo_detail(self.engine, photo_id) if photo_id else None
        self.photo_view.set_photo(self.current_detail)

    def open_viewer(self, photo_id: int | None = None):
        """The large viewer on the current photo (arrows step through the grid's photos)."""
        from photo_sorter.gui.viewer import Viewer

        index = self.grid.currentIndex()
        ids = [r["id"] for r in self.grid_model.rows]
        photo_id = photo_id or (index.data(PhotoIdRole) if index.isValid() else None)
        if photo_id not in ids:
            return None
        if getattr(self, "viewer", None) is not None:
            self.viewer.close()
        total = sum(self.scope_counts) if self.grid_model.canFetchMore() else None
        self.viewer = Viewer(lambda i: listings.photo_detail(self.engine, i), ids, ids.index(photo_id), self, total)
        self.viewer.moved.connect(lambda row: self._viewer_moved(ids, row))
        self._viewer_moved(ids, ids.index(photo_id))
        if self.isMaximized():
            self.viewer.showMaximized()
        else:  # over the window, as large as it: never larger than a small screen (was 1100x800)
            self.viewer.setGeometry(self.geometry())
            self.viewer.show()
        return self.viewer

    def _viewer_moved(self, ids: list[int], row: int) -> None:
        """The grid follows the viewer; at the last photo read, the next page joins the viewer's
        list (the same list object), so the arrow keys go on through a paged listing."""
        self.grid.setCurrentIndex(self.grid_model.photo_index(row))
        if row == len(ids) - 1 and self.grid_model.canFetchMore():
            self.grid_model.fetchMore()
            ids.extend(r["id"] for r in self.grid_model.rows[len(ids):])

    def _face_chosen(self, face: dict | None) -> None:
        thresholds = dict(self.current_detail["thresholds"]) if face else {}
        thresholds.update(self.settings.threshold_overrides)
        self.face_panel.show_face(face, thresholds)

    def open_preferences(self) -> None:
        from photo_sorter.gui.preferences import PreferencesDialog

        active = listings.active_model(self.engine)
        dialog = PreferencesDialog(self.settings, active["thresholds"] if active else {}, self)
        if dialog.exec():
            self.apply_watch()
            self._face_chosen(self.photo_view.selected_face())

    # --- retraining ----------------------------------------------------------------------------------
    def open_wizard(self) -> RetrainWizard:
        """The retraining wizard, compared against the library's active model (or the bundled one)."""
        from photo_sorter.model import BUNDLED_MODEL, ModelError, read_card

        active = listings.active_model(self.engine)
        try:
            card = active["card"] if active else read_card(BUNDLED_MODEL)
        except ModelError:
            card = None
        installed = Path(active["path"]) if active and active.get("path") else BUNDLED_MODEL
        self.wizard = RetrainWizard(self.settings.models_dir, card, installed_model=installed, parent=self)
        self.wizard.install.connect(self.install_model)
        self.wizard.show()
        return self.wizard

    def install_model(self, model_path: str, repredict: bool) -> bool:
        """Make a model the library's active one (earlier models and predictions stay), with or
        without predicting every face again; the status bar then reloads it."""
        engine, models_dir = self.engine, self.settings.models_dir

        def activate(progress, cancel):
            from photo_sorter import scan
            from photo_sorter.model import install_model

            install_model(model_path, engine, models_dir)
            if repredict:
                return scan.repredict(engine, progress=progress, cancel=cancel)
            return {"faces": 0, "photos": 0, "errors": 0, "seconds": 0}

        def done(result: dict) -> str:
            return (f"Installed {Path(model_path).stem}"
                    + (f"; predicted {result['faces']} faces of {result['photos']} photos" if repredict else
                       "; use Tools > Re-run attribute prediction to predict the library with it"))

        started = self._start_library_task(activate, done, [], "Install")
        if started:
            self.scan_task.succeeded.connect(self.reload_model)
        return started

    def open_models(self):
        from photo_sorter.gui.models_dialog import ModelsDialog

        self.models_dialog = ModelsDialog(self.engine, self)
        self.models_dialog.activateRequested.connect(self.activate_model)
        self.models_dialog.installRequested.connect(lambda path: self.install_model(path, True))
        self.models_dialog.show()
        return self.models_dialog

    def activate_model(self, model_id: int) -> bool:
        """Switch the active model, predicting the faces it has not seen yet (with progress)."""
        engine = self.engine

        def work(progress, cancel):
            from photo_sorter import scan

            library.activate_model(engine, model_id)
            return scan.repredict(engine, progress=progress, cancel=cancel)

        def done(result: dict) -> str:
            return (f"Model switched; predicted {result['faces']} faces of {result['photos']} photos "
                    f"({result['seconds']:.0f} s)")

        started = self._start_library_task(work, done, [], "Switching the model")
        if started:
            self.scan_task.finished.connect(self.reload_model)
        return started

    def reload_model(self) -> None:
        """Load the (new) active model in the background; later scans use it, and every
        attribute list is rebuilt from it. Nothing is loaded before start_background asked for
        the first model (a window that never scans never imports TensorFlow)."""
        self.model_changed()
        if getattr(self, "models_dialog", None) is not None:
            self.models_dialog.reload()
        started = self.model_provider.isRunning() or self.model_provider.future.done()
        self.model_provider.wait()
        self.model_provider = ModelProvider(self.engine, self)
        self.model_provider.succeeded.connect(self._model_loaded)
        self.model_provider.failed.connect(self._model_failed)
        self.model_label.setText("Model: loading…")
        if started:
            self.model_provider.start()

    # --- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Cancel running work, wait for the worker threads, then save the layout."""
        for task in (self.scan_task, self.clusters_view.task, self.best_view.task, self.filter_panel.task):
            if task is not None:
                task.cancel()
                task.wait()
        self.model_provider.wait()
        if self.folder_watch is not None:
            self.folder_watch.stop()
        self.loader.stop()
        self.settings.q.setValue("window/geometry", self.saveGeometry())
        self.settings.q.setValue("window/state", self.saveState())
        super().closeEvent(event)


def counted(n: int, noun: str, plural: str = "s") -> str:
    """'1 face', '2 faces'; plural '' for a noun phrase that does not change ('of your picks')."""
    return f"{n} {noun}{plural if n != 1 else ''}"


def scan_message(summary: dict, counts: dict, unreadable: int) -> str:
    """The scan's closing line; the library figures are the ones the status bar and the
    problems panel show (library.counts), so they always agree."""
    from photo_sorter.scan import skipped_text

    state = "cancelled" if summary.get("cancelled") else "finished"
    done = [f"{summary['photos_new']} new", f"{summary['photos_changed']} changed"]
    for key, words in (("photos_rechecked", "read again"), ("photos_moved", "moved")):
        if summary.get(key):  # a Retry of a problem file, a renamed photo: not "0 new, 0 changed"
            done.append(f"{summary[key]} {words}")
    copies = summary.get("photos_copied") or 0
    if copies:
        done.append(f"{copies} cop{'y' if copies == 1 else 'ies'} of photos already in the library")
    skipped = f", skipped: {skipped_text(summary['skipped'])}" if summary.get("skipped") else ""
    return (f"Scan {state}: {', '.join(done)}{skipped} "
            f"({summary['seconds']:.0f} s). The library holds {counts['photos']} photos with "
            f"{counts['faces']} faces" + (f"; {unreadable} file{' could' if unreadable == 1 else 's could'} "
                                          "not be read (see Scan problems)." if unreadable else "."))
