"""The attribute expression language, compiled to SQL over the predictions table.

    Smiling and Eyeglasses and not Wearing_Hat     (names use the active model's thresholds)
    Smiling > 0.9 or (Male and Young)              (comparisons: < <= > >= on probabilities)
    all:Smiling     all:(Smiling or Eyeglasses)    (photos only: every face of the photo)

Parsed by a small recursive-descent parser (no eval). Without a quantifier a photo matches when
one of its faces matches the whole expression; `all:X` needs every face to match X and `any:X`
some face, so quantified parts combine per photo (`any:Male and all:Smiling`).
Every query also ranks: a fuzzy match score (a name scores its probability, `not` one minus it,
`and` the minimum, `or` the maximum) computed in SQL.
"""

from __future__ import annotations

import difflib
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Float, and_, event, func, not_, or_, select, true
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.orm import aliased

from photo_sorter.attributes import CELEBA_ATTRIBUTES
from photo_sorter.store import Face, ModelVersion, Photo, face_photo, model_row, predictions_table
from photo_sorter.store.db import session_factory


class QueryError(ValueError):
    """An expression that cannot be parsed or names unknown attributes; one readable line."""


class QueryCancelled(QueryError):
    """The caller's cancel event was set while the query ran."""


# --- syntax tree -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Attr:
    name: str
    op: str | None = None     # None: probability >= the model's calibrated threshold
    value: float | None = None


@dataclass(frozen=True)
class Not:
    child: object


@dataclass(frozen=True)
class BoolOp:
    op: str                   # "and" | "or"
    children: tuple


@dataclass(frozen=True)
class Quantified:
    kind: str                 # "all" | "any": over the faces of a photo
    child: object


_TOKEN = re.compile(
    r"\s*(?:(?P<quant>(?:all|any):)|(?P<op><=|>=|<|>)|(?P<paren>[()])"
    r"|(?P<name>[A-Za-z0-9_]*[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d*\.\d+|\d+\.?))",
    re.IGNORECASE,
)
_KEYWORDS = ("and", "or", "not")

# Bounds on what one expression may ask, so that parsing, SQL compilation and SQLite's own limits
# (expression depth 1000) are never reached: far above what a person or the filter panel writes.
MAX_LENGTH = 10_000      # characters
MAX_TERMS = 500          # attribute names
MAX_DEPTH = 50           # nested parentheses, `not`s and quantifiers
MAX_NESTING = 12         # alternations of `and` and `or` (SQLite's parser stack holds ~16)
MAX_ROWS = 2**63 - 1     # limit and offset: SQLite's largest integer


