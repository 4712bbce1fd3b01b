"""`python main.py [--db PATH [--remember]] [FOLDER ...]`: open the library window (and add + scan
FOLDERs)."""

from __future__ import annotations

import argparse
import ctypes.util
import logging
import os
import sys
from pathlib import Path

from photo_sorter.store.db import APP_NAME, DatabaseError, describe, open_engine

# Qt's xcb platform plugin loads these at start; without them it dies with a long message.
# (library soname stem, the Debian/Ubuntu package that ships it)
XCB_LIBRARIES = (
    ("xcb-cursor", "libxcb-cursor0"), ("xcb-icccm", "libxcb-icccm4"), ("xcb-image", "libxcb-image0"),
    ("xcb-keysyms", "libxcb-keysyms1"), ("xcb-randr", "libxcb-randr0"),
    ("xcb-render-util", "libxcb-render-util0"), ("xcb-shape", "libxcb-shape0"),
    ("xcb-xkb", "libxcb-xkb1"), ("xkbcommon-x11", "libxkbcommon-x11-0"),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="photo-sorter", description="photo_sorter desktop app "
                                     "(use --headless COMMAND for batch mode)")
    parser.add_argument("folders", nargs="*", metavar="FOLDER", help="add to the library and scan")
    parser.add_argument("--db", help="library database path or SQLAlchemy URL, for this session only")
    parser.add_argument("--remember", action="store_true",
                        help="with --db: make it the library the app opens from now on")
    return parser.parse_args(argv)


def missing_xcb_packages(find=ctypes.util.find_library) -> list[str]:
    """The packages to install before Qt's xcb plugin can start (empty when none are missing or
    the app does not use xcb: another platform, or no X display)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (platform and not platform.startswith("xcb")):
        return []
    if not platform and not os.environ.get("DISPLAY"):
        return []
    return [package for lib, package in XCB_LIBRARIES if find(lib) is None]


def quiet_terminal(log_file: Path) -> None:
    """Send TensorFlow/CUDA chatter, the detector's warnings and every other log line to
    `log_file` instead of the terminal (Help > Open log folder). The file descriptor itself is
    redirected, so native libraries' output goes there too."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines say nothing useful
    log_file.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the app
    sys.stderr.flush()
    os.dup2(stream.fileno(), 2)
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)


def library_db(args: argparse.Namespace, settings) -> str:
    """The database this session opens: --db for this session only, remembered as the default
    with --remember; otherwise the remembered one."""
    if args.db and args.remember:
        settings.db_path = args.db
    return args.db or settings.db_path


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    missing = missing_xcb_packages()
    if missing:
        print(f"photo_sorter: the window needs system libraries that are missing; install them with: "
              f"sudo apt-get install {' '.join(missing)}", file=sys.stderr)
        return 3
    from photo_sorter.gui.config import log_dir

    quiet_terminal(log_dir() / "photo_sorter.log")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    from photo_sorter.gui.config import Settings
    from photo_sorter.gui.main_window import MainWindow

    settings = Settings()
    db = library_db(args, settings)
    try:
        engine = open_engine(db)
    except DatabaseError as exc:
        QMessageBox.critical(None, "photo_sorter", f"{exc}\n\nStart with --db PATH to use another file.")
        print(f"error: {exc}", file=sys.__stderr__)
        return 2
    window = MainWindow(settings, engine)
    if args.db and not args.remember:
        window.statusBar().showMessage(f"Using {describe(engine.url)} for this session only (start with "
                                       "--db … --remember, or use File › Open library, to open it every time).",
                                       30000)
    window.show()
    QTimer.singleShot(0, window.start_background)
    if args.folders:
        QTimer.singleShot(0, lambda: window.add_folders(args.folders))
    return app.exec()
