"""Which precision floor for the thresholds? Tags should be right, and accuracy should stay high.

    python benchmarks/bench_thresholds.py [--celeba ../shared/celeba] [--model M.keras] [--out FILE]

For each floor, thresholds are chosen on one half of the model's selection slice (identity-disjoint
part of the train partition, pipeline frames) and measured on the other half, and the other way
round (cross-fitted): mean accuracy and mean tag precision. The validation partition is not used:
it gives the final figures only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report import emit  # noqa: E402 - benchmarks/ is on the path when run as a script
FLOORS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def main(argv=None) -> int:
    from photo_sorter import evaluation, training
    from photo_sorter.model import AttributeModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "celeba"))
    ap.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    model = AttributeModel.load(args.model)
    frames, labels = training.selection_frames(model.card, args.celeba)
    probs = model.predict(frames)
    seed, floor_used = model.card["training"]["seed"], model.card["training"]["precision_floor"]
    measured = {}
    for floor in FLOORS:
        r = evaluation.cross_fitted(probs, labels, model.attributes, seed, floor)
        measured[str(floor)] = {"mean_accuracy": r["mean_accuracy"], "mean_precision": r["mean_precision"]}
        print(json.dumps({floor: measured[str(floor)]}), flush=True)
    rows_md = ["| precision floor | mean accuracy | mean tag precision |", "|---|---|---|"]
    rows_md += [f"| {f} | {100 * m['mean_accuracy']:.2f} | {100 * m['mean_precision']:.1f} |" for f, m in measured.items()]
    text = (f"Cross-fitted on the selection slice ({len(labels):,} faces; `python benchmarks/bench_thresholds.py`):\n\n"
            + "\n".join(rows_md) + f"\n\nThis model's thresholds use floor {floor_used}.")
    out = {"title": "Precision floor of the thresholds", "text": text, "measured": measured}
    return emit(out, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
