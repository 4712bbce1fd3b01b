"""Tools > Manage attribute models: the installed models with their card figures; activate one
(the window re-predicts the faces it has not seen, with progress) or delete one. Operations are
photo_sorter.library's."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton,
    QTableWidget, QTableWidgetItem, QVBoxLayout,
)

from photo_sorter import library
from photo_sorter.gui.config import remember_folder, start_folder
from photo_sorter.store import DatabaseError

COLUMNS = ("Model", "Attributes", "Mean accuracy", "Balanced accuracy", "Installed", "State")


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


class ModelsDialog(QDialog):
    """`activateRequested(model_id)`: the window switches models (a library task with progress)."""

    activateRequested = Signal(int)
    installRequested = Signal(str)  # a model file the user chose (checked and confirmed here)

    def __init__(self, engine, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.setWindowTitle("Attribute models")
        self.resize(820, 360)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Installed models")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.note = QLabel("Switching models keeps every model's predictions: switching back is "
                           "instant for the faces it has seen. Deleting forgets a model and its "
                           "predictions; its file stays on disk.")
        self.note.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b03a2e")
        self.activate_button = QPushButton("Make active")
        self.activate_button.setToolTip("Use the chosen model from now on (faces it has not seen are predicted again)")
        self.activate_button.clicked.connect(self._activate)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Forget the chosen model and its predictions (its file stays on disk)")
        self.delete_button.clicked.connect(self._delete)
        install = QPushButton("Install from file…")
        install.clicked.connect(self._ask_install)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(install)
        buttons.addStretch()
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        self.models = library.models(self.engine)
        self.table.setRowCount(len(self.models))
        bold = QFont(self.font())
        bold.setBold(True)
        for r, m in enumerate(self.models):
            state = "active" if m["active"] else ("file missing" if not m["file_exists"] else "")
            if library.majority_only(m["card"]):
                state = (state + " · " if state else "") + "no better than guessing"
            cells = (m["name"], str(len(m["attributes"])), _pct(m["accuracy"]),
                     _pct(m["balanced_accuracy"]),
                     f"{m['installed_at']:%Y-%m-%d %H:%M}" if m["installed_at"] else "", state)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(m["path"])
                if c in (1, 2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if m["active"]:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self._selection_changed()

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows else None

    def _selection_changed(self) -> None:
        m = self.selected()
        self.activate_button.setEnabled(bool(m) and not m["active"] and m["file_exists"])
        self.delete_button.setEnabled(bool(m) and not m["active"])

    def _activate(self) -> None:
        m = self.selected()
        if m is not None:
            self.activateRequested.emit(m["id"])

    def _ask_install(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Install an attribute model", start_folder(),
                                              "Keras models (*.keras)")
        if path:
            remember_folder(path)
            self.install(path, confirm=lambda text: QMessageBox.question(
                self, "Install model", text) == QMessageBox.StandardButton.Yes)

    def install(self, path: str, confirm) -> bool:
        """Ask for the install, after a warning (confirm(text) -> bool) when the model's card says
        it is no better than always giving the more common answer."""
        from photo_sorter.model import ModelError, read_card

        try:
            card = read_card(Path(path))
        except ModelError as exc:
            self.message.setText(f"<b>Cannot install:</b> {exc}")
            return False
        if library.majority_only(card) and not confirm(
                f"{Path(path).stem} is no better than always giving the more common answer (balanced "
                "accuracy 50 % on every attribute): its tags would say nothing. Install it anyway?"):
            return False
        self.installRequested.emit(path)
        return True

    def _delete(self) -> None:
        m = self.selected()
        if m is None:
            return
        answer = QMessageBox.question(
            self, "Delete model", f"Forget {m['name']} and its predictions? Its file stays on disk.")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(m["id"])

    def delete(self, model_id: int) -> None:
        try:
            library.delete_model(self.engine, model_id)
        except (ValueError, DatabaseError) as exc:  # DatabaseError: a scan holds the library
            self.message.setText(f"<b>Cannot delete:</b> {exc}")
        self.reload()
