"""Read the library as plain rows, and export them: CSV, JSON, and XMP sidecars for other photo tools.

The row readers here are also what clusters.py and selection.py build on, so every consumer sees
the same faces under the same (active) model. Exports only ever read photos: sidecars are written
beside them or into an export folder, existing sidecars are merged, the photo file is never opened
for writing.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from photo_sorter import imaging, xmp
from photo_sorter.attributes import CELEBA_ATTRIBUTES, validate
from photo_sorter.model import unreliable_attributes
from photo_sorter.outputs import OutputError, Outputs
from photo_sorter.store import (
    Face, ModelVersion, Photo, face_photo, model_row, predictions_table, session_factory,
)


class LibraryError(ValueError):
    """The library lacks what was asked for (no model, no faces, bad argument): one readable line."""


def active_model(session: Session, model_id: int | None = None) -> ModelVersion:
    """The model whose predictions are read: the given one, else the active one."""
    model = model_row(session, model_id)
    if model is None:
        raise LibraryError("the library has no active attribute model yet; scan some photos first"
                           if model_id is None else f"no model with id {model_id} in the library")
    return model


def face_rows(session: Session, model: ModelVersion, attributes=None, photo_ids=None,
              each_copy: bool = False) -> list[dict]:
    """Faces of readable photos with their probabilities under `model`, ordered by face id.
    Copies share their faces: each face comes once, at the first readable photo with its
    content (clusters, face counts), or with `each_copy` once per photo that has it (per-photo
    outputs: each copy's sidecar, each burst's candidates).

    Each row: face_id, photo_id, path, folder, index, box [x, y, w, h] in oriented pixels,
    photo_size [w, h], captured_at, probabilities {attribute: float or None}.
    """
    names = validate(attributes if attributes is not None else model.attributes)
    p = predictions_table.c
    stmt = (
        select(Face.id, Photo.id, Photo.path, Photo.folder, Face.index, Face.x, Face.y,
               Face.w, Face.h, Photo.width, Photo.height, Photo.captured_at,
               *[p[n] for n in names])
        .select_from(Face).join(Photo, Photo.content_hash == Face.content_hash if each_copy or photo_ids is not None
              else face_photo())
        .join(predictions_table, (p.face_id == Face.id) & (p.model_id == model.id))
        .where(Photo.status == "ok")
        .order_by(Face.id, Photo.id)
    )
    if photo_ids is not None:
        stmt = stmt.where(Photo.id.in_(list(photo_ids)))
    rows = []
    for r in session.execute(stmt):
        rows.append({
            "face_id": r[0], "photo_id": r[1], "path": r[2], "folder": r[3], "index": r[4],
            "box": [r[5], r[6], r[7], r[8]], "photo_size": [r[9], r[10]], "captured_at": r[11],
            "probabilities": dict(zip(names, r[12:])),
        })
    return rows


def require_predicted(rows: list[dict], attributes) -> None:
    """Refuse attributes the model never predicted (their columns are NULL), naming them."""
    missing = [a for a in attributes if rows and all(r["probabilities"][a] is None for r in rows)]
    if missing:
        raise LibraryError(f"the active model does not predict: {', '.join(missing)}")


def photo_rows(session: Session, photo_ids=None, folder: str | None = None) -> list[dict]:
    """Readable photos (also those without faces), ordered by path."""
    stmt = select(Photo).where(Photo.status == "ok").order_by(Photo.path)
    if photo_ids is not None:
        stmt = stmt.where(Photo.id.in_(list(photo_ids)))
    if folder is not None:
        stmt = stmt.where(Photo.folder == folder)
    return [
        {"photo_id": ph.id, "path": ph.path, "folder": ph.folder, "width": ph.width,
         "height": ph.height, "captured_at": ph.captured_at, "capture_source": ph.capture_source,
         "companions": ph.companions or [],
         "burst_id": ph.burst_id,
         "n_faces": ph.n_faces}
        for ph in session.scalars(stmt)
    ]


# ---------------------------------------------------------------- export


FORMATS = ("csv", "json", "xmp")


def export(engine, fmt: str, out: str | Path | None = None, where: str | None = None,
           sidecar_name: str = "ext", model_id: int | None = None) -> dict:
    """Export the library (or the photos matching `where`) as csv | json | xmp.

    csv/json: `out` is a file path (None returns the text in "text"). xmp: `out` is a folder that
    receives the sidecars (mirroring the photos' folders), or None to write each sidecar beside
    its photo, named `photo.jpg.xmp` (sidecar_name="ext", darktable/digiKam) or `photo.xmp`
    ("stem", Lightroom). Photos are never written (no embedding). Every target is checked by
    outputs.Outputs; a refused csv/json target raises OutputError (a ValueError, one line).
    Returns a summary dict.
    """
    if fmt not in FORMATS:
        raise LibraryError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if sidecar_name not in ("ext", "stem"):
        raise LibraryError("sidecar_name must be 'ext' (photo.jpg.xmp) or 'stem' (photo.xmp)")
    with session_factory(engine)() as session:
        model = active_model(session, model_id)
    photo_ids = _matching_photo_ids(engine, where, model.id) if where else None
    with session_factory(engine)() as session:
        photos = photo_rows(session, photo_ids)
        faces = face_rows(session, model, photo_ids=photo_ids, each_copy=True)
        thresholds = {a: float(model.thresholds.get(a, 0.5)) for a in model.attributes}
    by_photo: dict[int, list[dict]] = {}
    for f in faces:
        f["attributes"] = present_attributes(f["probabilities"], thresholds)
        by_photo.setdefault(f["photo_id"], []).append(f)
    summary = {"format": fmt, "photos": len(photos), "faces": len(faces), "model_id": model.id}
    outputs = Outputs(engine)
    if fmt == "xmp":
        hidden = unreliable_attributes(model.card)
        written, errors, notes = write_sidecars(photos, by_photo, out, sidecar_name, outputs, hidden)
        summary.update(sidecars=len(written), out=str(out) if out else None, files=written,
                       errors=errors, notes=notes, not_written_as_keywords=sorted(hidden))
        return summary
    text = _csv_text(photos, by_photo, model.attributes) if fmt == "csv" else _json_text(photos, by_photo)
    if out is None:
        summary["text"] = text
    else:
        # a non-UTF-8 name in the text: its own bytes (surrogateescape)
        summary["out"] = str(outputs.write(out, text.encode("utf-8", "surrogateescape")))
    return summary


def _matching_photo_ids(engine, where: str, model_id: int) -> list[int]:
    """Photos matching an attribute expression (any face by default, `all:` every face)."""
    from photo_sorter import query

    try:
        return [p["photo_id"] for p in query.photos(engine, where, limit=None, model_id=model_id)]
    except query.QueryError as exc:
        raise LibraryError(f"bad --where expression: {exc}") from None


def present_attributes(probabilities: dict, thresholds: dict) -> list[str]:
    """Attributes at or above their calibrated threshold, in the CelebA order."""
    return [a for a in CELEBA_ATTRIBUTES
            if probabilities.get(a) is not None and probabilities[a] >= thresholds.get(a, 0.5)]


def _csv_text(photos: list[dict], by_photo: dict, attributes: list[str]) -> str:
    """One row per face; a photo without faces gets one row with empty face columns."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["photo_id", "path", "captured_at", "face_index", "x", "y", "w", "h",
                     "attributes", *attributes])
    for ph in photos:
        base = [ph["photo_id"], ph["path"], _iso(ph["captured_at"])]
        faces = by_photo.get(ph["photo_id"], [])
        if not faces:
            writer.writerow(base + [""] * (6 + len(attributes)))
        for f in faces:
            probs = [_fmt(f["probabilities"].get(a)) for a in attributes]
            writer.writerow(base + [f["index"], *[round(v, 1) for v in f["box"]],
                                    ";".join(f["attributes"]), *probs])
    return buf.getvalue()


