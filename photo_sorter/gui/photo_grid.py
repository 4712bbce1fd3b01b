"""The thumbnail grid: a QListView in icon mode over a flat list model of photo rows."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QApplication, QListView, QStyle, QStyledItemDelegate

from photo_sorter.gui.thumbnails import ThumbnailLoader

PhotoIdRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
FacesRole = Qt.ItemDataRole.UserRole + 3
TEXT_LINES = 2


def _placeholder(size: int, colour: str, warning: bool = False) -> QIcon:
    """A plain tile (loading), or one with a warning sign in the middle (unreadable file)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(colour))
    if warning:
        sign = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(48, 48)
        painter = QPainter(pixmap)
        painter.drawPixmap((size - sign.width()) // 2, (size - sign.height()) // 2, sign)
        painter.end()
    return QIcon(pixmap)


class PhotoGridModel(QAbstractListModel):
    """Photo rows (dicts with id, path, mtime_ns, size, n_faces, optional score) as grid items.

    Thumbnails are asked for only when a row is painted (DecorationRole), so the model is cheap
    for any number of rows.
    """

    def __init__(self, loader: ThumbnailLoader, icon_size: int, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.rows: list[dict] = []
        self.show_dates = False  # sorted by date: each photo's day under its name
        self._row_of: dict[str, int] = {}
        self.set_placeholder_size(icon_size)
        loader.ready.connect(self._thumbnail_ready)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            name = Path(row["path"]).name
            if row.get("score") is not None:
                return f"{name}\nmatch {row['score']:.0%}"
            if self.show_dates and row.get("captured_at"):
                return f"{name}\n{row['captured_at']:%d %b %Y}"
            return name
        if role == Qt.ItemDataRole.DecorationRole:
            # an icon, not a pixmap: the view draws an icon at its icon size (the slider's),
            # a pixmap at the pixmap's own size
            pixmap = self.loader.get(row["path"], row.get("mtime_ns"), row.get("size"))
            if pixmap is not None:
                return QIcon(pixmap)
            return self._broken if self.loader.failed(row["path"]) else self._loading
        if role == Qt.ItemDataRole.ToolTipRole:
            faces = row.get("n_faces") or 0
            tip = f"{row['path']}\n{faces} face{'s' if faces != 1 else ''}"
            if row.get("score") is not None:
                tip += f"\nmatch confidence {row['score']:.1%}"
            return tip
        if role == PhotoIdRole:
            return row["id"]
        if role == PathRole:
            return row["path"]
        if role == FacesRole:
            return row.get("n_faces") or 0
        return None

    def set_placeholder_size(self, size: int) -> None:
        self._loading = _placeholder(size, "#d8d8d8")
        self._broken = _placeholder(size, "#f2e6e6", warning=True)

    def set_rows(self, rows: list[dict], show_dates: bool = False) -> bool:
        """Replace the rows; when the new list only extends the old one (a running scan), append
        so the view keeps its scroll position and selection, and return True. show_dates: each
        photo's day under its name (the grid sorted by date)."""
        old_ids = [r["id"] for r in self.rows]
        new_ids = [r["id"] for r in rows]
        same_text = show_dates == self.show_dates
        self.show_dates = show_dates
        if same_text and len(new_ids) >= len(old_ids) and new_ids[: len(old_ids)] == old_ids and old_ids:
            if len(new_ids) > len(old_ids):
                self.beginInsertRows(QModelIndex(), len(old_ids), len(new_ids) - 1)
                self.rows = rows
                self._index_paths()
                self.endInsertRows()
            else:
                self.rows = rows
                self._index_paths()
            return True
        self.beginResetModel()
        self.rows = rows
        self._index_paths()
        self.endResetModel()
        return False

    def append_rows(self, rows: list[dict]) -> None:
        if rows:
            start = len(self.rows)
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self.rows.extend(rows)
            self._row_of.update((r["path"], start + i) for i, r in enumerate(rows))
            self.endInsertRows()

    def _index_paths(self) -> None:
        self._row_of = {r["path"]: i for i, r in enumerate(self.rows)}

    def _thumbnail_ready(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class PhotoDelegate(QStyledItemDelegate):
    """Every cell the same size whatever its picture (a warning icon, a loading tile or a
    landscape thumbnail), so a uniform-size grid never takes a small icon's size for all; draws
    the face-count badge on the thumbnail."""

    def sizeHint(self, option, index) -> QSize:
        view = self.parent()
        icon = view.iconSize()
        return QSize(icon.width() + 16, icon.height() + 8 + TEXT_LINES * view.fontMetrics().lineSpacing())

    def paint(self, painter: QPainter, option, index) -> None:
        super().paint(painter, option, index)
        faces = index.data(FacesRole)
        if not faces:
            return
        painter.save()
        text = f"☺ {faces}"
        metrics = painter.fontMetrics()
        badge = QRect(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
        badge.moveTopRight(option.rect.topRight() + QPoint(-6, 4))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 160))
        painter.drawRoundedRect(badge, 6, 6)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class PhotoGrid(QListView):
    """Icon-mode list tuned for large libraries (uniform sizes, batched layout)."""

    photoActivated = Signal(int)

    def __init__(self, model: PhotoGridModel, icon_size: int = 160, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.delegate = PhotoDelegate(self)  # held here: Qt does not keep the Python object alive
        self.setItemDelegate(self.delegate)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setModel(model)
        self.set_thumbnail_size(icon_size)
        self.activated.connect(lambda index: self.photoActivated.emit(index.data(PhotoIdRole)))
        self.empty_text = ""

    def keyPressEvent(self, event) -> None:
        """Space (like Enter) opens the current photo; here rather than a window shortcut, so
        typing a space in a text field never opens the viewer."""
        index = self.currentIndex()
        if event.key() == Qt.Key.Key_Space and index.isValid():
            self.photoActivated.emit(index.data(PhotoIdRole))
            return
        super().keyPressEvent(event)

    def set_thumbnail_size(self, size: int) -> None:
        self.setIconSize(QSize(size, size))
        self.setGridSize(self.delegate.sizeHint(None, QModelIndex()) + QSize(8, 8))

    def selected_ids(self) -> list[int]:
        """The selected photos in grid order."""
        rows = sorted(i.row() for i in self.selectionModel().selectedIndexes())
        return [self.model().rows[r]["id"] for r in rows]

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.model().rowCount() == 0 and self.empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect().adjusted(20, 20, -20, -20),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
