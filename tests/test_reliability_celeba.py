"""The CelebA reader and the evaluation against bad folders: wrong column counts, unknown attribute
names, partition rows without images, empty folders and files that are not images. Each gives a
clear error naming the file (and line), or is skipped and counted; never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from celeba_factory import make_celeba

from photo_sorter import celeba, evaluation
from photo_sorter.cli import main as cli_main


def edit(path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


@pytest.mark.parametrize("layout, change, message", [
    ("official", lambda ls: [ls[0], " ".join(ls[1].split()[:-1]), *ls[2:]],
     r"list_attr_celeba.txt, line 3: 41 columns, expected 40"),
    ("official", lambda ls: [*ls[:3], ls[3] + " 1", *ls[4:]], r"list_attr_celeba.txt, line 4: 42 columns"),
    ("official", lambda ls: [ls[0], ls[1].replace("Smiling", "Grinning"), *ls[2:]],
     r"list_attr_celeba.txt, header line: unknown attribute name\(s\) Grinning"),
    ("official", lambda ls: ls[:2], r"list_attr_celeba.txt: no annotation rows"),
    ("official", lambda ls: ls[:1], r"list_attr_celeba.txt: too short"),
    ("kaggle", lambda ls: [*ls[:2], ls[2].rsplit(",", 1)[0], *ls[3:]],
     r"list_attr_celeba.csv, line 3: 40 columns, expected 41"),
    ("kaggle", lambda ls: [ls[0].replace("image_id", "file"), *ls[1:]], r"expected a header starting with 'image_id'"),
    ("kaggle", lambda ls: [*ls[:2], ls[2].replace(",-1", ",yes", 1), *ls[3:]], r"line 3: values must be -1 or 1"),
])
def test_malformed_attribute_files_name_file_and_line(tmp_path, layout, change, message):
    root = make_celeba(tmp_path, layout, n=6)
    edit(root / ("list_attr_celeba.txt" if layout == "official" else "list_attr_celeba.csv"), change)
    with pytest.raises(celeba.CelebAError, match=message):
        celeba.load(root)


def test_partition_rows_without_images_and_images_without_partition(tmp_path):
    root = make_celeba(tmp_path, n=8, missing=2)
    edit(root / "list_eval_partition.txt",
         lambda ls: [*ls[:-3], "999999.jpg 0", "not_annotated.jpg 2"])  # last row dropped, two strays
    data = celeba.load(root)
    assert data.summary == "8 rows, 6 images found"  # the skip, counted
    assert set(data.names) == {f"{i:06d}.jpg" for i in range(1, 7)}
    assert data.partitions.tolist().count(-1) == 1  # 000006.jpg lost its partition row
    assert len(data.partition("train").names) + len(data.partition("val").names) == 5


def test_bad_partition_file_names_the_line(tmp_path):
    root = make_celeba(tmp_path, n=5)
    edit(root / "list_eval_partition.txt", lambda ls: [*ls[:3], "000004.jpg 7", *ls[4:]])
    with pytest.raises(celeba.CelebAError, match=r"list_eval_partition.txt, line 4: expected 'IMAGE PARTITION'"):
        celeba.load(root)


def test_empty_folders(tmp_path):
    with pytest.raises(celeba.CelebAError, match="neither list_attr_celeba.txt nor"):
        celeba.load(tmp_path)
    with pytest.raises(celeba.CelebAError, match="is not a folder"):
        celeba.load(tmp_path / "absent")
    root = make_celeba(tmp_path / "c", n=4, missing=4)
    with pytest.raises(celeba.CelebAError, match="no images found"):
        celeba.load(root)


def with_bad_images(root):
    """Replace three images by a text file, an empty file and a truncated JPEG."""
    images = root / "img_align_celeba"
    (images / "000002.jpg").write_text("this is not an image")
    (images / "000005.jpg").write_bytes(b"")
    data = (images / "000007.jpg").read_bytes()
    (images / "000007.jpg").write_bytes(data[: len(data) // 3])
    return root


def test_unreadable_images_are_dropped_with_their_labels(tmp_path):
    """The training and evaluation pipeline drops files that are not images; each prediction
    still meets its own image's labels."""
    from photo_sorter.data import make_dataset

    data = celeba.load(with_bad_images(make_celeba(tmp_path, n=10)))
    labels = np.repeat(np.arange(10, dtype=np.float32)[:, None], 2, axis=1)  # row i is labelled i
    seen = []

    def predict(x):
        seen.append(len(x))
        return x.reshape(len(x), -1)[:, :2].astype(np.float32)

    probs, kept = evaluation.predict_dataset(predict, make_dataset(data.paths, labels, batch_size=4))
    assert kept[:, 0].tolist() == [0, 2, 3, 5, 7, 8, 9] and sum(seen) == len(probs) == 7


def tiny_model(path):
    from test_reliability_models import save_model

    return save_model(path)


def test_evaluate_leaves_out_unreadable_images(tmp_path):
    from photo_sorter.model import AttributeModel

    model = AttributeModel.load(tiny_model(tmp_path / "tiny.keras"))
    data = celeba.load(with_bad_images(make_celeba(tmp_path / "c", n=12)))
    data = data.select([a for a in model.attributes if a in data.attributes])
    for pipeline in (False, True):
        result = evaluation.evaluate_model(model, data, pipeline=pipeline)
        assert result["n_images"] == len(data.names) - 3 and 0 <= result["mean_accuracy"] <= 1


def test_cli_evaluate_on_bad_folders(tmp_path, capsys):
    model = tiny_model(tmp_path / "tiny.keras")
    root = with_bad_images(make_celeba(tmp_path / "c", n=10))
    run = ["evaluate", "--model", str(model), "--partition", "all", "--celeba", str(root)]
    assert cli_main(run) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 7  # of 10: three are not images
    for name in ("000001.jpg", "000003.jpg", "000004.jpg", "000006.jpg", "000008.jpg",
                 "000009.jpg", "000010.jpg"):
        (root / "img_align_celeba" / name).write_bytes(b"GIF89a nonsense")
    assert cli_main(run) == 2
    assert capsys.readouterr().err == "error: none of the images could be read\n"
    edit(root / "list_attr_celeba.txt", lambda ls: [ls[0], ls[1].replace("Male", "Mail"), *ls[2:]])
    assert cli_main(run) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "header line: unknown attribute name(s) Mail" in err
