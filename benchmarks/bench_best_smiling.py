"""Best-smiling precision@1 on real CelebA (validation partition), against a random pick and the
Smiling base rate.

Groups: the validation photos of one identity (identity_CelebA.txt), cut into groups of 3-8
photos in file order, kept when at least one is labelled Smiling and one is not. Every photo is
one face (the aligned 178x218 frame, predicted directly); the pick is selection.rank_photos, the
same ranking the app uses. Prints its figures as the last line (JSON); skips without ../shared.

    python benchmarks/bench_best_smiling.py [--model models/celeba_mobilenetv2.keras]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
CELEBA = REPO.parent / "shared" / "celeba"
sys.path.insert(0, str(REPO))

MIN_GROUP, MAX_GROUP = 3, 8


def load_val_predictions(model_path=None, attributes=None):
    """(data, probabilities [N, len(attributes)], model) for the validation images present,
    or None when ../shared is absent. data.attributes follows `attributes`."""
    if not (CELEBA / "list_attr_celeba.txt").is_file():
        return None
    from photo_sorter import celeba
    from photo_sorter.model import AttributeModel

    model = AttributeModel.load(model_path)
    data = celeba.load(CELEBA).partition("val")
    data = data.subset(np.array([Path(p).parent.name == "img_align_celeba" for p in data.paths]))
    data = data.select(attributes or [a for a in model.attributes if a in data.attributes])
    frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in data.paths])
    cols = [model.attributes.index(a) for a in data.attributes]
    return data, model.predict(frames)[:, cols], model


def identity_groups(names: list[str], smiling: np.ndarray) -> list[np.ndarray]:
    """Index groups of 3-8 photos of one person with mixed Smiling labels."""
    ids = {}
    with open(CELEBA / "identity_CelebA.txt") as fh:
        for line in fh:
            name, ident = line.split()
            ids[name] = int(ident)
    by_person: dict[int, list[int]] = {}
    for i, name in enumerate(names):
        by_person.setdefault(ids[name], []).append(i)
    groups = []
    for person in sorted(by_person):
        members = by_person[person]
        if len(members) < MIN_GROUP:
            continue
        n_groups = -(-len(members) // MAX_GROUP)
        for chunk in np.array_split(np.array(members), n_groups):
            if len(chunk) >= MIN_GROUP and 0 < smiling[chunk].sum() < len(chunk):
                groups.append(chunk)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="MODEL.keras (default: the bundled model)")
    args = parser.parse_args()
    loaded = load_val_predictions(args.model, ["Smiling", "Blurry"])
    if loaded is None:
        print(json.dumps({"skipped": f"{CELEBA} is not available"}))
        return 0
    from photo_sorter.selection import rank_photos

    data, probs, model = loaded
    smiling = data.labels[:, 0].astype(bool)
    groups = identity_groups(list(data.names), smiling)
    hits = []
    for g in groups:
        candidates = [{"photo_id": int(i), "path": data.names[i], "captured_at": None,
                       "faces": [{"face_id": int(i), "smiling": float(probs[i, 0]),
                                  "blurry": float(probs[i, 1])}]} for i in g]
        best = rank_photos(candidates, model.thresholds.get("Smiling", 0.5))[0]["photo_id"]
        hits.append(smiling[best])
    members = np.concatenate(groups) if groups else np.zeros(0, int)
    result = {
        "model": model.name, "trained": "metrics" in model.card,
        "groups": len(groups), "photos_in_groups": int(len(members)),
        "precision_at_1": round(float(np.mean(hits)), 4) if hits else None,
        "random_pick": round(float(np.mean([smiling[g].mean() for g in groups])), 4) if groups else None,
        "base_rate_in_groups": round(float(smiling[members].mean()), 4) if groups else None,
        "base_rate_val": round(float(smiling.mean()), 4),
        "smiling_accuracy_val": round(float(np.mean((probs[:, 0] >= model.thresholds.get("Smiling", 0.5)) == smiling)), 4),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
