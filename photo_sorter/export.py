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
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import select
from sqlalchemy.orm import Session

from photo_sorter.attributes import CELEBA_ATTRIBUTES, label, validate
from photo_sorter.store import Face, ModelVersion, Photo, predictions_table, session_factory


class LibraryError(ValueError):
    """The library lacks what was asked for (no model, no faces, bad argument): one readable line."""


def active_model(session: Session, model_id: int | None = None) -> ModelVersion:
    """The model whose predictions are read: the given one, else the active one."""
    if model_id is not None:
        model = session.get(ModelVersion, model_id)
        if model is None:
            raise LibraryError(f"no model with id {model_id} in the library")
        return model
    model = session.scalars(
        select(ModelVersion).where(ModelVersion.active.is_(True)).order_by(ModelVersion.id.desc())
    ).first()
    if model is None:
        raise LibraryError("the library has no active attribute model yet; scan some photos first")
    return model


def face_rows(session: Session, model: ModelVersion, attributes=None, photo_ids=None) -> list[dict]:
    """Faces of readable photos with their probabilities under `model`, ordered by face id.

    Each row: face_id, photo_id, path, folder, index, box [x, y, w, h] in oriented pixels,
    photo_size [w, h], captured_at, probabilities {attribute: float or None}.
    """
    names = validate(attributes if attributes is not None else model.attributes)
    p = predictions_table.c
    stmt = (
        select(Face.id, Face.photo_id, Photo.path, Photo.folder, Face.index, Face.x, Face.y,
               Face.w, Face.h, Photo.width, Photo.height, Photo.captured_at,
               *[p[n] for n in names])
        .join(Photo, Photo.id == Face.photo_id)
        .join(predictions_table, (p.face_id == Face.id) & (p.model_id == model.id))
        .where(Photo.status == "ok")
        .order_by(Face.id)
    )
    if photo_ids is not None:
        stmt = stmt.where(Face.photo_id.in_(list(photo_ids)))
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


