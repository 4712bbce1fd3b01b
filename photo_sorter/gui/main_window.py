"""The main window: library panel, thumbnail grid, photo view with faces, scan progress and status."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QDockWidget, QHBoxLayout, QHeaderView, QLabel, QMainWindow,
    QProgressBar, QPushButton, QSplitter, QStackedWidget, QTableWidget,
    QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget,
)
from sqlalchemy.engine import Engine

from photo_sorter.attributes import DEFAULT_ATTRIBUTES
from photo_sorter.gui import listings
from photo_sorter.gui.best_view import BestView
from photo_sorter.gui.clusters_view import ClustersView
from photo_sorter.gui.config import Settings
from photo_sorter.gui.filter_panel import FilterPanel
from photo_sorter.gui.library_panel import LibraryPanel
from photo_sorter.gui.photo_grid import PhotoGrid, PhotoGridModel, PhotoIdRole
from photo_sorter.gui.photo_view import FacePanel, PhotoView
from photo_sorter.gui.tasks import ModelProvider, Task, left_text
from photo_sorter.gui.thumbnails import ThumbnailCache, ThumbnailLoader
from photo_sorter.gui.wizard import RetrainWizard

SAMPLE_LIBRARY = Path(__file__).resolve().parents[2] / "resources" / "sample_photos"
LIVE_REFRESH_MS = 1000
GRID_ICON = 160


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
        outer = QVBoxLayout(self)
        outer.addStretch()
        for w in (title, text):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w.setFixedWidth(520)
            w.setMinimumHeight(w.heightForWidth(520))
            outer.addWidget(w, 0, Qt.AlignmentFlag.AlignHCenter)
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
        parts = [report.phase.capitalize(), f"{report.faces} faces"]
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
        self.setWindowTitle("photo_sorter")
        self.resize(1280, 820)
        self.scan_task: Task | None = None
        self.scanning: set[str] = set()
        self.source: tuple[str, object] = ("all", None)

        self.loader = ThumbnailLoader(ThumbnailCache(settings.cache_dir), GRID_ICON, parent=self)
        self.grid_model = PhotoGridModel(self.loader, GRID_ICON, self)
        self.grid = PhotoGrid(self.grid_model, GRID_ICON)
        self.grid.selectionModel().currentChanged.connect(self._photo_chosen)
        self.photo_view = PhotoView()
        self.face_panel = FacePanel()
        self.photo_view.faceSelected.connect(self._face_chosen)

        self.empty = EmptyLibrary(self.add_sample_library, lambda: self.library_panel.ask_folder())
        self.grid_stack = QStackedWidget()
        self.grid_stack.addWidget(self.grid)
        self.grid_stack.addWidget(self.empty)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.photo_view)
        right.addWidget(self.face_panel)
        right.setSizes([420, 380])
        self.photos_split = QSplitter()
        self.photos_split.addWidget(self.grid_stack)
        self.photos_split.addWidget(right)
        self.photos_split.setSizes([760, 420])
        self.tabs = QTabWidget()
        self.tabs.addTab(self.photos_split, "Photos")
        self.clusters_view = ClustersView(engine, settings.cache_dir / "cluster_sheets")
        self.clusters_view.photosRequested.connect(lambda rows: self.show_source(("photos", rows)))
        self.tabs.addTab(self.clusters_view, "Clusters")
        self.best_view = BestView(engine, self.loader)
        self.tabs.addTab(self.best_view, "Best smiling")
        self.setCentralWidget(self.tabs)

        self.library_panel = LibraryPanel()
        self.library_panel.folderChosen.connect(lambda _f: self.show_source(self._library_source()))
        self.library_panel.addRequested.connect(self.add_folder)
        self.library_panel.removeRequested.connect(self.remove_folder)
        self.library_panel.rescanRequested.connect(lambda fs: self.start_scan(fs or self.settings.folders))
        self.library_dock = self._dock("Library", self.library_panel, Qt.DockWidgetArea.LeftDockWidgetArea)

        model = listings.active_model(engine)
        self.filter_panel = FilterPanel(engine, settings, model["attributes"] if model else list(DEFAULT_ATTRIBUTES))
        self.filter_panel.results.connect(lambda rows: self.show_source(("photos", rows)))
        self.filter_panel.cleared.connect(lambda: self.show_source(self._library_source()))
        self.filter_dock = self._dock("Filter by attribute", self.filter_panel, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.problems = QTableWidget(0, 2)
        self.problems.setHorizontalHeaderLabels(["File", "Problem"])
        self.problems.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.problems.horizontalHeader().setStretchLastSection(True)
        self.problems.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems.verticalHeader().hide()
        self.problems_dock = self._dock("Scan problems", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.problems_dock.hide()

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

        self._build_menus()
        self.live_timer = QTimer(self)
        self.live_timer.setInterval(LIVE_REFRESH_MS)
        self.live_timer.timeout.connect(lambda: self.refresh(live=True))

        self.model_provider = ModelProvider(engine, self)
        self.model_provider.succeeded.connect(self._model_loaded)
        self.model_provider.failed.connect(self._model_failed)
        self._restore_layout()
        self.refresh()

    # --- construction helpers -------------------------------------------------------------
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
        self._action(file_menu, "&Add folder…", self.library_panel.ask_folder, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Add the &sample library", self.add_sample_library)
        self._action(file_menu, "&Rescan library", lambda: self.start_scan(self.settings.folders), "F5")
        file_menu.addSeparator()
        self._action(file_menu, "&Preferences…", self.open_preferences, QKeySequence.StandardKey.Preferences)
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.library_dock, self.filter_dock, self.problems_dock):
            view_menu.addAction(dock.toggleViewAction())
        tools = self.menuBar().addMenu("&Tools")
        self._action(tools, "&Retrain the attribute model…", self.open_wizard)
        self._action(tools, "Re-run attribute &prediction on the library", lambda: self.start_repredict())

    def _restore_layout(self) -> None:
        geometry = self.settings.q.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.q.value("window/state")
        if state is not None:
            self.restoreState(state)

    def start_background(self) -> None:
        """Start loading TensorFlow and the model (after the window is shown)."""
        if not self.model_provider.isRunning() and not self.model_provider.future.done():
            self.model_provider.start()

    # --- model ------------------------------------------------------------------------------
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
        self.refresh()
        if scan:
            self.start_scan(good)

    def remove_folder(self, folder: str) -> None:
        self.settings.folders = [f for f in self.settings.folders if f != folder]
        self.refresh()

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
            return (f"Scan {'cancelled' if summary['cancelled'] else 'finished'}: "
                    f"{summary['photos_new']} new, {summary['photos_changed']} changed, "
                    f"{summary['photos_unchanged']} unchanged photos, {summary['faces']} faces, "
                    f"{summary['errors']} unreadable ({summary['seconds']:.0f} s)")

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
    def _library_source(self) -> tuple[str, object]:
        folder = self.library_panel.current_folder()
        return ("folder", folder) if folder else ("all", None)

    def show_source(self, source: tuple[str, object]) -> None:
        """What the grid shows: ("all", None), ("folder", path) or ("photos", [rows with score])."""
        self.source = source
        self.tabs.setCurrentWidget(self.photos_split)
        self._refresh_grid()

    def _refresh_grid(self, live: bool = False) -> None:
        """live: only append the photos a running scan added since the last look (cheap on a
        large library); otherwise re-read the whole listing."""
        kind, value = self.source
        if live and kind != "photos" and self.grid_model.rows:
            last = self.grid_model.rows[-1]["id"]
            self.grid_model.append_rows(listings.photo_rows(
                self.engine, folder=value if kind == "folder" else None, after_id=last))
            return
        if kind == "photos":
            scores = {r["id"]: r.get("score") for r in value}
            rows = listings.photo_rows(self.engine, ids=list(scores))
            for r in rows:
                r["score"] = scores[r["id"]]
            self.grid.empty_text = "No photo matches."
        else:
            rows = listings.photo_rows(self.engine, folder=value if kind == "folder" else None)
            self.grid.empty_text = ("Scanning… photos appear here as they are read." if self.scanning
                                    else "No photos here yet.")
        self.grid_model.set_rows(rows)
        self.grid.viewport().update()
        no_library = not self.settings.folders and not rows and kind != "photos"
        self.grid_stack.setCurrentWidget(self.empty if no_library else self.grid)

    def refresh(self, live: bool = False) -> None:
        """Re-read what the window shows from the database (live: each second of a scan)."""
        counts = listings.counts(self.engine)
        self.counts_label.setText(f"{counts['photos']} photos · {counts['faces']} faces"
                                  + (f" · {counts['errors']} unreadable" if counts["errors"] else ""))
        self.library_panel.set_folders(
            counts["photos"], [(f, listings.folder_state(self.engine, f)) for f in self.settings.folders],
            self.scanning)
        self._refresh_grid(live)
        self._refresh_problems()

    def _refresh_problems(self) -> None:
        from photo_sorter.scan import list_errors

        rows = list_errors(self.engine)
        if len(rows) == self.problems.rowCount():
            return
        self.problems.setRowCount(len(rows))
        for i, r in enumerate(rows):
            item = QTableWidgetItem(Path(r["path"]).name)
            item.setToolTip(r["path"])
            self.problems.setItem(i, 0, item)
            self.problems.setItem(i, 1, QTableWidgetItem(r["error"] or ""))
        if rows and not self.problems_dock.isVisible():
            self.problems_dock.show()

    def _photo_chosen(self, current, _previous) -> None:
        photo_id = current.data(PhotoIdRole) if current.isValid() else None
        self.show_photo(photo_id)

    def show_photo(self, photo_id: int | None) -> None:
        self.current_detail = listings.photo_detail(self.engine, photo_id) if photo_id else None
        self.photo_view.set_photo(self.current_detail)

    def _face_chosen(self, face: dict | None) -> None:
        thresholds = dict(self.current_detail["thresholds"]) if face else {}
        thresholds.update(self.settings.threshold_overrides)
        self.face_panel.show_face(face, thresholds)

    def open_preferences(self) -> None:
        from photo_sorter.gui.preferences import PreferencesDialog

        active = listings.active_model(self.engine)
        dialog = PreferencesDialog(self.settings, active["thresholds"] if active else {}, self)
        if dialog.exec():
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
        self.wizard = RetrainWizard(self.settings.models_dir, card, parent=self)
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

    def reload_model(self) -> None:
        """Load the (new) active model in the background; later scans use it."""
        self.model_provider.wait()
        self.model_provider = ModelProvider(self.engine, self)
        self.model_provider.succeeded.connect(self._model_loaded)
        self.model_provider.failed.connect(self._model_failed)
        self.model_label.setText("Model: loading…")
        self.model_provider.start()

    # --- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Cancel running work, wait for the worker threads, then save the layout."""
        for task in (self.scan_task, self.clusters_view.task, self.best_view.task, self.filter_panel.task):
            if task is not None:
                task.cancel()
                task.wait()
        self.model_provider.wait()
        self.loader.stop()
        self.settings.q.setValue("window/geometry", self.saveGeometry())
        self.settings.q.setValue("window/state", self.saveState())
        super().closeEvent(event)
