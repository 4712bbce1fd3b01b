"""Scan speed over a Ray cluster beside the plain scan, on bench_scan.py's generated 12 MP library.

    python benchmarks/bench_ray.py                  # 12 photos of 4000x3000: plain, 1 node, 2 nodes
    python benchmarks/bench_ray.py --photos 24 --cpus 2

Each local cluster (tests/ray_cluster.py: nodes on this machine, --cpus CPUs each) is started
fresh; a fresh driver process connects and scans the library twice into new libraries: the first
scan includes the cluster's start-up work (worker processes importing TensorFlow and MTCNN, the
model's actor loading it), the second is the steady state that photos/s is given for. The plain
scan is bench_scan.run_ours (its usable-core threads, timed after warm-up). Recall is
bench_scan's, so a faster figure is not bought with faces unseen. On one machine the nodes share
its cores: more local nodes cannot be faster than the plain scan, only show the overhead. The
last line printed is the JSON of all figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests")]

import bench_scan  # noqa: E402
import ray_cluster  # noqa: E402


def run_ray(folder: str, db: str, address: str) -> dict:
    """In a fresh process: connect, scan twice (cold, then warm) into new libraries."""
    from photo_sorter import scan
    from photo_sorter.cluster import Cluster
    from photo_sorter.store import open_engine

    seconds = []
    with Cluster(address) as cluster:
        for run in ("cold", "warm"):
            engine = open_engine(f"{db}.{run}")
            start = time.perf_counter()
            summary = scan.scan(engine, [folder], cluster=cluster)
            seconds.append(time.perf_counter() - start)
            engine.dispose()
    return {"cold_seconds": round(seconds[0], 2), "seconds": round(seconds[1], 2),
            "photos": summary["photos_seen"], "errors": summary["errors"], "workers": summary["workers"],
            "device": summary["device"], "db": f"{db}.warm"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench_scan.add_library_options(parser, photos=12)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs of each local node (default 1)")
    parser.add_argument("--nodes", default="1,2", help="cluster sizes to run (default 1,2)")
    args = parser.parse_args()
    if ray_cluster.missing():
        print(ray_cluster.missing(), file=sys.stderr)
        return 2
    if not bench_scan.synthetic_library.CELEBA.is_dir():
        print(f"CelebA images not found at {bench_scan.synthetic_library.CELEBA}", file=sys.stderr)
        return 2
    library, truth = bench_scan.generated_library(args)
    results = {"photos": args.photos, "size": args.size, "cpus_per_node": args.cpus, "load_before": bench_scan._load()}
    with tempfile.TemporaryDirectory() as tmp:
        plain = bench_scan.in_fresh_process(bench_scan.run_ours, str(library), f"{tmp}/plain.db", None, None)
        plain.update(bench_scan.recall(truth, bench_scan.stored_boxes(f"{tmp}/plain.db")))
        results["plain"] = {"photos_per_s": round(plain["photos"] / plain["seconds"], 3),
                            **{k: plain[k] for k in ("seconds", "workers", "recall", "faces_found")}}
        for nodes in map(int, args.nodes.split(",")):
            with ray_cluster.LocalCluster(cpus=args.cpus) as local:
                start = time.perf_counter()
                for _ in range(nodes):
                    local.add_node()
                local.wait(nodes)
                up = time.perf_counter() - start
                got = bench_scan.in_fresh_process(run_ray, str(library), f"{tmp}/ray{nodes}.db", local.address)
            got.update(bench_scan.recall(truth, bench_scan.stored_boxes(got.pop("db"))))
            results[f"ray_{nodes}_node"] = {
                "photos_per_s": round(got["photos"] / got["seconds"], 3), "cluster_start_seconds": round(up, 1),
                **{k: got[k] for k in ("seconds", "cold_seconds", "workers", "errors", "recall", "faces_found",
                                       "device")}}
            results[f"load_after_{nodes}_node"] = bench_scan._load()
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
