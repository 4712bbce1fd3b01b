"""Browse by attribute: require / exclude / any per attribute, a minimum confidence, an expression
field in the CLI's query language, and saved filters. Matches are ranked by query.photos' score."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QGridLayout, QHBoxLayout, QInputDialog, QLabel, QPlainTextEdit,
    QPushButton, QScrollArea, QSlider, QToolButton, QVBoxLayout, QWidget,
)

from photo_sorter.attributes import GROUPS, label
from photo_sorter.gui.photo_view import UNRELIABLE_MARK, shown_name
from photo_sorter.gui.tasks import Task

STATES = ("any", "yes", "no")
MAX_RESULTS = 5000
CALIBRATED = 50  # slider position meaning "use each attribute's calibrated threshold"
GREYED = "#8a8a8a"
# the chosen state stands out (filled, bold; white on each fill is above 4.5:1 contrast); the
# others are plain text buttons
BUTTON_STYLE = {state: f"QToolButton {{ border: 1px solid transparent; border-radius: 3px; padding: 1px 6px; }}"
                f"QToolButton:checked {{ background: {colour}; color: white; font-weight: bold; }}"
                f"QToolButton:focus {{ border: 2px solid palette(highlight); }}"
                for state, colour in (("any", "#566573"), ("yes", "#1e8449"), ("no", "#b03a2e"))}


def build_expression(choices: dict[str, str], min_confidence: float | None,
                     thresholds: dict[str, float] | None = None) -> str:
    """The query-language text for the panel's choices: 'Smiling and not Wearing_Hat' (the
    model's calibrated thresholds), 'Smiling >= 0.8 and Wearing_Hat <= 0.2' with a minimum
    confidence, and the user's own threshold t for an attribute as 'X >= t' / 'X < t'."""
    terms = []
    for name, state in choices.items():
        own = (thresholds or {}).get(name)
        if min_confidence is not None:
            term = f"{name} >= {min_confidence:.2f}" if state == "yes" else f"{name} <= {1 - min_confidence:.2f}"
        elif own is not None:
            term = f"{name} >= {own:.2f}" if state == "yes" else f"{name} < {own:.2f}"
        else:
            term = name if state == "yes" else f"not {name}"
        terms.append(term)
    return " and ".join(terms)