def photo_rows(session: Session, photo_ids=None) -> list[dict]:
    """Readable photos (also those without faces), ordered by path."""
    stmt = select(Photo).where(Photo.status == "ok").order_by(Photo.path)
    if photo_ids is not None:
        stmt = stmt.where(Photo.id.in_(list(photo_ids)))
    return [
        {"photo_id": ph.id, "path": ph.path, "folder": ph.folder, "width": ph.width,
         "height": ph.height, "captured_at": ph.captured_at, "capture_source": ph.capture_source,
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
    ("stem", Lightroom). Returns a summary dict.
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
        faces = face_rows(session, model, photo_ids=photo_ids)
        thresholds = {a: float(model.thresholds.get(a, 0.5)) for a in model.attributes}
    by_photo: dict[int, list[dict]] = {}
    for f in faces:
        f["attributes"] = present_attributes(f["probabilities"], thresholds)
        by_photo.setdefault(f["photo_id"], []).append(f)
    summary = {"format": fmt, "photos": len(photos), "faces": len(faces), "model_id": model.id}
    if fmt == "xmp":
        written, errors = write_sidecars(photos, by_photo, out, sidecar_name)
        summary.update(sidecars=len(written), out=str(out) if out else None, files=written,
                       errors=errors)
        return summary
    text = _csv_text(photos, by_photo, model.attributes) if fmt == "csv" else _json_text(photos, by_photo)
    if out is None:
        summary["text"] = text
    else:
        out = Path(out)
        _refuse_photo_path(engine, out)
        _atomic_write(out, text.encode("utf-8", "surrogateescape"))  # a non-UTF-8 name: its own bytes
        summary["out"] = str(out)
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


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _refuse_photo_path(engine, path: Path) -> None:
    """Never let an export target be one of the library's photos."""
    with session_factory(engine)() as session:
        hit = session.scalar(select(Photo.id).where(Photo.path.in_([str(path), os.path.realpath(path)])))
    if hit is not None:
        raise LibraryError(f"{path} is one of the library's photos; choose another output path")


# ---------------------------------------------------------------- XMP sidecars

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
KEYWORD_ROOT = "Faces"


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def sidecar_path(photo_path: str | Path, out_dir: str | Path | None, root: str | Path | None,
                 sidecar_name: str = "ext") -> Path:
    """Where a photo's sidecar goes: beside it, or under out_dir mirroring its path below root."""
    photo_path = Path(photo_path)
    name = photo_path.name + ".xmp" if sidecar_name == "ext" else photo_path.stem + ".xmp"
    if out_dir is None:
        return photo_path.with_name(name)
    rel = photo_path.parent.relative_to(root) if root else Path()
    return Path(out_dir) / rel / name


def write_sidecars(photos: list[dict], by_photo: dict, out_dir, sidecar_name: str) -> tuple[list, list]:
    """One sidecar per photo with faces. A sidecar that cannot be merged or written is skipped
    (left as it was) and reported, the others are still written. Returns (paths, errors)."""
    with_faces = [ph for ph in photos if by_photo.get(ph["photo_id"])]
    root = os.path.commonpath([str(Path(ph["path"]).parent) for ph in with_faces]) if with_faces else None
    written, errors = [], []
    for ph in with_faces:
        path = sidecar_path(ph["path"], out_dir, root, sidecar_name)
        try:
            if os.path.realpath(path) == os.path.realpath(ph["path"]):
                raise LibraryError(f"sidecar path {path} would overwrite the photo itself")
            merge_sidecar(path, by_photo[ph["photo_id"]], (ph["width"], ph["height"]))
        except LibraryError as exc:
            errors.append(str(exc))
        except OSError as exc:
            errors.append(f"cannot write {path}: {exc.strerror or exc}")
        else:
            written.append(str(path))
    return written, errors


def merge_sidecar(path: Path, faces: list[dict], size: tuple) -> None:
    """Write keywords and face regions into the sidecar at `path`, keeping all it already holds.

    Keywords go to dc:subject (leaf names), lr:hierarchicalSubject (Faces|Smiling) and
    digiKam:TagsList (Faces/Smiling), the fields digiKam, darktable, Lightroom and PhotoPrism read.
    Faces become MWG regions (centre x/y and w/h in 0..1 of AppliedToDimensions); a region that
    overlaps one already there (e.g. a named face from digiKam) is not added twice.
    """
    path = Path(path)
    if path.exists():
        try:
            root = _parse_keeping_prefixes(path)
        except (ET.ParseError, DefusedXmlException) as exc:
            raise LibraryError(f"existing sidecar {path} is not valid XML ({exc}); left untouched") from None
        if root.tag != _q("x:xmpmeta"):
            raise LibraryError(f"existing sidecar {path} is not an XMP packet; left untouched")
    else:
        root = ET.Element(_q("x:xmpmeta"))
    rdf = root.find("rdf:RDF", NS)
    if rdf is None:
        rdf = ET.SubElement(root, _q("rdf:RDF"))
    desc = rdf.find("rdf:Description", NS)
    if desc is None:
        desc = ET.SubElement(rdf, _q("rdf:Description"), {_q("rdf:about"): ""})

    names = sorted({label(a) for f in faces for a in f["attributes"]})
    _add_to_list(rdf, desc, "dc:subject", "rdf:Bag", names)
    _add_to_list(rdf, desc, "lr:hierarchicalSubject", "rdf:Bag", [f"{KEYWORD_ROOT}|{n}" for n in names])
    _add_to_list(rdf, desc, "digiKam:TagsList", "rdf:Seq", [f"{KEYWORD_ROOT}/{n}" for n in names])
    if size[0] and size[1]:
        _add_regions(rdf, desc, faces, size)
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    packet = f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{body}\n<?xpacket end="w"?>\n'
    _atomic_write(path, packet.encode("utf-8"))


def _parse_keeping_prefixes(path: Path) -> ET.Element:
    """Parse safely (no entity expansion) and register the file's own namespace prefixes, so
    properties of other tools (xmp:Rating, ...) are written back under their usual names."""
    events = SafeET.iterparse(path, events=("start-ns",))
    for _event, (prefix, uri) in events:
        if prefix and uri not in NS.values():
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:  # a reserved prefix like ns0: ElementTree picks its own
                pass
    return events.root


def _find_anywhere(rdf: ET.Element, name: str) -> ET.Element | None:
    """A property may sit in any rdf:Description of the packet."""
    for desc in rdf.findall("rdf:Description", NS):
        found = desc.find(name, NS)
        if found is not None:
            return found
    return None


def _add_to_list(rdf, desc, prop: str, container: str, values: list[str]) -> None:
    """Append values missing from the property's Bag/Seq, creating it when absent."""
    node = _find_anywhere(rdf, prop)
    if node is None:
        node = ET.SubElement(desc, _q(prop))
    box = node.find("*")
    if box is None:
        box = ET.SubElement(node, _q(container))
    have = {li.text for li in box.findall("rdf:li", NS)}
    for value in values:
        if value not in have:
            ET.SubElement(box, _q("rdf:li")).text = value
            have.add(value)


def _add_regions(rdf, desc, faces: list[dict], size: tuple) -> None:
    width, height = size
    regions = _find_anywhere(rdf, "mwg-rs:Regions")
    if regions is None:
        regions = ET.SubElement(desc, _q("mwg-rs:Regions"), {_q("rdf:parseType"): "Resource"})
        ET.SubElement(regions, _q("mwg-rs:AppliedToDimensions"), {
            _q("stDim:w"): str(width), _q("stDim:h"): str(height), _q("stDim:unit"): "pixel"})
    region_list = regions.find("mwg-rs:RegionList", NS)
    if region_list is None:
        region_list = ET.SubElement(regions, _q("mwg-rs:RegionList"))
    bag = region_list.find("rdf:Bag", NS)
    if bag is None:
        bag = ET.SubElement(region_list, _q("rdf:Bag"))
    existing = [_area_of(li) for li in bag.findall("rdf:li", NS)]
    for f in faces:
        x, y, w, h = f["box"]
        area = ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
        if any(a is not None and _iou(a, area) > 0.5 for a in existing):
            continue
        li = ET.SubElement(bag, _q("rdf:li"), {_q("rdf:parseType"): "Resource"})
        ET.SubElement(li, _q("mwg-rs:Type")).text = "Face"
        ET.SubElement(li, _q("mwg-rs:Description")).text = ", ".join(label(a) for a in f["attributes"])
        ET.SubElement(li, _q("mwg-rs:Area"), {
            _q("stArea:x"): f"{area[0]:.6f}", _q("stArea:y"): f"{area[1]:.6f}",
            _q("stArea:w"): f"{area[2]:.6f}", _q("stArea:h"): f"{area[3]:.6f}",
            _q("stArea:unit"): "normalized"})
        existing.append(area)


def _area_of(li: ET.Element) -> tuple | None:
    """Centre/size of an existing region, whether written as attributes or as child elements."""
    area = li.find("mwg-rs:Area", NS)
    if area is None:
        desc = li.find("rdf:Description", NS)
        area = desc.find("mwg-rs:Area", NS) if desc is not None else None
    if area is None:
        return None
    values = []
    for key in ("x", "y", "w", "h"):
        text = area.get(_q(f"stArea:{key}"))
        if text is None:
            child = area.find(f"stArea:{key}", NS)
            text = child.text if child is not None else None
        try:
            values.append(float(text))
        except (TypeError, ValueError):
            return None
    return tuple(values)


def _iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two centre/size boxes."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
