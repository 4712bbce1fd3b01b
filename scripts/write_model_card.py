"""Write models/README.md (the human model card) from the machine-readable card beside the model.

    python scripts/write_model_card.py models/celeba_mobilenetv2.keras [--notes NOTES.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from photo_sorter import evaluation


def render(card: dict, notes: str = "") -> str:
    t = card["training"]
    val = card["metrics"]["validation"]
    honest = card["metrics"]["validation_cross_fitted"]
    half = card["metrics"]["validation_threshold_0.5"]
    rows = evaluation.comparison_rows(val)
    for row in rows:
        row["threshold"] = card["thresholds"][row["attribute"]]
    lines = [
        f"# {card['name']}: CelebA face-attribute model (MobileNetV2)",
        "",
        "The attribute model bundled with photo_sorter. It takes the CelebA aligned face frame "
        "(178x218 uint8 RGB, as produced by the scan's alignment) and returns one probability per "
        f"attribute for {len(card['attributes'])} attributes (all of CelebA's 40 but "
        "`Attractive`, which is subjective and not something a photo organiser should rank people by).",
        "",
        "## Figures (validation partition, 780 real CelebA images)",
        "",
        "| | mean accuracy | mean balanced accuracy | Smiling |",
        "|---|---|---|---|",
        f"| thresholds 0.5 | {100 * half['mean_accuracy']:.2f} % | {100 * half['mean_balanced_accuracy']:.2f} % | {100 * half['per_attribute']['Smiling']['accuracy']:.1f} % |",
        f"| calibrated thresholds, cross-fitted (honest) | {100 * honest['mean_accuracy']:.2f} % | {100 * honest['mean_balanced_accuracy']:.2f} % | {100 * honest['per_attribute']['Smiling']['accuracy']:.1f} % |",
        f"| calibrated thresholds, in-sample (optimistic) | {100 * val['mean_accuracy']:.2f} % | {100 * val['mean_balanced_accuracy']:.2f} % | {100 * val['per_attribute']['Smiling']['accuracy']:.1f} % |",
        "",
        "Targets on the (held-out) test partition: mean accuracy >= 90.0 %, mean balanced accuracy "
        ">= 83 %, Smiling >= 92 %. The validation figures above are the proxy; the cross-fitted row "
        "calibrates thresholds on one half of the validation images and measures on the other.",
        "",
        "Per attribute (validation, calibrated thresholds, in-sample), beside the published test "
        "figures (LNet+ANet, Liu et al. 2015; the Keras MobileNetV2 article; always answering the "
        "majority class on the test partition):",
        "",
        evaluation.markdown_table(rows),
        "",
        "## Training",
        "",
        f"- Command: `{card['training_command']}`",
        f"- Data: {card['data']}; {t['train_images']:,} training images, {t['val_images']:,} validation images.",
        f"- Start: `{t['init']}`; input {t['image_size']} px, alpha {t['alpha']}, batch {t['batch_size']}, "
        f"loss {t['loss']}, {t['optimizer']} (head {t['learning_rate']}, fine-tune {t['finetune_learning_rate']}), "
        f"augmentation {t['augment']}, seed {t['seed']}.",
        f"- Epochs run: {t['epochs_run']} ({t['head_epochs']} head-only); time {t['seconds'] / 60:.0f} min on {t['machine']}.",
        "",
        notes.strip(),
        "",
        "## Licence",
        "",
        "Trained on CelebA (Liu et al., ICCV 2015), which is released for **non-commercial research "
        "purposes only**; the model inherits that restriction. The ImageNet start comes from Google's "
        "MobileNetV2 1.0/224 quantized model (Apache-2.0).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("model", type=Path)
    parser.add_argument("--notes", type=Path, help="markdown to include (comparisons, caveats)")
    args = parser.parse_args()
    card = json.loads(args.model.with_suffix(".json").read_text())
    notes = args.notes.read_text() if args.notes else ""
    (args.model.parent / "README.md").write_text(render(card, notes))


if __name__ == "__main__":
    main()
