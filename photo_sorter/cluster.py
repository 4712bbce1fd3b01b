"""A scan over a Ray cluster (the optional [cluster] extra; nothing here imports Ray until used).

The scan itself runs here, in the driver: it walks the roots, reads and hashes each file once,
decides what needs analysing and stores every result through its own code (scan.py), under the
library's lock, with its progress, cancel and resume. What the cluster does is the heavy part:
each photo's decode, detection and alignment (scan._analyse, given the bytes the driver read) is
a Ray task taking one CPU anywhere in the cluster, and the attribute model runs in Ray actors (one
per GPU when the nodes have GPUs, else one on a CPU) that get each batch of aligned faces.

Photos must be readable at the same path on every node (a RAW's decoder and sidecars read the
file by its path): check_paths() asks every node for a sample before anything is written. The
model travels to the actors as bytes, so it need not be on the nodes; photo_sorter and its
dependencies must be installed on every node.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from photo_sorter.workers import WorkerCrash

INSTALL = "a scan over a Ray cluster needs Ray: pip install 'photo_sorter[cluster]'"
RETRIES = 3          # times a task runs again when its worker process died (killed, out of memory, node lost)
PATH_SAMPLE = 5      # random files each node reads, besides the roots, the first and the last
WORKER_BYTES = 1 << 30  # what a task's worker holds (TensorFlow + MTCNN ~860 MB): Ray runs no more
# at once on a node than its memory takes (not one per CPU of a many-core node with little memory)
CHECK_SECONDS = 120  # for every node to answer the path check (a node may start a worker first)
# Each task takes one CPU, so its TensorFlow runs ops one at a time (not on every core of the
# node in every worker); the model's actors use the node's cores.
_ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
_ALL_THREADS = {"TF_NUM_INTRAOP_THREADS": "0", "TF_NUM_INTEROP_THREADS": "0"}


class ClusterError(RuntimeError):
    """The cluster cannot be reached or used; one readable line."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL) from None
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unreadable(paths: Sequence[str]) -> tuple[str, str] | None:
    """The first of `paths` this process cannot read (a folder: list), and why; run on each node."""
    for path in paths:
        try:
            if os.path.isdir(path):
                with os.scandir(path) as entries:
                    next(entries, None)
            else:
                with open(path, "rb") as file:
                    file.read(1)
        except OSError as exc:
            return path, exc.strerror or type(exc).__name__
    return None


def _reachable(address: str) -> None:
    """Refuse an address that is not one, or a head that does not answer at once (Ray itself
    keeps trying for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"not a Ray cluster's address: {address!r} (give HOST:PORT, ray://HOST:PORT or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: "
                           f"{exc.strerror or type(exc).__name__}") from None


class _Predictor:
    """The attribute model in an actor, loaded from the model file's bytes and card."""

    def __init__(self, name: str, data: bytes, card: dict, sha256: str):
        from photo_sorter.model import AttributeModel, ModelError, card_path
        from photo_sorter.workers import share_gpus

        share_gpus()
        folder = Path(tempfile.mkdtemp(prefix="photo_sorter_model"))
        try:
            path = folder / name
            path.write_bytes(data)
            card_path(path).write_text(json.dumps(card))
            self.model = AttributeModel.load(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if self.model.sha256 != sha256:
            raise ModelError(f"model {name} changed on its way to the cluster")

    def predict(self, frames: np.ndarray) -> np.ndarray:
        return self.model.predict(frames)


class _Task:
    """A submitted analysis: done() without waiting, as workers.Task."""

    def __init__(self, ref):
        self.ref = ref

    def done(self) -> bool:
        return bool(_ray().wait([self.ref], timeout=0, fetch_local=False)[0])


class RayWorkers:
    """workers.Workers' interface over Ray tasks: `fn(*args)` on one CPU of the cluster each.
    Ray runs a task again when its worker process dies (RETRIES times); one that still dies
    raises WorkerCrash, failing only its photo, as a worker process does in a plain scan."""

    def __init__(self, fn: Callable, on_first: Callable[[], object] = lambda: None):
        ray = _ray()
        self._on_first = on_first
        self._remote = ray.remote(fn).options(num_cpus=1, memory=WORKER_BYTES, max_retries=RETRIES)
        self._crashes = (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError,
                         ray.exceptions.NodeDiedError)
        self._pending: set = set()

    def __enter__(self) -> RayWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, *args) -> _Task:
        self._on_first()
        self._on_first = lambda: None
        task = _Task(self._remote.remote(*args))
        self._pending.add(task.ref)
        return task

    def result(self, task: _Task):
        self._pending.discard(task.ref)
        try:
            return _ray().get(task.ref)
        except self._crashes as exc:
            raise WorkerCrash(f"the Ray worker analysing it died ({type(exc).__name__}, "
                              f"{RETRIES + 1} times)") from None

    def close(self) -> None:
        """Cancel the tasks whose results were not taken (a cancelled or failed scan)."""
        ray = _ray()
        for ref in self._pending:
            ray.cancel(ref)
        self._pending.clear()


