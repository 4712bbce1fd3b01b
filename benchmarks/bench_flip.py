"""Test-time flip averaging: is averaging a face and its mirror image worth twice the model time?

    python benchmarks/bench_flip.py [--celeba ../shared/celeba] [--model M.keras] [--out FILE]

Measured on the model's selection slice (identity-disjoint part of the train partition, pipeline
frames), as every model-selection choice is: mean accuracy at the card's thresholds and mean AUC,
with and without averaging, and the model time per face. The rule (issue #10): keep it only if it
adds at least 0.2 points of mean accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report import emit  # noqa: E402 - benchmarks/ is on the path when run as a script
KEEP_IF_POINTS = 0.2


def main(argv=None) -> int:
    from photo_sorter import evaluation, training
    from photo_sorter.model import AttributeModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "celeba"))
    ap.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    ap.add_argument("--out", help="also write the result (title + text + figures) as JSON here")
    args = ap.parse_args(argv)

    model = AttributeModel.load(args.model)
    x, labels = training.selection_frames(model.card, args.celeba)
    start = time.time()
    plain = model.predict(x)
    t_plain = time.time() - start
    start = time.time()
    flipped = model.predict(x[:, :, ::-1])
    t_flip = time.time() - start
    results = {}
    for name, probs in (("plain", plain), ("flip-averaged", (plain + flipped) / 2)):
        r = evaluation.evaluate_predictions(probs, labels, model.attributes, model.thresholds)
        results[name] = {"mean_accuracy": r["mean_accuracy"], "mean_auc": r["mean_auc"]}
    gain = 100 * (results["flip-averaged"]["mean_accuracy"] - results["plain"]["mean_accuracy"])
    keep = gain >= KEEP_IF_POINTS
    text = (f"On the selection slice ({len(x):,} faces): mean accuracy {100 * results['plain']['mean_accuracy']:.2f} % "
            f"plain, {100 * results['flip-averaged']['mean_accuracy']:.2f} % flip-averaged ({gain:+.2f} points); "
            f"mean AUC {results['plain']['mean_auc']:.4f} vs {results['flip-averaged']['mean_auc']:.4f}; model time "
            f"{1000 * t_plain / len(x):.1f} vs {1000 * (t_plain + t_flip) / len(x):.1f} ms a face. "
            + ("Kept: the gain is at least 0.2 points." if keep else
               "Not kept: the gain is under the 0.2 points that would pay for twice the model time."))
    out = {"title": "Test-time flip averaging", "text": text, "results": results, "gain_points": gain, "kept": keep,
           "command": "python benchmarks/bench_flip.py"}
    return emit(out, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
