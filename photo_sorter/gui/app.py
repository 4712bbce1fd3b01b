"""`python main.py [--db PATH] [FOLDER ...]`: open the library window (and add + scan FOLDERs)."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from photo_sorter.store.db import APP_NAME, DatabaseError, open_engine


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="photo-sorter", description="photo_sorter desktop app "
                                     "(use --headless COMMAND for batch mode)")
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help="add to the library and scan")
    parser.add_argument("--db", help="library database path or SQLAlchemy URL (remembered)")
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    from photo_sorter.gui.config import Settings
    from photo_sorter.gui.main_window import MainWindow

    settings = Settings()
    if args.db:
        settings.db_path = args.db
    try:
        engine = open_engine(settings.db_path)
    except DatabaseError as exc:
        QMessageBox.critical(None, "photo_sorter", f"{exc}\n\nStart with --db PATH to use another file.")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    window = MainWindow(settings, engine)
    window.show()
    QTimer.singleShot(0, window.start_background)
    if args.folders:
        QTimer.singleShot(0, lambda: window.add_folders(args.folders))
    return app.exec()
