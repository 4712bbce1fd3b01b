"""Per-attribute metrics, threshold calibration, comparison with published figures, and plots."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from photo_sorter.celeba import CelebAError

REFERENCE_CSV = Path(__file__).resolve().parent.parent / "resources" / "reference" / "celeba_attribute_reference.csv"
THRESHOLD_GRID = np.round(np.arange(0.01, 0.991, 0.01), 2)


def _auc(probs: np.ndarray, y: np.ndarray) -> float | None:
    """ROC-AUC (ties count half); undefined (None) without both classes."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, probs)) if 0 < y.sum() < len(y) else None


def attribute_metrics(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """One attribute's figures at a threshold. A figure that a class's absence makes meaningless
    is None (undefined), never a made-up 1.0: balanced accuracy and AUC without positives or
    negatives, recall without positives, precision of the tags without any tag shown."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(probs) >= threshold
    tp, tn = int(np.sum(p & y)), int(np.sum(~p & ~y))
    fp, fn = int(np.sum(p & ~y)), int(np.sum(~p & y))
    n = max(1, len(y))
    tpr = tp / (tp + fn) if tp + fn else None
    tnr = tn / (tn + fp) if tn + fp else None
    return {"accuracy": (tp + tn) / n,
            "balanced_accuracy": (tpr + tnr) / 2 if tpr is not None and tnr is not None else None,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tpr,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
            "auc": _auc(np.asarray(probs), y),
            "threshold": float(threshold), "positives": tp + fn, "tags": tp + fp}


MEANS = ("accuracy", "balanced_accuracy", "precision", "auc", "f1")


def evaluate_predictions(probs, labels, attributes, thresholds: dict | None = None,
                         unreliable=()) -> dict:
    """The evaluate JSON: n_images, per-attribute figures and their means (fractions 0..1).

    Each mean is over the attributes where the figure is defined; `undefined` says how many
    were left out of each. mean_precision is the precision of the tags the model shows;
    mean_precision_reliable leaves out the attributes marked unreliable (never written as tags)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    per = {a: attribute_metrics(probs[:, i], labels[:, i], (thresholds or {}).get(a, 0.5))
           for i, a in enumerate(attributes)}
    out = {"n_images": int(len(labels)), "attributes": list(attributes)}
    undefined = {}
    for key in MEANS:
        values = [m[key] for m in per.values() if m[key] is not None]
        out[f"mean_{key}"] = float(np.mean(values)) if values else None
        undefined[key] = len(per) - len(values)
    shown = [m["precision"] for a, m in per.items() if m["precision"] is not None and a not in unreliable]
    out["mean_precision_reliable"] = float(np.mean(shown)) if shown else None
    out["undefined"] = undefined
    out["per_attribute"] = per
    return out


# Thresholds serve tags: a tag the app shows or writes should be right. Each attribute's threshold
# maximises accuracy among those whose tags reach this precision on the selection data; 0.75 keeps
# mean accuracy within 0.3 points of its best while tag precision rises by 5 (models/README.md,
# "Precision floor", benchmarks/bench_thresholds.py). An attribute whose tags cannot reach
# UNRELIABLE_BELOW at any threshold is marked unreliable.
PRECISION_FLOOR = 0.75
UNRELIABLE_BELOW = 0.5
MIN_TAGS = 5  # a precision over fewer tags than this is noise


def _sweep(probs: np.ndarray, y: np.ndarray):
    """accuracy, precision and tag count at every THRESHOLD_GRID value (vectorised)."""
    p = probs[:, None] >= THRESHOLD_GRID[None, :]
    tp = (p & y[:, None]).sum(0)
    tags = p.sum(0)
    acc = (tp + ((~p) & ~y[:, None]).sum(0)) / max(1, len(y))
    precision = np.where(tags > 0, tp / np.maximum(tags, 1), 0.0)
    return acc, precision, tags


def choose_thresholds(probs, labels, attributes, precision_floor: float = PRECISION_FLOOR):
    """(thresholds, unreliable): per attribute, the most accurate threshold whose tags reach
    precision_floor; where none does, the most accurate one reaching the best precision the
    attribute has (within 0.02). unreliable maps names to the reason shown to the user."""
    probs, labels = np.asarray(probs), np.asarray(labels).astype(bool)
    min_tags = max(MIN_TAGS, int(0.005 * len(labels)))
    thresholds, unreliable = {}, {}
    for i, a in enumerate(attributes):
        acc, precision, tags = _sweep(probs[:, i], labels[:, i])
        usable = tags >= min_tags
        best_precision = float(precision[usable].max()) if usable.any() else 0.0
        ok = usable & (precision >= min(precision_floor, best_precision - 0.02))
        if best_precision < UNRELIABLE_BELOW or not ok.any():  # no tag to trust: just be accurate
            ok = np.ones_like(ok)
        candidates = np.flatnonzero(ok)
        top = candidates[acc[candidates] >= acc[candidates].max() - 1e-12]
        thresholds[a] = float(THRESHOLD_GRID[top[np.argmin(np.abs(THRESHOLD_GRID[top] - 0.5))]])
        if best_precision < UNRELIABLE_BELOW:
            unreliable[a] = (f"at most {100 * best_precision:.0f} % of its tags were right on "
                             "held-out faces: shown for sorting, never written as a keyword")
    return thresholds, unreliable


def calibrate(probs, labels, attributes, precision_floor: float = PRECISION_FLOOR) -> tuple[dict, dict, dict]:
    """Thresholds and unreliable attributes for a card, with the figures on the same (selection)
    predictions: in-sample at those thresholds, and at 0.5."""
    thresholds, unreliable = choose_thresholds(probs, labels, attributes, precision_floor)
    metrics = {
        "threshold_rule": f"max accuracy subject to tag precision >= {precision_floor} "
                          f"(unreliable below {UNRELIABLE_BELOW})",
        "selection": evaluate_predictions(probs, labels, attributes, thresholds, unreliable),
        "selection_threshold_0.5": evaluate_predictions(probs, labels, attributes, unreliable=unreliable),
    }
    return thresholds, unreliable, metrics


def cross_fitted(probs, labels, attributes, seed: int = 0, precision_floor: float = PRECISION_FLOOR) -> dict:
    """An honest figure for thresholds chosen on the same images: choose on one half, measure on
    the other, and the other way round; the two halves' decisions are pooled."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    idx = np.random.default_rng(seed).permutation(len(labels))
    halves = [idx[: len(idx) // 2], idx[len(idx) // 2:]]
    decided = np.zeros_like(probs, dtype=bool)
    for a, b in (halves, halves[::-1]):
        t, _ = choose_thresholds(probs[a], labels[a], attributes, precision_floor)
        decided[b] = probs[b] >= np.array([t[x] for x in attributes])
    return evaluate_predictions(decided.astype(np.float32), labels, attributes)


def load_reference(path: Path = REFERENCE_CSV) -> dict[str, dict[str, float | None]]:
    """Published per-attribute test accuracies (percent) and the test majority baseline."""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["attribute"]] = {k: (float(v) if v else None) for k, v in row.items() if k != "attribute"}
    return out


def comparison_rows(report: dict, installed: dict | None = None) -> list[dict]:
    """Rows of the comparison table: ours beside LNet+ANet, the article and the majority answer
    (all in percent), plus the installed model where given."""
    ref = load_reference()
    rows = []
    for a in report["attributes"]:
        m, r = report["per_attribute"][a], ref.get(a, {})
        row = {"attribute": a, "accuracy": 100 * m["accuracy"],
               "balanced_accuracy": None if m["balanced_accuracy"] is None else 100 * m["balanced_accuracy"],
               "lnet_anet": r.get("lnet_anet_test_accuracy_pct"),
               "article": r.get("seed_article_test_accuracy_pct"),
               "majority": r.get("majority_class_test_accuracy_pct")}
        if installed and a in installed.get("per_attribute", {}):
            row["installed_accuracy"] = 100 * installed["per_attribute"][a]["accuracy"]
        rows.append(row)
    return rows


def mean_row(rows: list[dict]) -> dict:
    """Means over the rows, each column over the attributes where it has a value."""
    out = {"attribute": "mean"}
    for key in dict.fromkeys(k for row in rows for k in row):
        if key != "attribute":
            vals = [r[key] for r in rows if r.get(key) is not None]
            out[key] = float(np.mean(vals)) if vals else None
    return out


def markdown_table(rows: list[dict]) -> str:
    cols = ["attribute", "accuracy", "balanced_accuracy", "lnet_anet", "article", "majority"]
    fmt = lambda v: "–" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in [*rows, mean_row(rows)]:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def plot_all(out_dir: Path, report: dict, frequencies: dict | None = None, history: dict | None = None) -> list[Path]:
    """PNG plots: training curves, attribute frequencies, per-attribute accuracy vs references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if history and history.get("loss"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key in zip(axes, ("loss", "accuracy")):
            for prefix, label in (("", "training"), ("val_", "selection slice")):
                if history.get(prefix + key):
                    ax.plot(range(1, len(history[prefix + key]) + 1), history[prefix + key], marker="o", label=label)
            ax.set_xlabel("epoch"); ax.set_title(key); ax.legend()
        written.append(_save(fig, out_dir / "curves.png"))
    if frequencies:
        fig, ax = plt.subplots(figsize=(12, 4))
        names = list(frequencies)
        ax.bar(range(len(names)), [100 * frequencies[n] for n in names])
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_ylabel("% positive"); ax.set_title("Attribute frequencies")
        written.append(_save(fig, out_dir / "frequencies.png"))
    rows = comparison_rows(report)
    fig, ax = plt.subplots(figsize=(13, 4.5))
    x = np.arange(len(rows))
    for off, key, label in ((-0.3, "accuracy", "this model"), (-0.1, "balanced_accuracy", "this model (balanced)"),
                            (0.1, "lnet_anet", "LNet+ANet"), (0.3, "majority", "majority class")):
        ax.bar(x + off, [r[key] or 0 for r in rows], width=0.2, label=label)
    ax.set_xticks(x, [r["attribute"] for r in rows], rotation=90, fontsize=7)
    ax.set_ylim(40, 100); ax.set_ylabel("%"); ax.legend(fontsize=7, ncol=4)
    ax.set_title("Per-attribute accuracy against published figures")
    written.append(_save(fig, out_dir / "accuracy_vs_reference.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def predict_dataset(predict, ds) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a (frames, labels) dataset with the labels of the images actually read:
    the pipeline drops unreadable images, so labels must travel with their frames."""
    probs, labels = [], []
    for x, y in ds:
        probs.append(np.asarray(predict(x.numpy())))
        labels.append(y.numpy())
    if not probs:
        raise CelebAError("none of the images could be read")
    return np.concatenate(probs), np.concatenate(labels)


def evaluate_model(model, data, pipeline: bool = False, batch_size: int = 64, condition: str | None = None,
                   fill: str | None = None) -> dict:
    """Evaluate an AttributeModel on a CelebA subset. With pipeline=True each image goes through
    the photo pipeline (detect, align) as a scanned photo would, optionally degraded first
    (data.CONDITIONS); images where no face is found count as wrong on every attribute
    (reported as n_no_face). Images that cannot be read are left out (n_images counts those
    evaluated)."""
    from photo_sorter import data as frames_data

    if not pipeline:
        probs, labels = predict_dataset(model.predict, frames_data.make_dataset(data.paths, data.labels, batch_size))
        return evaluate_predictions(probs, labels, data.attributes, model.thresholds, model.unreliable)
    status, frames = frames_data.pipeline_frames(data.paths, condition=condition, fill=fill)
    readable = status != frames_data.UNREADABLE
    labels, found = data.labels[readable], status[readable] == frames_data.FOUND
    if not len(labels):
        raise CelebAError("none of the images could be read")
    probs = np.zeros(labels.shape, np.float32)
    if found.any():
        probs[found] = model.predict(frames[readable][found], batch_size)
    probs[~found] = 1.0 - labels[~found]  # a missed face is wrong on every attribute
    result = evaluate_predictions(probs, labels, data.attributes, model.thresholds, model.unreliable)
    # A missed face shows no tag and has no score: tag precision and AUC are those of the faces found.
    on_found = evaluate_predictions(probs[found], labels[found], data.attributes, model.thresholds, model.unreliable)
    for key in ("mean_precision", "mean_precision_reliable", "mean_auc"):
        result[key] = on_found[key]
    result["mean_accuracy_found"] = on_found["mean_accuracy"]
    result["n_no_face"] = int((~found).sum())
    result["n_unreadable"] = int((~readable).sum())
    return result
