"""Bursts/events from crafted capture times and the best smiling photo from crafted scores."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image
from sqlalchemy import event, select, update

from library_factory import make_library, scene
from photo_sorter import imaging, scan, selection
from photo_sorter.export import LibraryError
from photo_sorter.store import BestChoice, Photo, predictions_table

T0 = datetime(2024, 5, 1, 12, 0, 0)


def _exif_jpeg(path: Path, when: str, subsec: str | None, seed: int = 0) -> Path:
    exif = Image.Exif()
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = when
    if subsec is not None:
        ifd[ExifTags.Base.SubsecTimeOriginal] = subsec
    Image.fromarray(scene(seed)).save(path, "JPEG", exif=exif)
    return path


def _as_rows(paths: list[Path], burst_ids=None) -> list[dict]:
    """What the scan stores, read through the scan's own EXIF reader."""
    return [{"photo_id": i, "path": str(p), "folder": str(p.parent),
             "captured_at": imaging.open_photo(p).captured_at,
             "burst_id": burst_ids[i] if burst_ids else None} for i, p in enumerate(paths)]


def _groups(groups: list[dict]) -> list[list[int]]:
    return [g["photo_ids"] for g in groups]


def test_sub_seconds_from_exif_separate_and_join_bursts(tmp_path):
    frames = [("2024:05:01 12:00:00", "10"), ("2024:05:01 12:00:00", "40"),
              ("2024:05:01 12:00:00", "90"),
              ("2024:05:01 12:00:02", "95"),   # 2.05 s after the last: a new burst at gap 2 s
              ("2024:05:01 12:00:04", "00"),   # 1.05 s later: same burst as the previous
              ("2024:05:01 14:30:00", None)]   # a new event
    paths = [_exif_jpeg(tmp_path / f"IMG_{i}.jpg", w, s) for i, (w, s) in enumerate(frames)]
    rows = _as_rows(paths)
    assert rows[1]["captured_at"] - rows[0]["captured_at"] == timedelta(milliseconds=300)
    groups = selection.group_bursts(rows, gap_seconds=2.0)
    assert _groups(groups) == [[0, 1, 2], [3, 4], [5]]
    assert [g["event"] for g in groups] == [0, 0, 1]
    # Whole seconds alone (no SubSecTimeOriginal) would have joined photo 3 to the first burst.
    whole = [{**r, "captured_at": r["captured_at"].replace(microsecond=0)} for r in rows]
    assert _groups(selection.group_bursts(whole, gap_seconds=2.0))[0] == [0, 1, 2, 3, 4]
    # The gap is configurable; a long gap joins the first five.
    assert _groups(selection.group_bursts(rows, gap_seconds=3.0)) == [[0, 1, 2, 3, 4], [5]]
    # A short event gap makes the second burst its own event.
    assert [g["event"] for g in selection.group_bursts(rows, 2.0, event_gap_seconds=2.0)] == [0, 1, 2]


def test_burst_markers_and_folders(tmp_path):
    t = [T0, T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=11)]
    rows = [{"photo_id": i, "path": f"/a/{i}.jpg", "folder": "/a", "captured_at": t[i],
             "burst_id": b} for i, b in enumerate(["X", "Y", "Y", None])]
    # Same second but different markers split; one marker joins across 10 s.
    assert _groups(selection.group_bursts(rows)) == [[0], [1, 2, 3]]
    other = {"photo_id": 9, "path": "/b/9.jpg", "folder": "/b", "captured_at": T0, "burst_id": None}
    undated = {"photo_id": 8, "path": "/a/8.jpg", "folder": "/a", "captured_at": None, "burst_id": None}
    groups = selection.group_bursts(rows + [other, undated])
    assert _groups(groups) == [[0], [1, 2, 3], [8], [9]]
    assert len({g["key"] for g in groups}) == 4
    with pytest.raises(LibraryError, match="event gap"):
        selection.group_bursts(rows, gap_seconds=5, event_gap_seconds=1)


def test_visual_split_only_splits(tmp_path):
    same = scene(1)
    noisy = np.clip(same + np.random.default_rng(0).normal(0, 6, same.shape), 0, 255).astype(np.uint8)
    paths = []
    for name, pixels in [("a.jpg", same), ("b.jpg", noisy), ("c.jpg", scene(2))]:
        Image.fromarray(pixels).save(tmp_path / name)
        paths.append(tmp_path / name)
    hashes = {i: imaging.dhash(imaging.thumbnail(p, 64)) for i, p in enumerate(paths)}
    assert (hashes[0] ^ hashes[1]).bit_count() < 10
    assert (hashes[0] ^ hashes[2]).bit_count() > selection.VISUAL_SPLIT_BITS
    rows = [{"photo_id": i, "path": str(p), "folder": "f", "captured_at": T0, "burst_id": None}
            for i, p in enumerate(paths)]
    assert _groups(selection.group_bursts(rows, hashes=hashes)) == [[0, 1], [2]]
    assert _groups(selection.group_bursts(rows)) == [[0, 1, 2]]
    # A far gap is not bridged by similar looks, and an unreadable file never splits.
    far = [dict(r, captured_at=T0 + timedelta(seconds=60 * i)) for i, r in enumerate(rows[:2])]
    assert _groups(selection.group_bursts(far, hashes=hashes)) == [[0], [1]]


