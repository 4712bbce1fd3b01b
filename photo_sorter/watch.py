"""Watched folders: file-system events (watchdog) become incremental scans of what changed. No Qt.

Events are collected until the folders have been quiet for `quiet` seconds (at most `max_wait`
after the first), so a burst of a thousand new files becomes one scan of a thousand file roots
rather than a thousand scans. New and changed files are scanned as themselves; deletions, moves
away and folder events rescan the nearest existing folder, which lets the scan mark files missing
and follow moves by content hash. A scan refused because another one holds the library (a GUI
scan, a CLI scan) is retried with the same paths.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from photo_sorter import imaging, scan
from photo_sorter.store import LibraryBusy

RETRY_SECONDS = 2.0


class WatchError(RuntimeError):
    """The folders cannot be watched (a system limit, a permission); one readable line."""


def scan_roots(files: set[Path], folders: set[Path], watched: list[Path]) -> list[Path]:
    """The roots for one scan: folders that still exist (a vanished one is replaced by its nearest
    existing parent inside the watched roots), then files that exist and lie in none of them."""
    existing = set()
    for folder in folders:
        while not folder.is_dir() and any(folder != w and folder.is_relative_to(w) for w in watched):
            folder = folder.parent
        if folder.is_dir():
            existing.add(folder)
    kept = [f for f in sorted(existing) if not any(f != o and f.is_relative_to(o) for o in existing)]
    loose = [f for f in sorted(files) if f.is_file() and not any(f.is_relative_to(o) for o in kept)]
    return kept + loose


def _paired_photos(path: Path) -> set[Path]:
    """For the RAW of a RAW+JPEG pair, its JPEG(s): the photo the scan decodes (and lists the
    RAW with); as a file root of its own the RAW would be decoded."""
    if path.suffix.lower() not in imaging.RAW_EXTENSIONS:
        return set()
    return {p for e in imaging.PAIRED_EXTENSIONS for ext in (e, e.upper())
            if (p := path.with_suffix(ext)).is_file()}


class Watcher(FileSystemEventHandler):
    """Watch `roots` and scan what changes into the library `db` on a worker thread.

    `model` (default: the library's active one) is kept between scans so its weights load once,
    and replaced when the library's active model changes; `on_scan(summary)` is called after each scan,
    `on_error(message)` when one fails. start()/stop() run and end both threads."""

    def __init__(self, db, roots, *, model=None, options: scan.ScanOptions | None = None,
                 quiet: float = 1.0, max_wait: float = 10.0,
                 on_scan: Callable[[dict], None] | None = None,
                 on_error: Callable[[str], None] | None = None):
        self.db = db
        self.roots = [Path(os.path.abspath(os.path.expanduser(r))) for r in roots]  # as scan stores them
        self.model, self.options = model, options
        self.quiet, self.max_wait = quiet, max_wait
        self.on_scan, self.on_error = on_scan, on_error
        self._files: set[Path] = set()
        self._folders: set[Path] = set()
        self._first = self._last = 0.0
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._observer = Observer()
        self._worker = threading.Thread(target=self._run, name="photo-sorter-watch", daemon=True)

    # -- watchdog thread
    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        files, folders = set(), set()
        for raw in filter(None, (event.src_path, getattr(event, "dest_path", ""))):
            path = Path(os.fsdecode(raw))
            if self._hidden(path):
                continue
            if event.is_directory:
                if event.event_type != "modified":  # a folder's own mtime says nothing new
                    folders.add(path)
            elif imaging.skip_reason(path) is not None:
                continue  # not a photo (the library's own files too)
            elif paired := _paired_photos(path):
                files |= paired
            elif path.is_file():
                files.add(path)
            else:  # gone (deleted, moved away): its folder tells the scan
                folders.add(path.parent)
        if files or folders:
            with self._wake:
                now = time.monotonic()
                if not (self._files or self._folders):
                    self._first = now
                self._last = now
                self._files |= files
                self._folders |= folders
                self._wake.notify()

    def _hidden(self, path: Path) -> bool:
        """Inside a hidden file or folder below its watched root (the scan leaves those out)."""
        root = next((r for r in self.roots if path.is_relative_to(r)), None)
        return root is None or any(p.startswith(".") for p in path.relative_to(root).parts)

    # -- worker thread
    def _take(self) -> tuple[set[Path], set[Path]] | None:
        """Wait for a quiet moment after some events; None when stopping."""
        with self._wake:
            while not self._stop.is_set():
                if self._files or self._folders:
                    now = time.monotonic()
                    due = min(self._last + self.quiet, self._first + self.max_wait)
                    if now >= due:
                        batch = (self._files, self._folders)
                        self._files, self._folders = set(), set()
                        return batch
                    self._wake.wait(due - now)
                else:
                    self._wake.wait()
        return None

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            roots = scan_roots(*batch, self.roots)
            if not roots:
                continue
            try:
                active = scan.active_model(self.db, load=False)
                if (active.sha256, active.card) != (self.model.sha256, self.model.card):  # model changed meanwhile
                    self.model = active
                summary = scan.scan(self.db, roots, model=self.model, options=self.options,
                                    cancel=self._cancel)
            except LibraryBusy as exc:  # another scan holds the library: try again soon
                with self._wake:
                    self._files |= batch[0]
                    self._folders |= batch[1]
                    self._first = self._last = time.monotonic() + RETRY_SECONDS - self.quiet
                if self.on_error:
                    self.on_error(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a failed batch must not end the watching
                if self.on_error:
                    self.on_error(f"{type(exc).__name__}: {exc}")
                continue
            if self.on_scan:
                self.on_scan(summary)

    # -- control
    def start(self) -> Watcher:
        """Start watching the roots that exist; WatchError (one line) when the system refuses."""
        if self.model is None:  # one model for all batches: its weights load once
            self.model = scan.active_model(self.db, load=False)
        try:
            for root in self.roots:
                if root.is_dir():
                    self._observer.schedule(self, str(root), recursive=True)
            self._observer.start()
        except OSError as exc:
            hint = (" (the system's limit of watched folders or files is reached: raise "
                    "fs.inotify.max_user_watches / max_user_instances)"
                    if exc.errno in (errno.ENOSPC, errno.EMFILE) else "")
            raise WatchError(f"cannot watch the folders: {exc.strerror or exc}{hint}") from None
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop watching; a scan in progress is cancelled at its next photo (what it stored stays)."""
        self._stop.set()
        self._cancel.set()
        with self._wake:
            self._wake.notify()
        self._observer.stop()
        self._observer.join()
        if self._worker.is_alive():
            self._worker.join()
