"""A model is its weights AND its card: same weights with a new card (other thresholds, other
attribute names or order) is a new model row, so values are never stored under the wrong names.

`models.sha256` (the weights) stops being unique; `card_sha256` (the card's canonical JSON) joins
it in the identity `uq_models_identity`. Existing rows get the hash of their stored card.
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0002_model_identity"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def card_sha256(card: dict) -> str:
    """Frozen copy of photo_sorter.store.models.card_sha256 as of this revision."""
    text = json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    old = next(c for c in sa.inspect(bind).get_unique_constraints("models")
               if c["column_names"] == ["sha256"])
    # SQLite keeps the baseline's constraint unnamed; batch mode names it by this convention.
    convention = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
    with op.batch_alter_table("models", naming_convention=convention) as batch:
        batch.add_column(sa.Column("card_sha256", sa.String(64), nullable=True))
        batch.drop_constraint(old["name"] or "uq_models_sha256", type_="unique")
    models = sa.table("models", sa.column("id", sa.Integer), sa.column("card", sa.JSON),
                      sa.column("card_sha256", sa.String))
    for row_id, card in bind.execute(sa.select(models.c.id, models.c.card)).all():
        bind.execute(models.update().where(models.c.id == row_id)
                     .values(card_sha256=card_sha256(card or {})))
    with op.batch_alter_table("models") as batch:
        batch.alter_column("card_sha256", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_models_identity", ["sha256", "card_sha256"])


def downgrade() -> None:
    raise NotImplementedError("a library is never downgraded; restore its backup copy instead")
