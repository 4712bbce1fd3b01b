"""Generate a model's card (MODEL.json) and models/README.md from its committed result files.

    python scripts/write_model_card.py models/celeba_mobilenetv2.keras [--plots] [--check]

The result files live in `models/<name>.results/` (training: history, selection, validation,
validation_threshold_0.5, run; benchmarks: robustness; notes: comparisons, fill). Nothing in the
card or the README is typed by hand. --check regenerates both in memory and exits 1 if the
committed files differ (a hand edit, or results changed without regenerating).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from photo_sorter import evaluation, model_card  # noqa: E402


def generate(model_path: Path) -> dict[Path, str]:
    """{path: text} of the card and the README for this model."""
    results = model_card.read_results(model_card.results_dir(model_path))
    config = results["run"]["config"]
    attributes = results["validation"]["attributes"]
    size = results["run"].get("input_size", config["image_size"])
    card = model_card.build_card(model_path.stem, attributes, size, results)
    card["training_command"] = model_card.command_for(config, model_path)
    return {model_path.with_suffix(".json"): json.dumps(card, indent=2) + "\n",
            model_path.parent / "README.md": model_card.render_readme(card, results)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("model", type=Path)
    parser.add_argument("--check", action="store_true", help="fail if the committed card or README differ")
    parser.add_argument("--plots", metavar="CELEBA", help="also redraw models/plots/ (frequencies from this CelebA folder)")
    args = parser.parse_args(argv)
    try:
        files = generate(args.model)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"write_model_card: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [str(p) for p, text in files.items() if not p.is_file() or p.read_text() != text]
        if stale:
            print("generated from the result files, these differ (edited by hand?): " + ", ".join(stale),
                  file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.write_text(text)
    if args.plots:
        from photo_sorter import celeba

        results = model_card.read_results(model_card.results_dir(args.model))
        train = celeba.load(args.plots).partition("train").select(results["validation"]["attributes"])
        evaluation.plot_all(args.model.parent / "plots", results["validation"], train.frequencies(),
                            results["history"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
