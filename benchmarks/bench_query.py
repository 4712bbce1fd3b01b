"""Library read latency on a generated database of 100k photos and 150k faces with predictions.

    python benchmarks/bench_query.py [--photos 100000] [--faces 150000] [--repeat 5] [--db URL]

The database (SQLite, the app's schema through open_engine) is generated once into
$TMPDIR/photo_sorter_bench/ and reused while its settings match; with --db (e.g.
postgresql+psycopg://user@host/db) that database is filled when empty and timed instead. Rows go
in by bulk executemany (SQLite) or COPY (PostgreSQL), the prediction indexes built after them
(1M photos / 1.5M faces: minutes). Photos in 500 folders, 0-4 faces each, one
prediction row per face from one active model (per-attribute probabilities drawn around
CelebA-like positive rates), a stored 89x109 JPEG crop per face, and one clustering run (8
clusters over all faces). Timed, median of --repeat runs after one warm-up:
  - attribute queries: query.photos and query.faces, 3-term expressions, sorted, first page (100),
    wall time and (cpu_ms) this process's CPU time, which a loaded machine changes less;
  - cluster-run loading: clusters.load_run as the browser does (no members), one cluster's
    photos (clusters.cluster_photo_ids, when a cluster is opened), and with every member;
  - thumbnail page: the grid's rows (gui.listings.photo_rows for one folder and for the whole
    library), its first page with the scope line's counts and its last page (the grid reads
    pages), and one page of 100 face crops read from the store and decoded.
The last line printed is the JSON of the figures (milliseconds).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from photo_sorter import clusters, query, scan  # noqa: E402
from photo_sorter.attributes import CELEBA_ATTRIBUTES  # noqa: E402
from photo_sorter.gui import listings  # noqa: E402
from photo_sorter.store import (  # noqa: E402
    Cluster, ClusterMember, ClusterRun, Face, ModelVersion, Photo, open_engine, predictions_table,
    session_factory,
)

QUERIES = ["Smiling and Eyeglasses and not Wearing_Hat",
           "Male and Smiling > 0.9 and not Young",
           "(Smiling or Eyeglasses) and not Male"]


def _crops(rng, count: int = 64) -> list[bytes]:
    """Distinct smooth 89x109 JPEGs, the size of a stored crop."""
    out = []
    for _ in range(count):
        small = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(small).resize((89, 109), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


_CHUNK = 100_000


def _bulk(conn, table, rows) -> None:
    """Append rows (tuples in the table's column order, JSON columns as JSON text) the fastest
    way the dialect has: PostgreSQL's COPY, SQLite's executemany on the driver's cursor."""
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    raw = conn.connection.dbapi_connection
    with closing(raw.cursor()) as cur:
        if conn.dialect.name == "postgresql":
            with cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cur.executemany(f"INSERT INTO {table.name} ({names}) VALUES "
                            f"({', '.join('?' * len(table.columns))})", rows)


def generate(db, n_photos: int, n_faces: int, seed: int = 0) -> None:
    """Fill an empty library with bulk inserts (COPY on PostgreSQL), the prediction indexes built
    after the rows: 1M photos / 1.5M faces in minutes instead of an hour of ORM inserts."""
    rng = np.random.default_rng(seed)
    engine = open_engine(db)
    Session = session_factory(engine)
    attributes = list(CELEBA_ATTRIBUTES)
    rates = rng.uniform(0.03, 0.5, len(attributes))
    with Session.begin() as session:
        session.add(ModelVersion(name="bench", sha256="b" * 64, path="bench.keras",
                                 attributes=attributes, thresholds={a: 0.5 for a in attributes},
                                 card={}, active=True))
    # Faces per photo: 0-4, rescaled so the total is n_faces.
    per_photo = rng.choice(5, n_photos, p=[0.25, 0.35, 0.2, 0.12, 0.08])
    per_photo = np.minimum(4, np.round(per_photo * n_faces / per_photo.sum())).astype(int)
    per_photo[: n_faces - per_photo.sum()] += 1 if n_faces > per_photo.sum() else 0
    start = datetime(2015, 1, 1)
    sqlite = engine.dialect.name == "sqlite"
    when = (lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f")) if sqlite else (lambda t: t)
    crops = _crops(rng)
    photo_of_face = np.repeat(np.arange(1, n_photos + 1), per_photo)
    index_in_photo = np.concatenate([np.arange(k) for k in per_photo if k] or [np.zeros(0, int)])
    logit_rates = np.log(rates / (1 - rates))
    landmarks = json.dumps([[150, 200], [250, 200], [200, 250], [160, 300], [240, 300]])
    photos_t, faces_t = Photo.__table__, Face.__table__
    with engine.begin() as conn:
        for index in predictions_table.indexes:  # built once at the end: far faster than per row
            index.drop(conn)
        for lo in range(0, n_photos, _CHUNK):
            _bulk(conn, photos_t, [
                (i + 1, f"/photos/folder_{i % 500:03d}/img_{i:07d}.jpg", f"/photos/folder_{i % 500:03d}",
                 3_000_000 + i, 1_600_000_000_000_000_000 + i, f"{i:064x}", "ok", None, 4000, 3000,
                 when(start + timedelta(seconds=int(37 * i))), "exif", None, None, None,
                 int(per_photo[i]), None) for i in range(lo, min(lo + _CHUNK, n_photos))])
        for lo in range(0, len(photo_of_face), _CHUNK):
            hi = min(lo + _CHUNK, len(photo_of_face))
            probabilities = 1 / (1 + np.exp(-(logit_rates + rng.normal(0, 2.5, (hi - lo, len(attributes))))))
            _bulk(conn, faces_t, [
                (f + 1, f"{int(photo_of_face[f]) - 1:064x}", int(index_in_photo[f]), 100.0, 100.0, 200.0,
                 240.0, 0.99, landmarks, crops[f % len(crops)]) for f in range(lo, hi)])
            _bulk(conn, predictions_table, [
                (f + 1, f + 1, 1, *map(float, probabilities[f - lo]))
                for f in range(lo, hi)])
        run_id = conn.execute(insert(ClusterRun).values(
            model_id=1, attributes=attributes, k=8, seed=seed, params={})).inserted_primary_key[0]
        labels = rng.integers(0, 8, len(photo_of_face))
        for c in range(8):
            cluster_id = conn.execute(insert(Cluster).values(
                run_id=run_id, index=c, name=f"cluster {c}", size=int((labels == c).sum()),
                centroid=[0.5] * len(attributes), mean_probabilities={})).inserted_primary_key[0]
            members = np.flatnonzero(labels == c)
            _bulk(conn, ClusterMember.__table__, list(zip(
                [cluster_id] * len(members), (members + 1).tolist(), rng.random(len(members)).tolist())))
        for index in predictions_table.indexes:
            index.create(conn)
    scan.update_statistics(engine)  # as a scan does after writing
    if engine.dialect.name == "postgresql":  # what autovacuum does a while after: index-only scans
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
    engine.dispose()


def median_ms(fn, repeat: int, clock=time.perf_counter) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return round(1000 * statistics.median(times), 1)


def crop_page(engine, face_ids: list[int]) -> list[Image.Image]:
    with session_factory(engine)() as session:
        blobs = session.scalars(select(Face.crop).where(Face.id.in_(face_ids))).all()
    return [Image.open(io.BytesIO(b)).convert("RGB") for b in blobs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--faces", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", help="a database URL to fill (when empty) and time instead of the temp file")
    parser.add_argument("--postgres", action="store_true",
                        help="fill and time a throw-away PostgreSQL server (tests/postgres_server.py)")
    args = parser.parse_args()
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from postgres_server import Server, missing

        if missing():
            parser.error(missing())
        server = Server()
        try:
            args.db = server.new_database()
            return run(args)
        finally:
            server.stop()
    return run(args)


def run(args) -> int:
    cache = Path(tempfile.gettempdir()) / "photo_sorter_bench"  # kept between runs, never in the repo
    cache.mkdir(exist_ok=True)
    db = cache / f"query_{args.photos}_{args.faces}_{args.seed}.db"
    results = {"photos": args.photos, "faces": args.faces,
               "load_before": [round(v, 2) for v in os.getloadavg()]}
    if args.db:
        with session_factory(open_engine(args.db))() as session:
            filled = session.scalar(select(func.count()).select_from(Photo))
        if not filled:
            start = time.perf_counter()
            generate(args.db, args.photos, args.faces, args.seed)
            results["generate_seconds"] = round(time.perf_counter() - start, 1)
        db = args.db
    elif not db.is_file():
        start = time.perf_counter()
        generate(db.with_suffix(".part"), args.photos, args.faces, args.seed)
        db.with_suffix(".part").rename(db)
        results["generate_seconds"] = round(time.perf_counter() - start, 1)
    engine = open_engine(db)
    results["database"] = engine.dialect.name
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Face)) == args.faces
    ms, cpu_ms = {}, {}
    for expr in QUERIES:
        for fn in (query.photos, query.faces):
            ms[f"{fn.__name__}: {expr}"] = median_ms(lambda: fn(engine, expr, limit=100), args.repeat)
            # CPU time of this process (SQLite runs in it; a server's work is not counted)
            cpu_ms[f"{fn.__name__}: {expr}"] = median_ms(lambda: fn(engine, expr, limit=100), args.repeat,
                                                         time.process_time)
    ms["photos page 2: " + QUERIES[0]] = median_ms(
        lambda: query.photos(engine, QUERIES[0], limit=100, offset=100), args.repeat)
    ms["cluster run, browser (load_run without members)"] = median_ms(
        lambda: clusters.load_run(engine, members=False), args.repeat)
    first_cluster = clusters.load_run(engine, members=False)["clusters"][0]["id"]
    ms["one cluster's photos (cluster_photo_ids)"] = median_ms(
        lambda: clusters.cluster_photo_ids(engine, first_cluster), args.repeat)
    ms["cluster run with every member (load_run)"] = median_ms(  # tens of seconds at 1.5M faces
        lambda: clusters.load_run(engine), args.repeat if args.faces <= 200_000 else 1)
    ms["grid rows, one folder"] = median_ms(
        lambda: listings.photo_rows(engine, folder="/photos/folder_007"), args.repeat)
    ms["grid rows, whole library"] = median_ms(lambda: listings.photo_rows(engine), args.repeat)
    ms[f"grid first page ({listings.PAGE} rows) + scope counts, whole library"] = median_ms(
        lambda: (listings.photo_rows(engine, limit=listings.PAGE), listings.photo_counts(engine)), args.repeat)
    ms[f"grid first page ({listings.PAGE} rows) + scope counts, one folder"] = median_ms(
        lambda: (listings.photo_rows(engine, folder="/photos/folder_007", limit=listings.PAGE),
                 listings.photo_counts(engine, "/photos/folder_007")), args.repeat)
    ms["grid's last page on scroll (keyset on id)"] = median_ms(
        lambda: listings.photo_rows(engine, after_id=args.photos - listings.PAGE, limit=listings.PAGE), args.repeat)
    page = [f["face_id"] for f in query.faces(engine, QUERIES[0], limit=100)]
    ms["face crop page (100 crops read and decoded)"] = median_ms(lambda: crop_page(engine, page), args.repeat)
    results["ms"] = ms
    results["cpu_ms"] = cpu_ms
    results["matches"] = {expr: len(query.photos(engine, expr, limit=100)) for expr in QUERIES}
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    engine.dispose()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
