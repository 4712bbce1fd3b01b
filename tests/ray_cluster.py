"""A throwaway Ray cluster on this machine for the tests and benchmarks/bench_ray.py: a head and
more nodes, each its own `ray start --block` (in its own process group, so stopping it stops
every process it started, and nothing else), on free ports, in a private temp dir."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is absent (pip install 'photo_sorter[cluster]')"
    return None


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class LocalCluster:
    """Ray nodes on 127.0.0.1 with `cpus` CPUs each (add_node: the first is the head). A node's
    `prefix` (e.g. setpriv ...) runs before its `ray start`; every node's processes import
    photo_sorter (and the tests' modules, for functions a test runs there) from this checkout
    and carry RAY_TEST_CLUSTER=<its temp dir> in their environment (to find them in /proc)."""

    def __init__(self, cpus: int = 1, object_store_mb: int = 150):
        self.cpus, self.object_store = cpus, object_store_mb << 20
        self.dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # unix socket paths stay short
        self.env = {**os.environ, "RAY_TEST_CLUSTER": self.dir, "TF_CPP_MIN_LOG_LEVEL": "3",
                    "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "RAY_USAGE_STATS_ENABLED": "0"}
        self.address: str | None = None
        self.client_address: str | None = None
        self._nodes: list[subprocess.Popen] = []

    def add_node(self, prefix: tuple[str, ...] = ()) -> None:
        ports = _free_ports(8)
        ray = [str(Path(sys.executable).parent / "ray"), "start", "--block", "--disable-usage-stats",
               f"--num-cpus={self.cpus}", f"--object-store-memory={self.object_store}",
               "--node-ip-address=127.0.0.1", f"--node-manager-port={ports[1]}",
               f"--object-manager-port={ports[2]}", f"--dashboard-agent-listen-port={ports[3]}",
               f"--dashboard-agent-grpc-port={ports[4]}", f"--metrics-export-port={ports[5]}",
               f"--runtime-env-agent-port={ports[6]}", "--min-worker-port=0", "--max-worker-port=0"]  # any free
        if self.address is None:
            self.address = f"127.0.0.1:{ports[0]}"
            self.client_address = f"ray://127.0.0.1:{ports[7]}"  # Ray Client's
            ray += ["--head", f"--port={ports[0]}", "--include-dashboard=false",
                    f"--ray-client-server-port={ports[7]}", f"--temp-dir={self.dir}"]
        else:
            ray.append(f"--address={self.address}")
        with open(Path(self.dir) / f"node{len(self._nodes)}.log", "wb") as log:
            self._nodes.append(subprocess.Popen([*prefix, *ray], env=self.env, cwd=self.dir, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True))

    def wait(self, nodes: int, timeout: float = 120) -> None:
        """Until `nodes` nodes are alive."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self._nodes:
                if node.poll() is not None:
                    raise RuntimeError(f"a ray node exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ray cluster did not start: {self.log_tail()}")
            try:
                if len(self.node_table()) >= nodes:
                    return
            except ConnectionError:  # the head is not up yet
                pass
            time.sleep(0.5)

    def node_table(self) -> list[dict]:
        """The alive nodes as ray.nodes() gives them, the head first (asked from a short
        connection of this process)."""
        import ray

        ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        try:
            alive = [n for n in ray.nodes() if n["Alive"]]
        finally:
            ray.shutdown()
        return sorted(alive, key=lambda n: "node:__internal_head__" not in n["Resources"])

    def log_tail(self) -> str:
        return " | ".join(p.read_text(errors="replace")[-400:] for p in sorted(Path(self.dir).glob("node*.log")))

    def worker_pids(self, running: str) -> list[int]:
        """This cluster's worker processes that are running a task or actor method named `running`
        now (Ray titles them ray::NAME while they do)."""
        mark = f"RAY_TEST_CLUSTER={self.dir}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if not proc.name.isdigit() or not (proc / "cmdline").read_bytes().startswith(f"ray::{running}".encode()):
                    continue
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
        return found

    def stop(self) -> None:
        """Stop every node: SIGTERM to each `ray start --block` group (it stops what it started),
        SIGKILL to what is left of the groups after a few seconds."""
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while any(node.poll() is None for node in self._nodes) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal(signal.SIGKILL)
        for node in self._nodes:
            node.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _signal(self, sig: int) -> None:
        for node in self._nodes:
            try:
                os.killpg(node.pid, sig)
            except ProcessLookupError:
                pass

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