class Cluster:
    """A connection to a Ray cluster for scans (scan.scan(..., cluster=...)): `address` is
    host:port of its head, ray://host:port, or 'auto' (the cluster this machine belongs to).
    Close it (or use `with`) to disconnect; its model actors end with it."""

    def __init__(self, address: str = "auto"):
        ray = _ray()
        self.address = address
        _reachable(address)
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False,
                     runtime_env={"env_vars": _ONE_THREAD})
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
            why = ("no Ray cluster runs on this machine (start one with `ray start --head`, or give the "
                   "head's HOST:PORT)" if address == "auto" and isinstance(exc, ConnectionError)
                   else _first_line(exc))
            raise ClusterError(f"cannot connect to the Ray cluster at {address}: {why}") from None
        self._actors: dict[str, list] = {}  # model hash -> its actors
        self.resources = ray.cluster_resources()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._actors.clear()
        _ray().shutdown()

    def nodes(self) -> list[dict]:
        return [n for n in _ray().nodes() if n["Alive"]]

    def cpus(self) -> int:
        """Photos analysed at once: the cluster's CPUs."""
        return max(1, int(self.resources.get("CPU", 1)))

    def describe(self) -> str:
        """For the scan summary's `device`."""
        gpus = int(self.resources.get("GPU", 0))
        return (f"Ray cluster at {self.address}: {len(self.nodes())} node(s), {self.cpus()} CPU(s), "
                f"model on {f'{gpus} GPU(s)' if gpus else 'CPU'}")

    def workers(self, fn: Callable, model) -> RayWorkers:
        """Tasks running `fn`; the model's actors start with the first, loading it meanwhile."""
        return RayWorkers(fn, on_first=lambda: self._actors_of(model))

    def check_paths(self, roots: Sequence, files: Sequence) -> str | None:
        """Why the photos cannot be scanned on this cluster, or None: every node reads the roots
        and a sample of the files (the first, the last and PATH_SAMPLE at random)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from photo_sorter.scan import display_path

        ray = _ray()
        files = [os.fspath(f) for f in files]
        sample = [os.fspath(r) for r in roots] + files[:1] + files[-1:] + random.sample(
            files[1:-1], min(PATH_SAMPLE, max(0, len(files) - 2)))
        check = ray.remote(unreadable)
        asked = {check.options(num_cpus=0, max_retries=RETRIES, scheduling_strategy=NodeAffinitySchedulingStrategy(
                     node["NodeID"], soft=False)).remote(sample): node for node in self.nodes()}
        answered, _ = ray.wait(list(asked), num_returns=len(asked), timeout=CHECK_SECONDS)
        problems = []
        for ref, node in asked.items():
            where = f"node {node['NodeName']} ({node['NodeID'][:8]})"
            if ref not in answered:
                problems.append(f"{where} did not answer within {CHECK_SECONDS} s")
                continue
            try:
                found = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - e.g. photo_sorter not installed there
                problems.append(f"{where} cannot run the check: {_first_line(exc)}")
                continue
            if found is not None:
                problems.append(f"{where} cannot read {display_path(found[0])} ({found[1]})")
        if problems:
            return ("the photos must be readable at the same path on every node: " + "; ".join(problems)
                    + " (mount them at the same path everywhere)")
        return None

    def predict(self, model, frames: list[np.ndarray]) -> np.ndarray:
        """Probabilities of aligned frames (scan._predict's contract), split over the model's
        actors; actors that died (a node lost) are started again once."""
        ray = _ray()
        for attempt in range(2):
            actors = self._actors_of(model)
            parts = [a.predict.remote(chunk)
                     for a, chunk in zip(actors, np.array_split(np.stack(frames), len(actors))) if len(chunk)]
            try:
                return np.concatenate(ray.get(parts))
            except ray.exceptions.RayActorError:
                del self._actors[model.sha256]
                if attempt:
                    raise

    def _actors_of(self, model) -> list:
        """The model's actors, started (in the background: Ray queues calls until they run) if needed."""
        if model.sha256 in self._actors:
            return self._actors[model.sha256]
        ray = _ray()
        gpus = int(self.resources.get("GPU", 0))
        actor = ray.remote(_Predictor).options(runtime_env={"env_vars": _ALL_THREADS}, memory=WORKER_BYTES,
                                               **({"num_gpus": 1} if gpus else {"num_cpus": 0}))
        data = ray.put(Path(model.path).read_bytes())
        self._actors[model.sha256] = [actor.remote(Path(model.path).name, data, model.card, model.sha256)
                                      for _ in range(max(1, gpus))]
        return self._actors[model.sha256]
