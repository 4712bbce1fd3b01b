"""Lazy thumbnails for the grid: a disk cache under the user cache dir, filled by worker threads.

Only rows the view actually paints ask for a thumbnail, and the newest request runs first (a LIFO
queue), so scrolling through 10k+ photos stays smooth: off-screen requests wait behind the visible
ones. Plain Python threads rather than QThreadPool: see photo_sorter.gui.tasks for why.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
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
        """The cached thumbnail, made first if missing. Runs in a worker thread (QImage is safe there)."""
        target = self.file_for(path, mtime_ns, nbytes)
        if not target.is_file():
            from photo_sorter.imaging import thumbnail

            image = thumbnail(path, self.size)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            image.convert("RGB").save(tmp, "JPEG", quality=85)
            tmp.replace(target)
        return QImage(str(target))


class ThumbnailLoader(QObject):
    """Pixmaps by photo path: returns None while loading and emits `ready(path)` when it arrives."""

    ready = Signal(str)
    _done = Signal(str, QImage)  # from a worker thread, delivered in the GUI thread

    def __init__(self, cache: ThumbnailCache, display_size: int = 160, memory_items: int = 3000,
                 threads: int = 2, parent=None):
        super().__init__(parent)
        self.cache, self.display_size = cache, display_size
        self._done.connect(self._on_done)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._memory_items = memory_items
        self._queue: queue.LifoQueue = queue.LifoQueue()
        self._threads = [threading.Thread(target=self._work, name="thumbnails", daemon=True)
                         for _ in range(threads)]
        for t in self._threads:
            t.start()

    def get(self, path: str, mtime_ns=None, nbytes=None) -> QPixmap | None:
        """The pixmap if ready; otherwise queue it (newest first) and return None."""
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._pending and path not in self._failed:
            self._pending.add(path)
            self._queue.put((path, mtime_ns, nbytes))
        return None

    def failed(self, path: str) -> bool:
        return path in self._failed

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._load(*job)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _load(self, path: str, mtime_ns, nbytes) -> None:
        """In a worker thread: the cached thumbnail, scaled here rather than in the GUI thread."""
        size = self.display_size
        try:
            image = self.cache.load(path, mtime_ns, nbytes)
            if max(image.width(), image.height()) > size:
                image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
        except Exception:  # noqa: BLE001 - an unreadable photo just shows the "broken" tile
            image = QImage()
        self._done.emit(path, image)

    def _on_done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        if image.isNull():
            self._failed.add(path)
        else:
            self._pixmaps[path] = QPixmap.fromImage(image)
            while len(self._pixmaps) > self._memory_items:
                self._pixmaps.popitem(last=False)
        self.ready.emit(path)

    def wait(self) -> None:
        """Until every queued thumbnail is made."""
        self._queue.join()

    def stop(self) -> None:
        """Drop the queued requests and end the worker threads (when the window closes)."""
        try:
            while True:
                self._queue.get_nowait()
                self._queue.task_done()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
