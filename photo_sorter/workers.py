"""Workers for the scan's per-photo work (decode, detect, align): threads or processes.

Threads (the default) share the one TensorFlow and MTCNN of the process: Pillow's decode and
TensorFlow's ops release the GIL, so two threads use two cores for most of the work, with no
start-up cost and no extra memory (benchmarks/README.md). Processes are spawned, not forked
(TensorFlow is not fork-safe); each runs its own TensorFlow and MTCNN (about 0.9 GB and seconds
to start) with the cores shared out among them, and lets a GPU's memory grow so that several fit
on one. What processes buy is isolation: a worker that dies (a decoder crash, the memory killer)
fails only the task it was running: the tasks in flight with it are run again one at a time,
and the one that kills a worker alone raises WorkerCrash; the others carry on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's CPU set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class WorkerCrash(RuntimeError):
    """The worker process running a task died on it (it also died when run alone)."""


def share_gpus() -> None:
    """Let this process's TensorFlow take GPU memory as it needs it instead of all at once, so
    the workers and the process running the model fit on one GPU. Too late once TensorFlow has
    started using the GPU in this process (then it keeps what it took)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            return


def _start_worker(threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    share_gpus()


class Task:
    def __init__(self, args: tuple):
        self.args = args
        self.future: Future | None = None
        self.suspect = False  # in flight when a worker died: run alone to learn whether it did

    def done(self) -> bool:
        """Its result can be taken without waiting."""
        return self.future is not None and self.future.done()


class Workers:
    """`fn(*args)` in `count` worker threads, or processes (started at the first task). Take
    results with result(), in any order; close() (or `with`) ends the workers, dropping tasks
    not started."""

    def __init__(self, fn: Callable, count: int, processes: bool = False):
        self.fn, self.count, self.processes = fn, count, processes
        self._pool: Executor | None = None
        self._tasks: list[Task] = []  # submitted, result not taken yet

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(self, *args) -> Task:
        task = Task(args)
        self._tasks.append(task)
        if not any(t.suspect for t in self._tasks):
            self._start(task)
        return task

    def result(self, task: Task):
        """The task's return value (or exception); WorkerCrash when its worker died on it."""
        while True:
            if task.future is None:
                self._start(task)
            try:
                value = task.future.result()
            except BrokenProcessPool:
                self.close()
                if task.suspect:
                    self._finished(task)
                    raise WorkerCrash("the process analysing it died (a crash or out of memory)") from None
                for t in self._tasks:  # every task not finished with it is run again, alone
                    if not (t.future is not None and t.future.done() and t.future.exception() is None):
                        t.future, t.suspect = None, True
                continue
            except BaseException:
                self._finished(task)
                raise
            self._finished(task)
            return value

    def _start(self, task: Task) -> None:
        if self._pool is None and not self.processes:
            self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="scan-worker")
        elif self._pool is None:
            share_gpus()
            self._pool = ProcessPoolExecutor(
                self.count, mp_context=get_context("spawn"), initializer=_start_worker,
                initargs=(max(1, usable_cores() // self.count),))
        task.future = self._pool.submit(self.fn, *task.args)

    def _finished(self, task: Task) -> None:
        self._tasks.remove(task)
        if not any(t.suspect for t in self._tasks):
            for t in self._tasks:
                if t.future is None:
                    self._start(t)
