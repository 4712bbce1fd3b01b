"""The thumbnail grid: a QListView in icon mode over a flat list model of photo rows, with
full-width date headers ("Saturday 14 June 2025 · 23 photos") between the days (months, years)
when sorted by date, as in Apple Photos or digiKam."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QDate, QLocale, QModelIndex, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QApplication, QListView, QStyle, QStyledItemDelegate

from photo_sorter.gui.thumbnails import ThumbnailLoader

PhotoIdRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
FacesRole = Qt.ItemDataRole.UserRole + 3
HeaderRole = Qt.ItemDataRole.UserRole + 4  # a date header's (title, count text); None for a photo
TEXT_LINES = 2
GROUPS = {"day": "dddd d MMMM yyyy", "month": "MMMM yyyy", "year": "yyyy"}  # QLocale date formats


def date_headers(rows: list[dict], group: str) -> list[int | tuple[str, str]]:
    """The grid's items for date-sorted rows: (title, count text) before each day's, month's or
    year's photos (an index into rows); undated photos last under 'No date'."""
    def key(i: int):
        when = rows[i].get("captured_at")
        if when is None:
            return None
        return when.date() if group == "day" else (when.year, when.month if group == "month" else 1)

    items: list[int | tuple[str, str]] = []
    for k, members in groupby(range(len(rows)), key):
        members = list(members)
        if k is None:
            title = "No date"
        else:
            when = rows[members[0]]["captured_at"]
            title = QLocale().toString(QDate(when.year, when.month, when.day), GROUPS[group])
        items.append((title, f"{len(members)} photo{'s' if len(members) != 1 else ''}"))
        items.extend(members)
    return items


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
    """Photo rows (dicts with id, path, mtime_ns, size, n_faces, optional score) as grid items,
    with date headers between them when grouped (`rows` holds the photos only; `items` the
    grid's rows: a photo's index in `rows`, or a header's (title, count text)).

    Thumbnails are asked for only when a row is painted (DecorationRole), so the model is cheap
    for any number of rows. A paged listing (`more`) reads its next page when the view shows its
    last row (Qt's fetchMore), so a library of millions opens with its first screenful.
    """

    def __init__(self, loader: ThumbnailLoader, icon_size: int, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.rows: list[dict] = []
        self.items: list[int | tuple[str, str]] = []
        self.dates: str | None = None  # sorted by date: grouped by "day", "month", "year", or "none"
        self._item_of: list[int] = []  # a photo's row in the grid
        self._row_of: dict[str, int] = {}
        self._more: Callable[[int], list[dict]] | None = None
        self.set_placeholder_size(icon_size)
        loader.ready.connect(self._thumbnail_ready)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and self._more is not None

    def fetchMore(self, parent=QModelIndex()) -> None:
        """The next page after the last photo read; an empty one ends the listing."""
        if self.canFetchMore(parent):
            page = self._more(self.rows[-1]["id"] if self.rows else 0)
            if not page:
                self._more = None
            self.append_rows(page)

    def fetch_all(self) -> None:
        """Every page still unread (select all, the viewer's last photo)."""
        while self.canFetchMore():
            self.fetchMore()

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        """A header is neither enabled nor selectable: clicks, rubber bands, Ctrl+A and the arrow
        keys pass over it."""
        if index.isValid() and isinstance(self.items[index.row()], tuple):
            return Qt.ItemFlag.NoItemFlags
        return super().flags(index)

    def photo(self, index: QModelIndex) -> dict | None:
        """The photo row behind a grid index (None for a header)."""
        item = self.items[index.row()] if index.isValid() else None
        return None if item is None or isinstance(item, tuple) else self.rows[item]

    def photo_index(self, photo_row: int) -> QModelIndex:
        """The grid index of rows[photo_row]."""
        return self.index(self._item_of[photo_row])

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if isinstance(item, tuple):
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
                return " · ".join(item)
            return item if role == HeaderRole else None
        row = self.rows[item]
        if role == Qt.ItemDataRole.DisplayRole:
            name = Path(row["path"]).name
            if row.get("score") is not None:
                return f"{name}\nmatch {row['score']:.0%}"
            if self.dates not in (None, "day") and row.get("captured_at"):
                return f"{name}\n{row['captured_at']:%d %b %Y}"  # a day header says it already
            return name
        if role == Qt.ItemDataRole.DecorationRole:
            # an icon, not a pixmap: the view draws an icon at its icon size (the slider's),
            # a pixmap at the pixmap's own size
            pixmap = self.loader.get(row["path"], row.get("mtime_ns"), row.get("size"))
            if pixmap is not None:
                return QIcon(pixmap)
            return self._broken if self.loader.failed(row["path"]) else self._loading
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row['path']}\n{self._description(row)}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return Path(row["path"]).name
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            return self._description(row)
        if role == PhotoIdRole:
            return row["id"]
        if role == PathRole:
            return row["path"]
        if role == FacesRole:
            return row.get("n_faces") or 0
        return None

    @staticmethod
    def _description(row: dict) -> str:
        """What a screen reader and the tooltip say besides the name: date, faces, match, state."""
        faces = row.get("n_faces") or 0
        parts = [f"{row['captured_at']:%d %B %Y}" if row.get("captured_at") else "no date",
                 f"{faces} face{'s' if faces != 1 else ''}"]
        if row.get("score") is not None:
            parts.append(f"match confidence {row['score']:.1%}")
        if row.get("status") not in (None, "ok"):
            parts.append("unreadable")
        return ", ".join(parts)

    def set_placeholder_size(self, size: int) -> None:
        self._loading = _placeholder(size, "#d8d8d8")
        self._broken = _placeholder(size, "#f2e6e6", warning=True)

    def set_rows(self, rows: list[dict], dates: str | None = None,
                 more: Callable[[int], list[dict]] | None = None) -> bool:
        """Replace the rows; when the new list only extends the old one (a running scan) and
        has no headers, append so the view keeps its scroll position and selection, and return
        True. dates: the rows are sorted by date, grouped under a header per "day", "month" or
        "year", or not ("none": each photo's day under its name). more: `rows` is a paged
        listing's first pages; more(last photo id) reads the next (in scan order, no headers)."""
        self._more = more
        old_ids = [r["id"] for r in self.rows]
        new_ids = [r["id"] for r in rows]
        grouped = dates in GROUPS
        items = date_headers(rows, dates) if grouped else list(range(len(rows)))
        if dates == self.dates and new_ids == old_ids and items == self.items:  # re-read, unchanged
            self.rows = rows
            if rows:
                self.dataChanged.emit(self.index(0), self.index(len(items) - 1))
            return True
        if (dates == self.dates and not grouped and old_ids
                and len(new_ids) >= len(old_ids) and new_ids[: len(old_ids)] == old_ids):
            self.rows = rows[: len(old_ids)]  # the refreshed rows, the same photos
            self.append_rows(rows[len(old_ids):])
            return True
        self.beginResetModel()
        self.rows, self.dates, self.items = rows, dates, items
        self._index_items()
        self.endResetModel()
        return False

    def append_rows(self, rows: list[dict]) -> None:
        """More photos at the end (a running scan's, in the order added: no headers)."""
        if rows:
            start, first = len(self.items), len(self.rows)
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self.rows.extend(rows)
            self.items.extend(range(first, first + len(rows)))
            self._item_of.extend(range(start, start + len(rows)))
            self._row_of.update((r["path"], start + i) for i, r in enumerate(rows))
            self.endInsertRows()

    def _index_items(self) -> None:
        self._item_of = [0] * len(self.rows)
        for i, item in enumerate(self.items):
            if not isinstance(item, tuple):
                self._item_of[item] = i
        self._row_of = {r["path"]: self._item_of[i] for i, r in enumerate(self.rows)}

    def _thumbnail_ready(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class PhotoDelegate(QStyledItemDelegate):
    """Every cell the same size whatever its picture (a warning icon, a loading tile or a
    landscape thumbnail), so a uniform-size grid never takes a small icon's size for all; draws
    the face-count badge on the thumbnail, and date headers across the grid's width."""

    def header_font(self, font: QFont) -> QFont:
        """The system font, bold and a step larger: readable beside any thumbnail size."""
        font = QFont(font)
        font.setBold(True)
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 1.25)
        return font

    def sizeHint(self, option, index) -> QSize:
        view = self.parent()
        if index.isValid() and index.data(HeaderRole):
            width = view.viewport().width() - 2 * view.spacing() - 1  # alone on its line
            return QSize(max(width, 1), QFontMetrics(self.header_font(view.font())).height() + 14)
        icon = view.iconSize()
        return QSize(icon.width() + 16, icon.height() + 8 + TEXT_LINES * view.fontMetrics().lineSpacing())

    def _paint_header(self, painter: QPainter, option, header: tuple[str, str]) -> None:
        title, count = header
        active = QPalette.ColorGroup.Active  # a header is a disabled item: not greyed out for that
        painter.save()
        font = self.header_font(option.font)
        rect = option.rect.adjusted(4, 0, -4, -4)
        painter.setFont(font)
        painter.setPen(option.palette.color(active, QPalette.ColorRole.Text))
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, title)
        painter.setFont(option.font)
        painter.setPen(option.palette.color(active, QPalette.ColorRole.PlaceholderText))
        left = rect.adjusted(QFontMetrics(font).horizontalAdvance(title + "  "), 0, 0, 0)
        painter.drawText(left, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, f"· {count}")
        painter.setPen(option.palette.color(active, QPalette.ColorRole.Mid))
        painter.drawLine(option.rect.left() + 4, option.rect.bottom(), option.rect.right() - 4, option.rect.bottom())
        painter.restore()

    def paint(self, painter: QPainter, option, index) -> None:
        header = index.data(HeaderRole)
        if header:
            self._paint_header(painter, option, header)
            return
        super().paint(painter, option, index)
        if option.state & QStyle.StateFlag.State_HasFocus:  # the keyboard's photo: a clear frame, any style
            painter.save()
            painter.setPen(QPen(option.palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight), 2))
            painter.drawRoundedRect(QRectF(option.rect).adjusted(1, 1, -1, -1), 4, 4)
            painter.restore()
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
    """Icon-mode list tuned for large libraries (uniform sizes in a fixed grid, batched layout);
    with date headers, items take their own sizes so a header spans the width."""

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
        model.modelReset.connect(self._fit_layout)
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

    def moveCursor(self, action, modifiers) -> QModelIndex:
        """Home goes to the first photo: Qt's Home goes to the first row, which may be a header
        that the view then refuses (the cursor would not move)."""
        if action == QAbstractItemView.CursorAction.MoveHome and self.model().rows:
            return self.model().photo_index(0)
        return super().moveCursor(action, modifiers)

    def set_thumbnail_size(self, size: int) -> None:
        self.setIconSize(QSize(size, size))
        self._fit_layout()

    def _fit_layout(self) -> None:
        """A fixed grid (the fastest layout) without headers; each item's own size with them (a
        fixed grid cell would squeeze a header into one thumbnail's width)."""
        grouped = self.model().dates in GROUPS
        self.setUniformItemSizes(not grouped)
        self.setSpacing(8 if grouped else 0)
        if grouped:
            self.setGridSize(QSize())
            return
        # the columns share the whole width (as Photos and Lightroom lay out a grid), instead
        # of leaving up to a cell's width empty at the right
        cell = self.delegate.sizeHint(None, QModelIndex()) + QSize(8, 8)
        width = self.viewport().width()
        columns = max(1, width // cell.width())
        self.setGridSize(QSize(max(cell.width(), width // columns), cell.height()))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.model().dates not in GROUPS:
            self._fit_layout()

    def selectAll(self) -> None:
        """All photos of the listing, the pages not read yet included (Ctrl+A, Edit menu)."""
        self.model().fetch_all()
        super().selectAll()

    def selected_ids(self) -> list[int]:
        """The selected photos in grid order (headers are never selected)."""
        indexes = sorted(self.selectionModel().selectedIndexes(), key=lambda i: i.row())
        return [i.data(PhotoIdRole) for i in indexes if i.data(PhotoIdRole) is not None]

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.model().rowCount() == 0 and self.empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect().adjusted(20, 20, -20, -20),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
