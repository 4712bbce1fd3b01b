"""One photo with its face boxes, and the attribute bars of the selected face."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from photo_sorter.attributes import label
from photo_sorter.scan import PROBLEMS

MAX_DISPLAY = 2048
ACCENT = QColor("#2e86de")
POSITIVE = QColor("#27ae60")
GREYED = QColor("#9a9a9a")
UNRELIABLE_MARK = " ⚠"  # beside a greyed name: not told by colour alone


def shown_name(attribute: str, unreliable: dict[str, str]) -> str:
    """An attribute's name as the panes show it: marked when its tags are too often wrong."""
    return label(attribute) + (UNRELIABLE_MARK if attribute in unreliable else "")


def read_display_image(path: str, max_side: int = MAX_DISPLAY) -> QImage:
    """The photo, EXIF-oriented (as the face coordinates are), decoded at display size. What Qt
    cannot read (HEIC, AVIF without a plugin) and camera RAW (whose face coordinates refer to the
    preview or demosaic the scan used) come through imaging, as the scan saw them."""
    from photo_sorter import imaging

    if Path(path).suffix.lower() not in imaging.RAW_EXTENSIONS:
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > max_side:
            reader.setScaledSize(size.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if not image.isNull():
            return image
    try:
        rgb = imaging.thumbnail(path, max_side)
    except imaging.PhotoError:
        return QImage()
    return QImage(rgb.tobytes(), rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


class PhotoView(QWidget):
    """Draws the photo scaled to fit and its faces as numbered boxes; a click selects a face."""

    faceSelected = Signal(object)  # the face dict, or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.detail: dict | None = None
        self.image = QImage()
        self.selected: int | None = None
        self.show_boxes = True
        self.message = "Select a photo to see its faces."

    def set_photo(self, detail: dict | None) -> None:
        self.detail, self.selected = detail, None
        self.image = QImage()
        if detail is None:
            self.message = "Select a photo to see its faces."
        elif detail["status"] in PROBLEMS:
            from photo_sorter.library import plain_problem

            # the same plain sentence as the Scan problems panel, never the raw exception
            self.message = f"This photo could not be read. {plain_problem(detail['error'], detail['status'])}"
        else:
            self.image = read_display_image(detail["path"])
            self.message = "" if not self.image.isNull() else f"Cannot display {detail['path']}"
        faces = detail["faces"] if detail else []
        self.setAccessibleDescription(self.message or f"{Path(detail['path']).name}, {len(faces)} "
                                      f"face{'s' if len(faces) != 1 else ''}; Left and Right choose a face")
        self.update()
        self.select_face(0 if faces else None)

    def select_face(self, index: int | None) -> None:
        self.selected = index
        self.update()
        self.faceSelected.emit(self.selected_face())

    def selected_face(self) -> dict | None:
        faces = self.detail["faces"] if self.detail else []
        return faces[self.selected] if self.selected is not None and self.selected < len(faces) else None

    def _geometry(self) -> tuple[QRectF, float]:
        """Target rect of the image and the scale from photo pixels to widget pixels."""
        w = self.detail.get("width") or self.image.width()
        h = self.detail.get("height") or self.image.height()
        scale = min(self.width() / w, self.height() / h)
        rect = QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2,
                      w * scale, h * scale)
        return rect, scale

    def _face_rects(self) -> list[QRectF]:
        rect, scale = self._geometry()
        return [QRectF(rect.x() + x * scale, rect.y() + y * scale, w * scale, h * scale)
                for x, y, w, h in (f["box"] for f in self.detail["faces"])]

    def keyPressEvent(self, event) -> None:
        """Left / Right: the previous / next face (numbered left to right), when the pane has the
        keyboard focus (the main window's pane; the viewer keeps the arrows for its photos)."""
        faces = self.detail["faces"] if self.detail else []
        step = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}.get(Qt.Key(event.key()))
        if step and faces:
            self.select_face(((self.selected or 0) + step) % len(faces))
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event) -> None:
        self.update()
        super().focusInEvent(event)

    def focusOutEvent(self, event) -> None:
        self.update()
        super().focusOutEvent(event)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.hasFocus():  # the keyboard is here: a visible frame
            painter.setPen(QPen(self.palette().highlight().color(), 2, Qt.PenStyle.DashLine))
            painter.drawRect(self.rect().adjusted(1, 1, -2, -2))
        if self.image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            return
        rect, _ = self._geometry()
        painter.drawImage(rect, self.image)
        if not self.show_boxes:
            return
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetrics(font)
        for i, box in enumerate(self._face_rects()):
            chosen = i == self.selected
            painter.setPen(QPen(ACCENT if chosen else QColor("#f1c40f"), 3 if chosen else 2))
            painter.drawRect(box)
            number = str(self.detail["faces"][i]["number"])  # the tag fits the system font's digits
            h = metrics.height() + 2
            tag = QRectF(box.x(), box.y() - h, max(22, metrics.horizontalAdvance(number) + 10), h)
            painter.fillRect(tag, ACCENT if chosen else QColor("#f1c40f"))
            painter.setPen(QColor("white") if chosen else QColor("black"))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, number)

    def mousePressEvent(self, event) -> None:
        if self.detail and not self.image.isNull():
            for i, box in enumerate(self._face_rects()):
                if box.contains(event.position()):
                    self.select_face(i)
                    return
        super().mousePressEvent(event)


