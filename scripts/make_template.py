"""Derive the CelebA alignment template: the mean MTCNN landmarks over aligned CelebA images.

Running the same detector the scan uses over frames that are already CelebA-aligned gives the
5 points where that detector puts eyes, nose and mouth corners in the 178x218 frame, so aligning
a photo's face to them reproduces the training geometry (not an idealised one).

    python scripts/make_template.py [--celeba ../shared/celeba] [--count 400]
writes resources/celeba_template.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from photo_sorter import align, faces  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--celeba", type=Path, default=REPO.parent / "shared" / "celeba")
    parser.add_argument("--count", type=int, default=400, help="images to average (first N by name)")
    parser.add_argument("--out", type=Path, default=align.TEMPLATE_PATH)
    args = parser.parse_args()

    images = sorted((args.celeba / "img_align_celeba").glob("*.jpg"))[: args.count]
    if not images:
        print(f"error: no aligned CelebA images under {args.celeba}", file=sys.stderr)
        return 2
    points = []
    for path in images:
        found = faces.detect(Image.open(path), confidence=0.9)
        if found:
            points.append(found[0].landmarks)
    points = np.asarray(points)
    mean, std = points.mean(axis=0), points.std(axis=0)
    template = {
        "frame": {"width": align.FRAME_WIDTH, "height": align.FRAME_HEIGHT},
        "landmark_names": list(faces.LANDMARK_NAMES),
        "landmarks": np.round(mean, 3).tolist(),
        "std": np.round(std, 3).tolist(),
        "images_used": len(points),
        "images_tried": len(images),
        "source": "mean MTCNN (mtcnn 1.0, largest face) landmarks over the first "
        f"{len(images)} img_align_celeba images by file name",
        "command": "python scripts/make_template.py --count " + str(args.count),
    }
    args.out.write_text(json.dumps(template, indent=2) + "\n")
    print(json.dumps({k: template[k] for k in ("landmarks", "std", "images_used")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
