"""The library database: ORM tables (models.py) and engine/session set-up (db.py)."""

from photo_sorter.store.db import DatabaseError, default_db_path, open_engine, session_factory
from photo_sorter.store.models import (
    BestChoice, Cluster, ClusterMember, ClusterRun, Face, ModelVersion, Photo, PhotoHash, Prediction,
    ScanRun, predictions_table,
)

__all__ = [
    "BestChoice", "Cluster", "ClusterMember", "ClusterRun", "DatabaseError", "Face",
    "ModelVersion", "Photo", "PhotoHash", "Prediction", "ScanRun", "default_db_path", "open_engine",
    "predictions_table", "session_factory",
]
