"""Attribute clusters: K-Means on the faces' probability vectors, named, stored, with eigenfaces.

k is given or chosen by the silhouette over 2..10: it is bounded, comparable across k and needs
no reference clusterings (the gap statistic costs B extra K-Means runs per k; the elbow needs a
human eye). It is computed on a seeded sample of at most 2,000 faces, so choosing k stays in
seconds for large libraries and the run stays deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sqlalchemy import select
from threadpoolctl import threadpool_limits

from photo_sorter import eigenfaces
from photo_sorter.attributes import CLUSTER_ATTRIBUTES, absent, label, validate
from photo_sorter.export import LibraryError, active_model, face_rows, require_predicted
from photo_sorter.outputs import Outputs
from photo_sorter.store import (
    Cluster, ClusterMember, ClusterRun, Face, Photo, face_photo, library_lock, session_factory,
)

AUTO_K_RANGE = range(2, 11)
SILHOUETTE_SAMPLE = 2000
NAME_MIN_DIFF = 0.15      # how far from the library mean an attribute must be to name a cluster
NAME_MAX_TERMS = 3
EIGEN_MAX_FACES = 1000    # members (nearest the centre) used for PCA and the sheet
N_COMPONENTS = 5


def parse_k(text: str | int | None):
    """'auto' / None / an integer string -> what run_clustering takes; ValueError otherwise."""
    if text is None or text == "auto":
        return "auto"
    try:
        k = int(text)
    except (TypeError, ValueError):
        raise LibraryError(f"k must be a whole number or 'auto', not {text!r}") from None
    if k < 1:
        raise LibraryError(f"k must be at least 1, not {k}")
    return k


def fit(x: np.ndarray, k="auto", seed: int = 0) -> dict:
    """K-Means on rows of x. Returns labels, centres, distances, k, silhouette, and the
    silhouette of every k tried when k is 'auto'. Deterministic for a seed."""
    n = len(x)
    if n < 2:
        raise LibraryError(f"clustering needs at least 2 faces; the library has {n}")
    scores = {}
    distinct = len(np.unique(x, axis=0))
    if k in (None, "auto"):
        ks = [c for c in AUTO_K_RANGE if c <= min(n - 1, distinct)]
        if n < 3:
            raise LibraryError(f"choosing k automatically needs at least 3 faces; the library has {n}")
        if not ks:
            raise LibraryError("all faces have the same attribute probabilities; there is nothing to cluster")
        fits = {c: _kmeans(x, c, seed) for c in ks}
        scores = {c: _silhouette(x, fits[c].labels_, seed) for c in ks}
        k = max(ks, key=lambda c: (scores[c], -c))
        km = fits[k]
    else:
        k = parse_k(k)
        if k > n:
            raise LibraryError(f"k={k} clusters need at least {k} faces; the library has {n}")
        if k > distinct:
            raise LibraryError(f"the faces have only {distinct} different attribute vectors; "
                               f"choose k <= {distinct}")
        km = _kmeans(x, k, seed)
    labels = km.labels_
    distances = np.linalg.norm(x - km.cluster_centers_[labels], axis=1)
    silhouette = scores.get(k) if scores else (_silhouette(x, labels, seed) if 2 <= k <= n - 1 else None)
    return {"k": int(k), "labels": labels, "centers": km.cluster_centers_, "distances": distances,
            "silhouette": silhouette, "silhouette_by_k": {int(c): s for c, s in scores.items()}}


def _kmeans(x: np.ndarray, k: int, seed: int) -> KMeans:
    """One OpenMP thread: on ~10-dimensional vectors threads save nothing, and on a busy CPU
    their spin-waits made a fit 50-100x slower (26 s instead of 0.2 s for 3,000 faces)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x)


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    if len(set(labels.tolist())) < 2:
        return None
    sample = SILHOUETTE_SAMPLE if len(x) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(x, labels, sample_size=sample, random_state=seed))


def cluster_name(mean: dict[str, float], library_mean: dict[str, float]) -> str:
    """Name from the attributes furthest from the library mean: present ones by their label,
    absent ones in plain words (e.g. "Smiling · Eyeglasses · not Male", "Beard" for not No_Beard)."""
    terms = []
    for a in sorted(mean, key=lambda a: -abs(mean[a] - library_mean[a])):
        diff = mean[a] - library_mean[a]
        if abs(diff) < NAME_MIN_DIFF or len(terms) == NAME_MAX_TERMS:
            break
        if diff > 0 and mean[a] >= 0.5:
            terms.append(label(a))
        elif diff < 0 and mean[a] < 0.5:
            terms.append(absent(a))
    return " · ".join(terms) if terms else "Typical of the library"


