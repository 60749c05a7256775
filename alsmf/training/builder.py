"""The one place a trained :class:`~alsmf.model.MFModel` is assembled from a training set.

Every method's model covers the users and items with training ratings (the training set is
compacted first) and keeps those ratings by user, so that recommendations skip rated items,
``fold_in(..., user=)`` can update a trained user and explanations can name the ratings
behind a prediction, without the training data being passed again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.model import MFModel
from alsmf.rowsystem import RowSystem, rating_scale


def seen_ratings(train: Ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training ratings by user as a model keeps them: (indptr int64, item indices int32,
    ratings float32); the last two share the by-user CSR's arrays when their types match."""
    by_user = train.by_user()
    return (by_user.indptr.astype(np.int64),
            by_user.indices.astype(np.int32, copy=False),
            by_user.data.astype(np.float32, copy=False))


def build_model(*, user_ids: np.ndarray, item_ids: np.ndarray,
                seen: tuple[np.ndarray, np.ndarray, np.ndarray | None],
                user_factors: np.ndarray, item_factors: np.ndarray, user_bias: np.ndarray,
                item_bias: np.ndarray, global_mean: float, fallback_mean: float,
                system: RowSystem, params: dict[str, Any],
                extras: dict[str, np.ndarray] | None = None) -> MFModel:
    """A model over these ids holding these arrays (not copied).

    Args:
        seen: (indptr, item indices, ratings or None) of each user's training ratings.
        system: what each row solves; its ``biases`` is the model's.
        params: how the model was made (the method's ``params()`` and what it derived).
    """
    indptr, indices, values = seen
    return MFModel(
        user_factors=user_factors, item_factors=item_factors,
        user_bias=user_bias, item_bias=item_bias,
        global_mean=float(global_mean), fallback_mean=float(fallback_mean),
        user_ids=user_ids, item_ids=item_ids,
        seen_indptr=indptr, seen_indices=indices, seen_values=values,
        biases=system.biases, params=params, extras=dict(extras or {}), system=system,
    )


def model_over(train: Ratings, *, system: RowSystem, params: dict[str, Any],
               user_factors: np.ndarray, item_factors: np.ndarray, user_bias: np.ndarray,
               item_bias: np.ndarray, global_mean: float,
               extras: dict[str, np.ndarray] | None = None) -> MFModel:
    """:func:`build_model` over a (compacted) in-memory training set: its ids, its ratings
    by user, its mean as the fallback and its rating scale in the row system."""
    return build_model(
        user_ids=train.user_ids.copy(), item_ids=train.item_ids.copy(), seen=seen_ratings(train),
        user_factors=user_factors, item_factors=item_factors, user_bias=user_bias,
        item_bias=item_bias, global_mean=global_mean, fallback_mean=training_mean(train),
        system=with_scale(system, train.values), params=params, extras=extras)


def with_scale(system: RowSystem, values: np.ndarray) -> RowSystem:
    """``system`` with the rating scale of the training ratings ``values``."""
    return replace(system, rating_scale=rating_scale(values))


def training_mean(train: Ratings) -> float:
    """The mean training rating, summed in float64."""
    return float(np.mean(train.values, dtype=np.float64))


def rating_variance(values: np.ndarray) -> float:
    """Σ v²/n − (Σ v/n)² of the ratings, both sums in float64: from the sums alone, so that
    a Dask run reading Parquet gets it from its partitions' sums (bit for bit when there is
    one partition, to rounding otherwise)."""
    n = len(values)
    mean = float(np.sum(values, dtype=np.float64)) / n
    return float(np.sum(np.square(values, dtype=np.float64))) / n - mean * mean
