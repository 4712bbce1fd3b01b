"""SQLAlchemy 2.0 ORM tables of the library database.

Predictions are stored wide (one row per face and model, one column per CelebA attribute) so that
attribute expressions become plain indexed SQL over one table; a model that predicts a subset of
the attributes leaves the other columns NULL.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, String,
    Table, Text, TypeDecorator, UniqueConstraint, delete, func, select,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column, relationship

from photo_sorter.attributes import CELEBA_ATTRIBUTES
from photo_sorter.store.errors import DatabaseError


class StoredDateError(DatabaseError):
    """A stored date that is not a date (a hand-edited database); one line naming the value."""


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite keeps dates as text: one edited by hand into something else is reported as such
    (StoredDateError, one line) instead of a parser traceback; other ISO 8601 forms are read."""

    def result_processor(self, dialect, coltype):
        parse = super().result_processor(dialect, coltype)

        def process(value):
            try:
                return parse(value)
            except (TypeError, ValueError):
                try:
                    return datetime.fromisoformat(value)
                except (TypeError, ValueError):
                    raise StoredDateError(
                        f"the library holds {value!r} where a date belongs (edited by hand?); "
                        "correct or clear that value") from None

        return process


DateTime = _DateTime().with_variant(_SQLiteDateTime(), "sqlite")
# file sizes and mtime_ns (~1.8e18): SQLite's INTEGER is 64-bit already (migration 0004)
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


_ESCAPE = "\uffff"  # a Unicode noncharacter: no real name uses it, and it is doubled if one does
_NEEDS_ESCAPE = re.compile("[\ud800-\udfff\uffff]")
_ESCAPED = re.compile("\uffff(\uffff|[0-9a-f]{4})")


