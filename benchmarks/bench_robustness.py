"""Attribute model under real-photo conditions: the validation partition through detect + align.

    python benchmarks/bench_robustness.py [--celeba ../shared/celeba] [--model M.keras]
        [--limit N] [--conditions original grayscale ...] [--fill edge] [--out results.json]

Conditions (photo_sorter.data.CONDITIONS), each applied to the CelebA image before detection:
original; grayscale; close-up (cropped to the face box + 10 %); small face (reduced so the face
box is ~40 px wide); jpeg q20; edge (all context left of the face box + 10 % cut off). A face
the detector misses counts as wrong on every attribute. Prints, per condition, mean accuracy,
mean AUC, tag precision (mean over attributes that showed tags), Male / Smiling / Eyeglasses
accuracy and the number of images without a face, as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    from photo_sorter import celeba, data, evaluation
    from photo_sorter.model import AttributeModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "celeba"))
    ap.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    ap.add_argument("--partition", default="val")
    ap.add_argument("--limit", type=int, help="first N images only (quick look)")
    ap.add_argument("--conditions", nargs="+", default=list(data.CONDITIONS), choices=list(data.CONDITIONS))
    ap.add_argument("--fill", choices=["black", "edge", "reflect"], help="aligner fill (default: align.FILL)")
    ap.add_argument("--out", help="also write the JSON here (e.g. models/<name>.results/robustness.json)")
    args = ap.parse_args(argv)

    model = AttributeModel.load(args.model)
    subset = celeba.load(args.celeba).partition(args.partition).select(model.attributes)
    if args.limit:
        subset = subset.subset(slice(0, args.limit))
    results = {}
    for condition in args.conditions:
        start = time.time()
        r = evaluation.evaluate_model(model, subset, pipeline=True, condition=condition, fill=args.fill)
        per = r["per_attribute"]
        results[condition] = {
            "mean_accuracy": r["mean_accuracy"], "mean_auc": r["mean_auc"],
            "mean_precision": r["mean_precision"], "mean_precision_reliable": r["mean_precision_reliable"],
            **{a: per[a]["accuracy"] for a in ("Male", "Smiling", "Eyeglasses") if a in per},
            "n_images": r["n_images"], "n_no_face": r["n_no_face"], "seconds": round(time.time() - start, 1)}
        print(json.dumps({condition: results[condition]}), flush=True)
    base = results.get("original")
    if base:
        for r in results.values():
            r["accuracy_drop_points"] = round(100 * (base["mean_accuracy"] - r["mean_accuracy"]), 2)
    argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    out = {"command": f"python benchmarks/bench_robustness.py {argv_text}".strip(),
           "model": str(model.path.name), "partition": args.partition, "fill": args.fill or "default",
           "conditions": results}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
