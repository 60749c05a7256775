"""Top-10 ranking quality of alsmf and its peers on the ml-100k canonical folds u1..u5.

    python benchmarks/ranking.py                                    # every row
    python benchmarks/ranking.py --only ease,popularity --out ranking-subset
    python benchmarks/ranking.py --only implicit --folds u1         # a library's rows, one fold

Run it with the peer environment's python (implicit, LensKit; see benchmarks/README.md), with
this tree's alsmf first on ``PYTHONPATH``. One command, one protocol and one metric code for
every row, so that the ranking figures of different libraries can be compared at all: papers
and library docs differ in the relevance threshold, the candidate set and the NDCG gains.

Protocol (the same for every row):

- Data: ml-100k's canonical folds, read from ``../shared/data/ml-100k`` (``--ml100k PATH``;
  never copied into the repository) with :func:`alsmf.data.movielens.load_fold`. Each row fits
  ``u*.base`` and is scored on ``u*.test``; the table gives the mean over the folds.
- Relevance: an item is relevant to a user when the user's held-out rating of it is >= 4.
- Candidates: every training item (an item with a rating in ``u*.base``) the user did not
  rate in training. Users without a relevant test item are skipped.
- Metrics at 10, computed by alsmf's own :func:`~alsmf.evaluation.metrics.relevance_matrix` and
  :func:`~alsmf.evaluation.metrics.ranking_from_hits` from each row's (users x 10) array of raw
  item ids: precision (hits / 10), recall (hits / #relevant), NDCG with binary gains, and
  coverage (share of the training items listed to at least one evaluated user). A relevant
  test item that is not a training item still counts in #relevant. Before the rows run, the
  script checks on fold u1 that this path gives exactly
  :func:`~alsmf.evaluation.metrics.ranking_metrics`'s numbers for an alsmf ``ALS()`` model.
- Tuning: a row with a grid of settings is tuned on validation data carved from each training
  fold, never on the test fold: :func:`alsmf.data.splits.user_holdout` puts 10% of each user's
  training ratings (seed 0) in validation, with the same relevance, candidates (the remaining
  training items the user did not rate) and metric code. The settings with the best
  validation NDCG@10 (the first of equals, in grid order) are refitted on the whole training
  fold and scored on the test fold; the table lists the choice per fold. The grids' ranges
  were placed by looking at validation scores (of folds u1 and u3) only, never at test scores.
- Fit s: wall time of the row's fit function on the whole training fold (conversion of the
  ratings into the library's form included; ranking and tuning excluded), median over the
  folds, with the process CPU time of the same call beside it (it shows how many cores the
  threads got on a shared machine). Every row first fits once, untimed, on a tenth of
  ``u1.base`` with its first settings, so numba compilation and first imports are not in it.

Threads: ``--threads`` for the libraries that take a thread count (alsmf's ``threads``,
implicit's ``num_threads``, LensKit's ``LK_NUM_THREADS``), BLAS single-threaded (set below,
before numpy is imported), so the numpy rows (popularity, EASE) run on one core. Every row
runs in this one process, one after the other: ml-100k is small.

Rows (``ROWS``): most-popular items; implicit's ALS on the binary "rated" matrix at a fixed
reference setting and tuned; implicit's BPR tuned; EASE (closed form in numpy, below) at λ 300
and tuned; LensKit's ``ImplicitMFScorer`` and ``ItemKNNScorer`` tuned; alsmf's ``ALS()`` and
``BayesianMF()`` defaults, ranked by ``MFModel.recommend_all`` (by the ranking score, and by
predicted rating alone), and ``ImplicitALS()`` at its defaults and tuned. The peers see only
who rated what (every training rating counts as 1), except LensKit's item k-NN in its explicit
mode, a grid choice, which centres the rating values.

Adding a row is one entry in ``ROWS``: ``Row(name, description, library, fit, grid, note)``.
``fit(train, threads, **settings)`` fits on a training :class:`~alsmf.Ratings` and returns a
:data:`Recommend`: a function from a sorted array of raw user ids (all of them training users)
to a (users x 10) array of raw item ids, best first, the user's training items excluded, -1 in
a slot with no item. ``grid`` is a tuple of settings dicts, one dict for a fixed row (it is
passed to ``fit`` and shown in the table), several to tune on validation (``grid(...)``
builds the product of a few axes). For an alsmf model, ``alsmf_fit(config)`` is such a
function: it fits ``dataclasses.replace(config, **settings)`` and ranks by ``recommend_all``::

    Row("alsmf-als-k32", "alsmf ALS() with k 32", "alsmf", alsmf_fit(ALS()),
        ({"factors": 32},), note="ranked by MFModel.recommend_all"),
    Row("alsmf-als-tuned", "alsmf ALS(), tuned", "alsmf", alsmf_fit(ALS()),
        grid(factors=(32, 64), reg=(0.05, 0.12))),

A new alsmf model class needs nothing else if its config is a dataclass whose ``fit(train,
threads=...)`` returns an :class:`~alsmf.MFModel`; otherwise write its own fit function.

The table (one row per model: mean P@10, R@10, NDCG@10, coverage@10, NDCG of each fold,
median fit wall and CPU s, the settings chosen per fold) is printed and written, with the
machine, the date and this protocol, to ``benchmarks/results/STEM.md`` (``--out``, default
``ranking-ml-100k``) and ``STEM.json`` (per fold: the metrics, the fit time and every
validation score). A row that fails is listed with the reason and the others go on.
"""

