"""The attribute expression language: parsing, errors, and SQL results on a crafted library."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from library_factory import make_library
from photo_sorter import query
from photo_sorter.attributes import DEFAULT_ATTRIBUTES
from photo_sorter.query import Attr, BoolOp, Not, QueryError, Quantified
from photo_sorter.store import Photo, session_factory

# Thresholds of the crafted model: Smiling is calibrated high on purpose.
THRESHOLDS = {"Smiling": 0.7}

PHOTOS = [
    {"name": "smile_glasses.jpg", "faces": [{"probs": {"Smiling": 0.95, "Eyeglasses": 0.9}}]},
    {"name": "smile_glasses_hat.jpg",
     "faces": [{"probs": {"Smiling": 0.92, "Eyeglasses": 0.8, "Wearing_Hat": 0.9}}]},
    {"name": "mild_smile_glasses.jpg", "faces": [{"probs": {"Smiling": 0.6, "Eyeglasses": 0.9}}]},
    # two people: one smiles, the other wears glasses; nobody does both
    {"name": "split_pair.jpg", "faces": [{"probs": {"Smiling": 0.99}}, {"probs": {"Eyeglasses": 0.97}}]},
    {"name": "both_smile.jpg", "faces": [{"probs": {"Smiling": 0.8, "Male": 0.9}},
                                         {"probs": {"Smiling": 0.75}}]},
    {"name": "nobody.jpg", "faces": []},
    {"name": "gone_smiling.jpg", "faces": [{"probs": {"Smiling": 0.99, "Eyeglasses": 0.99}}]},
]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    thresholds = {a: THRESHOLDS.get(a, 0.5) for a in DEFAULT_ATTRIBUTES}
    engine, ids, face_ids = make_library(tmp_path_factory.mktemp("q") / "lib.db", PHOTOS,
                                         thresholds=thresholds)
    with session_factory(engine).begin() as s:
        s.execute(update(Photo).where(Photo.path.like("%gone_smiling.jpg")).values(status="missing"))
    return engine, face_ids


def names(rows):
    return [r["path"].rsplit("/", 1)[-1] for r in rows]


def test_parse_precedence_and_forms():
    tree = query.parse("Smiling and Eyeglasses or not Wearing_Hat and Male > 0.9")
    assert tree == BoolOp("or", (
        BoolOp("and", (Attr("Smiling"), Attr("Eyeglasses"))),
        BoolOp("and", (Not(Attr("Wearing_Hat")), Attr("Male", ">", 0.9))),
    ))
    assert query.parse("all:(Smiling or 5_o_Clock_Shadow <= .2)") == Quantified(
        "all", BoolOp("or", (Attr("Smiling"), Attr("5_o_Clock_Shadow", "<=", 0.2))))
    assert query.parse("NOT (Bald)") == Not(Attr("Bald"))


@pytest.mark.parametrize("expr, message", [
    ("", "empty expression"),
    ("Smiling and", "expected an attribute name"),
    ("Smiling > high", "expected a number"),
    ("(Smiling or Male", "missing closing parenthesis"),
    ("Smiling Male", "unexpected 'Male'"),
    ("__import__('os').system('true')", "unexpected"),
    ("Smiling; DROP TABLE photos", "unexpected ';"),
])
def test_syntax_errors_are_one_clear_line(expr, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(")) as info:
        query.parse(expr)
    assert "\n" not in str(info.value)


def test_unknown_names_suggest_close_matches(library):
    engine, _ = library
    with pytest.raises(QueryError, match="unknown attribute 'Smilling'; did you mean Smiling"):
        query.faces(engine, "Smilling and Male")
    with pytest.raises(QueryError, match="does not predict"):
        query.faces(engine, "Attractive")  # CelebA has it, the model leaves it out


def test_faces_use_calibrated_thresholds_and_exclude_missing_photos(library):
    engine, ids = library
    rows = query.faces(engine, "Smiling and Eyeglasses and not Wearing_Hat")
    # mild_smile (0.6 < calibrated 0.7), the hat, the split pair and the missing photo fail
    assert [r["face_id"] for r in rows] == ids["smile_glasses.jpg"]
    row = rows[0]
    assert row["probabilities"]["Smiling"] == pytest.approx(0.95)
    assert row["box"] == [40, 30, 30, 36]
    assert row["score"] == pytest.approx(min(0.95, 0.9, 1 - 0.1))


def test_comparisons_or_parentheses_and_ranking(library):
    engine, ids = library
    rows = query.faces(engine, "Smiling > 0.9")
    assert names(rows) == ["split_pair.jpg", "smile_glasses.jpg", "smile_glasses_hat.jpg"]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    rows = query.faces(engine, "Smiling < 0.5 and (Eyeglasses or Male)")
    assert sorted(r["face_id"] for r in rows) == [ids["split_pair.jpg"][1]]
    low = query.faces(engine, "smiling >= 0.6", limit=2, offset=3)  # names are case-insensitive
    everything = query.faces(engine, "Smiling >= 0.6")
    assert [r["face_id"] for r in low] == [r["face_id"] for r in everything[3:5]]
    with pytest.raises(QueryError, match="photo queries"):
        query.faces(engine, "all:Smiling")


def test_photos_any_face_means_one_face_matching_the_whole_expression(library):
    engine, _ = library
    assert names(query.photos(engine, "Smiling and Eyeglasses")) == [
        "smile_glasses.jpg", "smile_glasses_hat.jpg"]
    split = names(query.photos(engine, "any:Smiling and any:Eyeglasses"))
    assert "split_pair.jpg" in split
    photo = query.photos(engine, "Eyeglasses > 0.95")[0]
    assert photo["path"].endswith("split_pair.jpg") and photo["n_faces"] == 2
    assert len(photo["faces"]) == 2  # a photo comes with all its faces


def test_photos_all_quantifier(library):
    engine, _ = library
    assert sorted(names(query.photos(engine, "all:Smiling"))) == [
        "both_smile.jpg", "smile_glasses.jpg", "smile_glasses_hat.jpg"]
    assert names(query.photos(engine, "all:Smiling and any:Male")) == ["both_smile.jpg"]
    # a photo without faces never satisfies all:
    assert "nobody.jpg" not in names(query.photos(engine, "all:(Smiling or not Smiling)"))


def test_attribute_comparison_runs_on_an_index(library):
    engine, _ = library
    with engine.connect() as conn:
        plan = conn.execute(text(
            'EXPLAIN QUERY PLAN SELECT face_id FROM predictions WHERE model_id = 1 AND "Smiling" > 0.9'
        )).all()
    assert any("ix_predictions_model_Smiling" in str(row) for row in plan)
