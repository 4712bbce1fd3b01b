"""XMP packets: read them safely, find what a photo's packet says (capture date, burst marker),
and merge our keywords and face regions into a sidecar.

Reading is bounded: at most MAX_BYTES, at most MAX_DEPTH nested elements (real packets nest about
12), no DTD, no entity expansion, no network; anything else is an XmpError for that one file.
Prefixes are kept per document by lxml, so nothing global changes and threads can parse and
write at the same time.

What is ours in a sidecar, and replaced by the next export: the keywords under KEYWORD_ROOT
(`Faces|Smiling` in lr:hierarchicalSubject, `Faces/Smiling` in digiKam:TagsList), the leaf names
we added to dc:subject (listed in psorter:AddedSubjects, so a leaf the user had already is kept), and
the unnamed face regions that carry our marker (mwg-rs:Extensions/psorter:Face). Everything else
is kept as it was. A region someone named (e.g. in digiKam) is theirs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from lxml import etree

from photo_sorter.attributes import CELEBA_ATTRIBUTES, label

MAX_BYTES = 16 << 20
MAX_DEPTH = 64
KEYWORD_ROOT = "Faces"
BURST_KEYS = ("BurstID", "BurstUUID")  # e.g. GCamera:BurstID of Pixel phones

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "psorter": "http://ns.photo-sorter.invalid/1.0/",
}
# Orientations 5-8 store the picture turned by 90 degrees (width and height swapped).
_TRANSPOSED = {5, 6, 7, 8}


class XmpError(ValueError):
    """A packet that is not read (too large, too deep, not XML, not XMP): one readable line."""


def q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def parse(data: bytes) -> etree._Element:
    """The root element of an XMP packet, read within the limits above."""
    if len(data) > MAX_BYTES:
        raise XmpError(f"is larger than {MAX_BYTES >> 20} MB")
    depth = 0
    try:
        events = etree.iterparse(io.BytesIO(data), events=("start", "end"), resolve_entities=False,
                                 no_network=True, load_dtd=False, huge_tree=False)
        for event, _element in events:
            depth += 1 if event == "start" else -1
            if depth > MAX_DEPTH:
                raise XmpError(f"is nested deeper than {MAX_DEPTH} elements")
        root = events.root
    except etree.XMLSyntaxError as exc:
        raise XmpError(f"is not valid XML ({exc.msg})") from None
    if root is None:
        raise XmpError("is empty")
    if root.getroottree().docinfo.internalDTD is not None:
        raise XmpError("has a DTD, which XMP never has")
    return root


def read(data: bytes | None) -> etree._Element | None:
    """The root of a photo's embedded packet, or None when it has none or it is not readable:
    a bad packet never costs the photo, only what the packet would have told."""
    if not data:
        return None
    try:
        return parse(data)
    except XmpError:
        return None


def value(root: etree._Element | None, keys) -> str | None:
    """The first non-empty text of a property whose local name is in `keys` (e.g. DateCreated,
    BurstID), written as an attribute or as an element."""
    if root is None:
        return None
    for element in root.iter(etree.Element):
        for key, text in element.attrib.items():
            if etree.QName(key).localname in keys and text.strip():
                return text.strip()[:200]
        if etree.QName(element).localname in keys and (element.text or "").strip():
            return element.text.strip()[:200]
    return None


# ---------------------------------------------------------------- regions


def stored_area(box, size: tuple[int, int], orientation: int) -> tuple[tuple, tuple[int, int]]:
    """A face box (x, y, w, h in the displayed, EXIF-oriented pixels of `size`) as an MWG area:
    centre and size normalised to the stored, unrotated pixel frame, and that frame's size. MWG
    defines regions on the stored frame, which is how exiftool and digiKam read them."""
    x, y, w, h = box
    width, height = size
    u, v, du, dv = (x + w / 2) / width, (y + h / 2) / height, w / width, h / height
    s, t = {1: (u, v), 2: (1 - u, v), 3: (1 - u, 1 - v), 4: (u, 1 - v), 5: (v, u),
            6: (v, 1 - u), 7: (1 - v, 1 - u), 8: (1 - v, u)}.get(orientation, (u, v))
    if orientation in _TRANSPOSED:
        return (s, t, dv, du), (height, width)
    return (s, t, du, dv), (width, height)


def _iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two centre/size boxes."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- sidecars


def merge_sidecar(existing: bytes | None, faces: list[dict], size: tuple[int, int],
                  orientation: int = 1) -> bytes:
    """The sidecar packet with our keywords and regions for `faces` ({box, keywords}) of a photo
    of displayed `size`, replacing ours in `existing` (None: a new sidecar) and keeping the rest.

    Keywords go to dc:subject (leaf names), lr:hierarchicalSubject (Faces|Smiling) and
    digiKam:TagsList (Faces/Smiling), which digiKam, darktable, Lightroom and PhotoPrism read.
    """
    if existing is None:
        root = etree.Element(q("x:xmpmeta"), nsmap={"x": NS["x"]})
    else:
        root = parse(existing)
        if root.tag not in (q("x:xmpmeta"), q("rdf:RDF")):
            raise XmpError("is not an XMP packet")
    rdf = root if root.tag == q("rdf:RDF") else root.find("rdf:RDF", NS)
    if rdf is None:
        rdf = etree.SubElement(root, q("rdf:RDF"), nsmap={"rdf": NS["rdf"]})
    desc = rdf.find("rdf:Description", NS)
    if desc is None:
        desc = etree.SubElement(rdf, q("rdf:Description"), {q("rdf:about"): ""})

    names = sorted({label(a) for f in faces for a in f["keywords"]})
    _replace_keywords(rdf, desc, names)
    if size[0] and size[1]:
        _replace_regions(rdf, desc, faces, size, orientation)
    etree.cleanup_namespaces(root, top_nsmap={p: NS[p] for p in NS if p != "x"})
    etree.indent(root, space=" ")
    body = etree.tostring(root, encoding="unicode")
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{body}\n'
            '<?xpacket end="w"?>\n').encode("utf-8")


def _property(rdf, name: str):
    """A property in any rdf:Description of the packet (None when absent)."""
    for desc in rdf.findall("rdf:Description", NS):
        found = desc.find(name, NS)
        if found is not None:
            return found
    return None


def _items(rdf, name: str) -> list:
    node = _property(rdf, name)
    box = node.find("*") if node is not None else None
    return box.findall("rdf:li", NS) if box is not None else []


def _set_list(rdf, desc, name: str, container: str, keep, add: Iterable[str]) -> None:
    """Keep the property's items for which keep(text) holds, append `add`; an empty property
    is removed."""
    node = _property(rdf, name)
    if node is None:
        node = etree.SubElement(desc, q(name))
    box = node.find("*")
    if box is None:
        box = etree.SubElement(node, q(container))
    for li in box.findall("rdf:li", NS):
        if not keep(li.text or ""):
            box.remove(li)
    for value in add:
        etree.SubElement(box, q("rdf:li")).text = value
    if not len(box):
        node.getparent().remove(node)


def _replace_keywords(rdf, desc, names: list[str]) -> None:
    ours_h, ours_t = f"{KEYWORD_ROOT}|", f"{KEYWORD_ROOT}/"
    hierarchical = [li.text or "" for li in _items(rdf, "lr:hierarchicalSubject")]
    if _property(rdf, "psorter:AddedSubjects") is not None:
        added_before = {li.text for li in _items(rdf, "psorter:AddedSubjects")}
    else:  # a sidecar of an earlier version: our leaves, less those another keyword also has
        others = {k.rsplit("|", 1)[-1] for k in hierarchical if not k.startswith(ours_h)}
        added_before = {k[len(ours_h):] for k in hierarchical if k.startswith(ours_h)} - others
    subject = [li.text for li in _items(rdf, "dc:subject") if li.text not in added_before]
    added = [n for n in names if n not in subject]
    _set_list(rdf, desc, "dc:subject", "rdf:Bag", lambda t: t not in added_before, added)
    _set_list(rdf, desc, "lr:hierarchicalSubject", "rdf:Bag",
              lambda t: t != KEYWORD_ROOT and not t.startswith(ours_h), [ours_h + n for n in names])
    _set_list(rdf, desc, "digiKam:TagsList", "rdf:Seq",
              lambda t: t != KEYWORD_ROOT and not t.startswith(ours_t), [ours_t + n for n in names])
    _set_list(rdf, desc, "psorter:AddedSubjects", "rdf:Bag", lambda t: False, added)


def _replace_regions(rdf, desc, faces: list[dict], size, orientation: int) -> None:
    areas = [stored_area(f["box"], size, orientation)[0] for f in faces]
    frame = (size[1], size[0]) if orientation in _TRANSPOSED else tuple(size)
    regions = _property(rdf, "mwg-rs:Regions")
    if regions is None:
        regions = etree.SubElement(desc, q("mwg-rs:Regions"), {q("rdf:parseType"): "Resource"})
    region_list = regions.find("mwg-rs:RegionList", NS)
    if region_list is None:
        region_list = etree.SubElement(regions, q("mwg-rs:RegionList"))
    bag = region_list.find("rdf:Bag", NS)
    if bag is None:
        bag = etree.SubElement(region_list, q("rdf:Bag"))
    theirs = []
    for li in bag.findall("rdf:li", NS):
        if _is_ours(li):
            bag.remove(li)
        else:
            theirs.append(_area_of(li))
    dims = regions.find("mwg-rs:AppliedToDimensions", NS)
    if theirs and dims is not None:  # their areas are relative to their frame: it must be ours
        w, h = (_number(dims, "stDim", "w"), _number(dims, "stDim", "h"))
        if w and h and abs(w / h - frame[0] / frame[1]) > 0.01:
            raise XmpError(f"has regions that refer to a {w:g}x{h:g} frame, not the photo's "
                           f"{frame[0]}x{frame[1]}; left as it was")
    else:
        if dims is None:
            dims = etree.Element(q("mwg-rs:AppliedToDimensions"))
            regions.insert(0, dims)
        dims.attrib.clear()
        for child in list(dims):
            dims.remove(child)
        dims.attrib.update({q("stDim:w"): str(frame[0]), q("stDim:h"): str(frame[1]),
                            q("stDim:unit"): "pixel"})
    for f, area in zip(faces, areas):
        if any(a is not None and _iou(a, area) > 0.5 for a in theirs):
            continue  # someone's region (e.g. a named face) already covers it
        li = etree.SubElement(bag, q("rdf:li"), {q("rdf:parseType"): "Resource"})
        etree.SubElement(li, q("mwg-rs:Type")).text = "Face"
        if f["keywords"]:
            etree.SubElement(li, q("mwg-rs:Description")).text = ", ".join(label(a) for a in f["keywords"])
        etree.SubElement(li, q("mwg-rs:Area"), {
            q("stArea:x"): f"{area[0]:.6f}", q("stArea:y"): f"{area[1]:.6f}",
            q("stArea:w"): f"{area[2]:.6f}", q("stArea:h"): f"{area[3]:.6f}",
            q("stArea:unit"): "normalized"})
        ext = etree.SubElement(li, q("mwg-rs:Extensions"), {q("rdf:parseType"): "Resource"})
        etree.SubElement(ext, q("psorter:Face")).text = "True"
    if not len(bag):
        regions.getparent().remove(regions)


def _field(li, name: str):
    """A field of a region struct, written as an element or as an attribute, in the li itself
    or in an rdf:Description inside it: (element or None, attribute text or None)."""
    for node in (li, li.find("rdf:Description", NS)):
        if node is None:
            continue
        if node.get(q(name)) is not None:
            return None, node.get(q(name))
        found = node.find(name, NS)
        if found is not None:
            return found, found.text
    return None, None


def _is_ours(li) -> bool:
    """A region we wrote: unnamed, with our marker; from an earlier version, an unnamed face
    whose description holds only attribute labels and nothing else."""
    if (_field(li, "mwg-rs:Name")[1] or "").strip():
        return False
    ext, _ = _field(li, "mwg-rs:Extensions")
    if ext is not None:
        return ext.find("psorter:Face", NS) is not None or ext.get(q("psorter:Face")) is not None
    node = li.find("rdf:Description", NS)
    node = li if node is None else node
    fields = {etree.QName(c).localname for c in node} | {etree.QName(a).localname for a in node.attrib}
    described = (_field(li, "mwg-rs:Description")[1] or "").split(", ")
    labels = {label(a) for a in CELEBA_ATTRIBUTES} | {""}
    return (_field(li, "mwg-rs:Type")[1] == "Face" and fields <= {"Type", "Description", "Area", "parseType"}
            and set(described) <= labels)


def _number(node, prefix: str, key: str) -> float | None:
    text = node.get(q(f"{prefix}:{key}"))
    if text is None:
        child = node.find(f"{prefix}:{key}", NS)
        text = child.text if child is not None else None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _area_of(li) -> tuple | None:
    """Centre/size of an existing region, whether written as attributes or as child elements."""
    area, _ = _field(li, "mwg-rs:Area")
    if area is None:
        return None
    values = [_number(area, "stArea", k) for k in ("x", "y", "w", "h")]
    return None if None in values else tuple(values)
