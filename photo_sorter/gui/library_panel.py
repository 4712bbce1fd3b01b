"""The library side panel: "All photos" plus each library folder with its scan state."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QStyle, QStyledItemDelegate,
    QVBoxLayout, QWidget,
)

from photo_sorter.gui.config import remember_folder, start_folder

FolderRole = Qt.ItemDataRole.UserRole + 1


def _state_text(state: dict, scanning: bool) -> str:
    if scanning:
        return "scanning…"
    if state["status"] is None:
        return "not scanned yet"
    n = state["photos"]
    text = f"{n} photo{'s' if n != 1 else ''}"
    if state["status"] != "done":
        text += f" · last scan {state['status']}"
    elif state["finished_at"]:
        text += f" · scanned {state['finished_at']:%Y-%m-%d %H:%M}"
    return text


class EntryDelegate(QStyledItemDelegate):
    """A row as its name in bold over its state in a quieter colour ("trip" over "95 photos ·
    scanned …"), as digiKam and Photos set a name apart from its count: two plain lines read as
    two entries."""

    PAD = 4

    def sizeHint(self, option, index) -> QSize:
        return QSize(super().sizeHint(option, index).width(), 2 * option.fontMetrics.lineSpacing() + 2 * self.PAD)

    def paint(self, painter, option, index) -> None:
        name, _, state = (index.data() or "").partition("\n")
        self.initStyleOption(option, index)
        option.text = ""
        option.widget.style().drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        rect = option.rect.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        metrics, line = option.fontMetrics, option.fontMetrics.lineSpacing()
        painter.save()
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                         QFontMetrics(bold).elidedText(name, Qt.TextElideMode.ElideMiddle, rect.width()))
        painter.setFont(option.font)
        if not selected:
            painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(rect.adjusted(0, line, 0, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                         metrics.elidedText(state, Qt.TextElideMode.ElideRight, rect.width()))
        painter.restore()


class FolderList(QListWidget):
    """Qt makes the first row current when a list without a current row gets the keyboard focus
    (Tab, or the focus moving off a tab page being hidden). Here that would be a choice of "All
    photos" nobody made, throwing away the filter or cluster the grid shows."""

    def focusInEvent(self, event) -> None:
        if self.currentItem() is not None:
            super().focusInEvent(event)
            return
        self.blockSignals(True)
        super().focusInEvent(event)
        self.setCurrentIndex(self.model().index(-1, 0))
        self.blockSignals(False)


class LibraryPanel(QWidget):
    """Folders list; emits the chosen folder (None = all photos) and add/remove/rescan requests."""

    folderChosen = Signal(object)
    addRequested = Signal(str)
    removeRequested = Signal(str)
    rescanRequested = Signal(list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.list = FolderList()
        self.list.setAccessibleName("Library folders")
        self.delegate = EntryDelegate(self.list)  # held here: Qt does not keep the Python object alive
        self.list.setItemDelegate(self.delegate)
        self.list.currentItemChanged.connect(
            lambda item, _prev: item is not None and self.folderChosen.emit(item.data(FolderRole)))
        # a click on the row already current (after a cluster or filter took the grid) goes back to it
        self.list.itemClicked.connect(lambda item: self.folderChosen.emit(item.data(FolderRole)))
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the folder from the library (the files stay where they are)")
        self.rescan_button = QPushButton("Rescan")
        self.add_button.setToolTip("Add a folder of photos to the library and scan it (Ctrl+O)")
        self.rescan_button.setToolTip("Read the chosen folder again (all folders when All photos is chosen)")
        self.add_button.clicked.connect(self.ask_folder)
        self.remove_button.clicked.connect(self._remove_current)
        self.rescan_button.clicked.connect(self._rescan_current)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.rescan_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def current_folder(self) -> str | None:
        item = self.list.currentItem()
        return item.data(FolderRole) if item else None

    def set_folders(self, total: int, folders: list[tuple[str, dict]], scanning: set[str],
                    chosen: str | None | bool = True) -> None:
        """Rebuild the rows. chosen: the folder the grid shows, None for All photos, False when
        the grid shows something else (a filter, a cluster: no row is selected), True to keep
        the current row."""
        current = self.current_folder() if chosen is True else chosen
        self.list.blockSignals(True)
        self.list.clear()
        all_item = QListWidgetItem(f"All photos\n{total} photo{'s' if total != 1 else ''}")
        all_item.setData(FolderRole, None)
        self.list.addItem(all_item)
        chosen = all_item
        for folder, state in folders:
            missing = not Path(folder).is_dir()
            text = "folder not found" if missing else _state_text(state, folder in scanning)
            item = QListWidgetItem(f"{Path(folder).name or folder}\n{text}")
            item.setToolTip(folder)
            item.setData(FolderRole, folder)
            self.list.addItem(item)
            if folder == current:
                chosen = item
        if current is False:
            self.list.setCurrentItem(None)
        else:
            self.list.setCurrentItem(chosen)
        self.list.blockSignals(False)
        has_folder = bool(folders)
        self.remove_button.setEnabled(has_folder)
        self.rescan_button.setEnabled(has_folder)

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library", start_folder())
        if folder:
            remember_folder(folder)
            self.addRequested.emit(folder)

    def _remove_current(self) -> None:
        folder = self.current_folder()
        if folder:
            self.removeRequested.emit(folder)

    def _rescan_current(self) -> None:
        folder = self.current_folder()
        self.rescanRequested.emit([folder] if folder else [])
