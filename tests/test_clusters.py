"""Attribute clusters and eigenfaces on crafted libraries with known structure."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from library_factory import make_library
from photo_sorter import clusters, eigenfaces
from photo_sorter.attributes import CLUSTER_ATTRIBUTES
from photo_sorter.export import LibraryError

# Three planted groups over the ten clustering attributes.
GROUPS = {
    "smiling_glasses_women": {"Smiling": 0.95, "Eyeglasses": 0.9, "Male": 0.05, "Wearing_Lipstick": 0.8,
                              "No_Beard": 0.95, "Young": 0.7},
    "bearded_men_hats": {"Male": 0.95, "No_Beard": 0.05, "Wearing_Hat": 0.9, "Young": 0.4},
    "young_blondes": {"Blond_Hair": 0.9, "Young": 0.95, "Male": 0.9, "Heavy_Makeup": 0.7,
                      "No_Beard": 0.9},
}
GROUP_COLOURS = {"smiling_glasses_women": (200, 60, 60), "bearded_men_hats": (60, 200, 60),
                 "young_blondes": (60, 60, 200)}
PER_GROUP = 20


def _crop(colour, rng) -> np.ndarray:
    base = np.empty((109, 89, 3), np.float32)
    base[:] = colour
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def library(tmp_path_factory, new_db):
    rng = np.random.default_rng(1)
    photos, truth = [], []
    for g, (name, probs) in enumerate(GROUPS.items()):
        for i in range(PER_GROUP):
            values = {a: float(np.clip(probs.get(a, 0.1) + rng.normal(0, 0.05), 0, 1))
                      for a in CLUSTER_ATTRIBUTES}
            photos.append({"name": f"{name}_{i}.jpg",
                           "faces": [{"probs": values, "crop": _crop(GROUP_COLOURS[name], rng)}]})
            truth.append(g)
    # Shuffle so group order is not face order.
    order = rng.permutation(len(photos))
    photos = [photos[i] for i in order]
    truth = [truth[i] for i in order]
    tmp = tmp_path_factory.mktemp("clusters")
    engine, _, face_ids = make_library(new_db(tmp), photos)
    face_truth = {face_ids[p["name"]][0]: t for p, t in zip(photos, truth)}
    return engine, face_truth, tmp


def _labels(run: dict, face_truth: dict) -> tuple[list, list]:
    found = {m["face_id"]: c["index"] for c in run["clusters"] for m in c["members"]}
    ids = sorted(face_truth)
    return [face_truth[i] for i in ids], [found[i] for i in ids]


def test_auto_k_recovers_planted_groups_and_names_them(library):
    engine, face_truth, tmp = library
    result = clusters.run_clustering(engine, k="auto", seed=0, out_dir=tmp / "sheets")
    assert result["k"] == 3
    assert result["silhouette"] > 0.5
    assert max(result["silhouette_by_k"], key=result["silhouette_by_k"].get) == 3
    run = clusters.load_run(engine, result["run_id"])
    truth, found = _labels(run, face_truth)
    assert adjusted_rand_score(truth, found) == 1.0
    names = {c["name"] for c in result["clusters"]}
    women = next(c for c in result["clusters"] if c["mean_probabilities"]["Eyeglasses"] > 0.5)
    assert "Smiling" in women["name"] and "Eyeglasses" in women["name"] and "not Male" in women["name"]
    assert len(names) == 3 and all(c["size"] == PER_GROUP for c in result["clusters"])
    # One readable sheet per cluster.
    for c in result["clusters"]:
        with Image.open(c["sheet"]) as im:
            assert im.format == "PNG" and im.size == (900, 640)  # legible fitted in the app (test_gui_audit)


def test_members_are_stored_nearest_first_with_distances(library):
    engine, _, _ = library
    result = clusters.run_clustering(engine, k=3, seed=0)
    run = clusters.load_run(engine)  # latest
    assert run["run_id"] == result["run_id"] and run["params"]["n_faces"] == 3 * PER_GROUP
    for c in run["clusters"]:
        d = [m["distance"] for m in c["members"]]
        assert d == sorted(d) and len(d) == c["size"]
        centre = np.array(c["centroid"])
        assert np.linalg.norm(centre - [c["mean_probabilities"][a] for a in run["attributes"]]) < 1e-6
        assert c["sheet"] is None
    # the browser's load: the same run without members; one cluster's photos when opened
    light = clusters.load_run(engine, members=False)
    assert light["clusters"] == [{k: v for k, v in c.items() if k != "members"} for c in run["clusters"]]
    for c in run["clusters"]:
        assert clusters.cluster_photo_ids(engine, c["id"]) == list(dict.fromkeys(m["photo_id"] for m in c["members"]))


def test_same_seed_same_result_and_stored_run(library):
    engine, _, _ = library
    a = clusters.run_clustering(engine, k=5, seed=7)
    b = clusters.run_clustering(engine, k=5, seed=7)
    assert a["run_id"] != b["run_id"]
    ra, rb = clusters.load_run(engine, a["run_id"]), clusters.load_run(engine, b["run_id"])
    strip = lambda run: [(c["name"], [(m["face_id"], m["distance"]) for m in c["members"]])
                         for c in run["clusters"]]
    assert strip(ra) == strip(rb)
    assert ra["seed"] == 7 and ra["k"] == 5


def test_subset_of_attributes(library):
    engine, _, _ = library
    result = clusters.run_clustering(engine, attributes=["Male", "No_Beard"], k=2)
    sizes = sorted(c["size"] for c in result["clusters"])
    assert sizes == [PER_GROUP, 2 * PER_GROUP]  # bearded men apart from the rest


def test_too_few_faces_give_clear_messages(tmp_path):
    engine, _, _ = make_library(tmp_path / "one.db", [{"name": "a.jpg", "faces": [{"probs": {}}]}])
    with pytest.raises(LibraryError, match="at least 2 faces; the library has 1"):
        clusters.run_clustering(engine, k=2)
    engine, _, _ = make_library(tmp_path / "two.db", [{"name": f"{i}.jpg", "faces": [{}]} for i in range(2)])
    with pytest.raises(LibraryError, match="k=4 clusters need at least 4 faces; the library has 2"):
        clusters.run_clustering(engine, k=4)
    with pytest.raises(LibraryError, match="automatically needs at least 3 faces"):
        clusters.run_clustering(engine, k="auto")
    with pytest.raises(ValueError, match="unknown attribute name"):
        clusters.run_clustering(engine, attributes=["Smiling", "Happy"], k=2)
    with pytest.raises(LibraryError, match="no clustering run yet"):
        clusters.load_run(engine)
    engine, _, _ = make_library(tmp_path / "same.db", [{"name": f"{i}.jpg", "faces": [{}]} for i in range(4)])
    with pytest.raises(LibraryError, match="only 1 different attribute vectors; choose k <= 1"):
        clusters.run_clustering(engine, k=3)
    with pytest.raises(LibraryError, match="nothing to cluster"):
        clusters.run_clustering(engine, k="auto")
    assert clusters.run_clustering(engine, k=1)["clusters"][0]["size"] == 4


def test_eigenfaces_recover_planted_component():
    rng = np.random.default_rng(0)
    h, w = 109, 89
    yy, xx = np.mgrid[0:h, 0:w]
    pattern = np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 9.0)], -1)
    pattern /= np.linalg.norm(pattern)
    base = rng.uniform(0.3, 0.7, (h, w, 3))
    amounts = rng.normal(0, 8, 200)
    crops = base + amounts[:, None, None, None] * pattern + rng.normal(0, 0.002, (200, h, w, 3))
    faces = eigenfaces.compute(crops.astype(np.float32), n_components=3)
    cosine = abs(float(np.sum(faces.components[0] * pattern)))
    assert cosine > 0.99
    assert faces.explained_variance_ratio[0] > 0.9
    assert np.abs(faces.mean - base).mean() < 0.05
    # The synthetic face rebuilds the typical member from mean + components.
    typical = crops[faces.typical_index]
    assert np.abs(faces.synthetic - np.clip(typical, 0, 1)).mean() < 0.01
    img = eigenfaces.component_image(faces.components[0])
    assert img.min() >= 0 and img.max() <= 1 and abs(float(np.median(img)) - 0.5) < 0.1


def test_eigenfaces_of_one_face_is_that_face():
    crop = np.full((1, 109, 89, 3), 128, np.uint8)
    faces = eigenfaces.compute(crop)
    assert len(faces.components) == 0 and np.allclose(faces.mean, 128 / 255)
