"""File › Open library…: a library file (chosen or typed; a new path makes a new library) or a
database server's URL. The window opens it with the core's open code (store.open_engine)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel, QPushButton,
    QVBoxLayout,
)

from photo_sorter.gui.config import remember_folder, start_folder


class OpenLibraryDialog(QDialog):
    """The library to open (`target()`) and whether the app opens it at every start."""

    def __init__(self, recent: list[str], current: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Open library")
        text = QLabel("A library file (a new name makes a new, empty library), or a database server, "
                      "e.g. <tt>postgresql+psycopg://user@host/photos</tt> (the password comes from "
                      "~/.pgpass or PGPASSWORD and is never stored).")
        text.setWordWrap(True)
        self.location = QComboBox()
        self.location.setEditable(True)
        self.location.addItems(recent)
        self.location.setCurrentText(current)
        self.location.setMinimumContentsLength(48)
        self.location.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.location.setAccessibleName("Library file or server URL")
        self.location.setToolTip("A library file's path, or a database server's URL")
        label = QLabel("&Library:")
        label.setBuddy(self.location)
        browse = QPushButton("&Browse…")
        browse.setToolTip("Choose a library file, or type a new name to make a new library")
        browse.clicked.connect(self._browse)
        self.remember = QCheckBox("Open this library &every time the app starts")
        self.remember.setChecked(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.location.lineEdit().textChanged.connect(
            lambda t: buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(bool(t.strip())))
        row = QHBoxLayout()
        row.addWidget(label)
        row.addWidget(self.location, 1)
        row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(row)
        layout.addWidget(self.remember)
        layout.addWidget(buttons)

    def target(self) -> str:
        return self.location.currentText().strip()

    def _browse(self) -> None:
        current = Path(self.target()).expanduser() if "://" not in self.target() else None
        folder = str(current.parent) if current and current.parent.is_dir() else start_folder()
        path, _ = QFileDialog.getSaveFileName(
            self, "Library file", folder, "Libraries (*.db *.sqlite *.sqlite3);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite)  # an existing library is opened, never replaced
        if path:
            remember_folder(path)
            self.location.setCurrentText(path)
