"""Build a library database directly from crafted rows (photos, faces, crops, predictions), so the
clusters/selection/export tests run without a scan or a model."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import insert

from photo_sorter.attributes import DEFAULT_ATTRIBUTES
from photo_sorter.store import Face, ModelVersion, Photo, open_engine, predictions_table, session_factory


def jpeg_bytes(pixels: np.ndarray, **save_options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buf, "JPEG", quality=90, **save_options)
    return buf.getvalue()


def scene(seed: int, size=(160, 120)) -> np.ndarray:
    """A random but smooth RGB picture: different seeds give clearly different images."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))


def make_library(db_path: Path, photos: list[dict], photo_dir: Path | None = None,
                 thresholds: dict | None = None, card: dict | None = None):
    """photos: [{name, folder?, captured_at?, burst_id?, pixels?, save?, faces: [{probs, box?, crop?}]}].

    With photo_dir, each photo is written there (folder/name) as a JPEG of `pixels` (or a scene),
    with Pillow save options `save` (e.g. xmp=...).
    Returns (engine, [photo ids], {name: face ids}).
    """
    engine = open_engine(db_path)
    attrs = list(DEFAULT_ATTRIBUTES)
    with session_factory(engine)() as session:
        model = ModelVersion(name="test-model", sha256="0" * 64, path="test.keras", attributes=attrs,
                             thresholds=thresholds or {a: 0.5 for a in attrs}, card=card or {}, active=True)
        session.add(model)
        session.flush()
        ids, face_ids = [], {}
        for n, spec in enumerate(photos):
            folder = Path(photo_dir or "/photos") / spec.get("folder", "album")
            path = folder / spec["name"]
            pixels = spec.get("pixels")
            if photo_dir is not None:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_bytes(jpeg_bytes(pixels if pixels is not None else scene(n), **spec.get("save", {})))
            stat = path.stat() if photo_dir is not None else None
            photo = Photo(path=str(path), folder=str(folder), status="ok",
                          size=stat.st_size if stat else None, mtime_ns=stat.st_mtime_ns if stat else None,
                          width=spec.get("width", 160), height=spec.get("height", 120),
                          captured_at=spec.get("captured_at", datetime(2024, 1, 1, 12) + timedelta(seconds=n)),
                          burst_id=spec.get("burst_id"), n_faces=len(spec.get("faces", [])),
                          content_hash=spec.get("content_hash", hashlib.sha256(str(path).encode()).hexdigest()))
            session.add(photo)
            session.flush()
            ids.append(photo.id)
            face_ids[spec["name"]] = []
            for i, f in enumerate(spec.get("faces", [])):
                x, y, w, h = f.get("box", (40 + 10 * i, 30, 30, 36))
                crop = f.get("crop")
                face = Face(content_hash=photo.content_hash, index=i, x=x, y=y, w=w, h=h, confidence=0.99,
                            landmarks=[[0, 0]] * 5, crop=jpeg_bytes(crop) if crop is not None else None)
                session.add(face)
                session.flush()
                face_ids[spec["name"]].append(face.id)
                probs = {a: 0.1 for a in attrs}
                probs.update(f.get("probs", {}))
                session.execute(insert(predictions_table).values(face_id=face.id, model_id=model.id, **probs))
        session.commit()
    return engine, ids, face_ids
