"""Copies share one set of faces: `faces.photo_id` becomes `faces.content_hash` (the sha256 of
the file's bytes, as in photos.content_hash), so the faces and predictions of a content are
stored once, whatever number of paths have it.

Existing duplicates (each copy of a file had its own faces) are merged into one set per content:
the faces of its first readable photo are kept; each other copy's face hands what the kept face
of the same index lacks (predictions of other models, cluster memberships) to it, then goes. A
face with no counterpart of its index stays in the set. Faces of photos without a content hash
(problem rows, read again and detected anew by the next scan) could not be shown and go.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_shared_faces"
down_revision = "0004_big_file_numbers"
branch_labels = None
depends_on = None

photos = sa.table("photos", sa.column("id", sa.Integer), sa.column("content_hash", sa.String),
                  sa.column("status", sa.String))
faces = sa.table("faces", sa.column("id", sa.Integer), sa.column("photo_id", sa.Integer),
                 sa.column("index", sa.Integer), sa.column("content_hash", sa.String))
predictions = sa.table("predictions", sa.column("face_id", sa.Integer), sa.column("model_id", sa.Integer))
members = sa.table("cluster_members", sa.column("face_id", sa.Integer), sa.column("cluster_id", sa.Integer))


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("faces") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=True))
    bind.execute(faces.update().values(content_hash=sa.select(photos.c.content_hash)
                                       .where(photos.c.id == faces.c.photo_id).scalar_subquery()))
    bind.execute(faces.delete().where(faces.c.content_hash.is_(None)))
    _merge_copies(bind)
    old = next(c for c in sa.inspect(bind).get_unique_constraints("faces")
               if c["column_names"] == ["photo_id", "index"])
    convention = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
    with op.batch_alter_table("faces", naming_convention=convention) as batch:
        batch.drop_constraint(old["name"] or "uq_faces_photo_id", type_="unique")
        batch.drop_index("ix_faces_photo_id")
        batch.drop_column("photo_id")
        batch.alter_column("content_hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_faces_content_index", ["content_hash", "index"])
        batch.create_index("ix_faces_content_hash", ["content_hash"])
    if bind.dialect.name == "sqlite":  # statistics for the new index, as scan.update_statistics keeps
        bind.exec_driver_sql("PRAGMA analysis_limit=1000")
        bind.exec_driver_sql("ANALYZE faces")


def _merge_copies(bind) -> None:
    """One face per (content, index): the kept one is the first readable photo's (else the first
    photo's); the others give it their predictions and memberships it lacks, then are deleted."""
    rows = bind.execute(
        sa.select(faces.c.id, faces.c.content_hash, faces.c.index, faces.c.photo_id, photos.c.status)
        .join(photos, photos.c.id == faces.c.photo_id)
        .order_by(faces.c.content_hash, faces.c.index, photos.c.status != "ok", faces.c.photo_id)
    ).all()
    kept: dict[tuple, int] = {}
    for face_id, content, index, _photo, _status in rows:
        keep = kept.setdefault((content, index), face_id)
        if keep == face_id:
            continue
        for table, other in ((predictions, predictions.c.model_id), (members, members.c.cluster_id)):
            has = sa.select(other).where(table.c.face_id == keep)
            bind.execute(table.update().where(table.c.face_id == face_id, other.not_in(has))
                         .values(face_id=keep))
            bind.execute(table.delete().where(table.c.face_id == face_id))
        bind.execute(faces.delete().where(faces.c.id == face_id))


def downgrade() -> None:
    raise NotImplementedError("a library is never downgraded; restore its backup copy instead")