from __future__ import annotations

import os

# BLAS single-threaded: must be set before numpy is first imported
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from alsmf import ALS, ImplicitALS, Ratings  # noqa: E402
from alsmf.data.movielens import load_fold  # noqa: E402
from alsmf.data.splits import user_holdout  # noqa: E402
from alsmf.evaluation.metrics import (ranking_from_hits, ranking_metrics,  # noqa: E402
                                      relevance_matrix)
from alsmf.models.bayes import BayesianMF  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_ML100K = HERE.parents[1] / "shared" / "data" / "ml-100k"
sys.path.insert(0, str(HERE))
from peers import fmt, loadavg, machine  # noqa: E402

FOLDS = ("u1", "u2", "u3", "u4", "u5")
N = 10
"""List length."""
THRESHOLD = 4.0
"""Smallest held-out rating that makes an item relevant."""
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0
EMPTY = -1
"""Item id of a list slot that holds no item."""
METRICS = ("precision", "recall", "ndcg", "coverage")

Recommend = Callable[[np.ndarray], np.ndarray]
"""Sorted raw user ids -> (users x N) raw item ids, best first, seen items excluded, EMPTY in
a slot with no item."""


# --------------------------------------------------------------------------------------------
# scoring: one path for every row
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeldOut:
    """The relevant held-out (user, item) pairs, in raw ids, and the users they make."""

    users: np.ndarray
    """Sorted raw ids of the users with at least one relevant item: the users to rank for."""
    rel_users: np.ndarray
    rel_items: np.ndarray

    @classmethod
    def of(cls, ratings: Ratings) -> HeldOut:
        relevant = ratings.values >= THRESHOLD
        rel_users = ratings.user_ids[ratings.users[relevant]]
        rel_items = ratings.item_ids[ratings.items[relevant]]
        return cls(np.unique(rel_users), rel_users, rel_items)


def score_lists(top: np.ndarray, held: HeldOut, n_items: int) -> dict[str, float]:
    """Precision, recall, NDCG, MAP, hit rate and coverage at N of lists of raw item ids.

    ``top`` has one row per user of ``held.users`` (same order); ``n_items`` is the number of
    training items, the denominator of coverage. The same calls as
    :func:`alsmf.evaluation.metrics.ranking_metrics` makes.
    """
    top = np.asarray(top)
    if top.shape != (len(held.users), N):
        raise ValueError(f"expected ({len(held.users)}, {N}) item ids, got {top.shape}")
    filled = top != EMPTY
    hits = relevance_matrix(held.users, held.rel_users, held.rel_items, top, filled)
    n_relevant = np.bincount(np.searchsorted(held.users, held.rel_users),
                             minlength=len(held.users))
    metrics = ranking_from_hits(hits, n_relevant)
    metrics["coverage"] = len(np.unique(top[filled])) / n_items
    return metrics


