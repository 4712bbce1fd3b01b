"""The GUI's hook onto photo_sorter.watch: the library's folders are watched while the window is
open (Preferences: on/off), and each scanned batch is passed to the window as a Qt signal."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class FolderWatch(QObject):
    """Owns at most one core Watcher; its callbacks (on the watcher's thread) become signals, which
    Qt delivers on the GUI thread."""

    scanned = Signal(dict)
    failed = Signal(str)

    def __init__(self, engine, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.watcher = None
        self.folders: list[str] = []

    def apply(self, folders: list[str], detect_size: int) -> None:
        """Watch exactly `folders` (none: stop watching)."""
        if self.watcher is not None and folders == self.folders:
            return
        self.stop()
        if folders:
            from photo_sorter.scan import ScanOptions
            from photo_sorter.watch import Watcher, WatchError

            watcher = Watcher(self.engine, folders, options=ScanOptions(detect_size=detect_size),
                              on_scan=self.scanned.emit, on_error=self.failed.emit)
            try:
                self.watcher = watcher.start()
            except WatchError as exc:  # the app works on; the user is told why nothing is watched
                self.failed.emit(str(exc))
                return
            self.folders = list(folders)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.watcher, self.folders = None, []
