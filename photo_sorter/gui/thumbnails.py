"""Lazy thumbnails for the grid: a disk cache under the user cache dir, filled in a QThreadPool.

Only rows the view actually paints ask for a thumbnail, and the newest request runs first, so
scrolling through 10k+ photos stays smooth: off-screen requests wait behind the visible ones.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Qt, Signal
from PySide6.QtGui import QImage, QPixmap

THUMB_SIZE = 256


class ThumbnailCache:
    """JPEG thumbnails on disk, keyed by path, mtime and size so an edited photo gets a new one.

    The cache is the app's own folder; the photos themselves are only read.
    """

    def __init__(self, directory: Path, size: int = THUMB_SIZE):
        self.directory = Path(directory) / f"thumbs{size}"
        self.size = size

    def file_for(self, path: str, mtime_ns: int | None, nbytes: int | None) -> Path:
        key = hashlib.sha1(f"{path}\0{mtime_ns}\0{nbytes}".encode()).hexdigest()
        return self.directory / key[:2] / f"{key}.jpg"

    def load(self, path: str, mtime_ns: int | None = None, nbytes: int | None = None) -> QImage:
        """The cached thumbnail, made first if missing. Runs in a pool thread (QImage is safe there)."""
        target = self.file_for(path, mtime_ns, nbytes)
        if not target.is_file():
            from photo_sorter.imaging import thumbnail

            image = thumbnail(path, self.size)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            image.convert("RGB").save(tmp, "JPEG", quality=85)
            tmp.replace(target)
        return QImage(str(target))


class _Signals(QObject):
    done = Signal(str, QImage)


class _Job(QRunnable):
    def __init__(self, loader: ThumbnailLoader, path: str, mtime_ns, nbytes):
        super().__init__()
        self.loader, self.args = loader, (path, mtime_ns, nbytes)

    def run(self) -> None:
        size = self.loader.display_size
        try:
            image = self.loader.cache.load(*self.args)
            if max(image.width(), image.height()) > size:  # scale here, not in the GUI thread
                image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
        except Exception:  # noqa: BLE001 - an unreadable photo just shows the "broken" tile
            image = QImage()
        self.loader.signals.done.emit(self.args[0], image)


class ThumbnailLoader(QObject):
    """Pixmaps by photo path: returns None while loading and emits `ready(path)` when it arrives."""

    ready = Signal(str)

    def __init__(self, cache: ThumbnailCache, display_size: int = 160, memory_items: int = 3000,
                 parent=None):
        super().__init__(parent)
        self.cache, self.display_size = cache, display_size
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, min(4, QThreadPool.globalInstance().maxThreadCount())))
        self.signals = _Signals()
        self.signals.done.connect(self._on_done)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._memory_items = memory_items
        self._priority = 0

    def get(self, path: str, mtime_ns=None, nbytes=None) -> QPixmap | None:
        """The pixmap if ready; otherwise queue it (newest first) and return None."""
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._pending and path not in self._failed:
            self._pending.add(path)
            self._priority = (self._priority + 1) % (1 << 30)
            self.pool.start(_Job(self, path, mtime_ns, nbytes), self._priority)
        return None

    def failed(self, path: str) -> bool:
        return path in self._failed

    def forget(self, path: str) -> None:
        """Drop a memory-cached pixmap (after a rescan changed the file)."""
        self._pixmaps.pop(path, None)
        self._failed.discard(path)

    def _on_done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        if image.isNull():
            self._failed.add(path)
        else:
            self._pixmaps[path] = QPixmap.fromImage(image)
            while len(self._pixmaps) > self._memory_items:
                self._pixmaps.popitem(last=False)
        self.ready.emit(path)

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)
