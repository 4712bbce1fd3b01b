"""The schema as photo_sorter created it before migrations existed (commit 0250049).

Libraries from then carry no version: the store recognises this exact schema (`metadata()`),
stamps it with this revision and upgrades from here. Frozen: never edit, add a migration instead.
"""

from alembic import op
from sqlalchemy import (
    JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, MetaData,
    String, Table, Text, UniqueConstraint, func,
)

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# The attribute columns of `predictions` at that time, in their order.
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def metadata() -> MetaData:
    """The baseline tables, as plain SQLAlchemy Core (dialect-neutral DDL)."""
    md = MetaData()
    Table(
        "photos", md,
        Column("id", Integer, primary_key=True),
        Column("path", Text, nullable=False, unique=True),
        Column("folder", Text, nullable=False, index=True),
        Column("size", Integer),
        Column("mtime_ns", Integer),
        Column("content_hash", String(64), index=True),
        Column("status", String(16), nullable=False, index=True),
        Column("error", Text),
        Column("width", Integer),
        Column("height", Integer),
        Column("captured_at", DateTime, index=True),
        Column("capture_source", String(16)),
        Column("camera", Text),
        Column("burst_id", Text),
        Column("n_faces", Integer, nullable=False),
        Column("scanned_at", DateTime),
    )
    Table(
        "models", md,
        Column("id", Integer, primary_key=True),
        Column("name", Text, nullable=False),
        Column("sha256", String(64), nullable=False, unique=True),
        Column("path", Text, nullable=False),
        Column("attributes", JSON, nullable=False),
        Column("thresholds", JSON, nullable=False),
        Column("card", JSON, nullable=False),
        Column("active", Boolean, nullable=False),
        Column("added_at", DateTime, nullable=False, server_default=func.now()),
    )
    Table(
        "scan_runs", md,
        Column("id", Integer, primary_key=True),
        Column("started_at", DateTime, nullable=False, server_default=func.now()),
        Column("finished_at", DateTime),
        Column("roots", JSON, nullable=False),
        Column("status", String(16), nullable=False),
        Column("summary", JSON),
    )
    Table(
        "faces", md,
        Column("id", Integer, primary_key=True),
        Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("index", Integer, nullable=False),
        Column("x", Float, nullable=False),
        Column("y", Float, nullable=False),
        Column("w", Float, nullable=False),
        Column("h", Float, nullable=False),
        Column("confidence", Float, nullable=False),
        Column("landmarks", JSON, nullable=False),
        Column("crop", LargeBinary),
        UniqueConstraint("photo_id", "index"),
    )
    Table(
        "cluster_runs", md,
        Column("id", Integer, primary_key=True),
        Column("created_at", DateTime, nullable=False, server_default=func.now()),
        Column("model_id", ForeignKey("models.id", ondelete="SET NULL")),
        Column("attributes", JSON, nullable=False),
        Column("k", Integer, nullable=False),
        Column("seed", Integer, nullable=False),
        Column("silhouette", Float),
        Column("params", JSON, nullable=False),
    )
    Table(
        "best_choices", md,
        Column("group_key", Text, primary_key=True),
        Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
        Column("chosen_at", DateTime, nullable=False, server_default=func.now()),
    )
    Table(
        "photo_hashes", md,
        Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
        Column("size", Integer),
        Column("mtime_ns", Integer),
        Column("dhash", String(16)),
    )
    Table(
        "predictions", md,
        Column("id", Integer, primary_key=True),
        Column("face_id", ForeignKey("faces.id", ondelete="CASCADE"), nullable=False),
        Column("model_id", ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        *[Column(name, Float) for name in ATTRIBUTES],
        UniqueConstraint("face_id", "model_id"),
        Index("ix_predictions_model_face", "model_id", "face_id"),
        *[Index(f"ix_predictions_model_{name}", "model_id", name) for name in ATTRIBUTES],
    )
    Table(
        "clusters", md,
        Column("id", Integer, primary_key=True),
        Column("run_id", ForeignKey("cluster_runs.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("index", Integer, nullable=False),
        Column("name", Text, nullable=False),
        Column("size", Integer, nullable=False),
        Column("centroid", JSON, nullable=False),
        Column("mean_probabilities", JSON, nullable=False),
        Column("sheet_path", Text),
    )
    Table(
        "cluster_members", md,
        Column("cluster_id", ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True),
        Column("face_id", ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True),
        Column("distance", Float, nullable=False),
    )
    return md


def upgrade() -> None:
    metadata().create_all(op.get_bind())


def downgrade() -> None:
    metadata().drop_all(op.get_bind())
