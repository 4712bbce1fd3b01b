"""The other files of a photo's shot: `photos.companions`, the names of the RAW files beside a
JPEG/HEIC of the same name (a RAW+JPEG pair is one photo: the JPEG decoded, the RAW listed).
Existing rows get NULL (nothing listed) until their folder is scanned again.

Capture times keep their column: `photos.capture_source` (String(16)) already holds the new
sources "xmp" and "filename" beside "exif" and "mtime".
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_photo_companions"
down_revision = "0002_model_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("companions", sa.JSON(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("a library is never downgraded; restore its backup copy instead")
