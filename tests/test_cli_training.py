"""The headless evaluate command with the bundled model on a generated CelebA folder; train's
--devices checks."""

import json

import pytest
from celeba_factory import make_celeba

from photo_sorter.cli import main as cli_main


def test_evaluate_json_is_exactly_the_documented_shape(tmp_path, capsys):
    root = make_celeba(tmp_path / "c", n=10, missing=3, partitions=(0.5, 0.5))
    out = tmp_path / "eval.json"
    assert cli_main(["evaluate", "--celeba", str(root), "--partition", "all", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"n_images", "attributes", "mean_accuracy", "mean_balanced_accuracy", "mean_auc",
                           "mean_precision", "mean_precision_reliable", "mean_f1", "undefined", "per_attribute"}
    assert result["n_images"] == 7 and len(result["attributes"]) == 39
    # the generated images show only Smiling and Male: the other 37 attributes have no positives
    assert result["undefined"]["auc"] >= 37 and result["undefined"]["balanced_accuracy"] >= 37
    for m in result["per_attribute"].values():
        assert set(m) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc", "threshold",
                          "positives", "tags"}
        assert 0 <= m["accuracy"] <= 1 and 0 < m["threshold"] < 1
    assert json.loads(capsys.readouterr().out) == result


def test_evaluate_partition_with_only_some_images(tmp_path, capsys):
    root = make_celeba(tmp_path / "c", n=8, missing=2, partitions=(0.5, 0.5))
    assert cli_main(["evaluate", "--celeba", str(root), "--partition", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 2  # 4 listed, 2 present


def test_evaluate_wrong_folder_is_one_clear_line(tmp_path, capsys):
    assert cli_main(["evaluate", "--celeba", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "list_attr_celeba" in err and "Traceback" not in err


def test_train_devices_is_a_count_or_all_and_never_more_than_visible(tmp_path, capsys):
    root = make_celeba(tmp_path / "c", n=4)
    out = str(tmp_path / "m.keras")
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            cli_main(["train", "--celeba", str(root), "--devices", bad, "--out", out])
        assert f"a number of devices (1 to 4096) or all, not '{bad}'" in capsys.readouterr().err
    assert cli_main(["train", "--celeba", str(root), "--devices", "4096", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 4096 devices asked for, but ") and "visible: " in err
    assert err.count("\n") == 1 and "Traceback" not in err and not (tmp_path / "m.keras.work").exists()
