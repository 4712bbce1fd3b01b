"""Best smiling view: each burst as a compact row of thumbnails, the best first and highlighted,
each other photo with why it lost in plain words. Double-click (or Enter) makes a photo the best;
export copies or lists the picks."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QCheckBox, QDoubleSpinBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QListView, QListWidget,
    QListWidgetItem, QMenu, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget,
)

from photo_sorter.gui.config import remember_folder, start_folder
from photo_sorter.gui.tasks import Task, one_line
from photo_sorter.gui.thumbnails import ThumbnailLoader

PhotoRole = Qt.ItemDataRole.UserRole + 1
ICON = QSize(128, 96)  # landscape cell: portrait thumbnails fit its height, no empty band
BEST_COLOUR = QColor("#f9e79f")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class BurstStrip(QListWidget):
    """A burst's photos on one line, exactly as tall as they are (room for a scroll bar only
    while they overflow the width). The mouse wheel scrolls the page, not the strip; Up and Down
    ask for the burst above or below (`leave(step)`), so picking works from the keyboard alone."""

    leave = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(ICON)
        text_h = 2 * self.fontMetrics().lineSpacing()
        self.setGridSize(QSize(ICON.width() + 40, ICON.height() + text_h + 10))
        self.setFrameShape(QFrame.Shape.NoFrame)  # the burst's own frame is enough
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long name keeps its end, as in the grid
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.horizontalScrollBar().rangeChanged.connect(lambda _lo, _hi: self._fit_height())
        self._fit_height()

    def _fit_height(self) -> None:
        bar = self.horizontalScrollBar()
        overflow = bar.maximum() > 0
        self.setFixedHeight(self.gridSize().height() + 2 * self.frameWidth() + 4
                            + (bar.sizeHint().height() if overflow else 0))

    def wheelEvent(self, event) -> None:
        if abs(event.angleDelta().y()) > abs(event.angleDelta().x()):
            event.ignore()  # to the page's scroll area
        else:
            super().wheelEvent(event)

    def keyPressEvent(self, event) -> None:
        step = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1}.get(Qt.Key(event.key()))
        if step is None:
            super().keyPressEvent(event)
        else:
            self.leave.emit(step)


class GroupRow(QFrame):
    """One burst: header with time, count and why, then its photos best first."""

    chosen = Signal(str, int)   # group key, photo id
    reset = Signal(str)

    def __init__(self, group: dict, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.group, self.loader = group, loader
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # compact: never stretched
        start = group.get("start")
        when = f"{start:%Y-%m-%d %H:%M:%S}" if hasattr(start, "strftime") else str(start or "")
        from photo_sorter.selection import plain_ranking

        who = "your pick" if group["manual"] else "picked automatically"
        head = QLabel(f"<b>{Path(group['folder']).name}</b> · {when} · {len(group['photo_ids'])} photos"
                      f" · best: {who}")
        self.photos = BurstStrip()
        self.photos.setToolTip("Double-click a photo, or select it and press Enter, to make it the best "
                               "(Up and Down: the burst above or below)")
        self.photos.setAccessibleName(f"Burst in {Path(group['folder']).name} at {when}, {len(group['photo_ids'])} "
                                      f"photos, best: {who}")
        self.photos.setAccessibleDescription(self.photos.toolTip())
        # double-click and Enter both activate: picking works from the keyboard
        self.photos.itemActivated.connect(lambda item: self.chosen.emit(group["key"], item.data(PhotoRole)))
        best = group["best"]["photo_id"]
        ranking = sorted(group["ranking"], key=lambda r: r["photo_id"] != best)  # the best first
        words = dict(zip((r["photo_id"] for r in group["ranking"]), plain_ranking(group["ranking"])))
        self.items: dict[str, QListWidgetItem] = {}
        for place, r in enumerate(ranking, 1):
            name = Path(r["path"]).name
            text = (f"★ {name}\n{words[r['photo_id']]}" if r["photo_id"] == best
                    else f"{_ordinal(place)}: {name}\n{words[r['photo_id']]}")
            item = QListWidgetItem(text)
            item.setData(PhotoRole, r["photo_id"])
            item.setToolTip(f"{r['path']}\n{r['n_smiling']} of {r['n_faces']} face(s) smiling")
            if r["photo_id"] == best:
                item.setBackground(BEST_COLOUR)
                item.setForeground(QColor("black"))
            self.items[r["path"]] = item
            self.photos.addItem(item)
            self.update_thumbnail(r["path"])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
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
        self.gap.setAccessibleName("Burst gap")
        self.visual_split = QCheckBox("Split bursts by look")
        self.visual_split.setChecked(True)
        self.visual_split.setToolTip("Photos taken seconds apart but of different scenes make separate bursts")
        self.visual_split.toggled.connect(lambda _on: self.groups and self.refresh())
        self.refresh_button = QPushButton("Find bursts")
        self.refresh_button.setToolTip("Group the photos into bursts and pick the best smile of each")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export best picks")  # a push button draws its menu arrow beside the text
        menu = QMenu(self.export_button)
        menu.addAction("Copy the best photos to a folder…", self._ask_copy)
        menu.addAction("Save the list of best photos…", self._ask_list)
        self.export_button.setMenu(menu)
        self.status = QLabel()
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Burst gap:"))
        bar.addWidget(self.gap)
        bar.addWidget(self.visual_split)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.export_button)
        bar.addStretch(1)
        self.container = QWidget()
        self.rows_layout = QVBoxLayout(self.container)
        self.rows_layout.setSpacing(4)
        self.rows_layout.addStretch()
        self.scroll = QScrollArea()
        self.scroll.setAccessibleName("Bursts")
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.container)
        self._keep_scroll: int | None = None
        self.searched = False  # the first showing of the tab finds the bursts
        self._picked_in: str | None = None  # the burst a pick was made in: its row gets the focus back
        self._params: dict = {}
        self.scroll.verticalScrollBar().rangeChanged.connect(lambda _lo, _hi: self._restore_scroll())
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status)  # its own line: never a narrow column at a large font
        layout.addWidget(self.scroll, 1)
        loader.ready.connect(lambda path: [row.update_thumbnail(path) for row in self.rows])
        self.set_engine(engine)

    def set_engine(self, engine) -> None:
        """Another library: nothing shown until its bursts are found."""
        self.engine = engine
        self._show([])
        self.status.setText("Press Find bursts to group the library's photos and pick the best smile of each.")

    def showEvent(self, event) -> None:
        """The bursts are found the first time the tab is shown, as Photos shows its picks
        without being asked; Find bursts runs it again (after a scan, another gap)."""
        super().showEvent(event)
        if not self.searched:
            self.refresh()

    def refresh(self) -> None:
        if self.task is not None:
            return
        self.searched = True
        from photo_sorter import selection

        engine, params = self.engine, {"gap_seconds": self.gap.value(),
                                       "visual_split": self.visual_split.isChecked()}
        self._params = params  # a pick names its burst as these parameters grouped it
        self.task = Task(lambda progress, cancel: selection.best_smiling(engine, **params), self)
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
        """Rebuild the rows where the reader was: a pick re-runs the search, and the view stays
        at the burst that was picked in."""
        keep = self.scroll.verticalScrollBar().value()
        self.groups = groups
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows = []
        for g in groups:
            row = GroupRow(g, self.loader)
            row.chosen.connect(self.choose)
            row.reset.connect(lambda key: self.choose(key, None))
            row.photos.leave.connect(lambda step, row=row: self.move_focus(row, step))
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
                                + ". Double-click a photo (or Enter) to make it the best.")
        self._keep_scroll = keep
        self._restore_scroll()
        row = next((r for r in self.rows if r.group["key"] == self._picked_in), None)
        self._picked_in = None
        if row is not None:  # the keyboard stays on the burst just picked in, on its new best
            row.photos.setCurrentRow(0)
            row.photos.setFocus(Qt.FocusReason.OtherFocusReason)

    def move_focus(self, row: GroupRow, step: int) -> None:
        """From one burst to the one above or below (Up/Down), at the same place in the strip."""
        i = self.rows.index(row) + step
        if 0 <= i < len(self.rows):
            target = self.rows[i].photos
            target.setCurrentRow(min(max(0, row.photos.currentRow()), target.count() - 1))
            target.setFocus(Qt.FocusReason.OtherFocusReason)
            self.scroll.ensureWidgetVisible(self.rows[i])

    def _restore_scroll(self) -> None:
        """Back to where the reader was once the rebuilt rows give the scroll bar its range."""
        bar = self.scroll.verticalScrollBar()
        if self._keep_scroll is not None and bar.maximum() >= self._keep_scroll:
            bar.setValue(self._keep_scroll)
            self._keep_scroll = None

    def choose(self, key: str, photo_id: int | None) -> None:
        from photo_sorter import selection
        from photo_sorter.store import DatabaseError

        self._picked_in = key
        try:
            selection.choose_best(self.engine, key, photo_id, **self._params)
        except (ValueError, DatabaseError) as exc:  # DatabaseError: a scan holds the library
            self.status.setText(f"<b>Cannot choose:</b> {one_line(exc)}")
            return
        self.refresh()

    def _ask_copy(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Copy the best photos into", start_folder())
        if folder:
            remember_folder(folder)
            self.copy_to(folder)

    def copy_to(self, folder: str) -> list[str]:
        """Copy the picks (the originals are only read) and report where they went."""
        from photo_sorter import selection

        try:
            copied = selection.copy_best(self.groups, folder, self.engine)
        except ValueError as exc:
            self.status.setText(f"<b>Copy failed:</b> {one_line(exc)}")
            return []
        self.status.setText(f"Copied {len(copied)} photo{'s' if len(copied) != 1 else ''} to {folder}.")
        return copied

    def _ask_list(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the list of best photos",
                                              str(Path(start_folder()) / "best_photos.txt"), "Text files (*.txt)")
        if path:
            remember_folder(path)
            self.save_list(path)

    def save_list(self, path: str) -> None:
        """One path per line: a list any other program (or a shell loop) can use."""
        from photo_sorter.outputs import OutputError, Outputs

        try:
            Outputs(self.engine).write(path, "".join(f"{g['best']['path']}\n" for g in self.groups).encode())
        except OutputError as exc:
            self.status.setText(f"<b>Cannot save:</b> {exc}")
            return
        self.status.setText(f"Saved the list of {len(self.groups)} best photos to {path}.")
