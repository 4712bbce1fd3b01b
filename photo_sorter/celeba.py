"""Read a CelebA folder in the official layout (.txt) or the Kaggle one (.csv, nested images).

Annotation rows whose image is absent are skipped and counted; malformed files raise
CelebAError naming the file and line. Several image folders (e.g. the originals and a downscaled
copy) can be combined: for each image name the first folder that has it wins.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photo_sorter.attributes import CELEBA_ATTRIBUTES

PARTITIONS = {"train": 0, "val": 1, "test": 2}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class CelebAError(ValueError):
    """The folder is not a usable CelebA download; the message says which file and line."""


@dataclass
class CelebA:
    """Labels of the images that exist, as 0/1, with their official partitions."""

    root: Path
    layout: str                 # "official" | "kaggle"
    attributes: list[str]
    names: np.ndarray           # image file names, e.g. "000001.jpg"
    paths: np.ndarray           # absolute paths (str)
    labels: np.ndarray          # uint8 [N, len(attributes)]
    partitions: np.ndarray      # int8 [N]: 0 train, 1 val, 2 test, -1 unknown
    n_rows: int                 # annotation rows in the attribute file
    image_dirs: list[Path]
    identities: np.ndarray      # int32 [N]: the person (identity_CelebA.txt), -1 unknown

    @property
    def summary(self) -> str:
        return f"{self.n_rows:,} rows, {len(self.names):,} images found"

    def subset(self, mask: np.ndarray) -> CelebA:
        return CelebA(self.root, self.layout, self.attributes, self.names[mask], self.paths[mask],
                      self.labels[mask], self.partitions[mask], self.n_rows, self.image_dirs,
                      self.identities[mask])

    def partition(self, name: str) -> CelebA:
        """'train' | 'val' | 'test' | 'all'."""
        if name == "all":
            return self
        if name not in PARTITIONS:
            raise CelebAError(f"unknown partition {name!r}; use train, val, test or all")
        return self.subset(self.partitions == PARTITIONS[name])

    def select(self, attributes=None, drop=()) -> CelebA:
        """Keep the named attributes (in the given order), minus those in drop."""
        keep = list(attributes) if attributes else list(self.attributes)
        unknown = [a for a in [*keep, *drop] if a not in self.attributes]
        if unknown:
            raise CelebAError(f"unknown attribute name(s): {', '.join(unknown)}")
        keep = [a for a in keep if a not in set(drop)]
        if not keep:
            raise CelebAError("no attributes left to use")
        cols = [self.attributes.index(a) for a in keep]
        return CelebA(self.root, self.layout, keep, self.names, self.paths, self.labels[:, cols],
                      self.partitions, self.n_rows, self.image_dirs, self.identities)

    def split_by_identity(self, fraction: float, seed: int = 0) -> tuple[CelebA, CelebA]:
        """(rest, held-out) with about `fraction` of the images held out and no person in both,
        so figures on the held-out part are figures on unseen people, as on the test partition.
        Images of unknown identity count as people of their own."""
        ids = np.where(self.identities >= 0, self.identities, -np.arange(1, len(self.names) + 1))
        people = np.unique(ids)
        held = np.random.default_rng(seed).permutation(people)[: max(1, round(len(people) * fraction))]
        mask = np.isin(ids, held)
        return self.subset(~mask), self.subset(mask)

    def frequencies(self) -> dict[str, float]:
        """Share of positives per attribute (0..1)."""
        rates = self.labels.mean(axis=0) if len(self.labels) else np.zeros(len(self.attributes))
        return {a: float(r) for a, r in zip(self.attributes, rates)}


def _image_dirs(root: Path) -> list[Path]:
    """Folders of images below root named img_align_celeba*, the exact name first; a Kaggle
    download nests img_align_celeba/img_align_celeba/."""
    dirs = []
    for d in sorted(root.glob("img_align_celeba*"), key=lambda p: (p.name != "img_align_celeba", p.name)):
        nested = d / d.name
        dirs.append(nested if nested.is_dir() else d)
    return [d for d in dirs if d.is_dir()]


def _read_attr_txt(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    if len(lines) < 2:
        raise CelebAError(f"{path}: too short to be a CelebA attribute file")
    header = lines[1].split()
    body = lines[2:]
    return _parse_rows(path, header, ((i + 3, line.split()) for i, line in enumerate(body)))


def _read_attr_csv(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[0].strip() != "image_id":
            raise CelebAError(f"{path}, line 1: expected a header starting with 'image_id'")
        return _parse_rows(path, [h.strip() for h in header[1:]],
                           ((i + 2, row) for i, row in enumerate(reader)))


def _parse_rows(path: Path, header: list[str], rows) -> tuple[list[str], list[str], np.ndarray]:
    unknown = [h for h in header if h not in CELEBA_ATTRIBUTES]
    if unknown:
        raise CelebAError(f"{path}, header line: unknown attribute name(s) {', '.join(unknown)}")
    names, values = [], []
    for line_no, fields in rows:
        if not fields:
            continue
        if len(fields) != len(header) + 1:
            raise CelebAError(
                f"{path}, line {line_no}: {len(fields)} columns, expected {len(header) + 1}"
            )
        try:
            row = [int(v) for v in fields[1:]]
        except ValueError:
            raise CelebAError(f"{path}, line {line_no}: values must be -1 or 1") from None
        if any(v not in (-1, 1) for v in row):
            raise CelebAError(f"{path}, line {line_no}: values must be -1 or 1")
        names.append(fields[0].strip())
        values.append(row)
    if not names:
        raise CelebAError(f"{path}: no annotation rows")
    labels = (np.asarray(values, np.int8) > 0).astype(np.uint8)
    return header, names, labels


def _read_partitions(path: Path | None) -> dict[str, int]:
    if path is None:
        return {}
    parts: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, 1):
            fields = line.replace(",", " ").split()
            if not fields or (line_no == 1 and fields[0] == "image_id"):
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise CelebAError(f"{path}, line {line_no}: expected 'IMAGE PARTITION' (0, 1 or 2)")
            parts[fields[0]] = int(fields[1])
    return parts


def _read_identities(path: Path) -> dict[str, int]:
    """identity_CelebA.txt: 'IMAGE PERSON' per line; absent in some downloads (then unknown)."""
    if not path.is_file():
        return {}
    ids: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                raise CelebAError(f"{path}, line {line_no}: expected 'IMAGE PERSON'")
            ids[fields[0]] = int(fields[1])
    return ids


def load(root: str | Path, image_dirs: list[Path] | None = None) -> CelebA:
    """Read a CelebA folder. Raises CelebAError with a clear message for a wrong folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CelebAError(f"{root} is not a folder")
    if (root / "list_attr_celeba.txt").is_file():
        layout, attr_file = "official", root / "list_attr_celeba.txt"
        header, names, labels = _read_attr_txt(attr_file)
        part_file = root / "list_eval_partition.txt"
    elif (root / "list_attr_celeba.csv").is_file():
        layout, attr_file = "kaggle", root / "list_attr_celeba.csv"
        header, names, labels = _read_attr_csv(attr_file)
        part_file = root / "list_eval_partition.csv"
    else:
        raise CelebAError(
            f"{root} has neither list_attr_celeba.txt nor list_attr_celeba.csv: "
            "choose the folder of your CelebA download"
        )
    partitions = _read_partitions(part_file if part_file.is_file() else None)
    identities = _read_identities(root / "identity_CelebA.txt")
    dirs = image_dirs if image_dirs is not None else _image_dirs(root)
    found: dict[str, str] = {}
    for d in reversed(dirs):  # earlier folders win
        for entry in Path(d).iterdir():
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                found[entry.name] = str(entry)
    if not found:
        raise CelebAError(
            f"{root}: no images found (looked in {', '.join(str(d) for d in dirs) or 'img_align_celeba/'})"
        )
    keep = np.array([n in found for n in names], bool)
    kept = [n for n, k in zip(names, keep) if k]
    return CelebA(
        root=root, layout=layout, attributes=header,
        names=np.array(kept), paths=np.array([found[n] for n in kept]),
        labels=labels[keep],
        partitions=np.array([partitions.get(n, -1) for n in kept], np.int8),
        n_rows=len(names), image_dirs=[Path(d) for d in dirs],
        identities=np.array([identities.get(n, -1) for n in kept], np.int32),
    )