def check_metric_path(train: Ratings, test: Ratings, threads: int) -> dict[str, Any]:
    """Score an alsmf ``ALS()`` model both ways on one fold; raise unless they agree exactly."""
    model = ALS().fit(train, threads=threads)
    expected = ranking_metrics(model, test, k=N, threshold=THRESHOLD).to_dict()
    held = HeldOut.of(test)
    ours = score_lists(model.recommend_all(held.users, n=N)[0], held, train.compact().n_items)
    differ = {name: (value, expected[name]) for name, value in ours.items()
              if value != expected[name]}
    if differ or expected["users"] != len(held.users):
        raise RuntimeError(f"the generic metric path differs from ranking_metrics: {differ}")
    return {"users": len(held.users), "metrics": ours}


# --------------------------------------------------------------------------------------------
# building blocks of the rows
# --------------------------------------------------------------------------------------------

def training_rows(train: Ratings, users: np.ndarray) -> np.ndarray:
    """Row indices in ``train`` of raw user ids; every one must be a training user."""
    rows = train.user_index(users)
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} users to rank have no training rating")
    return rows


def binary(train: Ratings, dtype: type = np.float32) -> sp.csr_matrix:
    """Who rated what: the users x items training matrix with every rating as 1."""
    matrix = train.by_user().astype(dtype)
    matrix.data[:] = 1
    return matrix


def dense_recommender(train: Ratings, score_rows: Callable[[np.ndarray], np.ndarray]
                      ) -> Recommend:
    """Rank every training item by ``score_rows(rows)`` (rows x items, in ``train``'s item
    order), the user's training items and non-finite scores left out; equal scores in item
    order."""
    seen = train.by_user()

    def recommend(users: np.ndarray) -> np.ndarray:
        rows = training_rows(train, users)
        scores = np.array(score_rows(rows), dtype=np.float64)  # a copy, masked below
        mine = seen[rows]
        scores[np.repeat(np.arange(len(rows)), np.diff(mine.indptr)), mine.indices] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :N]
        best = np.take_along_axis(scores, order, axis=1)
        return np.where(np.isfinite(best), train.item_ids[order], EMPTY)

    return recommend


def grid(**axes: tuple) -> tuple[dict[str, Any], ...]:
    """Every combination of the axes' values, the last axis varying fastest."""
    return tuple(dict(zip(axes, values)) for values in itertools.product(*axes.values()))


# --------------------------------------------------------------------------------------------
# the rows' fit functions: fit(train, threads, **settings) -> Recommend
# --------------------------------------------------------------------------------------------

def fit_popularity(train: Ratings, threads: int) -> Recommend:
    """The items with the most training ratings."""
    counts = train.item_counts().astype(np.float64)
    return dense_recommender(train, lambda rows: np.broadcast_to(counts, (len(rows), len(counts))))


def fit_ease(train: Ratings, threads: int, lam: float) -> Recommend:
    """EASE (Steck 2019): B = I - P diagMat(1 / diag(P)), P = (XᵀX + λI)⁻¹, diag(B) = 0.

    X is the binary users x items matrix; a user's scores are their row of X B.
    """
    x = binary(train, np.float64)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = p / -np.diag(p)  # column j divided by -P_jj
    np.fill_diagonal(b, 0.0)
    return dense_recommender(train, lambda rows: x[rows] @ b)


def implicit_recommender(model: Any, x: sp.csr_matrix, train: Ratings) -> Recommend:
    """Rank by an implicit model's batch ``recommend``, which drops the rows' rated items."""
    def recommend(users: np.ndarray) -> np.ndarray:
        rows = training_rows(train, users)
        ids, scores = model.recommend(rows, x[rows], N=N, filter_already_liked_items=True)
        listed = (ids >= 0) & np.isfinite(scores)
        return np.where(listed, train.item_ids[np.maximum(ids, 0)], EMPTY)

    return recommend


