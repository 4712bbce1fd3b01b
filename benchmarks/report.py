"""The tail every model benchmark shares: print its result as JSON and, with --out, write it where
scripts/write_model_card.py reads it (models/<name>.results/)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: str | None) -> int:
    print(json.dumps(result, indent=1))
    if out:
        Path(out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0
