"""Eigenfaces of a set of aligned face crops (PCA), and the PNG sheet that shows a cluster.

The crops are the stored half-size aligned frames (89x109), so PCA on thousands of faces costs
seconds. The sheet shows both the plain mean face (what the article showed) and a "synthetic"
face: the cluster's most typical member rebuilt from the mean and the first components only,
which keeps what the cluster shares and is sharper than the blurry mean.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from sklearn.decomposition import PCA

from photo_sorter.attributes import label


@dataclass
class Eigenfaces:
    mean: np.ndarray                # float32 [H, W, 3] in 0..1
    components: np.ndarray          # float32 [n, H, W, 3], unit-norm signed directions
    explained_variance_ratio: np.ndarray  # [n]
    synthetic: np.ndarray           # float32 [H, W, 3] in 0..1
    typical_index: int              # the member the synthetic face is rebuilt from
    n_faces: int


def decode_crops(blobs: list[bytes], size: tuple[int, int] = (89, 109)) -> np.ndarray:
    """JPEG crops -> uint8 [N, H, W, 3]; a crop of another size is resized to `size` (w, h)."""
    out = np.zeros((len(blobs), size[1], size[0], 3), np.uint8)
    for i, blob in enumerate(blobs):
        with Image.open(io.BytesIO(blob)) as im:
            im = im.convert("RGB")
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            out[i] = np.asarray(im)
    return out


def compute(crops: np.ndarray, n_components: int = 5, typical_index: int | None = None,
            seed: int = 0) -> Eigenfaces:
    """PCA of crops (uint8 or float [N, H, W, 3]).

    typical_index picks the member the synthetic face is rebuilt from (the clusters pass the one
    nearest the attribute centre); by default the member nearest the mean.
    """
    crops = np.asarray(crops)
    if crops.ndim != 4 or len(crops) == 0:
        raise ValueError(f"expected crops [N, H, W, 3] with N >= 1, got shape {crops.shape}")
    scale = 255.0 if crops.dtype == np.uint8 else 1.0
    x = crops.reshape(len(crops), -1).astype(np.float32) / scale
    shape = crops.shape[1:]
    n = min(n_components, len(crops) - 1, x.shape[1])
    if n < 1:  # a single face: it is its own mean, there is no variation to show
        mean = x[0]
        return Eigenfaces(mean.reshape(shape), np.zeros((0, *shape), np.float32), np.zeros(0),
                          mean.reshape(shape), 0, len(crops))
    pca = PCA(n_components=n, svd_solver="randomized" if n < min(x.shape) // 2 else "full",
              random_state=seed)
    coeffs = pca.fit_transform(x)
    if typical_index is None:
        typical_index = int(np.argmin(np.linalg.norm(coeffs, axis=1)))
    synthetic = np.clip(pca.mean_ + coeffs[typical_index] @ pca.components_, 0, 1)
    return Eigenfaces(
        mean=pca.mean_.reshape(shape).astype(np.float32),
        components=pca.components_.reshape(n, *shape).astype(np.float32),
        explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float32),
        synthetic=synthetic.reshape(shape).astype(np.float32),
        typical_index=int(typical_index),
        n_faces=len(crops),
    )


def component_image(component: np.ndarray) -> np.ndarray:
    """A signed component as a viewable image: mid-grey is 0, brighter +, darker -."""
    peak = float(np.abs(component).max()) or 1.0
    return np.clip(0.5 + component / (2 * peak), 0, 1)


def mosaic(crops: np.ndarray, columns: int = 6) -> np.ndarray:
    """Tile up to columns x columns crops into one image (row-major, nearest the centre first)."""
    crops = crops[: columns * columns]
    rows = -(-len(crops) // columns)
    h, w = crops.shape[1:3]
    sheet = np.full((rows * h, columns * w, 3), 255, np.uint8)
    for i, crop in enumerate(crops):
        r, c = divmod(i, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = crop
    return sheet


SHEET_DPI = 100
TEXT_PT = 9  # the smallest text on a sheet of up to 12 attributes


def render_sheet(title: str, crops: np.ndarray, faces: Eigenfaces,
                 mean_probabilities: dict[str, float], library_mean: dict[str, float]) -> bytes:
    """One PNG per cluster (its bytes, written by outputs.Outputs): member mosaic, mean face,
    synthetic face, eigenfaces, attribute bars."""
    n_pc = len(faces.components)
    # sized so that shown at the width of the app's sheet pane (about 650 px at the default
    # window) every word is still about 9 px high or more
    fig = Figure(figsize=(9, 6.4), dpi=SHEET_DPI, layout="constrained")
    grid = fig.add_gridspec(3, 6, height_ratios=[1.1, 1, 1.3])  # room for one bar label per line
    fig.suptitle(f"{title}  ({faces.n_faces} faces)", fontsize=15)

    ax = fig.add_subplot(grid[0:2, 0:3])
    ax.imshow(mosaic(crops))
    ax.set_title("members, nearest the centre first", fontsize=11)
    ax.axis("off")
    for col, (img, caption) in enumerate([
        (faces.mean, "mean face"),
        (faces.synthetic, f"synthetic face\n(mean + {n_pc} eigenfaces)"),
    ]):
        ax = fig.add_subplot(grid[0, 3 + col])
        ax.imshow(img)
        ax.set_title(caption, fontsize=10)
        ax.axis("off")
    for i, comp in enumerate(faces.components[:6]):
        ax = fig.add_subplot(grid[1 + i // 3, 3 + i % 3])
        ax.imshow(component_image(comp))
        ax.set_title(f"eigenface {i + 1}: {100 * faces.explained_variance_ratio[i]:.0f}%", fontsize=10)
        ax.axis("off")

    ax = fig.add_subplot(grid[2, 0:3])
    names = list(mean_probabilities)
    ys = np.arange(len(names))
    ax.barh(ys + 0.2, [mean_probabilities[a] for a in names], height=0.4, label="cluster")
    ax.barh(ys - 0.2, [library_mean[a] for a in names], height=0.4, label="library", color="0.7")
    ax.set_yticks(ys, [label(a) for a in names], fontsize=TEXT_PT if len(names) <= 12 else TEXT_PT - 1)
    ax.tick_params(axis="x", labelsize=TEXT_PT)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("mean probability", fontsize=10)
    ax.legend(fontsize=TEXT_PT, loc="lower right")
    fig.supxlabel("Mean face: the average of all members. Synthetic face: the most typical member rebuilt "
                  "from the mean and the eigenfaces only.\nEigenfaces (principal components, % of variance "
                  "explained): mid-grey = 0, brighter = +, darker = - along the component.", fontsize=TEXT_PT)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
