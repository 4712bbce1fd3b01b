"""Purity of attribute clusters on real CelebA (validation partition), on the ground-truth labels
of the clustered attributes.

The faces' predicted probabilities over the clustering attributes (the article's ten by default)
are clustered with clusters.fit, as the app does. Purity of one attribute = share of faces whose
label equals the majority label of their cluster; reported per attribute and as the mean. Baselines:
one single cluster (purity = the majority rate) and random clusters of the same sizes. Also the
purity of the full 10-attribute label pattern. Prints its figures as the last line (JSON); skips
without ../shared.

    python benchmarks/bench_cluster_purity.py [--k auto|N ...] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_best_smiling import CELEBA, load_val_predictions  # noqa: E402

from photo_sorter.attributes import CLUSTER_ATTRIBUTES  # noqa: E402


def purity(labels: np.ndarray, assignment: np.ndarray) -> float:
    """Share of rows whose label (any hashable row value) is their cluster's majority label."""
    hits = 0
    for c in np.unique(assignment):
        _, counts = np.unique(labels[assignment == c], axis=0, return_counts=True)
        hits += counts.max()
    return hits / len(labels)


def scores(labels: np.ndarray, assignment: np.ndarray, attributes: list[str]) -> dict:
    per = {a: round(purity(labels[:, j], assignment), 4) for j, a in enumerate(attributes)}
    return {"mean_purity": round(float(np.mean(list(per.values()))), 4),
            "pattern_purity": round(purity(labels, assignment), 4), "per_attribute": per}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", nargs="+", default=["auto", "4", "8"])
    parser.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheets", help="also render the eigenface sheets of the first k here")
    args = parser.parse_args()
    loaded = load_val_predictions(args.model, list(CLUSTER_ATTRIBUTES))
    if loaded is None:
        print(json.dumps({"skipped": f"{CELEBA} is not available"}))
        return 0
    from photo_sorter import eigenfaces
    from photo_sorter.clusters import N_COMPONENTS, cluster_name, fit, parse_k
    from photo_sorter.outputs import Outputs

    data, probs, model = loaded
    labels = data.labels.astype(int)
    rng = np.random.default_rng(args.seed)
    runs = {}
    for k_text in args.k:
        result = fit(probs.astype(np.float64), parse_k(k_text), args.seed)
        shuffled = rng.permutation(result["labels"])
        runs[k_text] = {"k": result["k"],
                        "silhouette": round(result["silhouette"], 4) if result["silhouette"] else None,
                        **scores(labels, result["labels"], data.attributes),
                        "random_same_sizes": scores(labels, shuffled, data.attributes)["mean_purity"]}
    # Eigenfaces of all faces at the stored crop size (half the aligned frame), timed.
    crops = np.stack([np.asarray(Image.open(p).convert("RGB").resize((89, 109), Image.Resampling.BILINEAR))
                      for p in data.paths])
    start = time.perf_counter()
    eigenfaces.compute(crops, N_COMPONENTS, seed=args.seed)
    eigen_seconds = time.perf_counter() - start
    if args.sheets:
        first = fit(probs.astype(np.float64), parse_k(args.k[0]), args.seed)
        library_mean = dict(zip(data.attributes, probs.mean(axis=0).tolist()))
        for c in range(first["k"]):
            idx = np.flatnonzero(first["labels"] == c)
            idx = idx[np.argsort(first["distances"][idx])]
            mean = dict(zip(data.attributes, probs[idx].mean(axis=0).tolist()))
            sheet = eigenfaces.render_sheet(cluster_name(mean, library_mean), crops[idx],
                                            eigenfaces.compute(crops[idx], N_COMPONENTS, typical_index=0),
                                            mean, library_mean)
            Outputs().write(Path(args.sheets) / f"celeba_val_cluster{c + 1}.png", sheet, record=True)
    single = scores(labels, np.zeros(len(labels), int), data.attributes)
    summary = {
        "model": model.name, "trained": "metrics" in model.card, "faces": len(labels),
        "attributes": data.attributes, "single_cluster_mean_purity": single["mean_purity"],
        "eigenfaces_seconds": round(eigen_seconds, 2),
        "runs": {k: {key: v for key, v in r.items() if key != "per_attribute"} for k, r in runs.items()},
    }
    for k, r in runs.items():
        print(f"k={k}: " + ", ".join(f"{a} {p:.2f}" for a, p in r["per_attribute"].items()), file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
