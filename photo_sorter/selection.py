"""Bursts, events and the best smiling photo of each burst.

Photos of one folder are chained by capture time (sub-second when the camera wrote
SubSecTimeOriginal; the scan stores it in Photo.captured_at): a gap longer than `gap_seconds`
starts a new burst, one longer than `event_gap_seconds` a new event. Photos that share a camera
burst marker (Photo.burst_id, e.g. XMP BurstID) stay together whatever their times, and a change of
marker always splits. Optionally a whole-photo perceptual hash splits a burst where consecutive
frames look clearly different; it never merges, because frames of one burst with changing
expressions can look different too. Marker and hash are read by the scan (scan.fill_photo_facts
for libraries scanned before); this module only reads the library.

Default burst gap 2 s: other tools use 0.5-3 s. Burst frames of phones and cameras come
0.05-0.5 s apart, and a quick "one more" retake 1-2 s later is still the same shot to choose
from, while 3 s already joins separate poses. Default event gap: one hour without a photo.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from photo_sorter.export import LibraryError, active_model, face_rows, photo_rows
from photo_sorter.outputs import Outputs
from photo_sorter.store import BestChoice, Photo, PhotoHash, library_lock, session_factory

DEFAULT_GAP_SECONDS = 2.0
DEFAULT_EVENT_GAP_SECONDS = 3600.0
VISUAL_SPLIT_BITS = 20    # of 64 dHash bits: near-duplicates differ by <10, unrelated scenes by ~32


# ---------------------------------------------------------------- grouping


def group_bursts(photos: list[dict], gap_seconds: float = DEFAULT_GAP_SECONDS,
                 event_gap_seconds: float = DEFAULT_EVENT_GAP_SECONDS,
                 hashes: dict[int, int | None] | None = None,
                 split_bits: int = VISUAL_SPLIT_BITS) -> list[dict]:
    """Group photos ({photo_id, path, folder, captured_at, burst_id}) into bursts within events.

    hashes (photo_id -> 64-bit perceptual hash) turns on the visual split. Photos without a
    capture time stand alone. Returns groups in folder/time order: {key, folder, event,
    photo_ids, start, end}; `key` (folder, first capture time and file name) identifies a burst
    across runs.
    """
    if gap_seconds < 0 or event_gap_seconds < gap_seconds:
        raise LibraryError("gaps must be >= 0 s, and the event gap at least the burst gap")
    groups: list[dict] = []
    event = -1
    by_folder: dict[str, list[dict]] = {}
    for ph in photos:
        by_folder.setdefault(ph["folder"], []).append(ph)
    for folder in sorted(by_folder):
        timed = sorted((p for p in by_folder[folder] if p["captured_at"] is not None),
                       key=lambda p: (p["captured_at"], p["path"]))
        prev = None
        for ph in timed:
            gap = (ph["captured_at"] - prev["captured_at"]).total_seconds() if prev else None
            if prev is None or gap > event_gap_seconds:
                event += 1
                groups.append(_new_group(folder, event, ph))
            elif _starts_burst(prev, ph, gap, gap_seconds, hashes, split_bits):
                groups.append(_new_group(folder, event, ph))
            else:
                groups[-1]["photo_ids"].append(ph["photo_id"])
                groups[-1]["end"] = ph["captured_at"]
            prev = ph
        for ph in sorted((p for p in by_folder[folder] if p["captured_at"] is None),
                         key=lambda p: p["path"]):
            event += 1
            groups.append(_new_group(folder, event, ph))
    return groups


def _new_group(folder: str, event: int, ph: dict) -> dict:
    start = ph["captured_at"]
    key = f"{folder}|{start.isoformat() if start else '-'}|{Path(ph['path']).name}"
    return {"key": key, "folder": folder, "event": event, "photo_ids": [ph["photo_id"]],
            "start": start, "end": start}


def _starts_burst(prev: dict, ph: dict, gap: float, gap_seconds: float, hashes, split_bits) -> bool:
    a, b = prev.get("burst_id"), ph.get("burst_id")
    if a and b:
        return a != b  # the camera's own marker decides
    if gap > gap_seconds:
        return True
    if hashes is not None:
        ha, hb = hashes.get(prev["photo_id"]), hashes.get(ph["photo_id"])
        if ha is not None and hb is not None and (ha ^ hb).bit_count() > split_bits:
            return True
    return False


def photo_facts(session, folder: str | None = None) -> dict[int, int | None]:
    """photo_id -> perceptual hash, as the scan stored it for each photo's current file version
    (None where it has none), of one folder or all. Only reads the library: the photos are not
    opened."""
    stmt = (select(PhotoHash.photo_id, PhotoHash.dhash).join(Photo, Photo.id == PhotoHash.photo_id)
            .where(Photo.status == "ok", PhotoHash.size.is_not_distinct_from(Photo.size),
                   PhotoHash.mtime_ns.is_not_distinct_from(Photo.mtime_ns)))
    if folder is not None:
        stmt = stmt.where(Photo.folder == folder)
    rows = session.execute(stmt)
    return {photo_id: int(value, 16) if value else None for photo_id, value in rows}


# ---------------------------------------------------------------- ranking


def face_score(smiling: float, blurry: float | None) -> float:
    """Smile probability, discounted by the chance the face is blurry."""
    return smiling * (1.0 - (blurry or 0.0))


def rank_photos(candidates: list[dict], smile_threshold: float = 0.5) -> list[dict]:
    """Order photos ({photo_id, captured_at, path, faces: [{face_id, smiling, blurry}]}) best
    first: most of their faces smiling (everyone smiling first), then the mean face score, then
    the least-smiling face; a full tie goes to the earlier photo. Photos without faces are left
    out. Each result carries its scores and per-face scores."""
    ranked = []
    for c in candidates:
        faces = [f for f in c["faces"] if f.get("smiling") is not None]
        if not faces:
            continue
        scores = [face_score(f["smiling"], f.get("blurry")) for f in faces]
        n_smiling = sum(f["smiling"] >= smile_threshold for f in faces)
        ranked.append({
            "photo_id": c["photo_id"], "path": c["path"], "captured_at": c["captured_at"],
            "n_faces": len(faces), "n_smiling": n_smiling,
            "everyone_smiling": n_smiling == len(faces),
            "score": sum(scores) / len(scores), "min_face_score": min(scores),
            "faces": [{"face_id": f["face_id"], "smiling": round(f["smiling"], 4),
                       "blurry": None if f.get("blurry") is None else round(f["blurry"], 4),
                       "score": round(s, 4)} for f, s in zip(faces, scores)],
        })
    ranked.sort(key=lambda r: (tuple(-v for v in _rank_key(r)), r["captured_at"] is None,
                               r["captured_at"] or datetime.min, r["path"]))
    return ranked


def _rank_key(r: dict) -> tuple:
    """What decides between photos (higher is better); equal keys are a tie."""
    return (r["n_smiling"] / r["n_faces"], round(r["score"], 6), round(r["min_face_score"], 6))


def explain(ranked: list[dict]) -> list[str]:
    """Why the first photo of a ranking won, in words."""
    best = ranked[0]
    per_face = ", ".join(f"{f['score']:.2f}" for f in best["faces"])
    reasons = [
        ("everyone smiles" if best["everyone_smiling"] else "not everyone smiles")
        + f" ({best['n_smiling']}/{best['n_faces']} faces)",
        f"smile score {best['score']:.2f} (per face, smile x (1 - blur): {per_face})",
    ]
    blurry = [f for f in best["faces"] if (f["blurry"] or 0) >= 0.5]
    if blurry:
        reasons.append(f"{len(blurry)} face(s) look blurry, which lowered the score")
    if len(ranked) > 1:
        second = ranked[1]
        if _rank_key(second) == _rank_key(best):
            reasons.append(f"tied with photo {second['photo_id']}; the earlier photo wins")
        else:
            reasons.append(f"runner-up photo {second['photo_id']}: {second['n_smiling']}/"
                           f"{second['n_faces']} smiling, score {second['score']:.2f}")
    return reasons


def plain_ranking(ranked: list[dict]) -> list[str]:
    """One short phrase per photo of a ranking, in plain words and without ids or formulas:
    'everyone smiles' for the first, then how each other photo falls short of it
    ('smiles less', 'fewer people smiling', 'more blurred', 'as good, taken later')."""
    if not ranked:
        return []
    best = ranked[0]
    if best["everyone_smiling"]:
        out = ["everyone smiles"]
    elif not best["n_smiling"]:
        out = ["nobody smiles" if best["n_faces"] > 1 else "not smiling"]
    else:
        out = [f"{best['n_smiling']} of {best['n_faces']} smiling"]
    for r in ranked[1:]:
        if _rank_key(r) == _rank_key(best):
            out.append("as good, taken later")
        elif r["n_smiling"] / r["n_faces"] < best["n_smiling"] / best["n_faces"]:
            out.append("fewer people smiling" if best["n_faces"] > 1 else "not smiling")
        else:
            blur = max((f["blurry"] or 0) for f in r["faces"]) if r["faces"] else 0
            best_blur = max((f["blurry"] or 0) for f in best["faces"]) if best["faces"] else 0
            smile = sum(f["smiling"] for f in r["faces"]) / len(r["faces"])
            best_smile = sum(f["smiling"] for f in best["faces"]) / len(best["faces"])
            out.append("more blurred" if blur - best_blur > best_smile - smile else "smiles less")
    return out


# ---------------------------------------------------------------- the library


def best_smiling(engine, gap_seconds: float = DEFAULT_GAP_SECONDS,
                 event_gap_seconds: float = DEFAULT_EVENT_GAP_SECONDS, visual_split: bool = True,
                 min_photos: int = 2, model_id: int | None = None) -> list[dict]:
    """The best smiling photo of every burst of at least `min_photos` photos with faces.

    Each group: key, folder, event, start, end, photo_ids, best {photo_id, path}, auto_best,
    manual (the user's stored choice won), ranking (scores and per-face scores), reasons.
    """
    with session_factory(engine)() as session:
        model = active_model(session, model_id)
        smile_threshold = float(model.thresholds.get("Smiling", 0.5))
        if "Smiling" not in model.attributes:
            raise LibraryError("the active model does not predict Smiling")
        photos, groups = _bursts(session, None, gap_seconds, event_gap_seconds, visual_split)
        faces = face_rows(session, model, [a for a in ("Smiling", "Blurry") if a in model.attributes],
                          each_copy=True)
        choices = {c.photo_id: c for c in session.scalars(select(BestChoice))}
        content = dict(session.execute(select(Photo.id, Photo.content_hash).where(Photo.status == "ok")).all())
    faces_of: dict[int, list[dict]] = {}
    for f in faces:
        faces_of.setdefault(f["photo_id"], []).append(
            {"face_id": f["face_id"], "smiling": f["probabilities"]["Smiling"],
             "blurry": f["probabilities"].get("Blurry")})
    info = {p["photo_id"]: p for p in photos}
    out = []
    for group in groups:
        if len(group["photo_ids"]) < min_photos:
            continue
        ranked = rank_photos([{**info[i], "faces": faces_of.get(i, [])}
                              for i in _one_per_content(group["photo_ids"], content, choices)],
                             smile_threshold)
        if not ranked:
            continue
        reasons = explain(ranked)
        best = ranked[0]["photo_id"]
        chosen = [choices[i] for i in group["photo_ids"] if i in choices]
        if chosen:  # picks filed under the burst's older keys count too; the latest one wins
            best = max(chosen, key=lambda c: (c.chosen_at, c.photo_id)).photo_id
            reasons.insert(0, f"your choice (the automatic pick was photo {ranked[0]['photo_id']})")
        out.append({**group, "best": {"photo_id": best, "path": info[best]["path"]},
                    "auto_best": ranked[0]["photo_id"], "manual": bool(chosen),
                    "ranking": ranked, "reasons": reasons})
    return out


def _bursts(session, folder: str | None, gap_seconds: float, event_gap_seconds: float,
            visual_split: bool) -> tuple[list[dict], list[dict]]:
    """The readable photos (of one folder, or all) and their bursts, from stored facts only."""
    photos = photo_rows(session, folder=folder)
    hashes = photo_facts(session, folder) if visual_split else None
    return photos, group_bursts(photos, gap_seconds, event_gap_seconds, hashes)


def _one_per_content(ids: list[int], content: dict, choices: dict) -> list[int]:
    """A burst's candidates with copies (same content) counted once: a chosen copy stands for
    its content, else the first one."""
    first: dict = {}
    for i in sorted(ids, key=lambda i: i not in choices):
        first.setdefault(content.get(i) or i, i)
    kept = set(first.values())
    return [i for i in ids if i in kept]


def choose_best(engine, group_key: str, photo_id: int | None,
                gap_seconds: float = DEFAULT_GAP_SECONDS,
                event_gap_seconds: float = DEFAULT_EVENT_GAP_SECONDS, visual_split: bool = True) -> dict:
    """Store the user's pick for a burst (None clears it); later runs and rescans respect it.

    The burst is grouped again with the parameters that produced `group_key` (those of
    best_smiling), so every earlier pick of any of its photos is replaced or cleared, whatever
    key it was filed under when the burst started elsewhere: best_smiling itself only reads."""
    with library_lock(engine, doing="choose-best"), session_factory(engine)() as session:
        photo = None
        if photo_id is not None:
            photo = session.get(Photo, photo_id)
            if photo is None:
                raise LibraryError(f"no photo with id {photo_id} in the library")
            if not photo.n_faces:
                raise LibraryError(f"photo {photo_id} has no faces, so it cannot be the best smiling photo")
            if not group_key.startswith(f"{photo.folder}|"):
                raise LibraryError(f"photo {photo_id} is not in the folder of group {group_key!r}")
        members = _members(session, group_key, photo, gap_seconds, event_gap_seconds, visual_split)
        stale = session.scalars(select(BestChoice).where(
            (BestChoice.group_key == group_key) | BestChoice.photo_id.in_(members))).all()
        for choice in stale:
            session.delete(choice)
        session.flush()
        if photo is not None:
            session.add(BestChoice(group_key=group_key, photo_id=photo_id, chosen_at=datetime.now()))
        session.commit()
    if photo is None:
        return {"group_key": group_key, "photo_id": None, "cleared": bool(stale)}
    return {"group_key": group_key, "photo_id": photo_id, "path": photo.path}


def _members(session, group_key: str, photo, gap_seconds: float, event_gap_seconds: float,
             visual_split: bool) -> list[int]:
    """The photos of the burst `group_key` names. A key these parameters no longer produce (the
    burst now starts elsewhere) names the burst of the photo it started with, or of `photo`.
    A photo of another burst is refused."""
    folders = [f for f in session.scalars(select(Photo.folder).distinct()) if group_key.startswith(f"{f}|")]
    for folder in sorted(folders, key=len, reverse=True):
        photos, groups = _bursts(session, folder, gap_seconds, event_gap_seconds, visual_split)
        first = group_key[len(folder) + 1:].split("|", 1)[-1]
        anchors = [p["photo_id"] for p in photos if Path(p["path"]).name == first]
        group = (next((g for g in groups if g["key"] == group_key), None)
                 or next((g for g in groups if set(anchors) & set(g["photo_ids"])), None)
                 or next((g for g in groups if photo is not None and photo.id in g["photo_ids"]), None))
        if group is None:
            continue
        if photo is not None and photo.id not in group["photo_ids"]:
            raise LibraryError(f"photo {photo.id} is not in burst {group_key!r}")
        return group["photo_ids"]
    return []


def copy_best(groups: list[dict], out_dir: str | Path, engine=None) -> list[str]:
    """Copy each group's best photo into out_dir (see copy_files)."""
    return copy_files([group["best"]["path"] for group in groups], out_dir, engine)


def copy_files(paths: list[str], out_dir: str | Path, engine=None) -> list[str]:
    """Copy photos into out_dir (the originals stay where they are); a name already taken there
    gets a numbered suffix, so nothing is ever overwritten. The copies are listed as the tool's
    outputs, so scanning out_dir never takes them for new photos. Returns the copies' paths."""
    outputs = Outputs(engine)
    copied = []
    for path in paths:
        src = Path(path)
        target = Path(out_dir) / src.name
        n = 1
        while os.path.lexists(target):
            target = Path(out_dir) / f"{src.stem}_{n}{src.suffix}"
            n += 1
        copied.append(str(outputs.copy(src, target, root=out_dir)))
    return copied