def _tokenize(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_LENGTH:
        raise QueryError(f"the expression is too long ({len(text)} characters; at most {MAX_LENGTH})")
    tokens, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"unexpected {text[pos:].strip()[:20]!r} at position {pos + 1}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = value.lower(), value.lower()
        elif kind == "quant":
            value = value[:-1].lower()
        tokens.append((kind, value))
        pos = match.end()
    terms = sum(kind == "name" for kind, _ in tokens)
    if terms > MAX_TERMS:
        raise QueryError(f"the expression has too many terms ({terms}; at most {MAX_TERMS})")
    return tokens


class _Parser:
    """or_expr := and_expr ('or' and_expr)*; and_expr := unary ('and' unary)*;
    unary := 'not' unary | QUANT unary | '(' or_expr ')' | NAME (OP NUMBER)?"""

    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of expression"
            wanted = {"name": "an attribute name", "number": "a number"}.get(kind, kind)
            raise QueryError(f"expected {wanted} but found {found!r}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def parse(self):
        if not self.tokens:
            raise QueryError("empty expression")
        node = self.or_expr()
        if self.pos != len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.pos][1]!r} after a complete expression")
        return node

    def _chain(self, op: str, sub):
        children = [sub()]
        while self.peek() == op:
            self.pos += 1
            children.append(sub())
        return children[0] if len(children) == 1 else BoolOp(op, tuple(children))

    def or_expr(self):
        return self._chain("or", self.and_expr)

    def and_expr(self):
        return self._chain("and", self.unary)

    def unary(self):
        kind = self.peek()
        if kind in ("not", "quant") or (kind == "paren" and self.tokens[self.pos][1] == "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"the expression nests too deeply (at most {MAX_DEPTH} levels of "
                                 "parentheses, `not` and quantifiers)")
            node = self.nested(kind)
            self.depth -= 1
            return node
        name = self.take("name")
        if self.peek() == "op":
            op = self.take("op")
            return Attr(name, op, float(self.take("number")))
        return Attr(name)

    def nested(self, kind: str):
        if kind == "not":
            self.pos += 1
            return Not(self.unary())
        if kind == "quant":
            return Quantified(self.take("quant"), self.unary())
        self.pos += 1  # "("
        node = self.or_expr()
        if self.peek() != "paren" or self.tokens[self.pos][1] != ")":
            raise QueryError("missing closing parenthesis")
        self.pos += 1
        return node


def parse(text: str):
    """The syntax tree of an expression (QueryError when malformed)."""
    return _Parser(text).parse()


def _walk(node):
    yield node
    for child in (getattr(node, "children", ()) or ([node.child] if hasattr(node, "child") else [])):
        yield from _walk(child)


def resolve_names(node, known: list[str]):
    """The tree with names matched (case-insensitively) to `known`; unknown names raise a
    QueryError that suggests close matches."""
    by_lower = {k.lower(): k for k in known}
    if isinstance(node, Attr):
        if node.name.lower() in by_lower:
            return Attr(by_lower[node.name.lower()], node.op, node.value)
        close = difflib.get_close_matches(node.name.lower(), list(by_lower), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(by_lower[c] for c in close)}?" if close else ""
        if node.name in CELEBA_ATTRIBUTES:
            hint = " (a CelebA attribute the active model does not predict)"
        raise QueryError(f"unknown attribute {node.name!r}{hint}")
    if isinstance(node, Not):
        return Not(resolve_names(node.child, known))
    if isinstance(node, Quantified):
        return Quantified(node.kind, resolve_names(node.child, known))
    return BoolOp(node.op, tuple(resolve_names(c, known) for c in node.children))


_FLIPPED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def normal_form(node, negate: bool = False):
    """The same expression, and the same score, with `not` pushed down to the names (De Morgan:
    1 - min = max of 1 - each; `not Smiling > 0.9` is `Smiling <= 0.9`) and nested `and`s (or
    `or`s) merged, so its SQL nests only where `and` and `or` alternate. `not` stays in front of
    a quantifier: `not all:X` also holds for a photo without faces, `any:(not X)` does not."""
    if isinstance(node, Attr):
        if not negate:
            return node
        return Not(node) if node.op is None else Attr(node.name, _FLIPPED[node.op], node.value)
    if isinstance(node, Not):
        return normal_form(node.child, not negate)
    if isinstance(node, Quantified):
        inner = Quantified(node.kind, normal_form(node.child))
        return Not(inner) if negate else inner
    op = {"and": "or", "or": "and"}[node.op] if negate else node.op
    children = []
    for child in (normal_form(c, negate) for c in node.children):
        children.extend(child.children if isinstance(child, BoolOp) and child.op == op else [child])
    return BoolOp(op, tuple(children))


def nesting(node) -> int:
    """Levels of alternating `and`/`or` and of quantifiers in a normal form: what SQL nests."""
    if isinstance(node, Attr):
        return 0
    if isinstance(node, Not):
        return nesting(node.child)
    return 1 + max(nesting(c) for c in getattr(node, "children", None) or [node.child])


# --- compilation -----------------------------------------------------------------------------

class _Extreme(FunctionElement):
    """The smallest (least) or largest (greatest) of its arguments, each written once, so a score
    stays linear in the expression's size (a CASE repeats its operands: exponential when nested)."""

    type = Float()
    inherit_cache = True


class _Least(_Extreme):
    name = "least"
    inherit_cache = True


class _Greatest(_Extreme):
    name = "greatest"
    inherit_cache = True


@compiles(_Extreme)
def _compile_extreme(element, compiler, **kw):  # PostgreSQL, MySQL: LEAST/GREATEST
    return f"{element.name.upper()}({compiler.process(element.clauses, **kw)})"


@compiles(_Extreme, "sqlite")
def _compile_extreme_sqlite(element, compiler, **kw):  # SQLite: the multi-argument scalar min/max
    name = "min" if element.name == "least" else "max"
    return f"{name}({compiler.process(element.clauses, **kw)})"


# SQLite takes at most 127 arguments per function (SQLITE_MAX_FUNCTION_ARG): longer lists nest.
_MAX_ARGS = 100


def _extreme(kind: type[_Extreme], scores: list):
    if len(scores) > _MAX_ARGS:
        return _extreme(kind, [_extreme(kind, scores[i:i + _MAX_ARGS])
                               for i in range(0, len(scores), _MAX_ARGS)])
    return kind(*scores) if len(scores) > 1 else scores[0]  # SQLite's min(x) is the aggregate


def face_condition(node, columns, thresholds: dict):
    """(condition, score) SQL expressions of a quantifier-free tree over prediction columns."""
    if isinstance(node, Attr):
        col = columns[node.name]
        if node.op is None:
            return col >= thresholds[node.name], col
        cond = {"<": col < node.value, "<=": col <= node.value,
                ">": col > node.value, ">=": col >= node.value}[node.op]
        return cond, (1 - col if node.op.startswith("<") else col)
    if isinstance(node, Not):
        cond, score = face_condition(node.child, columns, thresholds)
        return not_(cond), 1 - score
    if isinstance(node, Quantified):
        raise QueryError(f"'{node.kind}:' quantifies over the faces of a photo: use it in photo "
                         "queries, and not inside another quantifier")
    parts = [face_condition(c, columns, thresholds) for c in node.children]
    combine, pick = (and_, _Least) if node.op == "and" else (or_, _Greatest)
    return combine(*(c for c, _ in parts)), _extreme(pick, [s for _, s in parts])


def _scored_low(leaf) -> bool:
    """Whether a name's score is one minus its column (`not X`, `X < v`): its best faces are the
    column's lowest."""
    return isinstance(leaf, Not) or (leaf.op or ">").startswith("<")


# Room around a range `col <= 1 - t` for rounding, the exact comparison following it.
_SLACK = 1e-9


def score_bound(node, columns, t: float, at_least: bool = True):
    """A condition equal to `score >= t` (or `score <= t`) for face_condition's score, written as
    ranges on the attribute columns so that their indexes can serve it: min >= t means every
    part >= t, max >= t some part. In normal form (the same score to the last bit: 1 - min is
    the max of each 1 - x) `not` is on names only, and a score `1 - col` is compared as
    computed, inside a range of the column, so that rounding never moves a face across t."""
    def bound(node):
        if isinstance(node, BoolOp):
            return (and_ if (node.op == "and") == at_least else or_)(*map(bound, node.children))
        col = columns[getattr(node, "child", node).name]
        if not _scored_low(node):
            return col >= t if at_least else col <= t
        if at_least:
            return and_(col <= 1 - t + _SLACK, 1 - col >= t)
        return and_(col >= 1 - t - _SLACK, 1 - col <= t)
    return bound(normal_form(node))


# Faces of attribute index ranges a bounded page may look up, try after try, before the whole
# ranking: each try's bound is the lowest score whose ranges hold about that many faces, so a
# try costs what its budget says whatever the attributes' distributions (bench_query.py).
BUDGETS = (5_000, 12_000, 30_000, 75_000, 190_000, 480_000)
# ...for expressions of at most this many names (a bound on more is as many index ranges).
BOUNDED_TERMS = 8


def _columns(node, looked_up=frozenset()) -> dict:
    """The attribute columns node names, those not in `looked_up` written `col + 0`: the same
    values, which neither SQLite nor PostgreSQL look up in an index."""
    cols = predictions_table.c
    return {n.name: cols[n.name] if n.name in looked_up else cols[n.name] + 0
            for n in _walk(node) if isinstance(n, Attr)}


class _Bounds:
    """Score bounds for a page, read off the attribute indexes.

    A name's range at t is its faces scoring >= t (an index range, best end first). Faces with
    score >= t lie in any one range of an `and`'s children and in the union of an `or`'s, so
    for a budget of faces the plan is: a name's t at that rank of its index; an `and` its
    child with the lowest t (the most faces above the bound for the same reads); an `or` the
    highest of its children's t at an equal share of the budget. The chosen ranges are the only
    columns the engine may look up (the statistics of neither engine tell attribute ranges apart:
    their own pick cost up to 8x). A try is the `keep` best faces above its bound, by
    (score, id), from the prediction rows alone: the page's query then joins only those."""

    def __init__(self, session, node, model: ModelVersion, cond=None):
        self.session, self.node, self.model = session, node, model
        self.cond = [] if cond is None else [cond]  # faces must also match (face queries)

    @cached_property
    def total(self) -> int:
        return self.session.scalar(select(func.max(predictions_table.c.id))) or 0

    def tries(self, needed: int):
        """For each try, lowest budget first: a subquery of (face_id, score) of the best faces
        above its bound, ordered by (score desc, face_id), and how many it keeps at most. They
        are the first faces of the whole ranking, all of them when fewer than `keep`."""
        if sum(isinstance(n, Attr) for n in _walk(self.node)) > BOUNDED_TERMS:
            return
        for step, budget in enumerate(BUDGETS):
            if budget >= self.total / 2:  # the whole ranking costs about as much
                return
            if budget < 2 * needed:
                continue
            plan = self._plan(self.node, budget)
            if plan is None:
                return
            cols = _columns(self.node, plan[1])
            _, score = face_condition(self.node, cols, self.model.thresholds)
            keep = 2 * needed * 2**step
            pred = predictions_table.c
            yield (select(pred.face_id, score.label("score"))
                   .where(pred.model_id == self.model.id, score_bound(self.node, cols, plan[0]), *self.cond)
                   .order_by(score.desc(), pred.face_id).limit(keep).cte("best_faces")), keep

    def _plan(self, node, budget: int) -> tuple[float, frozenset] | None:
        """(t, names whose ranges hold every face scoring >= t), about `budget` faces in those
        ranges; None when they would hold all faces."""
        if isinstance(node, BoolOp):
            share = budget if node.op == "and" else budget // len(node.children)
            parts = [self._plan(c, share) for c in node.children]
            if node.op == "and":
                parts = [p for p in parts if p is not None]
                return min(parts, key=lambda p: p[0]) if parts else None
            if None in parts:
                return None
            return max(t for t, _ in parts), frozenset().union(*(names for _, names in parts))
        name = getattr(node, "child", node).name
        col = predictions_table.c[name]
        low = _scored_low(node)
        value = self.session.scalar(
            select(col).where(predictions_table.c.model_id == self.model.id, col.is_not(None))
            .order_by(col if low else col.desc()).offset(budget).limit(1))
        if value is None:
            return None
        return (1 - value if low else value), frozenset([name])


def _page(session, matching, bounds: _Bounds, limit: int | None, offset: int) -> list:
    """Rows [offset, offset + limit) of matching(None, None), a query ordered by score, best
    first. matching(best, keep) gives (the query of its rows among a try's best faces
    (_Bounds.tries), complete(rows): whether a full page of them is the page). No limit: the
    whole ranking."""
    if limit is not None:
        for best, keep in bounds.tries(limit + offset):
            stmt, complete = matching(best, keep)
            rows = session.execute(stmt.limit(limit).offset(offset)).all()
            if len(rows) == limit and complete(rows):
                return rows
    return session.execute(matching(None, None)[0].limit(limit).offset(offset)).all()


def _strip_quantifiers(node):
    """The face-level tree of a photo query (its score), in normal form."""
    def strip(n):
        if isinstance(n, Quantified):
            return strip(n.child)
        if isinstance(n, Not):
            return Not(strip(n.child))
        if isinstance(n, BoolOp):
            return BoolOp(n.op, tuple(strip(c) for c in n.children))
        return n
    return normal_form(strip(node))


def photo_condition(node, model_id: int, thresholds: dict, within=None):
    """SQL condition on Photo.content_hash (copies share their faces): quantifier-free subtrees
    need one face matching them whole. `within` (a select of content hashes) limits the face subqueries to those photos: the condition
    is then right for them only, and costs what they have, not what the library has (their
    faces are looked up by photo, the attributes written so that no attribute index competes)."""
    if not any(isinstance(n, Quantified) for n in _walk(node)):
        node = Quantified("any", node)
    if isinstance(node, Quantified):
        pred = predictions_table.alias()
        face = aliased(Face)
        cols = pred.c if within is None else {c.name: c + 0 for c in pred.c}
        cond, _ = face_condition(node.child, cols, thresholds)

        def photos_with(face_cond):
            # Uncorrelated, so SQLite runs it once (an index range scan on an attribute); as a
            # correlated EXISTS it was re-run for every photo: minutes at 100k photos.
            stmt = (select(face.content_hash).join(pred, pred.c.face_id == face.id)
                    .where(pred.c.model_id == model_id, face_cond))
            return stmt if within is None else stmt.where(face.content_hash.in_(within))

        if node.kind == "any":
            return Photo.content_hash.in_(photos_with(cond))
        return and_(Photo.content_hash.in_(photos_with(true())),
                    Photo.content_hash.not_in(photos_with(not_(cond))))
    if isinstance(node, Not):
        return not_(photo_condition(node.child, model_id, thresholds, within))
    parts = [photo_condition(c, model_id, thresholds, within) for c in node.children]
    return (and_ if node.op == "and" else or_)(*parts)


# --- queries ---------------------------------------------------------------------------------

def _check_page(limit: int | None, offset: int) -> None:
    if not (limit is None or 0 <= limit <= MAX_ROWS) or not 0 <= offset <= MAX_ROWS:
        raise QueryError(f"limit and offset must be between 0 and {MAX_ROWS}")


def _model(session, model_id: int | None) -> ModelVersion:
    row = model_row(session, model_id)
    if row is None:
        raise QueryError("the library has no predictions yet: scan some photos first"
                         if model_id is None else f"no model with id {model_id}")
    return row


def _compile(expr: str, model: ModelVersion):
    node = normal_form(resolve_names(parse(expr), list(model.attributes)))
    if nesting(node) > MAX_NESTING:
        raise QueryError(f"the expression alternates `and` and `or` too deeply ({nesting(node)} "
                         f"levels; at most {MAX_NESTING})")
    return node


def _face_dict(row, attributes: list[str]) -> dict:
    mapping = row._mapping  # built anew on each access
    return {
        "face_id": row.face_id, "photo_id": row.photo_id, "path": row.path, "index": row.index,
        "box": [row.x, row.y, row.w, row.h], "detection_confidence": row.confidence,
        "score": float(row.score),
        "probabilities": {a: mapping[a] for a in attributes},
    }


def _predicted_by(model_id: int):
    """Join condition: a face's prediction row from the model."""
    return and_(predictions_table.c.face_id == Face.id, predictions_table.c.model_id == model_id)


def _face_select(model: ModelVersion, node):
    cond, score = face_condition(node, predictions_table.c, model.thresholds)
    pred_cols = [predictions_table.c[a] for a in model.attributes]
    stmt = (
        select(Face.id.label("face_id"), Photo.id.label("photo_id"), Face.content_hash, Face.index,
               Face.x, Face.y, Face.w, Face.h, Face.confidence, Photo.path, score.label("score"),
               *pred_cols)
        .select_from(Face).join(Photo, face_photo())  # one photo per face: copies do not list a face twice
        .join(predictions_table, _predicted_by(model.id))
    )
    return stmt, cond, score


@contextmanager
def _session(engine, cancel: threading.Event | None):
    """A session whose queries stop soon after `cancel` is set (QueryCancelled): SQLite asks a
    progress handler every few thousand steps of a statement; elsewhere the next statement
    does not start."""
    with session_factory(engine)() as session:
        if cancel is None:
            yield session
            return
        raw = session.connection().connection.dbapi_connection
        set_handler = getattr(raw, "set_progress_handler", None)  # sqlite3 only
        if set_handler is not None:
            set_handler(cancel.is_set, 10_000)  # true: SQLite abandons the statement

        def before_statement(_state):
            if cancel.is_set():
                raise QueryCancelled("the query was cancelled")

        event.listen(session, "do_orm_execute", before_statement)
        try:
            yield session
        except OperationalError:
            if cancel.is_set():
                raise QueryCancelled("the query was cancelled") from None
            raise
        finally:
            if set_handler is not None:
                set_handler(None, 0)


def faces(engine, expr: str, limit: int = 100, offset: int = 0, order: str = "score",
          model_id: int | None = None, cancel: threading.Event | None = None) -> list[dict]:
    """Faces matching expr under the active model (or model_id), best match first
    (order="score") or most confident detection first (order="detection"). Setting `cancel`
    (from another thread) stops the query with QueryCancelled."""
    if order not in ("score", "detection"):
        raise QueryError(f"unknown order {order!r}; use score or detection")
    _check_page(limit, offset)
    with _session(engine, cancel) as session:
        model = _model(session, model_id)
        node = _compile(expr, model)
        stmt, cond, score = _face_select(model, node)
        if order == "score":
            def matching(best, _keep):
                stmt_ = stmt.where(Photo.status != "missing").order_by(score.desc(), Face.id)
                if best is None:
                    return stmt_.where(cond), None
                # a prefix of the whole ranking, less faces of missing photos
                return stmt_.where(Face.id.in_(select(best.c.face_id))), lambda rows: True

            unindexed = face_condition(node, _columns(node), model.thresholds)[0]
            rows = _page(session, matching, _Bounds(session, node, model, unindexed), limit, offset)
        else:
            rows = session.execute(stmt.where(cond, Photo.status != "missing")
                                   .order_by(Face.confidence.desc(), Face.id)
                                   .limit(limit).offset(offset)).all()
        return [_face_dict(r, model.attributes) for r in rows]


def photos(engine, expr: str, limit: int = 100, offset: int = 0,
           model_id: int | None = None, cancel: threading.Event | None = None) -> list[dict]:
    """Photos matching expr (any face by default; `all:`/`any:` quantify over a photo's faces),
    best match first, each with all its faces and their probabilities and match scores.
    Setting `cancel` (from another thread) stops the query with QueryCancelled."""
    _check_page(limit, offset)
    with _session(engine, cancel) as session:
        model = _model(session, model_id)
        node = _compile(expr, model)
        faces_node = _strip_quantifiers(node)
        stmt, _, score = _face_select(model, faces_node)
        # The photo's faces first (by content), then each one's prediction: an outer join fixes
        # that order (a face without a prediction adds a NULL, which max() skips). As an inner
        # join SQLite, without statistics, may scan every prediction of the model per photo.
        # A photo without faces (it can match `not all:X`) scores 0.
        best = (select(func.coalesce(func.max(score), 0.0)).select_from(Face)
                .outerjoin(predictions_table, _predicted_by(model.id))
                .where(Face.content_hash == Photo.content_hash).scalar_subquery().label("best"))

        def matching(top, keep):
            columns = (Photo.id, Photo.path, Photo.width, Photo.height, Photo.captured_at,
                       Photo.capture_source, Photo.companions, Photo.n_faces, Photo.content_hash, best)
            if top is None:
                return (select(*columns).where(Photo.status != "missing",
                                               photo_condition(node, model.id, model.thresholds))
                        .order_by(best.desc(), Photo.id)), None
            # The photos of the try's faces: every photo whose best face scores above the last
            # of them (a photo scoring that much has its best face among them), and some equal.
            within = select(Face.content_hash).where(Face.id.in_(select(top.c.face_id)))
            stmt = (select(*columns, select(func.min(top.c.score)).scalar_subquery().label("floor"),
                           select(func.count()).select_from(top).scalar_subquery().label("found"))
                    .where(Photo.status != "missing", Photo.content_hash.in_(within),
                           photo_condition(node, model.id, model.thresholds, within))
                    .order_by(best.desc(), Photo.id))
            return stmt, lambda rows: rows[-1].found < keep or rows[-1].best > rows[-1].floor

        matched = _page(session, matching, _Bounds(session, faces_node, model), limit, offset)
        face_rows = session.execute(
            stmt.where(Face.content_hash.in_({p.content_hash for p in matched})).order_by(Face.index)
        ).all() if matched else []
    by_content: dict[str, list] = {}  # each copy lists its content's faces as its own
    for row in face_rows:
        by_content.setdefault(row.content_hash, []).append(_face_dict(row, model.attributes))
    return [
        {"photo_id": p.id, "path": p.path, "width": p.width, "height": p.height,
         "captured_at": p.captured_at, "capture_source": p.capture_source,
         "companions": p.companions or [], "n_faces": p.n_faces,
         "score": float(p.best),
         "faces": [{**f, "photo_id": p.id, "path": p.path} for f in by_content.get(p.content_hash, [])]}
        for p in matched
    ]
