"""Preferences: database location, detection size, watching folders and per-attribute display thresholds."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QHeaderView,
    QLabel, QLineEdit, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout,
)

from photo_sorter.attributes import label
from photo_sorter.gui.config import Settings


class PreferencesDialog(QDialog):
    """Edits Settings in place on OK. A threshold equal to the calibrated one is not stored, so a
    later model's calibration still applies."""

    def __init__(self, settings: Settings, calibrated: dict[str, float], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.resize(560, 620)
        self.settings, self.calibrated = settings, calibrated
        self.db = QLineEdit(settings.db_path)
        self.db.setAccessibleName("Library database")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        db_row = QHBoxLayout()
        db_row.addWidget(self.db, 1)
        db_row.addWidget(browse)
        self.detect = QSpinBox(minimum=256, maximum=4096, singleStep=128, value=settings.detection_size)
        self.detect.setSuffix(" px")
        self.detect.setToolTip("Long side of the reduced copy the face detector sees; larger finds "
                               "smaller faces but scans slower")
        form = QFormLayout()
        form.addRow("Library database:", db_row)
        form.addRow("", QLabel("<small>A new database location is used from the next start.</small>"))
        form.addRow("Detection size:", self.detect)
        self.watch = QCheckBox("Scan new, changed and deleted files of the library folders while open")
        self.watch.setChecked(settings.watch_folders)
        form.addRow("Watch folders:", self.watch)

        overrides = settings.threshold_overrides
        self.table = QTableWidget(len(calibrated), 3)
        self.table.setAccessibleName("Attribute thresholds")
        self.table.setHorizontalHeaderLabels(["Attribute", "Calibrated", "Your threshold"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):  # whole headers and values at any font size; the name takes the rest
            self.table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.spins: dict[str, QDoubleSpinBox] = {}
        for row, (name, value) in enumerate(calibrated.items()):
            self.table.setItem(row, 0, QTableWidgetItem(label(name)))
            item = QTableWidgetItem(f"{value:.2f}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, item)
            spin = QDoubleSpinBox(minimum=0.01, maximum=0.99, singleStep=0.05, decimals=2)
            spin.setValue(overrides.get(name, value))
            spin.setAccessibleName(f"Your threshold for {label(name)}")
            self.table.setCellWidget(row, 2, spin)
            self.spins[name] = spin
        reset = QPushButton("Use the calibrated thresholds")
        reset.clicked.connect(lambda: [s.setValue(calibrated[n]) for n, s in self.spins.items()])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Thresholds decide when an attribute counts as present (face bars "
                                "and the filter panel):"))
        layout.addWidget(self.table, 1)
        layout.addWidget(reset)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Library database", self.db.text(),
                                              "SQLite databases (*.db)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.db.setText(path)

    def accept(self) -> None:
        self.settings.db_path = self.db.text().strip() or self.settings.db_path
        self.settings.detection_size = self.detect.value()
        self.settings.watch_folders = self.watch.isChecked()
        self.settings.threshold_overrides = {
            n: round(s.value(), 2) for n, s in self.spins.items()
            if abs(s.value() - self.calibrated[n]) > 1e-6}
        super().accept()