def fit_implicit_als(train: Ratings, threads: int, factors: int, regularization: float,
                     alpha: float, iterations: int) -> Recommend:
    """implicit's CPU ALS (conjugate gradient) on the binary matrix; confidence = α x matrix."""
    from implicit.cpu.als import AlternatingLeastSquares
    x = binary(train)
    model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                    iterations=iterations, num_threads=threads, random_state=0)
    model.fit(x, show_progress=False)
    return implicit_recommender(model, x, train)


def fit_implicit_bpr(train: Ratings, threads: int, factors: int, learning_rate: float,
                     regularization: float, iterations: int) -> Recommend:
    """implicit's CPU BPR (SGD on sampled pairs) on the binary matrix."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    x = binary(train)
    model = BayesianPersonalizedRanking(factors=factors, learning_rate=learning_rate,
                                        regularization=regularization, iterations=iterations,
                                        num_threads=threads, random_state=0)
    model.fit(x, show_progress=False)
    return implicit_recommender(model, x, train)


def lenskit_dataset(train: Ratings) -> Any:
    """The training ratings as a LensKit Dataset over the same raw ids."""
    from lenskit.data import from_interactions_df
    frame = train.to_frame()[["user", "item", "rating"]]
    return from_interactions_df(frame, user_col="user", item_col="item", rating_col="rating")


def fit_lenskit_implicit_mf(train: Ratings, threads: int, embedding_size: int, weight: float,
                            regularization: float, epochs: int) -> Recommend:
    """LensKit's ImplicitMFScorer (ALS, Cholesky) on who rated what; scores every item by the
    trained user embedding (what the scorer does with ``user_embeddings="prefer"``)."""
    from lenskit.als import ImplicitMFScorer
    from lenskit.training import TrainingOptions
    scorer = ImplicitMFScorer(embedding_size=embedding_size, weight=weight,
                              regularization=regularization, epochs=epochs)
    scorer.train(lenskit_dataset(train), TrainingOptions(rng=0))
    users = scorer.user_embeddings[scorer.users.numbers(train.user_ids)]
    items = scorer.item_embeddings[scorer.items.numbers(train.item_ids)]
    return dense_recommender(train, lambda rows: users[rows] @ items.T)


def fit_lenskit_item_knn(train: Ratings, threads: int, feedback: str,
                         max_nbrs: int) -> Recommend:
    """LensKit's ItemKNNScorer, called per user with the user's training history on every
    item; items it cannot score (no neighbour among the history) are not listed."""
    from lenskit.data import ItemList, RecQuery
    from lenskit.knn import ItemKNNScorer
    from lenskit.training import TrainingOptions
    data = lenskit_dataset(train)
    scorer = ItemKNNScorer(max_nbrs=max_nbrs, feedback=feedback)
    scorer.train(data, TrainingOptions(rng=0))
    items = ItemList(item_nums=scorer.items.numbers(train.item_ids), vocabulary=scorer.items)

    def score_rows(rows: np.ndarray) -> np.ndarray:
        scores = np.empty((len(rows), train.n_items))
        for at, row in enumerate(rows):
            user = train.user_ids[row]
            query = RecQuery(user_id=user, history_items=data.user_row(user))
            scores[at] = scorer(query, items).scores()
        return scores

    return dense_recommender(train, score_rows)


def alsmf_fit(config: Any, rank_by: str = "score") -> Callable[..., Recommend]:
    """The fit function of an alsmf trainer config (``ALS()``, ``BayesianMF()``, ...): fits
    ``dataclasses.replace(config, **settings)`` and ranks by ``MFModel.recommend_all``
    (``rank_by``: its ranking score, or the predicted rating alone)."""
    def fit(train: Ratings, threads: int, **settings: Any) -> Recommend:
        model = dataclasses.replace(config, **settings).fit(train, threads=threads)
        return lambda users: model.recommend_all(users, n=N, rank_by=rank_by)[0]

    return fit


# --------------------------------------------------------------------------------------------
# the rows
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One line of the table: a model, how to fit it, and the settings to try."""

    name: str
    """Short name for ``--only``."""
    description: str
    library: str
    """Distribution whose version the table shows (``numpy`` for the models written here)."""
    fit: Callable[..., Recommend]
    """``fit(train, threads, **settings)``: see the module docstring."""
    grid: tuple[dict[str, Any], ...] = ({},)
    """One settings dict (fixed) or several (tuned on validation)."""
    note: str = ""
    """How the library is called, for the notes under the table."""


