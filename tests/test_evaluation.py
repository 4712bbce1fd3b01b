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
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["positives"] == 3


def test_evaluate_json_shape():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (50, 3))
    probs = rng.random((50, 3))
    r = evaluation.evaluate_predictions(probs, labels, ["Smiling", "Male", "Young"], {"Male": 0.3})
    assert set(r) == {"n_images", "attributes", "mean_accuracy", "mean_balanced_accuracy", "per_attribute"}
    assert r["n_images"] == 50 and r["attributes"] == ["Smiling", "Male", "Young"]
    for m in r["per_attribute"].values():
        assert set(m) == {"accuracy", "balanced_accuracy", "f1", "threshold", "positives"}
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["balanced_accuracy"] <= 1
    assert r["per_attribute"]["Male"]["threshold"] == 0.3
    assert r["mean_accuracy"] == pytest.approx(np.mean([m["accuracy"] for m in r["per_attribute"].values()]))


def test_threshold_calibration_finds_the_separating_threshold():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (400, 2))
    # attribute 0 separates at 0.3, attribute 1 at 0.7
    p0 = np.where(labels[:, 0] == 1, rng.uniform(0.31, 1, 400), rng.uniform(0, 0.29, 400))
    p1 = np.where(labels[:, 1] == 1, rng.uniform(0.71, 1, 400), rng.uniform(0, 0.69, 400))
    probs = np.stack([p0, p1], 1)
    t = evaluation.calibrate_thresholds(probs, labels, ["A", "B"])
    for j, name in enumerate("AB"):  # between the highest negative and the lowest positive
        assert probs[labels[:, j] == 0, j].max() < t[name] <= probs[labels[:, j] == 1, j].min()
    calibrated = evaluation.evaluate_predictions(probs, labels, ["A", "B"], t)
    assert calibrated["mean_accuracy"] == 1.0
    assert evaluation.evaluate_predictions(probs, labels, ["A", "B"])["mean_accuracy"] < 0.95


def test_cross_fitted_finds_nothing_in_pure_noise():
    """Probabilities independent of the labels: thresholds fitted on the same images still find
    an edge (in-sample balanced accuracy above 0.5), an honest cross-fitted figure does not. A
    cross-fit that leaked the measured half into the calibration would match in-sample."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (400, 40))
    probs = rng.random((400, 40))
    names = [f"A{i}" for i in range(40)]
    in_sample = evaluation.evaluate_predictions(probs, labels, names, evaluation.calibrate_thresholds(probs, labels, names))
    honest = evaluation.cross_fitted(probs, labels, names)
    assert honest["mean_balanced_accuracy"] == pytest.approx(0.5, abs=0.02)
    assert in_sample["mean_balanced_accuracy"] > honest["mean_balanced_accuracy"] + 0.02


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
