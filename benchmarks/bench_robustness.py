"""Attribute model under real-photo conditions: the validation partition through detect + align.

    python benchmarks/bench_robustness.py [--celeba ../shared/celeba] [--model M.keras]
        [--limit N] [--conditions original grayscale ...] [--fill edge] [--out results.json]

Conditions (photo_sorter.data.CONDITIONS), each applied to the CelebA image before detection:
original; grayscale; close-up (cropped to the face box + 10 %); small face (reduced so the face
box is ~40 px wide); jpeg q20; edge (all context left of the face box + 10 % cut off). A face
the detector misses counts as wrong on every attribute in the accuracies; it shows no tag and has
no score, so tag precision and AUC are over the faces found. Prints, per condition, mean
accuracy (and on found faces only), mean AUC, tag precision (mean over attributes that showed
tags), Male / Smiling / Eyeglasses accuracy and the number of images without a face, as JSON.
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

from report import emit  # noqa: E402 - benchmarks/ is on the path when run as a script


def main(argv=None) -> int:
    from photo_sorter import align, celeba, data, evaluation
    from photo_sorter.model import AttributeModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "celeba"))
    ap.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    ap.add_argument("--partition", default="val")
    ap.add_argument("--limit", type=int, help="first N images only (quick look)")
    ap.add_argument("--conditions", nargs="+", default=list(data.CONDITIONS), choices=list(data.CONDITIONS))
    ap.add_argument("--fill", choices=align.FILLS, help="aligner fill (default: align.FILL)")
    ap.add_argument("--out", help="also write the JSON here (e.g. models/<name>.results/robustness.json)")
    ap.add_argument("--compare-fills", action="store_true",
                    help="measure every aligner fill under the given conditions instead (how align.FILL was chosen)")
    args = ap.parse_args(argv)
    model = AttributeModel.load(args.model)
    subset = celeba.load(args.celeba).partition(args.partition).select(model.attributes)
    if args.limit:
        subset = subset.subset(slice(0, args.limit))
    if args.compare_fills:
        return _compare_fills(args, model, subset)
    results = {}
    for condition in args.conditions:
        start = time.time()
        r = evaluation.evaluate_model(model, subset, pipeline=True, condition=condition, fill=args.fill)
        per = r["per_attribute"]
        results[condition] = {
            "mean_accuracy": r["mean_accuracy"], "mean_accuracy_found": r["mean_accuracy_found"], "mean_auc": r["mean_auc"],
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
    return emit(out, args.out)


def fill_report(measured: dict, command: str) -> dict:
    """The README section on the fill: {condition/fill: figures} -> title, text (a table)."""
    rows = ["| condition | fill | mean accuracy | mean AUC | Male |", "|---|---|---|---|---|"]
    for key, r in measured.items():
        condition, fill = key.split("/")
        rows.append(f"| {condition} | {fill} | {100 * r['mean_accuracy']:.1f} | {r['mean_auc']:.3f} | "
                    f"{100 * r['Male']:.1f} |")
    closeups = {k.split("/")[1]: r["mean_accuracy"] for k, r in measured.items() if k.startswith("close-up/")}
    best = max(closeups, key=closeups.get) if closeups else None
    text = (f"What fills the parts of the aligned frame that lie outside the photo, measured with the "
            f"previous bundled model (trained without context loss) on validation images: `{command}`.\n\n"
            + "\n".join(rows)
            + (f"\n\nChosen: **{best}** (best close-up accuracy); the aligner and the context-loss "
               "augmentation use it." if best else ""))
    return {"title": "Aligner fill", "text": text, "measured": measured, "chosen": best, "command": command}


def _compare_fills(args, model, subset) -> int:
    from photo_sorter import align, evaluation

    measured = {}
    for condition in args.conditions:
        for fill in align.FILLS:
            r = evaluation.evaluate_model(model, subset, pipeline=True, condition=condition, fill=fill)
            measured[f"{condition}/{fill}"] = {"mean_accuracy": r["mean_accuracy"], "mean_auc": r["mean_auc"],
                                               "Male": r["per_attribute"]["Male"]["accuracy"], "n_no_face": r["n_no_face"]}
            print(json.dumps({f"{condition}/{fill}": measured[f"{condition}/{fill}"]}), flush=True)
    return emit(fill_report(measured, "python benchmarks/bench_robustness.py " + " ".join(sys.argv[1:])), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