def _face(fid, smiling, blurry=0.0):
    return {"face_id": fid, "smiling": smiling, "blurry": blurry}


def _cand(pid, faces, second=0):
    return {"photo_id": pid, "path": f"/p/{pid}.jpg", "captured_at": T0 + timedelta(seconds=second),
            "faces": faces}


def test_ranking_prefers_everyone_smiling_penalises_blur_and_breaks_ties():
    ranked = selection.rank_photos([
        _cand(1, [_face(1, 0.99), _face(2, 0.30)]),          # higher mean, one face not smiling
        _cand(2, [_face(3, 0.70), _face(4, 0.65)], 1),      # everyone smiles
        _cand(3, [], 2),                                     # no face: not a candidate
        _cand(4, [_face(5, 0.95, blurry=0.9), _face(6, 0.9, blurry=0.8)], 3),  # smiling but blurry
    ])
    assert [r["photo_id"] for r in ranked] == [2, 4, 1]
    assert ranked[0]["everyone_smiling"] and ranked[0]["n_smiling"] == 2
    assert ranked[1]["score"] == pytest.approx((0.95 * 0.1 + 0.9 * 0.2) / 2)
    reasons = selection.explain(ranked)
    assert reasons[0] == "everyone smiles (2/2 faces)" and "0.70, 0.65" in reasons[1]
    assert "runner-up photo 4" in reasons[-1]
    blurry_first = selection.explain(ranked[1:])
    assert any("blurry" in r for r in blurry_first)
    # A tie goes to the earlier photo, and says so.
    tie = selection.rank_photos([_cand(7, [_face(1, 0.8)], 5), _cand(8, [_face(2, 0.8)], 4)])
    assert [r["photo_id"] for r in tie] == [8, 7]
    assert "tied with photo 7" in selection.explain(tie)[-1]
    assert selection.rank_photos([_cand(9, [])]) == []


@pytest.fixture
def burst_library(tmp_path, db_url):
    photos = [
        {"name": "b1.jpg", "captured_at": T0, "faces": [{"probs": {"Smiling": 0.2}}, {"probs": {"Smiling": 0.9}}]},
        {"name": "b2.jpg", "captured_at": T0 + timedelta(seconds=0.5),
         "faces": [{"probs": {"Smiling": 0.8}}, {"probs": {"Smiling": 0.85}}]},
        {"name": "b3.jpg", "captured_at": T0 + timedelta(seconds=1), "faces": []},
        {"name": "solo.jpg", "captured_at": T0 + timedelta(minutes=5), "faces": [{"probs": {"Smiling": 0.9}}]},
        {"name": "n1.jpg", "captured_at": T0 + timedelta(minutes=9), "faces": []},
        {"name": "n2.jpg", "captured_at": T0 + timedelta(minutes=9, seconds=1), "faces": []},
    ]
    for p in photos[:3]:  # one scene for the burst, so the visual split keeps it whole
        p["pixels"] = scene(42)
    engine, ids, faces = make_library(db_url, photos, photo_dir=tmp_path / "photos")
    return engine, ids, faces, tmp_path


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.jpg"))}


