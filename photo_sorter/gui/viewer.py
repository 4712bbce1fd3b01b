"""The large photo viewer: one photo with its face boxes (F toggles them), fit or zoom (+ - 0,
1 for actual pixels, Ctrl+wheel), previous/next with the arrow keys (Home/End: first/last),
Esc to go back to the grid."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout

from photo_sorter.gui.photo_view import PhotoView

ZOOM_STEP = 1.25


class Viewer(QDialog):
    """`detail(photo_id)` gives a photo with its faces (listings.photo_detail); `ids` is the
    grid's order, `row` the photo to open; `total` the listing's size when `ids` is its pages read
    so far (they grow as the viewer reaches their end). `moved(row)` lets the grid follow."""

    moved = Signal(int)

    def __init__(self, detail, ids: list[int], row: int, parent=None, total: int | None = None):
        super().__init__(parent)
        self.detail_of, self.ids, self.row, self.total = detail, ids, row, total
        self.zoom: float | None = None  # None: fit the window
        self.setWindowTitle("Photo")
        self.resize(1100, 800)
        self.view = PhotoView()
        self.scroll = QScrollArea()
        self.scroll.setAccessibleName("Photo")
        self.scroll.setWidget(self.view)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll.setWidgetResizable(True)
        self.caption = QLabel()
        self.boxes = QPushButton("Face boxes")
        self.boxes.setCheckable(True)
        self.boxes.setChecked(True)
        self.boxes.setToolTip("Show or hide the face boxes (F)")
        self.boxes.toggled.connect(self._boxes_toggled)
        bar = QHBoxLayout()
        bar.addWidget(self.caption, 1)
        for text, tip, slot in (("◀", "Previous photo (Left)", lambda: self.step(-1)),
                                ("▶", "Next photo (Right)", lambda: self.step(1)),
                                ("Fit", "Fit the window (0)", lambda: self.set_zoom(None)),
                                ("−", "Zoom out (-)", lambda: self.set_zoom(self._scale() / ZOOM_STEP)),
                                ("+", "Zoom in (+)", lambda: self.set_zoom(self._scale() * ZOOM_STEP))):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.setAccessibleName(tip.split(" (")[0])  # not "black right-pointing triangle"
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the arrow keys stay with the viewer
            b.clicked.connect(slot)
            bar.addWidget(b)
        bar.addWidget(self.boxes)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(bar)
        self.keys = {Qt.Key.Key_Left: lambda: self.step(-1), Qt.Key.Key_Right: lambda: self.step(1),
                     Qt.Key.Key_Home: lambda: self.show_row(0), Qt.Key.Key_End: lambda: self.show_row(len(ids) - 1),
                     Qt.Key.Key_1: lambda: self.set_zoom(1.0),
                     Qt.Key.Key_Plus: lambda: self.set_zoom(self._scale() * ZOOM_STEP),
                     Qt.Key.Key_Equal: lambda: self.set_zoom(self._scale() * ZOOM_STEP),
                     Qt.Key.Key_Minus: lambda: self.set_zoom(self._scale() / ZOOM_STEP),
                     Qt.Key.Key_0: lambda: self.set_zoom(None), Qt.Key.Key_F: self.boxes.toggle}
        self.scroll.installEventFilter(self)  # arrows would otherwise scroll the zoomed photo
        self.show_row(row)

    def keyPressEvent(self, event) -> None:
        action = self.keys.get(Qt.Key(event.key()))
        if action is None:
            super().keyPressEvent(event)  # Esc closes
        else:
            action()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.KeyPress and Qt.Key(event.key()) in self.keys:
            self.keyPressEvent(event)
            return True
        return super().eventFilter(obj, event)

    def show_row(self, row: int) -> None:
        self.row = max(0, min(row, len(self.ids) - 1))
        detail = self.detail_of(self.ids[self.row])
        self.view.set_photo(detail)
        self.view.show_boxes = self.boxes.isChecked()
        name = Path(detail["path"]).name if detail else ""
        faces = len(detail["faces"]) if detail else 0
        self.about = (f"<b>{name}</b> · {self.row + 1} of {self.total or len(self.ids)} · "
                      f"{faces} face{'s' if faces != 1 else ''}")
        self.setWindowTitle(name or "Photo")
        self.set_zoom(self.zoom)
        self.moved.emit(self.row)

    def step(self, delta: int) -> None:
        if 0 <= self.row + delta < len(self.ids):
            self.show_row(self.row + delta)

    def _scale(self) -> float:
        """Photo pixels to screen pixels now (fit or zoomed)."""
        detail = self.view.detail
        if not detail or not detail.get("width"):
            return 1.0
        if self.zoom is not None:
            return self.zoom
        viewport = self.scroll.viewport().size()
        return min(viewport.width() / detail["width"], viewport.height() / detail["height"])

    def set_zoom(self, zoom: float | None) -> None:
        """None fits the photo in the window; a number is the photo's scale (1.0 = actual pixels)."""
        self.zoom = None if zoom is None else min(8.0, max(0.05, zoom))
        detail = self.view.detail
        fit = self.zoom is None or not detail or not detail.get("width")
        self.scroll.setWidgetResizable(fit)
        if not fit:
            self.view.resize(round(detail["width"] * self.zoom), round(detail["height"] * self.zoom))
        self.view.update()
        shown = "fit" if self.zoom is None else f"{self.zoom:.0%}"  # as Lightroom's loupe says it
        self.caption.setText(f"{self.about} · {shown}" if detail and detail.get("width") else self.about)

    def _boxes_toggled(self, on: bool) -> None:
        self.view.show_boxes = on
        self.view.update()

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            step = ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP
            self.set_zoom(self._scale() * step)
            return
        super().wheelEvent(event)
