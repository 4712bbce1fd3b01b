"""Pages answered from score bounds first (query.BUDGETS) are exactly the pages of the full
ranking, for faces and photos, any expression form, any page, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from library_factory import make_library
from photo_sorter import query
from photo_sorter.attributes import DEFAULT_ATTRIBUTES

EXPRESSIONS = [
    "Smiling and Eyeglasses and not Wearing_Hat",
    "(Smiling or Eyeglasses) and not Male",
    "Male and Smiling > 0.6 and Young < 0.5",
    "not (Smiling and Male)",
    "all:Smiling and any:Eyeglasses",
]


# Budgets for a library of ~450 faces (the app's start at thousands: no bound below them).
SMALL_BUDGETS = (20, 60, 150)


@pytest.fixture(scope="module")
def library(tmp_path_factory, new_db):
    """300 photos with 0-3 faces whose probabilities are often near 0 or 1, as a model's are,
    and often equal (two decimals): ties at a try's last face must not reorder a page."""
    rng = np.random.default_rng(5)
    photos = []
    for i in range(300):
        faces = []
        for _ in range(rng.integers(0, 4)):
            p = np.round(1 / (1 + np.exp(-rng.normal(0, 3, len(DEFAULT_ATTRIBUTES)))), 2)
            faces.append({"probs": dict(zip(DEFAULT_ATTRIBUTES, map(float, p)))})
        photos.append({"name": f"p{i:03d}.jpg", "faces": faces})
    engine, _, _ = make_library(new_db(tmp_path_factory.mktemp("paging")), photos)
    return engine


PAGES = ((10, 0), (10, 10), (25, 5), (200, 0))


def pages(engine, fn, expr, which=PAGES):
    return [[(r["path"], r.get("face_id"), r["score"]) for r in fn(engine, expr, limit=limit, offset=offset)]
            for limit, offset in which]


def bounded_and_full(library, monkeypatch, fn, expr, which=PAGES):
    monkeypatch.setattr(query, "BUDGETS", SMALL_BUDGETS)
    bounded = pages(library, fn, expr, which)
    monkeypatch.setattr(query, "BUDGETS", ())
    return bounded, pages(library, fn, expr, which)


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("fn", [query.faces, query.photos])
def test_bounded_pages_equal_full_ranking(library, monkeypatch, fn, expr):
    if fn is query.faces and ":" in expr:
        pytest.skip("quantifiers are for photo queries")
    bounded, full = bounded_and_full(library, monkeypatch, fn, expr)
    assert bounded == full


NAMES = ["Smiling", "Eyeglasses", "Male", "Young", "Wearing_Hat"]
_leaf = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES).map(lambda n: f"not {n}"),
                  st.builds(lambda n, op, v: f"{n} {op} {v}", st.sampled_from(NAMES),
                            st.sampled_from(["<", "<=", ">", ">="]), st.sampled_from([0.1, 0.5, 0.9, 0.99])))
_expression = st.recursive(_leaf, lambda sub: st.builds(
    lambda op, parts: "(" + f" {op} ".join(parts) + ")", st.sampled_from(["and", "or"]),
    st.lists(sub, min_size=2, max_size=3)), max_leaves=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expr=_expression, photos=st.booleans())
def test_random_expressions_bounded_equal_full(library, monkeypatch, expr, photos):
    """Whatever the expression, the fast path (bounds read off the indexes) gives the rows and
    order of the plain evaluation (the whole ranking), every page."""
    fn = query.photos if photos else query.faces
    bounded, full = bounded_and_full(library, monkeypatch, fn, expr, PAGES[:2])
    assert bounded == full, expr


