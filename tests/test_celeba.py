import numpy as np
import pytest
from celeba_factory import make_celeba

from photo_sorter import celeba
from photo_sorter.attributes import CELEBA_ATTRIBUTES


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_both_layouts_read_the_same_labels(tmp_path, layout):
    root = make_celeba(tmp_path / layout, layout, n=12, seed=3)
    data = celeba.load(root)
    assert data.layout == layout
    assert data.attributes == list(CELEBA_ATTRIBUTES)
    assert len(data.names) == 12 and data.labels.shape == (12, 40)
    assert set(np.unique(data.labels)) <= {0, 1}
    assert data.labels[:, CELEBA_ATTRIBUTES.index("Bald")].sum() == 0  # all -1 in the file
    assert (data.partitions == 0).sum() == 9 and (data.partitions == 1).sum() == 3
    other = celeba.load(make_celeba(tmp_path / "other", "kaggle" if layout == "official" else "official", n=12, seed=3))
    np.testing.assert_array_equal(data.labels, other.labels)


def test_missing_images_are_skipped_and_counted(tmp_path):
    data = celeba.load(make_celeba(tmp_path, n=20, missing=7))
    assert len(data.names) == 13 and data.n_rows == 20
    assert data.summary == "20 rows, 13 images found"


def test_select_and_drop_attributes(tmp_path):
    data = celeba.load(make_celeba(tmp_path, n=8))
    sel = data.select(["Smiling", "Male", "Young"], drop=["Young"])
    assert sel.attributes == ["Smiling", "Male"]
    np.testing.assert_array_equal(sel.labels[:, 0], data.labels[:, CELEBA_ATTRIBUTES.index("Smiling")])
    assert len(data.select(drop=["Attractive"]).attributes) == 39
    with pytest.raises(celeba.CelebAError, match="Smiley"):
        data.select(["Smiley"])


def test_partitions_and_frequencies(tmp_path):
    data = celeba.load(make_celeba(tmp_path, n=16))
    train, val = data.partition("train"), data.partition("val")
    assert len(train.names) + len(val.names) == 16
    freq = data.frequencies()
    assert freq["Smiling"] == pytest.approx(data.labels[:, CELEBA_ATTRIBUTES.index("Smiling")].mean())
    assert freq["Bald"] == 0.0


def test_wrong_column_count_names_file_and_line(tmp_path):
    root = make_celeba(tmp_path, n=6)
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 3)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(celeba.CelebAError, match=r"list_attr_celeba.txt, line 5: 38 columns, expected 41"):
        celeba.load(root)


def test_unknown_attribute_name_in_header(tmp_path):
    root = make_celeba(tmp_path, "kaggle", n=4)
    path = root / "list_attr_celeba.csv"
    text = path.read_text().replace("Wearing_Hat", "Wearing_Cap", 1)
    path.write_text(text)
    with pytest.raises(celeba.CelebAError, match="unknown attribute name.*Wearing_Cap"):
        celeba.load(root)


def test_bad_values_and_empty_folders(tmp_path):
    root = make_celeba(tmp_path / "a", n=4)
    path = root / "list_attr_celeba.txt"
    path.write_text(path.read_text().replace(" 1", " 7", 1))
    with pytest.raises(celeba.CelebAError, match="must be -1 or 1"):
        celeba.load(root)
    with pytest.raises(celeba.CelebAError, match="neither list_attr_celeba.txt nor"):
        celeba.load(tmp_path)
    empty = make_celeba(tmp_path / "b", n=3, missing=3)
    with pytest.raises(celeba.CelebAError, match="no images found"):
        celeba.load(empty)


def test_real_celeba(shared_dir):
    data = celeba.load(shared_dir / "celeba")
    assert data.n_rows == 202_599
    assert len(data.partition("val").names) == 780
    assert len(data.partition("train").names) == 24_010
    assert (data.identities >= 0).all()  # identity_CelebA.txt covers every image
    rest, held = data.partition("train").split_by_identity(0.1, seed=1)
    assert not set(rest.identities) & set(held.identities)
    assert 0.07 < len(held.names) / 24_010 < 0.13
