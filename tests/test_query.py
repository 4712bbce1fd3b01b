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
def library(tmp_path_factory, new_db):
    thresholds = {a: THRESHOLDS.get(a, 0.5) for a in DEFAULT_ATTRIBUTES}
    engine, ids, face_ids = make_library(new_db(tmp_path_factory.mktemp("q")), PHOTOS,
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
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans by its statistics: a table of 8 rows says nothing of its choice")
    with engine.connect() as conn:
        plan = conn.execute(text(
            'EXPLAIN QUERY PLAN SELECT face_id FROM predictions WHERE model_id = 1 AND "Smiling" > 0.9'
        )).all()
    assert any("ix_predictions_model_Smiling" in str(row) for row in plan)


def _long_expression(n: int) -> str:
    """n terms of every form: names, comparisons, `not`, nested parentheses, `and` and `or`."""
    attrs = list(DEFAULT_ATTRIBUTES)
    terms = [(f"{attrs[i % len(attrs)]} > 0.{i % 9 + 1}", f"not {attrs[i % len(attrs)]}",
              f"{attrs[i % len(attrs)]}")[i % 3] for i in range(n)]
    groups = [f"({' or '.join(terms[i:i + 4])})" if i % 40 else f"not ({' and '.join(terms[i:i + 4])})"
              for i in range(0, n, 4)]
    return " and ".join(groups)  # matched by a few percent of random faces


@pytest.fixture(scope="module")
def big_library(tmp_path_factory):
    """10k photos with one face each, predictions drawn at random (bulk inserts: seconds)."""
    import numpy as np
    from sqlalchemy import insert

    from photo_sorter.store import Face, ModelVersion, open_engine, predictions_table

    rng = np.random.default_rng(0)
    attrs = list(DEFAULT_ATTRIBUTES)
    engine = open_engine(tmp_path_factory.mktemp("big") / "lib.db")
    with session_factory(engine).begin() as s:
        s.add(ModelVersion(name="m", sha256="0" * 64, path="m.keras", attributes=attrs,
                           thresholds={a: 0.5 for a in attrs}, card={}, active=True))
        s.flush()
        n = 10_000
        s.execute(insert(Photo), [{"id": i + 1, "path": f"/p/{i}.jpg", "folder": "/p", "status": "ok",
                                   "content_hash": f"{i:064x}", "n_faces": 1} for i in range(n)])
        s.execute(insert(Face), [{"id": i + 1, "content_hash": f"{i:064x}", "index": 0, "x": 0, "y": 0, "w": 9,
                                  "h": 9, "confidence": 0.99, "landmarks": []} for i in range(n)])
        probs = rng.random((n, len(attrs)))
        s.execute(insert(predictions_table), [{"face_id": i + 1, "model_id": 1,
                                               **dict(zip(attrs, map(float, probs[i])))}
                                              for i in range(n)])
    return engine


def test_score_sql_grows_linearly_and_200_terms_answer_in_a_second(big_library):
    """The score was a CASE repeating both operands per `and`/`or`: 16 terms compiled to 3.7 MB."""
    import time

    from sqlalchemy.dialects import postgresql, sqlite

    from photo_sorter.store import predictions_table

    def sql_size(n, dialect):
        node = query.resolve_names(query.parse(_long_expression(n)), list(DEFAULT_ATTRIBUTES))
        _, score = query.face_condition(node, predictions_table.c, {a: 0.5 for a in DEFAULT_ATTRIBUTES})
        return len(str(score.compile(dialect=dialect)))

    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sizes = [sql_size(n, dialect) for n in (50, 100, 200)]
        assert sizes[2] < 60 * 200, sizes  # tens of characters per term (a quoted column name)
        assert sizes[2] / sizes[1] == pytest.approx(2, rel=0.1) and sizes[1] / sizes[0] == pytest.approx(2, rel=0.1)
    expr = _long_expression(200)
    for fn in (query.photos, query.faces):
        start = time.process_time()  # CPU time (SQLite runs in this process): the machine's load aside
        rows = fn(big_library, expr, limit=50)
        assert time.process_time() - start < 1.0
        assert rows and [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_more_than_a_function_call_takes_arguments_still_scores_right(library):
    """SQLite takes at most 127 arguments per min()/max(): a 150-term `or` nests them."""
    engine, ids = library
    expr = " or ".join(["Smiling > 0.99"] * 149 + ["Eyeglasses > 0.95"])
    rows = query.faces(engine, expr)
    assert [r["face_id"] for r in rows] == [ids["split_pair.jpg"][1]]
    assert rows[0]["score"] == pytest.approx(0.97)


@pytest.mark.parametrize("expr, message", [
    ("(" * 300 + "Smiling" + ")" * 300, "nests too deeply"),
    ("not " * 2000 + "Smiling", "nests too deeply"),
    ("all:" * 60 + "Smiling", "nests too deeply"),
    (" or ".join(["Smiling"] * (query.MAX_TERMS + 1)), "too many terms"),
    ("Smiling or " + " " * query.MAX_LENGTH + "Male", "too long"),
])
def test_parser_limits_are_one_line_errors(expr, message):
    with pytest.raises(QueryError, match=message) as info:
        query.parse(expr)
    assert "\n" not in str(info.value)
    query.parse("(" * query.MAX_DEPTH + "Smiling" + ")" * query.MAX_DEPTH)  # the limit itself is fine


def test_a_photo_without_faces_can_match_and_scores_zero(library):
    """`not all:X` holds for a photo without faces (found by the CLI fuzz test)."""
    engine, _ = library
    rows = query.photos(engine, "not all:Smiling")
    assert [(r["score"], r["faces"]) for r in rows if r["path"].endswith("nobody.jpg")] == [(0.0, [])]
    assert rows[-1]["path"].endswith("nobody.jpg")


def test_normal_form_keeps_meaning_and_flattens():
    n = query.normal_form(query.parse("not (Smiling > 0.9 and not (Male or not Young)) and (Bald and Eyeglasses)"))
    assert n == BoolOp("and", (
        BoolOp("or", (Attr("Smiling", "<=", 0.9), Attr("Male"), Not(Attr("Young")))),
        Attr("Bald"), Attr("Eyeglasses")))
    assert query.normal_form(query.parse("not all:Smiling")) == Not(Quantified("all", Attr("Smiling")))
    assert query.normal_form(query.parse("not " * 40 + "Smiling")) == Attr("Smiling")


def _alternating(n: int) -> str:
    return "".join("(Male or " if i % 2 else "(Young and " for i in range(n)) + "Smiling" + ")" * n


def test_alternation_limit_is_a_one_line_error_below_what_sqlite_parses(library):
    """SQLite's parser stack overflows near 17 alternations of `and`/`or`; the limit comes first."""
    engine, _ = library
    for fn in (query.photos, query.faces):
        fn(engine, _alternating(query.MAX_NESTING))
        with pytest.raises(QueryError, match="alternates `and` and `or` too deeply"):
            fn(engine, _alternating(query.MAX_NESTING + 1))


def test_a_running_query_stops_when_cancelled(big_library):
    """The cancel event is set 20 ms into the statement: SQLite abandons it (the whole ranking of
    10k photos takes ~0.5 s), and the pooled connection serves the next query normally."""
    import threading
    import time

    from sqlalchemy import event

    expr = "(Male or Young) and not (Smiling and Bald)"
    cancel = threading.Event()

    def arm(*_args):
        threading.Timer(0.02, cancel.set).start()

    event.listen(big_library, "before_cursor_execute", arm, once=True)
    start = time.perf_counter()
    with pytest.raises(query.QueryCancelled):
        query.photos(big_library, expr, limit=None, cancel=cancel)
    cancelled_after = time.perf_counter() - start
    start = time.perf_counter()
    assert len(query.photos(big_library, expr, limit=None, cancel=threading.Event())) > 1000
    assert cancelled_after < time.perf_counter() - start
    with pytest.raises(query.QueryCancelled):  # set before: no statement starts
        query.faces(big_library, expr, cancel=cancel)