def test_best_smiling_manual_choice_survives_rescans(burst_library):
    engine, ids, faces, tmp = burst_library
    before = _digest(tmp / "photos")
    groups = selection.best_smiling(engine)
    # solo (1 photo) and the no-face pair are not groups to choose from.
    assert len(groups) == 1
    g = groups[0]
    assert g["photo_ids"] == ids[:3] and g["best"]["photo_id"] == ids[1] and not g["manual"]
    assert [r["photo_id"] for r in g["ranking"]] == [ids[1], ids[0]]
    assert g["reasons"][0] == "everyone smiles (2/2 faces)"
    assert selection.best_smiling(engine, visual_split=False)[0]["photo_ids"] == ids[:3]

    with pytest.raises(LibraryError, match="has no faces"):
        selection.choose_best(engine, g["key"], ids[2])
    with pytest.raises(LibraryError, match="no photo with id"):
        selection.choose_best(engine, g["key"], 999)
    selection.choose_best(engine, g["key"], ids[0])
    with engine.begin() as conn:  # a rescan writes new predictions: the pick still stands
        conn.execute(update(predictions_table).where(predictions_table.c.face_id.in_(faces["b1.jpg"]))
                     .values(Smiling=0.05))
    again = selection.best_smiling(engine, gap_seconds=0.75)  # other parameters, other key
    assert again[0]["best"]["photo_id"] == ids[0] and again[0]["manual"]
    assert again[0]["reasons"][0].startswith("your choice")
    # Clearing by the key the burst has now also clears a pick filed under an older key,
    # and the best-smiling run that showed the new key wrote nothing (a reader stays a reader).
    selection.choose_best(engine, g["key"], ids[1])
    split = {"visual_split": False, "gap_seconds": 0.1}
    writes = []
    listen = lambda conn, cursor, sql, *a: writes.append(sql) if not sql.lstrip().upper().startswith(
        ("SELECT", "PRAGMA", "WITH")) else None
    event.listen(engine, "before_cursor_execute", listen)
    try:
        moved = selection.best_smiling(engine, min_photos=1, **split)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert writes == []
    moved_key = next(m["key"] for m in moved if ids[1] in m["photo_ids"])
    assert moved_key != g["key"] and next(m for m in moved if m["key"] == moved_key)["manual"]
    with pytest.raises(LibraryError, match="not in burst"):
        selection.choose_best(engine, moved_key, ids[0], **split)
    selection.choose_best(engine, moved_key, None, **split)
    assert not selection.best_smiling(engine)[0]["manual"]
    # A pick replaces every earlier pick of the burst's photos, whatever key it was filed under.
    def picks():
        with engine.connect() as conn:
            return conn.execute(select(BestChoice.group_key, BestChoice.photo_id)).all()
    selection.choose_best(engine, g["key"], ids[1])
    selection.choose_best(engine, moved_key, ids[1], **split)
    assert picks() == [(moved_key, ids[1])]
    selection.choose_best(engine, g["key"], ids[0])
    assert picks() == [(g["key"], ids[0])]
    selection.choose_best(engine, moved_key, ids[1], **split)
    # A key the parameters no longer produce still names its burst through its first photo.
    selection.choose_best(engine, moved_key, None)
    assert not selection.best_smiling(engine)[0]["manual"]
    selection.choose_best(engine, g["key"], ids[0])
    selection.choose_best(engine, g["key"], None)
    assert selection.best_smiling(engine)[0]["best"]["photo_id"] == ids[1]

    copies = selection.copy_best(groups + groups, tmp / "best")
    assert [Path(c).name for c in copies] == ["b2.jpg", "b2_1.jpg"]
    assert _digest(tmp / "photos") == before


BURST_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             b'<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
             b'GCamera:BurstID="burst-7"/></rdf:RDF></x:xmpmeta>')


def test_xmp_burst_marker_joins_frames_beyond_the_gap(tmp_path):
    smile = lambda p: [{"probs": {"Smiling": p}}]
    photos = [
        {"name": "m1.jpg", "captured_at": T0, "save": {"xmp": BURST_XMP}, "faces": smile(0.3)},
        {"name": "m2.jpg", "captured_at": T0 + timedelta(seconds=10), "save": {"xmp": BURST_XMP},
         "faces": smile(0.9)},
        {"name": "u1.jpg", "captured_at": T0 + timedelta(minutes=5), "faces": smile(0.3)},
        {"name": "u2.jpg", "captured_at": T0 + timedelta(minutes=5, seconds=10), "faces": smile(0.9)},
    ]
    engine, ids, _ = make_library(tmp_path / "lib.db", photos, photo_dir=tmp_path / "photos")
    assert imaging.open_photo(tmp_path / "photos" / "album" / "m1.jpg").burst_id == "burst-7"
    assert selection.best_smiling(engine, min_photos=1)[0]["photo_ids"] == ids[:1]  # not read yet
    assert scan.fill_photo_facts(engine, [tmp_path / "elsewhere"]) == 0  # only under the roots
    assert scan.fill_photo_facts(engine) == 4  # the scan's step for photos it has no facts of
    assert scan.fill_photo_facts(engine) == 0
    groups = selection.best_smiling(engine)
    assert [g["photo_ids"] for g in groups] == [ids[:2]]  # the unmarked pair is 10 s apart
    assert groups[0]["best"]["photo_id"] == ids[1]
    with engine.connect() as conn:
        stored = conn.execute(select(Photo.burst_id).order_by(Photo.id)).scalars().all()
    assert stored == ["burst-7", "burst-7", None, None]


def test_best_smiling_only_reads_the_library(burst_library, monkeypatch):
    """Readers stay readers: no photo is opened and nothing is written while ranking; what the
    visual split needs was stored by the scan (here its step for already-known photos)."""
    engine, ids, _, tmp = burst_library
    assert scan.fill_photo_facts(engine) == len(ids)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0].upper()))

    def no_photos(*_args, **_kwargs):
        raise AssertionError("best_smiling opened a photo")

    monkeypatch.setattr(Image, "open", no_photos)
    groups = selection.best_smiling(engine)
    assert [g["photo_ids"] for g in groups] == [ids[:3]]
    assert statements and set(statements) == {"SELECT"}
