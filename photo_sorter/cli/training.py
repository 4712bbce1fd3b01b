"""Headless commands of the model side: train, evaluate, export-model, install-model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from photo_sorter.cli import (
    UserError, add_db_options, check_out_dir, check_out_file, emit, float_arg, int_arg, open_library,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train an attribute model on a CelebA folder")
    p.add_argument("--celeba", required=True, help="CelebA folder (official or Kaggle layout)")
    p.add_argument("--attributes", nargs="+", help="attributes to learn (default: all but --drop)")
    p.add_argument("--drop", nargs="+", default=["Attractive"], help="attributes to leave out (default: Attractive)")
    p.add_argument("--image-size", type=int_arg(32, 4096), default=96)
    p.add_argument("--alpha", type=float_arg(0, 4, above=True), default=1.0)
    p.add_argument("--init", default="none",
                   help="none | imagenet | tflite:PATH | keras:PATH (fine-tune an existing model)")
    p.add_argument("--epochs", type=int_arg(1, 100_000), default=5)
    p.add_argument("--batch-size", type=int_arg(1, 65_536), default=32)
    p.add_argument("--loss", default="bce", choices=["bce", "weighted_bce", "focal", "cosine"])
    p.add_argument("--optimizer", default="adam", choices=["adam", "adadelta"])
    p.add_argument("--learning-rate", type=float_arg(0, 10, above=True), default=1e-3,
                   help="head warm-up (and everything with --init none)")
    p.add_argument("--finetune-learning-rate", type=float_arg(0, 10, above=True), default=1e-4,
                   help="whole network after the warm-up, for pretrained starts")
    p.add_argument("--head-epochs", type=int_arg(0, 100_000), default=1, help="pretrained starts: head-only epochs first")
    p.add_argument("--augment", default="robust", choices=["robust", "article", "light", "none"],
                   help="robust: real-photo degradations + context loss (default)")
    p.add_argument("--frames", default="pipeline", choices=["pipeline", "original"],
                   help="pipeline: CelebA run through the scan's detector and aligner, cached (default)")
    p.add_argument("--frame-cache", help="folder of the pipeline-frame cache (default: user cache folder)")
    p.add_argument("--selection-fraction", type=float_arg(0, 1, above=True), default=0.1,
                   help="share of train identities held out to pick the epoch and thresholds")
    p.add_argument("--precision-floor", type=float_arg(0, 1), default=0.75,
                   help="thresholds: most accurate one whose tags reach this precision")
    p.add_argument("--dropout", type=float_arg(0, 1), default=0.5)
    p.add_argument("--patience", type=int_arg(0, 100_000), default=3, help="early stopping: epochs without a better validation loss")
    p.add_argument("--seed", type=int_arg(0, 2**32 - 1), default=42)
    p.add_argument("--max-images", type=int_arg(1), help="use at most this many training images")
    p.add_argument("--devices", type=_devices_arg, default=1,
                   help="N or all: train on the first N GPUs (MirroredStrategy; --batch-size per device, "
                        "learning rates scaled by N)")
    p.add_argument("--plots", help="folder for PNG plots (curves, frequencies, accuracy vs references)")
    p.add_argument("--out", required=True, help="MODEL.keras (the card is written beside it)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("evaluate", help="per-attribute accuracy of a model on CelebA")
    p.add_argument("--celeba", required=True)
    p.add_argument("--partition", default="val", choices=["train", "val", "test", "all"])
    p.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    p.add_argument("--pipeline", action="store_true",
                   help="run each image through the photo pipeline (detect, align) instead of the frame")
    p.add_argument("--limit", type=int_arg(1), help="evaluate at most this many images")
    p.add_argument("--json", dest="json_out", help="write the result JSON here")
    p.add_argument("--plots", help="folder for PNG plots")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("calibrate", help="choose a model's thresholds again (tags that can be trusted)")
    p.add_argument("--celeba", required=True)
    p.add_argument("--model", required=True, help="MODEL.keras whose card is updated")
    p.add_argument("--partition", default="val", choices=["train", "val"],
                   help="images to choose on (use a slice the model was not trained on)")
    p.add_argument("--precision-floor", type=float_arg(0, 1), default=0.75)
    p.add_argument("--seed", type=int_arg(0, 2**32 - 1), default=42)
    p.set_defaults(func=_calibrate)

    p = subparsers.add_parser("export-model", help="export the attribute model for mobile or web")
    p.add_argument("--format", required=True, choices=["tflite", "savedmodel"])
    p.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_export)

    p = subparsers.add_parser("install-model", help="install a model and make it the library's active one")
    p.add_argument("model", metavar="MODEL.keras", help="the model (its card, MODEL.json, beside it)")
    p.add_argument("--models-dir", help="where installed models live (default: models/ in the user data folder)")
    add_db_options(p)
    p.set_defaults(func=_install)


def _devices_arg(text: str) -> int | str:
    """--devices: a number of devices, or all of them."""
    if text == "all":
        return text
    try:
        return int_arg(1, 4096)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"a number of devices (1 to 4096) or all, not {text[:40]!r}") from None


def _train(args) -> int:
    from photo_sorter import celeba, evaluation
    from photo_sorter.training import TrainConfig, TrainingError, train

    check_out_file(args.out)
    if args.plots:
        check_out_dir(args.plots, "--plots")
    config = TrainConfig(
        celeba=args.celeba, out=args.out, attributes=args.attributes, drop=args.drop or [],
        image_size=args.image_size, alpha=args.alpha, init=args.init, epochs=args.epochs,
        batch_size=args.batch_size, loss=args.loss, optimizer=args.optimizer,
        learning_rate=args.learning_rate, finetune_learning_rate=args.finetune_learning_rate,
        head_epochs=args.head_epochs, augment=args.augment, dropout=args.dropout, patience=args.patience, seed=args.seed,
        max_images=args.max_images, frames=args.frames, frame_cache=args.frame_cache,
        selection_fraction=args.selection_fraction, precision_floor=args.precision_floor, devices=args.devices)
    try:
        card = train(config)
    except (celeba.CelebAError, TrainingError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    report = card["metrics"]["validation"]
    if args.plots:
        data = celeba.load(args.celeba).select(config.attributes, config.drop)
        evaluation.plot_all(Path(args.plots), report, data.partition("train").frequencies(), card["history"])
    if card.get("cancelled"):
        raise UserError("training was cancelled")
    summary = {"model": args.out, **{k: report[k] for k in (
        "mean_accuracy", "mean_auc", "mean_precision", "mean_balanced_accuracy")},
               "unreliable": sorted(card["unreliable"]), "seconds": card["training"]["seconds"],
               "devices": card["training"]["devices"]}
    emit(summary, args.json, evaluation.markdown_table(evaluation.comparison_rows(report))
         + f"\nsaved {args.out}")
    return 0


def _evaluate(args) -> int:
    from photo_sorter import celeba, evaluation
    from photo_sorter.model import AttributeModel, ModelError

    if args.json_out:
        check_out_file(args.json_out, "--json")
    if args.plots:
        check_out_dir(args.plots, "--plots")
    try:
        model = AttributeModel.load(args.model)
        data = celeba.load(args.celeba).partition(args.partition)
        data = data.select([a for a in model.attributes if a in data.attributes])
    except (celeba.CelebAError, ModelError) as exc:
        raise UserError(str(exc)) from None
    if args.limit:
        data = data.subset(slice(0, args.limit))
    if not len(data.names):
        raise UserError(f"{args.celeba}: no images of the {args.partition} partition are present")
    try:
        result = evaluation.evaluate_model(model, data, pipeline=args.pipeline)
    except celeba.CelebAError as exc:
        raise UserError(str(exc)) from None
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    if args.plots:
        evaluation.plot_all(Path(args.plots), result, data.frequencies())
    print(json.dumps(result, indent=2))
    return 0


def _calibrate(args) -> int:
    from photo_sorter import celeba, evaluation
    from photo_sorter.data import make_dataset
    from photo_sorter.model import AttributeModel, ModelError, card_path

    try:
        model = AttributeModel.load(args.model)
        data = celeba.load(args.celeba).partition(args.partition).select(model.attributes)
        probs, labels = evaluation.predict_dataset(model.predict, make_dataset(data.paths, data.labels, 64))
    except (celeba.CelebAError, ModelError) as exc:
        raise UserError(str(exc)) from None
    thresholds, unreliable, metrics = evaluation.calibrate(probs, labels, model.attributes, args.precision_floor)
    honest = evaluation.cross_fitted(probs, labels, model.attributes, args.seed, args.precision_floor)
    card = {**model.card, "thresholds": thresholds, "unreliable": unreliable,
            "metrics": {**model.card.get("metrics", {}), "threshold_rule": metrics["threshold_rule"],
                        f"{args.partition}_calibration": metrics["selection"], f"{args.partition}_cross_fitted": honest}}
    card_path(model.path).write_text(json.dumps(card, indent=2))
    print(json.dumps({"cross_fitted": {k: honest[k] for k in ("mean_accuracy", "mean_precision")},
                      "unreliable": sorted(unreliable)}))
    return 0


def _export(args) -> int:
    from photo_sorter.model import AttributeModel, ModelError, export_model

    try:
        model = AttributeModel.load(args.model)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    path = export_model(model, args.format, Path(args.out))
    print(json.dumps({"format": args.format, "out": str(path)}))
    return 0


def _install(args) -> int:
    from photo_sorter.model import ModelError, install_model

    engine = open_library(args)
    try:
        path = install_model(args.model, engine, args.models_dir)
    except (ModelError, OSError) as exc:
        raise UserError(str(exc)) from None
    emit({"installed": str(path), "active": True}, args.json, f"installed {path} (now the active model)")
    return 0