def unique_names(names: list[str]) -> list[str]:
    """Number repeated names ('Smiling (2)') so every cluster can be told apart."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def run_clustering(engine, attributes=None, k="auto", seed: int = 0,
                   out_dir: str | Path | None = None, model_id: int | None = None) -> dict:
    """Cluster every face of the library by its probabilities, store the run, and (with out_dir)
    write one PNG sheet per cluster. Returns {run_id, k, silhouette, clusters: [{id, name, size,
    sheet, mean_probabilities}]}."""
    attributes = validate(attributes if attributes else CLUSTER_ATTRIBUTES)
    if len(set(attributes)) != len(attributes):
        raise LibraryError("an attribute is listed twice")
    Session = session_factory(engine)
    with library_lock(engine, doing="cluster"), Session() as session:
        model = active_model(session, model_id)
        rows = face_rows(session, model, attributes)
        require_predicted(rows, attributes)
        rows = [r for r in rows if all(r["probabilities"][a] is not None for a in attributes)]
        x = np.array([[r["probabilities"][a] for a in attributes] for r in rows], np.float64)
        result = fit(x, k, seed)
        library_mean = dict(zip(attributes, x.mean(axis=0).tolist()))
        run = ClusterRun(model_id=model.id, attributes=attributes, k=result["k"], seed=seed,
                         silhouette=result["silhouette"],
                         params={"k_requested": str(k), "n_faces": len(rows),
                                 "silhouette_by_k": result["silhouette_by_k"],
                                 "out_dir": str(out_dir) if out_dir else None})
        session.add(run)
        means = [x[result["labels"] == c].mean(axis=0) for c in range(result["k"])]
        names = unique_names([cluster_name(dict(zip(attributes, m)), library_mean) for m in means])
        clusters = []
        for c in range(result["k"]):
            idx = np.flatnonzero(result["labels"] == c)
            idx = idx[np.argsort(result["distances"][idx], kind="stable")]
            cluster = Cluster(index=c, name=names[c], size=len(idx),
                              centroid=result["centers"][c].tolist(),
                              mean_probabilities=dict(zip(attributes, means[c].tolist())))
            cluster.members = [ClusterMember(face_id=rows[i]["face_id"],
                                             distance=float(result["distances"][i])) for i in idx]
            run.clusters.append(cluster)
            clusters.append((cluster, [rows[i]["face_id"] for i in idx]))
        session.flush()
        if out_dir is not None:
            outputs = Outputs(engine)
            for cluster, face_ids in clusters:
                sheet = _sheet(session, cluster, face_ids, library_mean, seed)
                if sheet is not None:
                    name = f"run{run.id}_cluster{cluster.index + 1}.png"
                    cluster.sheet_path = str(outputs.write(Path(out_dir) / name, sheet, root=out_dir,
                                                           record=True))
        session.commit()
        return {
            "run_id": run.id, "k": run.k, "silhouette": run.silhouette,
            "silhouette_by_k": result["silhouette_by_k"], "n_faces": len(rows),
            "clusters": [{"id": c.id, "name": c.name, "size": c.size, "sheet": c.sheet_path,
                          "mean_probabilities": c.mean_probabilities} for c, _ in clusters],
        }


def _sheet(session, cluster: Cluster, face_ids: list[int], library_mean: dict,
           seed: int) -> bytes | None:
    """Eigenfaces of the members nearest the centre (all of them up to EIGEN_MAX_FACES)."""
    face_ids = face_ids[:EIGEN_MAX_FACES]
    blobs = dict(session.execute(
        select(Face.id, Face.crop).where(Face.id.in_(face_ids), Face.crop.is_not(None))
    ).all())
    ordered = [blobs[f] for f in face_ids if f in blobs]
    if not ordered:
        return None
    crops = eigenfaces.decode_crops(ordered)
    faces = eigenfaces.compute(crops, N_COMPONENTS, typical_index=0, seed=seed)
    return eigenfaces.render_sheet(cluster.name, crops, faces, cluster.mean_probabilities, library_mean)


def load_run(engine, run_id: int | None = None, members: bool = True) -> dict:
    """A stored run (the latest by default) with its clusters and members (nearest first) for
    browsing: each member has face_id, photo_id, path, box and distance. members=False leaves
    them out (the browser's list and sheets): a run over 1.5M faces then loads in milliseconds
    instead of tens of seconds; cluster_photo_ids gives one cluster's photos when asked for."""
    with session_factory(engine)() as session:
        if run_id is None:
            run = session.scalars(select(ClusterRun).order_by(ClusterRun.id.desc())).first()
            if run is None:
                raise LibraryError("no clustering run yet; run `cluster` first")
        else:
            run = session.get(ClusterRun, run_id)
            if run is None:
                raise LibraryError(f"no clustering run with id {run_id}")
        by_cluster: dict[int, list[dict]] = {}
        for m in session.execute(_members().where(Cluster.run_id == run.id)) if members else ():
            by_cluster.setdefault(m.cluster_id, []).append({
                "face_id": m.face_id, "photo_id": m.photo_id, "path": m.path,
                "box": [m.x, m.y, m.w, m.h], "distance": m.distance})
        return {
            "run_id": run.id, "created_at": run.created_at, "model_id": run.model_id,
            "attributes": run.attributes, "k": run.k, "seed": run.seed,
            "silhouette": run.silhouette, "params": run.params,
            "clusters": [{"id": c.id, "index": c.index, "name": c.name, "size": c.size,
                          "sheet": c.sheet_path, "centroid": c.centroid,
                          "mean_probabilities": c.mean_probabilities,
                          **({"members": by_cluster.get(c.id, [])} if members else {})}
                         for c in run.clusters],
        }


def _members():
    """Cluster members, nearest first, each face with its one photo (face_photo)."""
    return (select(ClusterMember.cluster_id, ClusterMember.face_id, ClusterMember.distance,
                   Photo.id.label("photo_id"), Photo.path, Face.x, Face.y, Face.w, Face.h)
            .select_from(ClusterMember).join(Face, Face.id == ClusterMember.face_id).join(Photo, face_photo())
            .join(Cluster, Cluster.id == ClusterMember.cluster_id)
            .order_by(ClusterMember.cluster_id, ClusterMember.distance, ClusterMember.face_id))


def cluster_photo_ids(engine, cluster_id: int) -> list[int]:
    """The photos of one cluster's members, nearest member first, each once."""
    with session_factory(engine)() as session:
        rows = session.execute(_members().where(ClusterMember.cluster_id == cluster_id))
        return list(dict.fromkeys(r.photo_id for r in rows))
