"""The library database: ORM tables (models.py), engine/session set-up (db.py), schema checks and
migrations (schema.py, migrations/), the model registry (registry.py) and the write lock (lock.py)."""

from photo_sorter.store.db import default_db_path, open_engine, session_factory, user_data_dir
from photo_sorter.store.errors import DatabaseError
from photo_sorter.store.lock import LibraryBusy, exclusive, library_lock, sessions
from photo_sorter.store.models import (
    BestChoice, Cluster, ClusterMember, ClusterRun, Face, ModelVersion, Photo, PhotoHash, Prediction,
    ScanRun, drop_unshared_faces, face_photo, predictions_table,
)
from photo_sorter.store.registry import model_row, register_model

__all__ = [
    "BestChoice", "Cluster", "ClusterMember", "ClusterRun", "DatabaseError", "Face", "LibraryBusy",
    "ModelVersion", "Photo", "PhotoHash", "Prediction", "ScanRun", "default_db_path", "drop_unshared_faces",
    "exclusive", "face_photo",
    "library_lock", "model_row", "open_engine", "predictions_table", "register_model",
    "session_factory", "sessions", "user_data_dir",
]