class ExpressionEdit(QPlainTextEdit):
    """The expression box: wraps onto up to three lines so a long filter is read whole (a
    one-line field clips it); Enter runs it. text()/setText() as on a line edit."""

    edited = Signal()
    returnPressed = Signal()
    escapePressed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setTabChangesFocus(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lines = self.fontMetrics().lineSpacing() * 3
        self.setFixedHeight(lines + 2 * self.frameWidth() + int(self.document().documentMargin() * 2))
        self.textChanged.connect(lambda: self.hasFocus() and self.edited.emit())

    def text(self) -> str:
        return self.toPlainText()

    def setText(self, text: str) -> None:
        if text != self.toPlainText():
            self.setPlainText(text)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.returnPressed.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.escapePressed.emit()
            return
        super().keyPressEvent(event)


_TERM = re.compile(r"^(not\s+)?([A-Za-z_]+)(?:\s*(>=|>|<=|<)\s*([0-9.]+))?$", re.IGNORECASE)


def parse_choices(expression: str, attributes: list[str]) -> dict[str, str] | None:
    """The Any/Yes/No states a typed expression means when it is a plain 'and' of attribute
    terms ('Smiling and not Wearing_Hat', 'Smiling >= 0.8'); None when it is more than that
    (or, parentheses, photo-level terms), so the buttons cannot show it."""
    names = {a.lower(): a for a in attributes}
    choices = {}
    for term in filter(None, (t.strip() for t in re.split(r"\s+and\s+", expression.strip(), flags=re.I))):
        m = _TERM.match(term)
        if not m or m.group(2).lower() not in names:
            return None
        negated, op = bool(m.group(1)), m.group(3)
        state = "no" if negated or op in ("<", "<=") else "yes"
        if negated and op:
            return None
        choices[names[m.group(2).lower()]] = state
    return choices


class FilterPanel(QWidget):
    """Emits `results(rows)` with [{id, score}] best first, or `cleared()` when no filter is set."""

    results = Signal(list)
    cleared = Signal()

    def __init__(self, engine, settings, attributes: list[str], parent=None):
        super().__init__(parent)
        self.engine, self.settings = engine, settings
        self.task: Task | None = None
        self._rerun = False
        self.groups: dict[str, QButtonGroup] = {}
        self.attributes: list[str] = []
        self.unreliable: dict[str, str] = {}

        self.expression = ExpressionEdit()
        self.expression.setPlaceholderText("Type a filter, e.g. Smiling and Eyeglasses and not Wearing_Hat")
        self.expression.setAccessibleName("Filter expression")
        self.expression.setToolTip("The filter in words; the buttons below follow what you type")
        self.expression.edited.connect(self._typed)
        self.expression.returnPressed.connect(self.run)
        self.expression.escapePressed.connect(self.cancel)
        self.message = QLabel()
        self.message.setWordWrap(True)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(CALIBRATED, 99)
        self.slider.setAccessibleName("Minimum confidence")
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider_label = QLabel()
        self._slider_moved(CALIBRATED, regenerate=False)

        self.saved = QComboBox()
        self.saved.setPlaceholderText("Saved filters")
        self.saved.setAccessibleName("Saved filters")
        self.saved.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.saved.setMinimumContentsLength(12)
        self.saved.view().setTextElideMode(Qt.TextElideMode.ElideNone)
        self.saved.activated.connect(lambda i: self.apply_saved(self.saved.itemText(i)))
        self.save_button = save = QPushButton("Save…")
        save.setToolTip("Keep this filter under a name")
        save.clicked.connect(self._ask_save)
        self.delete_button = delete = QPushButton("Delete")
        delete.setToolTip("Forget the chosen saved filter")
        delete.clicked.connect(lambda: self.delete_saved(self.saved.currentText()))
        self.clear_button = clear = QPushButton("Clear")
        clear.setToolTip("Show all photos again: every attribute back to Any")
        clear.clicked.connect(self.clear)

        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.inner = QWidget()
        self.scroll = QScrollArea()
        self.scroll.setAccessibleName("Attributes: Any, Yes or No for each")
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.inner)

        saved_row = QHBoxLayout()
        saved_row.addWidget(self.saved, 1)
        saved_row.addWidget(save)
        saved_row.addWidget(delete)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Min. confidence:"))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.slider_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        expr_row = QHBoxLayout()
        expr_row.addWidget(self.expression, 1)
        expr_row.addWidget(clear, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(expr_row)
        layout.addWidget(self.message)
        layout.addLayout(slider_row)
        layout.addLayout(saved_row)
        layout.addWidget(self.legend)
        layout.addWidget(self.scroll, 1)

        self._debounce = QTimer(self, singleShot=True, interval=300)
        self._debounce.timeout.connect(self.run)
        self.set_attributes(attributes)
        self._reload_saved()

    def set_attributes(self, attributes: list[str], unreliable: dict[str, str] | None = None) -> None:
        """Rows for the active model's attributes only (rebuilt when another model is installed);
        unreliable ones are greyed, with the reason in their tooltip."""
        self.attributes, self.unreliable = list(attributes), dict(unreliable or {})
        kept = {n: s for n, s in self.choices().items() if n in self.attributes}
        self.groups = {}
        self.inner = QWidget()
        grid = QGridLayout(self.inner)
        grid.setVerticalSpacing(1)
        grid.setColumnStretch(0, 1)
        row = 0
        shown = set()
        for group, names in GROUPS.items():
            names = [n for n in names if n in self.attributes]
            if not names:
                continue
            grid.addWidget(QLabel(f"<b>{group}</b>"), row, 0, 1, 4)
            row += 1
            for name in names:
                self._add_row(grid, row, name)
                shown.add(name)
                row += 1
        for name in (a for a in self.attributes if a not in shown):
            self._add_row(grid, row, name)
            row += 1
        grid.setRowStretch(row, 1)  # few rows stay together at the top
        self.scroll.setWidget(self.inner)  # deletes the previous rows
        # wide enough for the longest name and its three buttons: never a horizontal scrollbar
        self.scroll.setMinimumWidth(self.inner.sizeHint().width()
                                    + self.scroll.verticalScrollBar().sizeHint().width() + 4)
        self.legend.setText(f"<span style='color:{GREYED}'>Greyed, {UNRELIABLE_MARK.strip()}</span>: attributes whose tags are "
                            "too often wrong (hover for why); still usable in filters."
                            if self.unreliable else "")
        self.legend.setVisible(bool(self.unreliable))
        for name, state in kept.items():
            self.groups[name].button(STATES.index(state)).setChecked(True)

    def _add_row(self, grid: QGridLayout, row: int, name: str) -> None:
        name_label = QLabel(shown_name(name, self.unreliable))
        if name in self.unreliable:
            name_label.setStyleSheet(f"color: {GREYED}")
            name_label.setToolTip(f"{label(name)}: {self.unreliable[name]}. Still predicted and usable "
                                  "in filters, but not written as a keyword.")
        grid.addWidget(name_label, row, 0)
        group = QButtonGroup(self.inner)
        for col, state in enumerate(STATES, start=1):
            b = QToolButton()
            b.setText({"any": "Any", "yes": "Yes", "no": "No"}[state])
            b.setCheckable(True)
            b.setStyleSheet(BUTTON_STYLE[state])
            b.setChecked(state == "any")
            b.setToolTip({"any": f"{label(name)}: either way", "yes": f"Require {label(name).lower()}",
                          "no": f"Exclude {label(name).lower()}"}[state])
            b.setAccessibleName(f"{label(name)}: {b.text()}")  # a screen reader says which row, and checked or not
            b.setAccessibleDescription(b.toolTip())
            group.addButton(b, col - 1)
            grid.addWidget(b, row, col)
        group.idClicked.connect(lambda _id: self._choices_changed())
        self.groups[name] = group

    # --- state ---------------------------------------------------------------------------------
    def choices(self) -> dict[str, str]:
        return {n: STATES[g.checkedId()] for n, g in self.groups.items() if g.checkedId() > 0}

    def set_choice(self, name: str, state: str) -> None:
        self.groups[name].button(STATES.index(state)).setChecked(True)
        self._choices_changed()

    def min_confidence(self) -> float | None:
        v = self.slider.value()
        return None if v == CALIBRATED else v / 100

    def _slider_moved(self, value: int, regenerate: bool = True) -> None:
        self.slider_label.setText("calibrated" if value == CALIBRATED else f"{value}%")
        self.slider.setToolTip("Leftmost: each attribute's calibrated threshold; otherwise the "
                               "probability a required attribute must reach (and an excluded one "
                               "stay under one minus it)")
        if regenerate:
            self._choices_changed()

    def _choices_changed(self) -> None:
        self.expression.setText(build_expression(self.choices(), self.min_confidence(),
                                                 self.settings.threshold_overrides))
        self._debounce.start()

    def _typed(self) -> None:
        """Typing moves the buttons to what the expression says (all Any when it says more than
        they can show), then runs it after a pause."""
        self._sync_buttons()
        self._debounce.start()

    def _sync_buttons(self) -> None:
        parsed = parse_choices(self.expression.text(), self.attributes)
        for name, group in self.groups.items():
            group.button(STATES.index((parsed or {}).get(name, "any"))).setChecked(True)

    def forget_results(self) -> None:
        """The grid went elsewhere (a folder, all photos): the filter no longer applies."""
        self._debounce.stop()
        self._reset_choices()
        self.expression.setText("")
        self.message.setText("")

    def _reset_choices(self) -> None:
        for g in self.groups.values():
            g.button(0).setChecked(True)

    def clear(self) -> None:
        self._reset_choices()
        self.expression.clear()
        self.cancel()
        self.run()

    def cancel(self) -> None:
        """Stop the running query (Esc in the expression box); the last results stay shown."""
        self._rerun = False
        if self.task is not None:
            self.task.cancel()

    # --- running -------------------------------------------------------------------------------
    def run(self) -> None:
        """Query in a worker; a new filter cancels the running one and runs once it has stopped
        (latest text wins)."""
        self._debounce.stop()
        expr = self.expression.text().strip()
        if not expr:
            self.message.setText("")
            self.cleared.emit()
            return
        if self.task is not None:
            self.task.cancel()
            self._rerun = True
            return
        from photo_sorter import query

        engine = self.engine
        self.task = task = Task(lambda progress, cancel: query.photos(
            engine, expr, limit=MAX_RESULTS, cancel=cancel), self)
        self.task.succeeded.connect(lambda rows: self._show(expr, rows))
        self.task.failed.connect(lambda msg: self.message.setText(
            "query cancelled" if task.cancelled else f"<span style='color:#c0392b'>{msg}</span>"))
        self.task.finished.connect(self._task_ended)
        self.task.start()

    def _task_ended(self) -> None:
        self.task = None
        if self._rerun:
            self._rerun = False
            self.run()

    def _show(self, expr: str, rows: list[dict]) -> None:
        if expr != self.expression.text().strip():
            return  # a newer edit is queued
        n = len(rows)
        self.message.setText(f"{n if n < MAX_RESULTS else f'best {n}'} photo{'s' if n != 1 else ''} "
                             "match, best first")
        self.results.emit([{"id": r["photo_id"], "score": r["score"]} for r in rows])

    # --- saved filters -----------------------------------------------------------------------------
    def _reload_saved(self) -> None:
        self.saved.clear()
        self.saved.addItems(sorted(self.settings.saved_filters))
        self.saved.setCurrentIndex(-1)

    def _ask_save(self) -> None:
        name, ok = QInputDialog.getText(self, "Save filter", "Name:")
        if ok and name.strip():
            self.save_current(name.strip())

    def save_current(self, name: str) -> None:
        expr = self.expression.text().strip()
        if expr:
            self.settings.saved_filters = {**self.settings.saved_filters, name: expr}
            self._reload_saved()
            self.saved.setCurrentText(name)

    def apply_saved(self, name: str) -> None:
        expr = self.settings.saved_filters.get(name)
        if expr is not None:
            self.expression.setText(expr)
            self._sync_buttons()
            self.run()

    def delete_saved(self, name: str) -> None:
        saved = self.settings.saved_filters
        if saved.pop(name, None) is not None:
            self.settings.saved_filters = saved
            self._reload_saved()
