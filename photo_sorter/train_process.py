"""training.train in a child process (multiprocessing, spawn), with its progress as events.

The app that starts a training keeps none of it: TensorFlow's determinism flags and the memory
of the run live and die with the child, and a crash there (out of memory, a native abort) is an
event the caller shows, never the end of the app. Events, polled without blocking:

  ("log", text)                    a line of the run's log
  ("epoch_begin", epoch)
  ("batch", done, steps, loss)     batches done in this epoch
  ("epoch_end", epoch, logs)       only for an epoch that ran all its batches
  ("partial_epoch", epoch, done, steps)  cancelled inside an epoch: not an epoch of the result
  ("done", card)                   finished, or {"cancelled": True, ...} after a cancel
  ("failed", message)              one line (an exception, or the child dying)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from dataclasses import asdict
from pathlib import Path

BATCH_EVERY = 0.2  # seconds between batch events (a fast run would flood the queue otherwise)


def _child(config: dict, events, cancel, log_file: str | None) -> None:
    """Runs in the child process."""
    if log_file:  # TensorFlow's native logging goes to the log file, not the app's terminal
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        import time

        import keras

        from photo_sorter import training

        class Live(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.seen, self.last = 0, 0.0
                events.put(("epoch_begin", epoch))

            def on_train_batch_end(self, batch, logs=None):
                self.seen = batch + 1
                steps = int(self.params.get("steps") or 0)
                now = time.monotonic()
                if now - self.last >= BATCH_EVERY or self.seen == steps:
                    self.last = now
                    events.put(("batch", self.seen, steps, float((logs or {}).get("loss", 0.0))))

            def on_epoch_end(self, epoch, logs=None):
                steps = int(self.params.get("steps") or 0)
                if self.seen < steps:
                    events.put(("partial_epoch", epoch, self.seen, steps))
                else:
                    events.put(("epoch_end", epoch, {k: float(v) for k, v in (logs or {}).items()}))

        card = training.train(training.TrainConfig(**config), callbacks=[Live()], cancel=cancel,
                              log=lambda *msg: events.put(("log", " ".join(map(str, msg)))))
        events.put(("done", card))
    except Exception as exc:  # noqa: BLE001 - reported to the app as one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        events.put(("failed", text))


def _final(events: list[tuple]) -> bool:
    return any(e[0] in ("done", "failed") for e in events)


class TrainingProcess:
    """One training run in a spawned child. start(), poll() for events, cancel() to stop after
    the current batch (finished epochs are kept; train() resumes from them next time)."""

    def __init__(self, config, log_file: Path | None = None):
        ctx = mp.get_context("spawn")
        self.events = ctx.Queue()
        self.cancel_event = ctx.Event()
        self.process = ctx.Process(target=_child, name="photo_sorter-training", daemon=True,
                                   args=(asdict(config), self.events, self.cancel_event,
                                         str(log_file) if log_file else None))
        self.ended = False

    def start(self) -> None:
        self.process.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def running(self) -> bool:
        return not self.ended

    def poll(self) -> list[tuple]:
        """The events so far; when the child has died without saying done or failed, a
        ("failed", ...) event that says so. After "done"/"failed" the run has ended."""
        if self.ended:
            return []
        out = self._drain()
        if not _final(out) and self.process.pid is not None and not self.process.is_alive():
            out += self._drain(timeout=0.5)  # what the child sent just before it exited
            if not _final(out):
                out.append(("failed", f"the training process stopped unexpectedly (exit code "
                                      f"{self.process.exitcode}); the log folder has the details"))
        if _final(out):
            self.ended = True
            self.process.join(5)
        return out

    def _drain(self, timeout: float | None = None) -> list[tuple]:
        out = []
        try:
            if timeout:
                out.append(self.events.get(timeout=timeout))
            while True:
                out.append(self.events.get_nowait())
        except queue.Empty:
            return out

    def kill(self) -> None:
        """Stop the child at once (the app is closing and cannot wait for the batch to end)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.ended = True