def _json_text(photos: list[dict], by_photo: dict) -> str:
    doc = []
    for ph in photos:
        faces = [
            {"face_id": f["face_id"], "index": f["index"], "box": f["box"],
             "attributes": f["attributes"],
             "probabilities": {a: v for a, v in f["probabilities"].items() if v is not None}}
            for f in by_photo.get(ph["photo_id"], [])
        ]
        doc.append({**ph, "captured_at": _iso(ph["captured_at"]), "faces": faces})
    return json.dumps(doc, indent=2)


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------- XMP sidecars


def sidecar_path(photo_path: str | Path, out_dir: str | Path | None, root: str | Path | None,
                 sidecar_name: str = "ext") -> Path:
    """Where a photo's sidecar goes: beside it, or under out_dir mirroring its path below root."""
    photo_path = Path(photo_path)
    name = photo_path.name + ".xmp" if sidecar_name == "ext" else photo_path.stem + ".xmp"
    if out_dir is None:
        return photo_path.with_name(name)
    rel = photo_path.parent.relative_to(root) if root else Path()
    return Path(out_dir) / rel / name


def sidecar_targets(photos: list[dict], out_dir, sidecar_name: str) -> tuple[dict, list[str]]:
    """photo_id -> sidecar path. Photos whose `stem` sidecars would be one file (IMG_1.jpg and
    IMG_1.png) get full-name sidecars instead, so regions of two photos never mix; each such
    fallback is reported."""
    root = os.path.commonpath([str(Path(ph["path"]).parent) for ph in photos]) if photos else None
    targets = {ph["photo_id"]: sidecar_path(ph["path"], out_dir, root, sidecar_name) for ph in photos}
    shared: dict[str, list[int]] = {}
    for photo_id, path in targets.items():  # casefold: also one file on case-insensitive disks
        shared.setdefault(str(path).casefold(), []).append(photo_id)
    notes = []
    names = {ph["photo_id"]: Path(ph["path"]).name for ph in photos}
    for ids in shared.values():
        if len(ids) > 1:
            for photo_id in ids:
                targets[photo_id] = targets[photo_id].with_name(names[photo_id] + ".xmp")
            notes.append(f"{' and '.join(names[i] for i in ids)} would share one sidecar; "
                         "each got its own full-name sidecar (photo.jpg.xmp)")
    return targets, notes