ROWS: tuple[Row, ...] = (
    Row("popularity", "Popularity (most-rated unseen items)", "numpy", fit_popularity),
    Row("implicit-als", "implicit ALS, reference setting", "implicit", fit_implicit_als,
        ({"factors": 32, "regularization": 0.05, "alpha": 1.0, "iterations": 15},),
        "CPU, conjugate gradient; confidence = alpha x the binary matrix"),
    Row("implicit-als-tuned", "implicit ALS, tuned", "implicit", fit_implicit_als,
        grid(factors=(32, 64, 128), regularization=(3.0, 10.0, 30.0, 100.0),
             alpha=(1.0, 3.0, 10.0), iterations=(15, 30)),
        "as the reference row"),
    Row("implicit-bpr", "implicit BPR, tuned", "implicit", fit_implicit_bpr,
        grid(factors=(8, 16, 32, 64), learning_rate=(0.003, 0.01),
             regularization=(0.001, 0.01), iterations=(100,)),
        "CPU; its threads update the factors without locks, so it varies a little from run "
        "to run"),
    Row("ease-300", "EASE, λ 300", "numpy", fit_ease, ({"lam": 300.0},),
        "closed form in numpy (this script), BLAS on one thread"),
    Row("ease", "EASE, tuned", "numpy", fit_ease,
        grid(lam=(50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0)), "as EASE λ 300"),
    Row("lenskit-implicit-mf", "LensKit ImplicitMFScorer, tuned", "lenskit",
        fit_lenskit_implicit_mf,
        grid(embedding_size=(16, 32, 64), weight=(1.0, 3.0, 10.0),
             regularization=(3.0, 10.0, 30.0, 100.0), epochs=(10,)),
        "confidence 1 + weight; every item scored by the trained user embedding (the "
        "scorer's user_embeddings=\"prefer\"; by default it solves the embedding again from "
        "the history in the query), seen items masked here"),
    # the explicit mode (LensKit's default) ranks by predicted rating: one setting of it
    Row("lenskit-item-knn", "LensKit ItemKNNScorer, tuned", "lenskit", fit_lenskit_item_knn,
        ({"feedback": "explicit", "max_nbrs": 20},)
        + grid(feedback=("implicit",), max_nbrs=(20, 50, 100, 200, 400)),
        "called per user with the user's training history on every item, seen items masked "
        "here; an item with no neighbour in the history gets no score and is not listed"),
    Row("alsmf-als", "alsmf ALS() defaults", "alsmf", alsmf_fit(ALS()),
        note="a rating model (fits the rating values) with its ranking head; ranked by "
        "MFModel.recommend_all's ranking score (head preference x the predicted rating's "
        "place on the scale)"),
    Row("alsmf-als-rating", "alsmf ALS() defaults, --rank-by rating", "alsmf",
        alsmf_fit(ALS(), rank_by="rating"),
        note="the same model ranked by predicted rating alone"),
    Row("alsmf-bayes", "alsmf BayesianMF() defaults", "alsmf", alsmf_fit(BayesianMF()),
        note="a rating model (Gibbs sampling) with its ranking head; ranked by the ranking "
        "score, with the posterior mean rating"),
    Row("alsmf-bayes-rating", "alsmf BayesianMF() defaults, --rank-by rating", "alsmf",
        alsmf_fit(BayesianMF(), rank_by="rating"),
        note="the same model ranked by posterior mean rating alone"),
    Row("alsmf-ials", "alsmf ImplicitALS() defaults", "alsmf", alsmf_fit(ImplicitALS()),
        note="implicit-feedback ALS on who rated what (k 32, λ 0.05, α 1, 15 it.); ranked by "
        "MFModel.recommend_all"),
    Row("alsmf-ials-tuned", "alsmf ImplicitALS(), tuned", "alsmf", alsmf_fit(ImplicitALS()),
        grid(factors=(64, 128, 256), reg=(10.0, 20.0, 50.0, 100.0), alpha=(0.5, 1.0, 2.0),
             iterations=(5, 15)),
        "as the defaults row; the grid of the README's nested alsmf tune run"),
)


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fold:
    """One canonical fold with its validation split."""

    name: str
    train: Ratings
    """``u*.base``, compacted: its items are the training items."""
    test: HeldOut
    fit_part: Ratings
    """``train`` less the validation ratings, compacted."""
    validation: HeldOut


