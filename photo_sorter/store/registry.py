"""The model registry: which models the library knows and which one is active. The one place
that answers "which model" for scan, query, export, clusters, selection and the GUI."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from photo_sorter.store.models import ModelVersion, card_sha256


def model_row(session: Session, model_id: int | None = None) -> ModelVersion | None:
    """The given model, else the active one (the newest, should a damaged library hold two)."""
    if model_id is not None:
        return session.get(ModelVersion, model_id)
    return session.scalars(select(ModelVersion).where(ModelVersion.active.is_(True))
                           .order_by(ModelVersion.id.desc()).limit(1)).first()


def register_model(session: Session, model) -> int:
    """The row of `model` (an AttributeModel: weights hash and card), added if new, made the one
    active model."""
    identity = (model.sha256, card_sha256(model.card))
    row = session.scalar(select(ModelVersion).where(ModelVersion.sha256 == identity[0],
                                                    ModelVersion.card_sha256 == identity[1]))
    if row is None:
        row = ModelVersion(name=model.name, sha256=identity[0], card_sha256=identity[1],
                           path=str(model.path), attributes=model.attributes,
                           thresholds=model.thresholds, card=model.card, active=False)
        session.add(row)
        session.flush()
    activate(session, row.id)
    return row.id


def activate(session: Session, model_id: int) -> None:
    """Make the model the one active model (callers hold the library lock: a running scan
    would otherwise re-activate its own)."""
    session.execute(update(ModelVersion).where(ModelVersion.active.is_(True), ModelVersion.id != model_id)
                    .values(active=False))
    session.execute(update(ModelVersion).where(ModelVersion.id == model_id).values(active=True))
    session.expire_all()
