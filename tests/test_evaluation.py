import numpy as np
import pytest

from photo_sorter import evaluation


def test_metrics_on_known_predictions():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    probs = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.3, 0.4])
    m = evaluation.attribute_metrics(probs, labels, 0.5)
    # tp=2 fn=1 fp=1 tn=4
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["auc"] == pytest.approx(12 / 15)  # 12 of the 15 positive/negative pairs ordered right
    assert m["positives"] == 3 and m["tags"] == 3


def test_metrics_a_missing_class_makes_meaningless_are_undefined():
    no_positives = evaluation.attribute_metrics(np.array([0.1, 0.7, 0.2]), np.array([0, 0, 0]), 0.5)
    assert no_positives["balanced_accuracy"] is None and no_positives["auc"] is None
    assert no_positives["recall"] is None and no_positives["precision"] == 0.0
    no_tags = evaluation.attribute_metrics(np.array([0.1, 0.2, 0.3]), np.array([1, 0, 0]), 0.5)
    assert no_tags["precision"] is None and no_tags["balanced_accuracy"] == pytest.approx(0.5)


def test_undefined_metrics_are_left_out_of_the_means_and_counted():
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 1]])   # B has no positives
    probs = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.7], [0.8, 0.2, 0.1], [0.1, 0.1, 0.9]])
    r = evaluation.evaluate_predictions(probs, labels, ["A", "B", "C"])
    assert r["undefined"]["balanced_accuracy"] == 1 and r["undefined"]["auc"] == 1
    assert r["undefined"]["precision"] == 1                             # B shows no tag
    assert r["mean_balanced_accuracy"] == pytest.approx(1.0)            # A and C only, both perfect
    assert r["mean_auc"] == pytest.approx(1.0)
    assert r["mean_accuracy"] == pytest.approx(1.0)                     # accuracy is defined for B


def test_evaluate_json_shape():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (50, 3))
    probs = rng.random((50, 3))
    r = evaluation.evaluate_predictions(probs, labels, ["Smiling", "Male", "Young"], {"Male": 0.3}, ["Young"])
    assert {"n_images", "attributes", "mean_accuracy", "mean_auc", "mean_precision", "mean_precision_reliable",
            "mean_balanced_accuracy", "undefined", "per_attribute"} <= set(r)
    assert r["n_images"] == 50 and r["attributes"] == ["Smiling", "Male", "Young"]
    assert r["per_attribute"]["Male"]["threshold"] == 0.3
    assert r["mean_accuracy"] == pytest.approx(np.mean([m["accuracy"] for m in r["per_attribute"].values()]))
    shown = [r["per_attribute"][a]["precision"] for a in ("Smiling", "Male")]
    assert r["mean_precision_reliable"] == pytest.approx(np.mean(shown))


def _scores(rng, labels, separation):
    return np.clip(labels * separation + rng.random(labels.shape) * (1 - separation), 0, 1)


def test_thresholds_meet_the_precision_floor_and_stay_accurate():
    rng = np.random.default_rng(1)
    labels = (rng.random((2000, 2)) < [0.3, 0.1]).astype(int)
    probs = _scores(rng, labels, 0.35)  # overlapping classes: precision must be bought with recall
    thresholds, unreliable = evaluation.choose_thresholds(probs, labels, ["A", "B"], precision_floor=0.9)
    assert unreliable == {}
    report = evaluation.evaluate_predictions(probs, labels, ["A", "B"], thresholds)
    at_half = evaluation.evaluate_predictions(probs, labels, ["A", "B"])
    for a in "AB":
        assert report["per_attribute"][a]["precision"] >= 0.9
        assert report["per_attribute"][a]["precision"] > at_half["per_attribute"][a]["precision"]
        assert report["per_attribute"][a]["tags"] >= evaluation.MIN_TAGS
    # among the thresholds meeting the floor it is the most accurate one
    for j, a in enumerate("AB"):
        for t in evaluation.THRESHOLD_GRID:
            m = evaluation.attribute_metrics(probs[:, j], labels[:, j], t)
            if m["precision"] is not None and m["precision"] >= 0.9 and m["tags"] >= evaluation.MIN_TAGS:
                assert m["accuracy"] <= report["per_attribute"][a]["accuracy"] + 1e-12


def test_an_attribute_whose_tags_cannot_be_trusted_is_unreliable():
    rng = np.random.default_rng(3)
    labels = np.stack([(rng.random(3000) < 0.05), (rng.random(3000) < 0.4)], 1).astype(int)
    probs = np.stack([rng.random(3000), _scores(rng, labels[:, 1], 0.5)], 1)  # A: pure noise
    thresholds, unreliable = evaluation.choose_thresholds(probs, labels, ["A", "B"])
    assert list(unreliable) == ["A"] and "%" in unreliable["A"]
    # an unreliable attribute is thresholded for accuracy: it (almost) never fires
    majority = 1 - labels[:, 0].mean()
    assert evaluation.attribute_metrics(probs[:, 0], labels[:, 0], thresholds["A"])["accuracy"] >= majority - 0.02


def test_cross_fitting_exposes_thresholds_fitted_to_noise():
    """On pure noise, thresholds chosen on the same images look better than chance; cross-fitted
    ones do not: the honest figure detects the leak."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, (200, 20))
    probs = rng.random((200, 20))
    names = [f"A{i}" for i in range(20)]
    t, _ = evaluation.choose_thresholds(probs, labels, names, precision_floor=0.55)
    in_sample = evaluation.evaluate_predictions(probs, labels, names, t)
    honest = evaluation.cross_fitted(probs, labels, names, precision_floor=0.55)
    assert abs(honest["mean_accuracy"] - 0.5) < 0.03
    assert in_sample["mean_accuracy"] > honest["mean_accuracy"] + 0.02


def test_comparison_table_against_references():
    names = ["Smiling", "Male"]
    r = evaluation.evaluate_predictions(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1, 0], [0, 1]]), names)
    rows = evaluation.comparison_rows(r)
    assert rows[0]["lnet_anet"] == 92 and rows[1]["lnet_anet"] == 98
    assert rows[0]["accuracy"] == 100.0
    table = evaluation.markdown_table(rows)
    assert "| Smiling | 100.0 | 100.0 | 92.0 | 93.0 | 50.0 |" in table
    assert table.splitlines()[-1].startswith("| mean | 100.0")


def test_mean_row_covers_columns_missing_from_the_first_row():
    rows = [{"attribute": "A", "accuracy": 80.0}, {"attribute": "B", "accuracy": 90.0, "installed_accuracy": 70.0}]
    mean = evaluation.mean_row(rows)
    assert mean["accuracy"] == 85.0 and mean["installed_accuracy"] == 70.0
