"""Photos get one index over (content_hash, status, id): the one photo of each face (the
first readable photo with its content, store.face_photo) is then read from the index alone.
Without statistics SQLite picked the status index for it and read every readable photo per face
(0.7 s for a 200-term face query at 10k faces instead of 0.03 s)."""

from alembic import op

revision = "0006_photo_content_index"
down_revision = "0005_shared_faces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_photos_content_status_id", "photos", ["content_hash", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_photos_content_status_id", table_name="photos")