class PathText(TypeDecorator):
    """A file path exactly as Python names the file (os.fsdecode: the bytes of a name that is
    not valid UTF-8 become lone surrogates), stored as valid text. Each surrogate is stored as
    U+FFFF and four hex digits and U+FFFF itself is doubled, so the mapping is reversible and
    no two names collide; every other character is stored as itself, and being per character,
    a folder's prefix (LIKE 'folder/%') stays a prefix."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or not _NEEDS_ESCAPE.search(value):
            return value
        return _NEEDS_ESCAPE.sub(lambda m: _ESCAPE + (_ESCAPE if m[0] == _ESCAPE else f"{ord(m[0]):04x}"), value)

    def process_result_value(self, value, dialect):
        if value is None or _ESCAPE not in value:
            return value
        return _ESCAPED.sub(lambda m: m[1] if m[1] == _ESCAPE else chr(int(m[1], 16)), value)


class Photo(Base):
    """One image file of the library. `status`: ok | error | missing."""

    __tablename__ = "photos"
    # a face's one photo (face_photo) from the index alone, whatever the planner's statistics
    __table_args__ = (Index("ix_photos_content_status_id", "content_hash", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)
    folder: Mapped[str] = mapped_column(PathText, index=True)
    size: Mapped[int | None] = mapped_column(BigInt)
    mtime_ns: Mapped[int | None] = mapped_column(BigInt)
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="ok", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)   # after EXIF orientation
    height: Mapped[int | None] = mapped_column(Integer)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)  # with sub-seconds
    capture_source: Mapped[str | None] = mapped_column(String(16))  # exif | xmp | filename | mtime
    camera: Mapped[str | None] = mapped_column(Text)
    burst_id: Mapped[str | None] = mapped_column(Text)
    companions: Mapped[list | None] = mapped_column(JSON)  # other files of the shot (its RAW), by name
    n_faces: Mapped[int] = mapped_column(Integer, default=0)
    scanned_at: Mapped[datetime | None] = mapped_column(DateTime)

    # The faces of its content, shared by every copy (read-only here: scan.py writes faces).
    faces: Mapped[list[Face]] = relationship(
        primaryjoin="foreign(Face.content_hash) == Photo.content_hash", viewonly=True,
        order_by="Face.index",
    )


class Face(Base):
    """A detected face: box and 5 landmarks in oriented full-resolution pixel coordinates.
    Faces belong to a content (the sha256 of the file's bytes), not to a path: copies of one
    file share one set of faces and predictions, stored once. Faces whose content no photo row
    has any more are dropped (drop_unshared_faces)."""

    __tablename__ = "faces"
    __table_args__ = (UniqueConstraint("content_hash", "index", name="uq_faces_content_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    index: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[list] = mapped_column(JSON)  # [[x, y] * 5]: eyes, nose, mouth corners
    crop: Mapped[bytes | None] = mapped_column(LargeBinary)  # aligned frame, JPEG at half size


def face_photo(face=Face):
    """Join condition giving each face ONE photo (face-level listings: clusters, face queries):
    the first readable photo with its content, so copies do not count a face twice."""
    first = aliased(Photo)
    return Photo.id == (select(func.min(first.id))
                        .where(first.content_hash == face.content_hash, first.status == "ok")
                        .scalar_subquery())


def drop_unshared_faces(session, hashes=None) -> None:
    """Delete the faces (with their predictions and cluster memberships) of contents that no
    photo row has any more (`hashes`: only among those; None: all). Missing photos keep theirs."""
    shared = select(Photo.id).where(Photo.content_hash == Face.content_hash).exists()
    stmt = delete(Face).where(~shared)
    if hashes is not None:
        hashes = [h for h in set(hashes) if h is not None]
        if not hashes:
            return
        stmt = stmt.where(Face.content_hash.in_(hashes))
    session.execute(stmt)


def card_sha256(card: dict) -> str:
    """A card's identity: its canonical JSON, so only a change of content makes a new model."""
    text = json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class ModelVersion(Base):
    """An attribute model the library has predictions from; exactly one is active. A model is
    its weights and its card together (store/registry.py): the same weights with another card
    are another model, so values are never stored under another card's names."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("sha256", "card_sha256", name="uq_models_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))  # of the .keras file
    card_sha256: Mapped[str] = mapped_column(  # of the card's canonical JSON
        String(64), default=lambda ctx: card_sha256(ctx.get_current_parameters()["card"]))
    path: Mapped[str] = mapped_column(Text)
    attributes: Mapped[list] = mapped_column(JSON)
    thresholds: Mapped[dict] = mapped_column(JSON)
    card: Mapped[dict] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


predictions_table = Table(
    "predictions",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("face_id", ForeignKey("faces.id", ondelete="CASCADE"), nullable=False),
    Column("model_id", ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    *[Column(name, Float) for name in CELEBA_ATTRIBUTES],
    UniqueConstraint("face_id", "model_id"),
    Index("ix_predictions_model_face", "model_id", "face_id"),
    # One per attribute, so `Smiling > 0.9` under a model is an index range scan (query.py).
    *[Index(f"ix_predictions_model_{name}", "model_id", name) for name in CELEBA_ATTRIBUTES],
)


class Prediction(Base):
    """Probabilities of one face under one model; columns are named by attribute."""

    __table__ = predictions_table


class ScanRun(Base):
    __tablename__ = "scan_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    roots: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|cancelled|failed
    summary: Mapped[dict | None] = mapped_column(JSON)


class ClusterRun(Base):
    __tablename__ = "cluster_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    attributes: Mapped[list] = mapped_column(JSON)
    k: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    silhouette: Mapped[float | None] = mapped_column(Float)
    params: Mapped[dict] = mapped_column(JSON, default=dict)

    clusters: Mapped[list[Cluster]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Cluster.index"
    )


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("cluster_runs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    centroid: Mapped[list] = mapped_column(JSON)
    mean_probabilities: Mapped[dict] = mapped_column(JSON)
    sheet_path: Mapped[str | None] = mapped_column(Text)

    run: Mapped[ClusterRun] = relationship(back_populates="clusters")
    members: Mapped[list[ClusterMember]] = relationship(
        back_populates="cluster", cascade="all, delete-orphan", order_by="ClusterMember.distance"
    )


class ClusterMember(Base):
    __tablename__ = "cluster_members"

    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True)
    distance: Mapped[float] = mapped_column(Float)

    cluster: Mapped[Cluster] = relationship(back_populates="members")


class BestChoice(Base):
    """A user's manual pick of the best photo of a burst, keyed by a stable group key."""

    __tablename__ = "best_choices"

    group_key: Mapped[str] = mapped_column(Text, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    chosen_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


class PhotoHash(Base):
    """Perceptual hash (64-bit dHash, hex) of a whole photo, for splitting bursts by look; valid
    while the file's size and mtime are unchanged. Filled lazily by selection.py."""

    __tablename__ = "photo_hashes"

    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int | None] = mapped_column(BigInt)
    mtime_ns: Mapped[int | None] = mapped_column(BigInt)
    dhash: Mapped[str | None] = mapped_column(String(16))  # None: the file could not be read
