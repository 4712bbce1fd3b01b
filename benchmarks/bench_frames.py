"""Train on pipeline frames or on the original CelebA frames? A short run of each, same images and
settings, both measured on the validation partition through detect + align (what the app sees).

    python benchmarks/bench_frames.py [--celeba ../shared/celeba] [--images 4000] [--epochs 2]
        [--work DIR] [--out FILE]

Prints (and with --out writes) mean accuracy, mean AUC, tag precision and Male accuracy of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from report import emit  # noqa: E402 - benchmarks/ is on the path when run as a script
TFLITE = REPO / "resources" / "weights" / "mobilenet_v2_1.0_224_quant.tflite"


def report(measured: dict, command: str) -> dict:
    """title + text (a table) for the model README from the measured figures."""
    rows = ["| training frames | mean accuracy | mean AUC | tag precision | Male |", "|---|---|---|---|---|"]
    for frames, r in measured.items():
        rows.append(f"| {frames} | {100 * r['mean_accuracy']:.1f} | {r['mean_auc']:.3f} | "
                    f"{100 * r['mean_precision']:.1f} | {100 * r['Male']:.1f} |")
    better = max(measured, key=lambda f: measured[f]["mean_auc"])
    text = (f"Short runs of each (`{command}`), measured on the validation partition through detect + "
            "align:\n\n" + "\n".join(rows) + f"\n\nHigher mean AUC: **{better}** frames.")
    return {"title": "Training frames: pipeline or original", "text": text, "measured": measured,
            "command": command}


def main(argv=None) -> int:
    from photo_sorter import celeba, evaluation
    from photo_sorter.model import AttributeModel
    from photo_sorter.training import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "celeba"))
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--work", default="bench_frames.work")
    ap.add_argument("--from-json", help="format figures measured before (this script's JSON) instead of measuring")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    command = f"python benchmarks/bench_frames.py --images {args.images} --epochs {args.epochs}"
    if args.from_json:
        measured = json.loads(Path(args.from_json).read_text())
    else:
        measured = {}
        for frames in ("pipeline", "original"):
            path = Path(args.work) / frames / "m.keras"
            start = time.time()
            train(TrainConfig(celeba=args.celeba, out=str(path), drop=["Attractive"], image_size=96,
                              init=f"tflite:{TFLITE}", epochs=args.epochs, finetune_learning_rate=0.0002,
                              max_images=args.images, frames=frames, augment="robust"), log=lambda *_: None)
            model = AttributeModel.load(path)
            val = celeba.load(args.celeba).partition("val").select(model.attributes)
            r = evaluation.evaluate_model(model, val, pipeline=True)
            measured[frames] = {"mean_accuracy": r["mean_accuracy"], "mean_auc": r["mean_auc"],
                                "mean_precision": r["mean_precision"], "n_no_face": r["n_no_face"],
                                "Male": r["per_attribute"]["Male"]["accuracy"], "seconds": round(time.time() - start)}
            print(json.dumps({frames: measured[frames]}), flush=True)
    out = report(measured, command)
    return emit(out, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
