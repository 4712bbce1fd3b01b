"""Best smiling view: each burst as a row of thumbnails, the best photo highlighted, per-face smile
scores under each photo. Double-click a photo to make it the best; export copies or lists the picks."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QListView, QListWidget,
    QListWidgetItem, QMenu, QPushButton, QScrollArea, QToolButton, QVBoxLayout, QWidget,
)

from photo_sorter.gui.tasks import Task, one_line
from photo_sorter.gui.thumbnails import ThumbnailLoader

PhotoRole = Qt.ItemDataRole.UserRole + 1
ICON = 120
BEST_COLOUR = QColor("#f9e79f")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


class GroupRow(QFrame):
    """One burst: header with time, count and why, then its photos best first."""

    chosen = Signal(str, int)   # group key, photo id
    reset = Signal(str)

    def __init__(self, group: dict, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.group, self.loader = group, loader
        self.setFrameShape(QFrame.Shape.StyledPanel)
        start = group.get("start")
        when = f"{start:%Y-%m-%d %H:%M:%S}" if hasattr(start, "strftime") else str(start or "")
        head = QLabel(f"<b>{Path(group['folder']).name}</b> · {when} · {len(group['photo_ids'])} photos"
                      f" · best: {'your choice' if group['manual'] else 'automatic'}"
                      f"<br><span style='color:gray'>{'; '.join(group['reasons'])}</span>")
        head.setWordWrap(True)
        self.photos = QListWidget()
        self.photos.setViewMode(QListView.ViewMode.IconMode)
        self.photos.setFlow(QListView.Flow.LeftToRight)
        self.photos.setWrapping(False)
        self.photos.setMovement(QListView.Movement.Static)
        self.photos.setIconSize(QSize(ICON, ICON))
        self.photos.setGridSize(QSize(ICON + 30, ICON + 56))
        self.photos.setFixedHeight(ICON + 64)
        self.photos.setToolTip("Double-click a photo to make it the best of this burst")
        self.photos.itemDoubleClicked.connect(
            lambda item: self.chosen.emit(group["key"], item.data(PhotoRole)))
        best = group["best"]["photo_id"]
        self.items: dict[str, QListWidgetItem] = {}
        for r in group["ranking"]:
            faces = " · ".join(f"{f['smiling']:.2f}" for f in r["faces"])
            star = "★ best\n" if r["photo_id"] == best else ""
            item = QListWidgetItem(f"{star}smile {faces}")
            item.setData(PhotoRole, r["photo_id"])
            per_face = "; ".join(f"smile {f['smiling']:.2f}, blur {_fmt(f['blurry'])}, score {f['score']:.2f}"
                                 for f in r["faces"])
            item.setToolTip(f"{r['path']}\nscore {r['score']:.2f}, {r['n_smiling']}/{r['n_faces']} "
                            f"smiling\nper face: {per_face}")
            if r["photo_id"] == best:
                item.setBackground(BEST_COLOUR)
            self.items[r["path"]] = item
            self.photos.addItem(item)
            self.update_thumbnail(r["path"])
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(head, 1)
        if group["manual"]:
            undo = QPushButton("Back to automatic")
            undo.clicked.connect(lambda: self.reset.emit(group["key"]))
            top.addWidget(undo)
        layout.addLayout(top)
        layout.addWidget(self.photos)

    def update_thumbnail(self, path: str) -> None:
        item = self.items.get(path)
        if item is not None:
            pixmap = self.loader.get(path)
            if pixmap is not None:
                item.setIcon(QIcon(pixmap))


class BestView(QWidget):
    """Rows of bursts from selection.best_smiling, computed in the background."""

    def __init__(self, engine, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.engine, self.loader = engine, loader
        self.groups: list[dict] = []
        self.rows: list[GroupRow] = []
        self.task: Task | None = None
        self.gap = QDoubleSpinBox()
        self.gap.setRange(0.1, 600)
        self.gap.setValue(2.0)
        self.gap.setSuffix(" s")
        self.gap.setToolTip("Photos taken closer together than this belong to one burst")
        self.refresh_button = QPushButton("Find bursts")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QToolButton()
        self.export_button.setText("Export best picks")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("Copy the best photos to a folder…", self._ask_copy)
        menu.addAction("Save the list of best photos…", self._ask_list)
        self.export_button.setMenu(menu)
        self.status = QLabel()
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Burst gap:"))
        bar.addWidget(self.gap)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.export_button)
        bar.addWidget(self.status, 1)
        self.container = QWidget()
        self.rows_layout = QVBoxLayout(self.container)
        self.rows_layout.addStretch()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.container)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(scroll, 1)
        loader.ready.connect(lambda path: [row.update_thumbnail(path) for row in self.rows])
        self.export_button.setEnabled(False)
        self.status.setText("Press Find bursts to group the library's photos and pick the best smile of each.")

    def refresh(self) -> None:
        if self.task is not None:
            return
        from photo_sorter import selection

        engine, gap = self.engine, self.gap.value()
        self.task = Task(lambda progress, cancel: selection.best_smiling(engine, gap_seconds=gap), self)
        self.task.succeeded.connect(self._show)
        self.task.failed.connect(lambda msg: self._show([], msg))
        self.task.finished.connect(self._task_ended)
        self.refresh_button.setEnabled(False)
        self.status.setText("Finding bursts…")
        self.task.start()

    def _task_ended(self) -> None:
        self.task = None
        self.refresh_button.setEnabled(True)

    def _show(self, groups: list[dict], error: str = "") -> None:
        self.groups = groups
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows = []
        for g in groups:
            row = GroupRow(g, self.loader)
            row.chosen.connect(self.choose)
            row.reset.connect(lambda key: self.choose(key, None))
            self.rows_layout.insertWidget(self.rows_layout.count() - 1, row)
            self.rows.append(row)
        self.export_button.setEnabled(bool(groups))
        if error:
            self.status.setText(f"<b>Cannot pick best photos:</b> {error}")
        elif not groups:
            self.status.setText("No bursts found: a burst is two or more photos with faces taken "
                                "within the gap of each other in one folder.")
        else:
            manual = sum(g["manual"] for g in groups)
            self.status.setText(f"{len(groups)} burst{'s' if len(groups) != 1 else ''}"
                                + (f", {manual} picked by you" if manual else "")
                                + ". Double-click a photo to make it the best.")

    def choose(self, key: str, photo_id: int | None) -> None:
        from photo_sorter import selection

        try:
            selection.choose_best(self.engine, key, photo_id)
        except ValueError as exc:
            self.status.setText(f"<b>Cannot choose:</b> {one_line(exc)}")
            return
        self.refresh()

    def _ask_copy(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Copy the best photos into")
        if folder:
            self.copy_to(folder)

    def copy_to(self, folder: str) -> list[str]:
        """Copy the picks (the originals are only read) and report where they went."""
        from photo_sorter import selection

        try:
            copied = selection.copy_best(self.groups, folder)
        except ValueError as exc:
            self.status.setText(f"<b>Copy failed:</b> {one_line(exc)}")
            return []
        self.status.setText(f"Copied {len(copied)} photo{'s' if len(copied) != 1 else ''} to {folder}.")
        return copied

    def _ask_list(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the list of best photos", "best_photos.txt",
                                              "Text files (*.txt)")
        if path:
            self.save_list(path)

    def save_list(self, path: str) -> None:
        """One path per line: a list any other program (or a shell loop) can use."""
        try:
            Path(path).write_text("".join(f"{g['best']['path']}\n" for g in self.groups))
        except OSError as exc:
            self.status.setText(f"<b>Cannot save:</b> {exc.strerror or exc}")
            return
        self.status.setText(f"Saved the list of {len(self.groups)} best photos to {path}.")
