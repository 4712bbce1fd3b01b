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
from dataclasses import fields
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FLOORS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def main(argv=None) -> int:
    from photo_sorter import celeba, evaluation, training
    from photo_sorter.model import AttributeModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "celeba"))
    ap.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    model = AttributeModel.load(args.model)
    known = {f.name for f in fields(training.TrainConfig)}
    config = training.TrainConfig(**{k: v for k, v in model.card["training"].items() if k in known})
    config.celeba = args.celeba
    data = celeba.load(args.celeba).select(model.attributes)
    (_, (frames, rows, labels), _), _ = training._datasets(config, data, log=lambda *_: None)
    probs = model.predict(np.asarray(frames[rows]))
    measured = {}
    for floor in FLOORS:
        r = evaluation.cross_fitted(probs, labels, model.attributes, config.seed, floor)
        measured[str(floor)] = {"mean_accuracy": r["mean_accuracy"], "mean_precision": r["mean_precision"]}
        print(json.dumps({floor: measured[str(floor)]}), flush=True)
    rows_md = ["| precision floor | mean accuracy | mean tag precision |", "|---|---|---|"]
    rows_md += [f"| {f} | {100 * m['mean_accuracy']:.2f} | {100 * m['mean_precision']:.1f} |" for f, m in measured.items()]
    text = (f"Cross-fitted on the selection slice ({len(labels):,} faces; `python benchmarks/bench_thresholds.py`):\n\n"
            + "\n".join(rows_md) + f"\n\nThis model's thresholds use floor {config.precision_floor}.")
    out = {"title": "Precision floor of the thresholds", "text": text, "measured": measured}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
