"""The model registry and the model's contracts: a model is its weights AND its card; one active
model for every reader; cards are regular files with a real threshold per attribute; a .keras is
checked before it is inflated; predict takes only uint8 aligned frames."""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from photo_sorter import export, query
from photo_sorter.gui import listings
from photo_sorter.model import (
    AttributeModel, ModelError, active_model, card_path, install_model, read_card,
)
from photo_sorter.store import ModelVersion, model_row, open_engine, register_model, session_factory
from test_reliability_models import ATTRS, save_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("models") / "tiny.keras")


def fake(card, sha="b" * 64, path="/m/x.keras"):
    return AttributeModel(path=Path(path), card=card, keras_model=None, sha256=sha)


CARD = {"name": "t", "attributes": ["Smiling", "Male"], "thresholds": {"Smiling": 0.3, "Male": 0.7}}


def test_identity_is_weights_and_card(tmp_path):
    engine = open_engine(tmp_path / "library.db")
    Session = session_factory(engine)
    swapped = {**CARD, "attributes": ["Male", "Smiling"]}
    retuned = {**CARD, "thresholds": {"Smiling": 0.5, "Male": 0.5}}
    with Session.begin() as s:
        first = register_model(s, fake(CARD))
        assert register_model(s, fake(json.loads(json.dumps(CARD)))) == first  # same content
        ids = {first, register_model(s, fake(swapped)), register_model(s, fake(retuned)),
               register_model(s, fake(CARD, sha="c" * 64))}
    assert len(ids) == 4
    with Session() as s:
        active = model_row(s)
        assert s.scalar(select(func.count()).where(ModelVersion.active)) == 1
        assert active.sha256 == "c" * 64
        assert model_row(s, first).attributes == ["Smiling", "Male"]
        assert model_row(s, sorted(ids)[1]).attributes == ["Male", "Smiling"]


def test_every_reader_asks_the_registry_for_the_active_model(tmp_path):
    """scan, query, export (clusters, selection) and the GUI give the same answer, even when a
    damaged library marks two rows active (the newest wins everywhere)."""
    engine = open_engine(tmp_path / "library.db")
    with session_factory(engine).begin() as s:
        a = register_model(s, fake(CARD))
        b = register_model(s, fake(CARD, sha="d" * 64))
        s.get(ModelVersion, a).active = True
    with session_factory(engine)() as s:
        assert export.active_model(s).id == query._model(s, None).id == b
    assert listings.active_model(engine)["id"] == b


def test_install_with_a_new_card_makes_a_new_model(tmp_path, tiny):
    engine = open_engine(tmp_path / "library.db")
    first = install_model(tiny, engine, tmp_path / "installed")
    src = tmp_path / "src" / "tiny.keras"
    src.parent.mkdir()
    src.write_bytes(tiny.read_bytes())
    card = read_card(tiny)
    card["thresholds"] = {a: 0.25 for a in ATTRS}
    card_path(src).write_text(json.dumps(card))
    second = install_model(src, engine, tmp_path / "installed")
    assert second != first and read_card(first)["thresholds"][ATTRS[0]] == 0.5
    with session_factory(engine)() as s:
        rows = s.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        assert [(r.active, r.thresholds[ATTRS[0]]) for r in rows] == [(False, 0.5), (True, 0.25)]
        assert rows[0].sha256 == rows[1].sha256
    assert active_model(engine, load=False).thresholds[ATTRS[0]] == 0.25


@pytest.mark.parametrize("thresholds, message", [
    ({a: True for a in ATTRS}, "numbers in 0..1"),
    ({a: float("nan") for a in ATTRS}, "numbers in 0..1"),
    ({a: "0.5" for a in ATTRS}, "numbers in 0..1"),
    ({a: 0.5 for a in ATTRS[1:]}, f"no threshold for {ATTRS[0]}"),
])
def test_thresholds_are_real_numbers_one_per_attribute(tmp_path, thresholds, message):
    path = tmp_path / "m.keras"
    card_path(path).write_text(json.dumps({"attributes": ATTRS, "thresholds": thresholds}))
    with pytest.raises(ModelError, match=message):
        read_card(path)


def test_a_named_pipe_as_card_is_refused_without_waiting(tmp_path, tiny):
    path = tmp_path / "m.keras"
    path.write_bytes(tiny.read_bytes())
    os.mkfifo(card_path(path))
    done = threading.Event()
    result = {}

    def load():
        try:
            AttributeModel.load(path)
        except ModelError as exc:
            result["error"] = str(exc)
        done.set()

    threading.Thread(target=load, daemon=True).start()
    assert done.wait(20), "reading a pipe as the card hung"
    assert "not a regular file" in result["error"]


def test_a_card_too_large_is_refused(tmp_path):
    path = tmp_path / "m.keras"
    card_path(path).write_text(json.dumps({"attributes": ATTRS, "thresholds": {a: 0.5 for a in ATTRS},
                                           "notes": "x" * (1 << 21)}))
    with pytest.raises(ModelError, match="unreadable: larger than 1048576 bytes"):
        read_card(path)


def test_a_keras_file_that_inflates_too_far_is_refused_before_loading(tmp_path, tiny, monkeypatch):
    import photo_sorter.model as model_module

    monkeypatch.setattr(model_module, "MAX_KERAS_METADATA_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(tiny) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":
                data += b" " * (2 << 20)  # still valid JSON, 2 MB more once inflated
            out.writestr(info.filename, data)
    card_path(bomb).write_text(card_path(tiny).read_text())
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ModelError, match="config.json inflates to .* bytes; refused"):
        AttributeModel.load(bomb)


def test_predict_takes_only_uint8_aligned_frames(tiny):
    model = AttributeModel.load(tiny)
    ok = np.zeros((2, 218, 178, 3), np.uint8)
    assert model.predict(ok).shape == (2, len(ATTRS))
    for bad in (ok.astype(np.float32), ok.astype(np.float32) / 255, ok[:, :100], ok[0],
                np.zeros((2, 178, 218, 3), np.uint8), ok[..., :1], ok.astype(np.int64)):
        with pytest.raises(ModelError, match="takes uint8 frames \\[N, 218, 178, 3\\]"):
            model.predict(bad)
