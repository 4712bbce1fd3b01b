"""Shared fixtures. Tests that need ../shared skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SAMPLE_PHOTOS = REPO / "resources" / "sample_photos"


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "celeba" / "list_attr_celeba.txt").is_file():
        pytest.skip("../shared (real CelebA) is not available")
    return SHARED
