"""File sizes and modification times (ns since 1970: ~1.8e18) as 64-bit integers. SQLite's
INTEGER is 64-bit already, so only other databases (PostgreSQL's INTEGER is 32-bit) change."""

import sqlalchemy as sa
from alembic import op

revision = "0004_big_file_numbers"
down_revision = "0003_photo_companions"
branch_labels = None
depends_on = None

COLUMNS = {"photos": ("size", "mtime_ns"), "photo_hashes": ("size", "mtime_ns")}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    raise NotImplementedError("a library is never downgraded; restore its backup copy instead")