def load_folds(path: Path, names: list[str]) -> list[Fold]:
    """The folds, each with 10% of each user's training ratings carved out for validation."""
    folds = []
    for name in names:
        train, test = load_fold(path, name)
        train = train.compact()
        fit_part, validation = user_holdout(train, VALIDATION_FRACTION, seed=VALIDATION_SEED)
        folds.append(Fold(name, train, HeldOut.of(test), fit_part.compact(),
                          HeldOut.of(validation)))
    return folds


def tune(row: Row, fold: Fold, threads: int) -> tuple[dict[str, Any], list[list]]:
    """The settings of ``row.grid`` with the best validation NDCG, and every (settings, NDCG)."""
    scores = []
    for settings in row.grid:
        recommend = row.fit(fold.fit_part, threads, **settings)
        metrics = score_lists(recommend(fold.validation.users), fold.validation,
                              fold.fit_part.n_items)
        scores.append([settings, metrics["ndcg"]])
    best = max(range(len(scores)), key=lambda at: (scores[at][1], -at))
    return row.grid[best], scores


def run_row(row: Row, folds: list[Fold], threads: int) -> dict[str, Any]:
    """Tune (if the row has a grid), fit and score ``row`` on every fold."""
    started, load_before = time.perf_counter(), loadavg()
    warm = folds[0].train
    row.fit(warm.subset(np.arange(len(warm) // 10)).compact(), threads, **row.grid[0])
    result: dict[str, Any] = {"description": row.description, "library": row.library,
                              "version": _version(row.library), "tuned": len(row.grid) > 1,
                              "folds": []}
    for fold in folds:
        chosen, validation = row.grid[0], None
        if len(row.grid) > 1:
            chosen, validation = tune(row, fold, threads)
        wall, cpu = time.perf_counter(), time.process_time()
        recommend = row.fit(fold.train, threads, **chosen)
        fit_s, fit_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        metrics = score_lists(recommend(fold.test.users), fold.test, fold.train.n_items)
        result["folds"].append({"fold": fold.name, "users": len(fold.test.users),
                                "settings": chosen, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s,
                                **metrics, "validation_ndcg": validation})
    for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
        result[name] = statistics.fmean(f[name] for f in result["folds"])
    for name in ("fit_s", "fit_cpu_s"):
        result[f"median_{name}"] = statistics.median(f[name] for f in result["folds"])
    result["wall_s"] = time.perf_counter() - started
    result["load"] = [load_before, loadavg()]
    return result


def load_range(results: dict[str, dict]) -> str:
    """The smallest and largest load average recorded around the rows."""
    loads = [load for r in results.values() for load in r.get("load", []) if load is not None]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else "unknown"


def _version(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def value_text(value: Any) -> str:
    """A setting's value as the tables show it (floats without trailing zeros)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_text(settings: dict[str, Any]) -> str:
    """``factors 64, alpha 5`` (``defaults`` when empty)."""
    return ", ".join(f"{key} {value_text(value)}" for key, value in settings.items()) or "defaults"


def chosen_text(result: dict[str, Any]) -> str:
    """The settings chosen per fold: a value once when every fold chose it, else the folds'
    values in fold order (``factors 32/64/64/128/64``)."""
    chosen = [f["settings"] for f in result["folds"]]
    keys = dict.fromkeys(key for settings in chosen for key in settings)
    if not keys:
        return "defaults"
    parts = []
    for key in keys:
        values = [value_text(settings.get(key, "–")) for settings in chosen]
        parts.append(f"{key} " + (values[0] if len(set(values)) == 1 else "/".join(values)))
    return ", ".join(parts)


def table(results: dict[str, dict], rows: list[Row], folds: list[str]) -> str:
    """The markdown table: one line per row."""
    lines = ["| model | version | P@10 | R@10 | NDCG@10 | coverage@10 | "
             + " | ".join(f"NDCG {fold}" for fold in folds) + " | median fit s | median fit CPU s "
             "| settings (a/b: per fold) |",
             "|---|---|---|---|---|---|" + "---|" * len(folds) + "---|---|---|"]
    for row in rows:
        r = results[row.name]
        if r.get("status", "ok") != "ok":
            lines.append(f"| {row.description} (`{row.name}`) | {_version(row.library)} | "
                         + "– | " * (6 + len(folds)) + f"{r['status']} |")
            continue
        by_fold = {f["fold"]: f["ndcg"] for f in r["folds"]}
        cells = [fmt(r[name], ".3f") for name in METRICS]
        cells[2] = f"**{cells[2]}**"
        lines.append(f"| {row.description} (`{row.name}`) | {r['version']} | "
                     + " | ".join(cells) + " | "
                     + " | ".join(fmt(by_fold.get(fold), ".3f") for fold in folds)
                     + f" | {fmt(r['median_fit_s'], '.2f')} | {fmt(r['median_fit_cpu_s'], '.2f')}"
                     f" | {chosen_text(r)} |")
    return "\n".join(lines) + "\n"


def notes_text(rows: list[Row]) -> str:
    """How each row's library is called."""
    return "Notes:\n\n" + "".join(f"- `{row.name}`: {row.note}\n" for row in rows if row.note)


def grids_text(rows: list[Row]) -> str:
    """The validation grid of each tuned row: its axes when it is their product, else its
    settings one by one."""
    tuned = [row for row in rows if len(row.grid) > 1]
    if not tuned:
        return ""
    lines = ["Validation grids:", ""]
    for row in tuned:
        axes = {key: list(dict.fromkeys(s[key] for s in row.grid)) for key in row.grid[0]}
        if all(s.keys() == axes.keys() for s in row.grid) and len(row.grid) == int(
                np.prod([len(values) for values in axes.values()])):
            text = "every combination of " + "; ".join(
                f"{key} " + "/".join(value_text(v) for v in values)
                for key, values in axes.items())
        else:
            text = " | ".join(settings_text(s) for s in row.grid)
        lines.append(f"- {row.description} ({len(row.grid)} settings): {text}")
    return "\n".join(lines) + "\n"


PROTOCOL = f"""\
Protocol: each row fits a canonical fold's u*.base and ranks, for every user with a relevant
u*.test item (held-out rating >= {THRESHOLD:g}), the training items the user did not rate in
training; top-{N} precision, recall, NDCG (binary gains) and coverage (share of the training
items listed to at least one evaluated user) by alsmf's relevance_matrix and ranking_from_hits,
mean over the folds. A relevant test item that is not a training item still counts in the
user's number of relevant items. Rows with several settings are tuned on validation data
carved from each training fold (user_holdout: {VALIDATION_FRACTION:.0%} of each user's training
ratings, seed {VALIDATION_SEED}; best validation NDCG@{N}), then refitted on the whole training
fold; the test folds never choose a setting. The peers see every training rating as 1 (who
rated what), except LensKit's item k-NN in explicit mode. Fit s: wall time of the row's fit on
the whole training fold, data conversion included, median over the folds; fit CPU s: the
process CPU time of the same call (near threads x wall time when every thread had a core of its
own). Every row is seeded; implicit's BPR still varies a little from run to run, since its
threads update the factors without locks."""


def main(argv: list[str] | None = None) -> int:
    names = [row.name for row in ROWS]
    libraries = sorted({row.library for row in ROWS})
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    p.add_argument("--only", default=None, help="comma-separated rows or libraries: "
                   + ", ".join(names + libraries))
    p.add_argument("--folds", default=",".join(FOLDS), help="subset of u1..u5, e.g. u1,u2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="ranking-ml-100k", help="stem of the result files")
    a = p.parse_args(argv)
    fold_names = [f.strip() for f in a.folds.split(",") if f.strip()]
    if not fold_names or any(f not in FOLDS for f in fold_names):
        p.error(f"--folds takes names from {', '.join(FOLDS)}")
    if a.threads < 1:
        p.error("--threads must be at least 1")
    if not (a.ml100k / "u1.base").is_file():
        p.error(f"ml-100k folds not found at {a.ml100k} (give --ml100k PATH)")
    rows = list(ROWS)
    if a.only:
        tokens = [t.strip() for t in a.only.split(",") if t.strip()]
        unknown = [t for t in tokens if t not in names and t not in libraries]
        if unknown:
            p.error(f"unknown rows {', '.join(unknown)}; choose from "
                    + ", ".join(names + libraries))
        rows = [row for row in ROWS if row.name in tokens or row.library in tokens]
    # LensKit reads its thread counts when first used; its torch backend stays on one thread
    os.environ.update({"LK_NUM_THREADS": str(a.threads), "LK_NUM_BACKEND_THREADS": "1"})

    started = datetime.datetime.now().astimezone()
    clock = time.perf_counter()
    print("checking the metric path on u1 (alsmf ALS(), compiles numba) ...", flush=True)
    check = check_metric_path(*load_fold(a.ml100k, "u1"), threads=a.threads)
    print(f"  identical to ranking_metrics on {check['users']} users", flush=True)
    folds = load_folds(a.ml100k, fold_names)
    results: dict[str, dict] = {}
    for row in rows:
        print(f"running {row.name} ...", flush=True)
        try:
            results[row.name] = run_row(row, folds, a.threads)
        except Exception as error:  # one failing library must not stop the table
            traceback.print_exc()
            results[row.name] = {"status": f"failed: {type(error).__name__}: {error}"}
            continue
        r = results[row.name]
        print(f"  P@10 {r['precision']:.3f}, R@10 {r['recall']:.3f}, NDCG@10 {r['ndcg']:.3f}, "
              f"coverage {r['coverage']:.3f}, fit {r['median_fit_s']:.2f} s, "
              f"{chosen_text(r)}, wall {r['wall_s']:.0f} s", flush=True)
    total_s = time.perf_counter() - clock
    text = "\n".join([
        "# Top-10 ranking on the ml-100k canonical folds",
        "",
        f"Date: {started.strftime('%Y-%m-%d %H:%M %Z')}  ",
        f"Machine: {machine()}  ",
        f"Command: `{' '.join(['python benchmarks/ranking.py', *(argv or sys.argv[1:])])}` "
        f"(peer environment); {a.threads} threads where the library has threads, BLAS "
        "single-threaded, every row in one process. Other jobs share this machine (1-minute "
        f"load average {load_range(results)} at the rows' starts and ends): fit times are "
        "only roughly comparable, even within this run.",
        "",
        PROTOCOL.replace("\n", " "),
        "",
        table(results, rows, fold_names),
        notes_text(rows),
        grids_text(rows),
        f"Metric path check: on u1, an alsmf ALS() model scored through the "
        f"generic path (its recommend_all lists as raw ids) gave exactly ranking_metrics's "
        f"numbers ({check['users']} users).",
        "",
        f"Whole run: {total_s / 60:.1f} min.\n",
    ])
    print()
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{a.out}.md"
    out.write_text(text)
    (RESULTS / f"{a.out}.json").write_text(json.dumps(
        {"date": started.isoformat(), "machine": machine(), "threads": a.threads,
         "check": check, "rows": results}, indent=1, default=str))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
