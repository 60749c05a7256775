"""Accuracy of a trained model on held-out ratings: rating errors and top-N ranking quality.

Rating metrics (RMSE, MAE) score every test pair. Pairs whose user or item the model never saw
in training are scored with the model's documented fallback (training mean plus the known
bias), exactly as the model would answer them in use, so the metrics are never NaN.

Ranking metrics judge the top-``k`` list the model recommends to each test user, built by
:meth:`MFModel.recommend_all` (blocked BLAS scoring and parallel selection) from all the items
the model knows minus the ones the user rated in training. Conventions, which differ between
libraries and so are spelled out here:

* An item is *relevant* to a user when the user's held-out rating of it is ``>= threshold``.
* Users without a relevant test item are skipped: every ranking metric is a mean over the
  users with at least one (``users`` in the result counts them). A user unknown to the model
  is kept and ranked by the fallback (item bias alone).
* A relevant item the model cannot recommend (unknown to it) still counts in that user's
  number of relevant items, so recall and NDCG do not reward an unrecoverable miss.
* precision@k = hits / k, with k as the denominator even when fewer than k candidates exist.
* recall@k = hits / #relevant.
* NDCG@k uses binary gains, DCG = Σ_{r ≤ k} hit_r / log2(r + 1), and the ideal DCG places
  min(k, #relevant) hits at the top.
* AP@k = Σ_{r ≤ k} precision@r · hit_r / min(k, #relevant); MAP@k is its mean over users.
* hit rate@k: share of users with at least one relevant item in their list.
* coverage@k: share of the model's items that appear in at least one evaluated user's list.

Everything is computed on (users x k) arrays at once, without a Python loop over users.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.errors import ConfigError, DataError
from alsmf.model import MFModel

RATING_METRICS = ("rmse", "mae")
RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error of two equal-length arrays."""
    residuals = _residuals(actual, predicted)
    return math.sqrt(float(np.mean(np.square(residuals))))


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error of two equal-length arrays."""
    return float(np.mean(np.abs(_residuals(actual, predicted))))


def _residuals(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"need two non-empty arrays of one shape, got {actual.shape} and "
                         f"{predicted.shape}")
    return actual - predicted


def predict_ratings(model: MFModel, ratings: Ratings) -> np.ndarray:
    """The model's prediction of every pair of ``ratings`` (raw ids; fallback for unknown ones)."""
    users = lookup_ids(model.user_ids, ratings.user_ids[ratings.users])
    items = lookup_ids(model.item_ids, ratings.item_ids[ratings.items])
    return model.predict_indices(users, items)


def rating_metrics(model: MFModel, test: Ratings) -> dict[str, float]:
    """``{"rmse": ..., "mae": ...}`` of the model on the test ratings."""
    predicted = predict_ratings(model, test)
    return {"rmse": rmse(test.values, predicted), "mae": mae(test.values, predicted)}


@dataclass(frozen=True)
class RankingMetrics:
    """Top-k quality averaged over the users with a relevant test item (see the module doc).

    Attributes:
        k: list length.
        threshold: smallest held-out rating that makes an item relevant.
        users: number of users evaluated (those with at least one relevant test item).
        precision, recall, ndcg, map, hit_rate: means over those users.
        coverage: share of the model's items recommended to at least one of them.
    """

    k: int
    threshold: float
    users: int
    precision: float
    recall: float
    ndcg: float
    map: float
    hit_rate: float
    coverage: float

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready dict."""
        return asdict(self)


def ranking_metrics(model: MFModel, test: Ratings, k: int = 10, threshold: float = 4.0,
                    rank_by: str = "score") -> RankingMetrics:
    """Precision, recall, NDCG, MAP, hit rate and coverage of the model's top-k lists, ranked
    as :meth:`MFModel.recommend_all` ranks them (``rank_by``).

    Raises:
        ConfigError: ``k`` is not a positive integer.
        DataError: no test rating reaches ``threshold``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k (the list length) must be a positive integer, got {k!r}")
    relevant = test.values >= threshold
    rel_users = test.user_ids[test.users[relevant]]
    rel_items = test.item_ids[test.items[relevant]]
    users = np.unique(rel_users)
    if len(users) == 0:
        raise DataError(f"{test.source}: no test rating is >= {threshold:g}, so no user has a "
                        "relevant item; lower the relevance threshold")
    top, scores = model.recommend_all(users, n=int(k), rank_by=rank_by)
    hits = relevance_matrix(users, rel_users, rel_items, top, np.isfinite(scores))
    n_relevant = np.bincount(np.searchsorted(users, rel_users), minlength=len(users))
    metrics = ranking_from_hits(hits, n_relevant)
    listed = top[np.isfinite(scores)]
    coverage = len(np.unique(listed)) / model.n_items if model.n_items else 0.0
    return RankingMetrics(int(k), float(threshold), len(users), **metrics, coverage=coverage)


def relevance_matrix(users: np.ndarray, rel_users: np.ndarray, rel_items: np.ndarray,
                     top: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Boolean (users x k): whether each listed item is relevant to that row's user.

    ``users`` are the sorted raw ids of the rows, (``rel_users``, ``rel_items``) the relevant
    (user, item) pairs, ``top`` the listed raw item ids and ``filled`` which slots hold an item.
    Each pair becomes one integer key (row x relevant-item position), so membership of the
    whole list matrix is one sorted search.
    """
    catalogue = np.unique(rel_items)
    width = len(catalogue)
    keys = np.unique(np.searchsorted(users, rel_users) * width
                     + np.searchsorted(catalogue, rel_items))
    position = np.minimum(np.searchsorted(catalogue, top), width - 1)
    in_catalogue = filled & (catalogue[position] == top)
    listed = np.arange(len(users))[:, None] * width + position
    found = np.minimum(np.searchsorted(keys, listed), len(keys) - 1)
    return in_catalogue & (keys[found] == listed)


def ranking_from_hits(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, float]:
    """Mean precision, recall, NDCG, MAP and hit rate from a (users x k) hit matrix.

    ``n_relevant`` is each user's number of relevant items (all >= 1).
    """
    k = hits.shape[1]
    ranks = np.arange(1, k + 1)
    discounts = 1.0 / np.log2(ranks + 1)
    hit_counts = hits.sum(axis=1)
    ideal_hits = np.minimum(n_relevant, k)
    dcg = hits @ discounts
    idcg = np.cumsum(discounts)[ideal_hits - 1]
    precision_at_rank = np.cumsum(hits, axis=1) / ranks
    average_precision = (precision_at_rank * hits).sum(axis=1) / ideal_hits
    return {
        "precision": float(np.mean(hit_counts / k)),
        "recall": float(np.mean(hit_counts / n_relevant)),
        "ndcg": float(np.mean(dcg / idcg)),
        "map": float(np.mean(average_precision)),
        "hit_rate": float(np.mean(hit_counts > 0)),
    }
