"""Run core calls in a worker thread and report through Qt signals, so the window stays responsive.

A core long call has the shape fn(..., progress=callable(report), cancel=Event); Task runs it
off the GUI thread and turns each progress report into a Qt signal (queued to the GUI thread).

The worker is a plain Python thread rather than a QThread/QRunnable run() override: PySide6
6.12.0 drops a reference to None on every such run() (and one to True on every Signal.emit, which
is why pyproject excludes 6.12.0; tests/test_gui.py checks both). Signals emitted from the thread
still reach the GUI thread as queued calls.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future

from PySide6.QtCore import QObject, Signal

from photo_sorter.errors import log_failure, one_line

log = logging.getLogger(__name__)


class Task(QObject):
    """fn(progress=..., cancel=...) in a worker thread; `succeeded` or `failed`, then `finished`,
    end every run."""

    progressed = Signal(object)   # whatever the core reports (e.g. scan.ScanProgress)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, fn, parent=None):
        super().__init__(parent)
        self.fn = fn
        self.cancel_event = threading.Event()
        self.started_at = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=type(self).__name__, daemon=True)
        self._thread.start()

    def isRunning(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.isRunning()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def _progress(self, report) -> None:
        self.progressed.emit(report)

    def run(self) -> None:
        self.started_at = time.monotonic()
        try:
            result = self.fn(progress=self._progress, cancel=self.cancel_event)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one readable line
            # The core raises ValueError subclasses for the user's mistakes; anything else is a
            # bug, whose traceback goes to the log file.
            if isinstance(exc, ValueError):
                log.info("background task failed: %s", exc)
            else:
                log_failure(exc, "background task")
            self.failed.emit(one_line(exc))
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()


def eta_text(started_at: float, done: int, total: int) -> str:
    """'about 2 min left' from the pace so far; empty until there is a pace to go on."""
    if done <= 0 or total <= done:
        return ""
    return left_text((time.monotonic() - started_at) / done * (total - done))


def left_text(left: float | None) -> str:
    if left is None:
        return ""
    if left < 60:
        return f"about {max(1, round(left))} s left"
    if left < 3600:
        return f"about {round(left / 60)} min left"
    return f"about {left / 3600:.1f} h left"


class ModelProvider(Task):
    """Imports TensorFlow and loads the library's active attribute model once, in the background.

    `future` lets worker threads (a scan) wait for the model without touching the GUI thread.
    """

    def __init__(self, engine, parent=None):
        self.future: Future = Future()
        self.engine = engine
        super().__init__(self._load, parent)

    def _load(self, progress, cancel):
        try:
            from photo_sorter import scan
            from photo_sorter.model import device_name

            model = scan.active_model(self.engine)
            info = {"name": model.name, "device": device_name(), "model": model}
        except Exception as exc:
            self.future.set_exception(exc)
            raise
        self.future.set_result(model)
        return info