def write_sidecars(photos: list[dict], by_photo: dict, out_dir, sidecar_name: str,
                   outputs: Outputs | None = None, hidden=()) -> tuple[list, list, list]:
    """One sidecar per photo with faces; attributes in `hidden` (unreliable ones) are never
    written. A sidecar that cannot be read, merged or written is left as it was and reported;
    the others are still written. Returns (paths, errors, notes)."""
    outputs = outputs or Outputs()
    with_faces = [ph for ph in photos if by_photo.get(ph["photo_id"])]
    targets, notes = sidecar_targets(with_faces, out_dir, sidecar_name)
    written, errors = [], []
    for ph in with_faces:
        path = targets[ph["photo_id"]]
        faces = [{"box": f["box"], "keywords": [a for a in f["attributes"] if a not in hidden]}
                 for f in by_photo[ph["photo_id"]]]
        try:
            orientation = imaging.stored_orientation(ph["path"]) if ph["width"] else 1
            outputs.update(path, lambda old: xmp.merge_sidecar(
                old, faces, (ph["width"], ph["height"]), orientation),
                root=out_dir or Path(ph["path"]).parent, limit=xmp.MAX_BYTES)
        except OutputError as exc:
            errors.append(str(exc))
        except imaging.PhotoError as exc:
            errors.append(f"{ph['path']}: {exc}; no sidecar written")
        except xmp.XmpError as exc:
            errors.append(f"existing sidecar {path} {exc}; left untouched")
        else:
            written.append(str(path))
    return written, errors, notes