@pytest.mark.parametrize("fn", [query.faces, query.photos])
def test_pages_come_from_the_bound_then_from_the_full_ranking(library, monkeypatch, fn):
    """The library exercises both ways: the first page is answered by a bounded try (no query
    ranks every match), the long one needs more than any try keeps (the full ranking answers it)."""
    from sqlalchemy import event

    monkeypatch.setattr(query, "BUDGETS", SMALL_BUDGETS)
    ranked = []

    def record(conn, cursor, statement, *args):
        if "photos.path" in statement and "DESC" in statement:  # a page query
            ranked.append("best_faces" in statement)

    event.listen(library, "before_cursor_execute", record)
    try:
        assert len(fn(library, EXPRESSIONS[0], limit=10)) == 10
        assert ranked and all(ranked)
        ranked.clear()
        assert 10 < len(fn(library, EXPRESSIONS[0], limit=200)) < 200
        assert ranked == [False]
    finally:
        event.remove(library, "before_cursor_execute", record)


def test_score_bound_equals_score_comparison(library):
    """score_bound(node, t) selects exactly the faces whose score is >= t (or <= t)."""
    from sqlalchemy import select

    from photo_sorter.store import predictions_table, session_factory

    cols = predictions_table.c
    with session_factory(library)() as session:
        for expr in EXPRESSIONS[:4]:
            node = query.resolve_names(query.parse(expr), list(DEFAULT_ATTRIBUTES))
            _, score = query.face_condition(node, cols, {a: 0.5 for a in DEFAULT_ATTRIBUTES})
            for t in (0.3, 0.7, 0.9):
                for at_least in (True, False):
                    want = select(cols.id).where(score >= t if at_least else score <= t)
                    got = select(cols.id).where(query.score_bound(node, cols, t, at_least))
                    assert set(session.scalars(want)) == set(session.scalars(got)), (expr, t, at_least)


def test_a_bounded_page_is_driven_by_the_smallest_range(tmp_path, monkeypatch):
    """SQLite's statistics cannot tell one attribute range from another: the bounded query is
    made to look up the range that holds the fewest faces (here the rare Bald), not another."""
    from sqlalchemy import event

    rng = np.random.default_rng(1)
    photos = []
    for i in range(400):
        probs = dict(zip(DEFAULT_ATTRIBUTES, map(float, rng.random(len(DEFAULT_ATTRIBUTES)))))
        # Bald >= t (any bound) holds 50 faces, Male >= t and Young <= 1 - t about 360
        probs.update(Bald=0.995 if i % 8 == 0 else 0.01, Male=0.999 if i % 10 else 0.2,
                     Young=0.001 if i % 10 else 0.8)
        photos.append({"name": f"p{i:03d}.jpg", "faces": [{"probs": probs}]})
    engine, _, _ = make_library(tmp_path / "lib.db", photos)
    monkeypatch.setattr(query, "BUDGETS", (20,))
    plans = []

    @event.listens_for(engine, "after_cursor_execute")
    def explain(conn, cursor, statement, params, context, executemany):
        if "ORDER BY" in statement and "faces" in statement:
            plans.append(" ".join(str(r) for r in cursor.connection.execute(
                "EXPLAIN QUERY PLAN " + statement, params)))

    for fn in (query.faces, query.photos):
        plans.clear()
        rows = fn(engine, "not Young and Male and Bald", limit=5)
        assert len(rows) == 5 and plans
        assert "ix_predictions_model_Bald" in plans[0], plans[0]
        assert not any(f"ix_predictions_model_{a}" in plans[0] for a in ("Male", "Young")), plans[0]


def test_equal_scores_keep_the_photo_order(tmp_path, monkeypatch):
    """Every face scores the same, and the photos' ids run opposite to their faces': a try's best
    faces (the lowest face ids) belong to the last photos, yet the page is the first photos."""
    from sqlalchemy import text

    probs = {a: 0.9 for a in DEFAULT_ATTRIBUTES}
    engine, _, _ = make_library(tmp_path / "lib.db", [{"name": f"p{i:02d}.jpg", "faces": [{"probs": probs}]}
                                                      for i in range(60)])
    with engine.begin() as conn:
        conn.execute(text("UPDATE photos SET id = 1000 - id"))
    monkeypatch.setattr(query, "BUDGETS", (20,))
    got = [r["photo_id"] for r in query.photos(engine, "Smiling", limit=10)]
    assert got == sorted(got) and got[0] < 1000 - 50