class AttributeBars(QWidget):
    """Per-attribute probability bars, highest first, with the decision threshold marked;
    attributes the model card marks unreliable are greyed (their reason in the tooltip)."""

    VALUE_W = 44

    @property
    def ROW(self) -> int:
        """A row's height: the system font's line and a margin (no clipping at a large font)."""
        return max(20, self.fontMetrics().lineSpacing() + 6)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[tuple[str, float, float]] = []
        self.unreliable: dict[str, str] = {}
        self.message = "Click a face to see its attributes."

    def set_values(self, probabilities: dict[str, float], thresholds: dict[str, float],
                   message: str = "", unreliable: dict[str, str] | None = None) -> None:
        self.rows = sorted(((a, p, thresholds.get(a, 0.5)) for a, p in probabilities.items()),
                           key=lambda r: -r[1])
        self.unreliable = dict(unreliable or {})
        self.message = message
        self.setAccessibleDescription("; ".join(f"{shown_name(a, self.unreliable)} {p:.0%}" + (" (yes)" if p >= t else "")
                                                for a, p, t in self.rows) or message)
        self.setMinimumHeight(max(40, len(self.rows) * self.ROW + 8))
        self.setMinimumWidth(self.text_width() + self.VALUE_W + 60 if self.rows else 0)
        self.updateGeometry()
        self.update()

    def text_width(self) -> int:
        """The widest attribute name in bold (a name is never clipped)."""
        font = QFont(self.font())
        font.setBold(True)
        metrics = QFontMetrics(font)
        return max((metrics.horizontalAdvance(shown_name(a, self.unreliable)) for a, _p, _t in self.rows),
                   default=0) + 12

    def sizeHint(self) -> QSize:
        return QSize(max(300, self.minimumWidth()), max(40, len(self.rows) * self.ROW + 8))

    def row_at(self, y: float) -> str | None:
        i = int((y - 4) // self.ROW)
        return self.rows[i][0] if 0 <= i < len(self.rows) else None

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            name = self.row_at(event.pos().y())
            if name in self.unreliable:
                QToolTip.showText(event.globalPos(), f"{label(name)} is greyed: {self.unreliable[name]}. "
                                  "Still predicted and sortable, not written as a keyword.", self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        if not self.rows:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
                             | Qt.TextFlag.TextWordWrap, self.message)
            return
        text_w = self.text_width()
        value_w = self.VALUE_W
        bar_w = max(40, self.width() - text_w - value_w - 16)
        for i, (name, p, t) in enumerate(self.rows):
            y = 4 + i * self.ROW
            positive = p >= t
            greyed = name in self.unreliable
            painter.setPen(GREYED if greyed else self.palette().text().color())
            font = QFont(self.font())
            font.setBold(positive)
            painter.setFont(font)
            painter.drawText(QRectF(4, y, text_w - 8, self.ROW), Qt.AlignmentFlag.AlignVCenter
                             | Qt.AlignmentFlag.AlignLeft, shown_name(name, self.unreliable))
            track = QRectF(text_w, y + 4, bar_w, self.ROW - 8)
            painter.fillRect(track, QColor("#e3e3e3"))
            painter.fillRect(QRectF(track.x(), track.y(), bar_w * p, track.height()),
                             QColor("#c8c8c8") if greyed else POSITIVE if positive else QColor("#95a5a6"))
            tx = track.x() + bar_w * t
            painter.setPen(QPen(QColor("#c0392b"), 2))
            painter.drawLine(int(tx), int(y + 1), int(tx), int(y + self.ROW - 1))
            painter.setPen(GREYED if greyed else self.palette().text().color())
            painter.drawText(QRectF(text_w + bar_w + 6, y, value_w, self.ROW),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{p:.0%}")


class FacePanel(QWidget):
    """The selected face: its aligned crop, detection confidence and attribute bars."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.crop = QLabel()
        self.crop.setFixedSize(89, 109)
        self.crop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        head = QHBoxLayout()
        head.addWidget(self.crop)
        head.addWidget(self.caption, 1)
        self.bars = AttributeBars()
        self.unreliable: dict[str, str] = {}
        self.bars.setAccessibleName("Attributes of the selected face")
        self.scroll = QScrollArea()
        self.scroll.setAccessibleName("Attributes of the selected face")
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.bars)
        # names and percentages whole: the pane is never narrower than the bars need
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.scroll, 1)
        self.show_face(None, {})

    def show_face(self, face: dict | None, thresholds: dict[str, float]) -> None:
        if face is None:
            self.crop.clear()
            self.caption.setText("No face selected.")
            self.bars.set_values({}, {}, "Click a face box in the photo to see its attributes.")
            return
        pixmap = QPixmap()
        if face.get("crop"):
            pixmap.loadFromData(face["crop"])
        self.crop.setPixmap(pixmap.scaled(self.crop.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        greyed = [a for a in face["probabilities"] if a in self.unreliable]
        self.caption.setText(
            f"<b>Face {face['number']}</b><br>detection confidence {face['confidence']:.1%}"
            "<br><span style='color:#c0392b'>|</span> = calibrated threshold"
            + (f"<br><span style='color:#8a8a8a'>Grey names marked {UNRELIABLE_MARK.strip()}: tags too often "
               "wrong (hover for why)</span>"
               if greyed else ""))
        self.bars.set_values(face["probabilities"], thresholds,
                             "" if face["probabilities"] else
                             "No attribute predictions for this face yet (no model was active "
                             "when it was scanned).", self.unreliable)
        need = (self.bars.minimumWidth() + self.scroll.verticalScrollBar().sizeHint().width()
                + 2 * self.scroll.frameWidth())
        self.scroll.setMinimumWidth(max(self.scroll.minimumWidth(), need))  # grows only: no jumps
