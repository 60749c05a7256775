"""The trained model: factors, biases, id maps, predictions. It knows nothing of training.

A rating is predicted as μ + b_u + b_i + p_u·q_i (seed 001, equation 1.6.2); a model trained
without biases has μ = b_u = b_i = 0 and predicts p_u·q_i (equation 1.4).

Unknown users or items (raw ids the model was not trained on) never give NaN: their factors
and bias count as zero, so the prediction falls back to the training mean plus the known bias
(for a model without biases: the training mean of the ratings).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.errors import DataError
from alsmf.solvers.als import als_half_step
from alsmf.solvers.predict import predict_pairs
from alsmf.solvers.topk import top_n_items


@dataclass(frozen=True)
class IterationRecord:
    """What one training iteration achieved.

    Attributes:
        iteration: 1-based iteration number.
        objective: the training loss (squared error plus the L2 penalty) after the iteration.
        train_rmse: RMSE on the training ratings.
        test_rmse: RMSE on the test ratings, or ``None`` without a test set.
        seconds: wall time of the iteration (both half-steps and the evaluation).
    """

    iteration: int
    objective: float
    train_rmse: float
    test_rmse: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``test_rmse`` is ``None`` when there was no test set)."""
        return asdict(self)


@dataclass(frozen=True)
class FoldedUser:
    """A user vector computed from ratings by one ALS half-step, without retraining.

    Attributes:
        factors: p_u (length k).
        bias: b_u (0 for a model without biases).
        items: model indices of the rated items (skipped when recommending).
    """

    factors: np.ndarray
    bias: float
    items: np.ndarray


@dataclass(frozen=True)
class Recommendations:
    """Items ranked for one user, best first, with their predicted ratings."""

    items: np.ndarray
    scores: np.ndarray


@dataclass(eq=False)
class MFModel:
    """A biased matrix-factorization model over raw user and item ids.

    Attributes:
        user_factors: (n_users, k) float64, row u is p_u.
        item_factors: (n_items, k) float64, row i is q_i.
        user_bias, item_bias: b_u and b_i (zeros when ``biases`` is False).
        global_mean: μ when ``biases`` is True (the training mean), else 0.
        fallback_mean: the training mean; the prediction for a pair with nothing known.
        user_ids, item_ids: sorted raw ids; row u of ``user_factors`` is raw id ``user_ids[u]``.
        seen_indptr, seen_indices: CSR of the item indices each user rated in training, so
            recommendations can skip them without the training data being passed again.
        biases: whether μ, b_u, b_i are part of the model.
        params: the hyperparameters that produced the model.
        history: one record per training iteration.
        item_titles, item_genres: per item (aligned with ``item_ids``) when the data came with
            a movies file, else None; commands show them and accept title fragments.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    fallback_mean: float
    user_ids: np.ndarray
    item_ids: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray
    biases: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    history: list[IterationRecord] = field(default_factory=list)
    item_titles: np.ndarray | None = None
    item_genres: np.ndarray | None = None

    @property
    def factors(self) -> int:
        """Number of latent factors k."""
        return self.user_factors.shape[1]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        return (f"MFModel(k={self.factors}, users={self.n_users:,}, items={self.n_items:,}, "
                f"biases={self.biases}, iterations={len(self.history)})")

    # ------------------------------------------------------------------ predictions
    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings for raw user and item ids (scalars or equal-length arrays).

        Unknown ids get the documented fallback, never NaN.
        """
        user_idx = np.atleast_1d(lookup_ids(self.user_ids, users))
        item_idx = np.atleast_1d(lookup_ids(self.item_ids, items))
        if user_idx.shape != item_idx.shape:
            raise ValueError(f"users and items differ in length ({user_idx.size} vs {item_idx.size})")
        return self.predict_indices(user_idx, item_idx)

    def predict_one(self, user: int, item: int) -> float:
        """Predicted rating of one raw (user, item) pair."""
        return float(self.predict(user, item)[0])

    def predict_indices(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings for model indices; -1 marks an unknown user or item."""
        scores = predict_pairs(
            np.ascontiguousarray(user_idx, dtype=np.int64),
            np.ascontiguousarray(item_idx, dtype=np.int64),
            self.user_factors, self.item_factors, self.user_bias, self.item_bias,
            self.global_mean,
        )
        if not self.biases:  # nothing known about one side: the training mean
            unknown = (user_idx < 0) | (item_idx < 0)
            scores[unknown] = self.fallback_mean
        return scores

    def full_matrix(self) -> np.ndarray:
        """The reconstructed rating matrix R̂ (n_users x n_items): μ + b_u + b_i + P·Qᵀ.

        Meant for small examples (seed 001's ``P.dot(Q.T)``); it has n_users·n_items entries.
        """
        matrix = self.user_factors @ self.item_factors.T
        matrix += self.global_mean + self.user_bias[:, None] + self.item_bias[None, :]
        return matrix

    def rmse(self, ratings: Ratings) -> float:
        """Root mean squared error on ratings with raw ids (unknown ids use the fallback)."""
        users = lookup_ids(self.user_ids, ratings.user_ids[ratings.users])
        items = lookup_ids(self.item_ids, ratings.item_ids[ratings.items])
        residuals = ratings.values - self.predict_indices(users, items)
        return math.sqrt(float(np.mean(np.square(residuals))))

    # ------------------------------------------------------------------ using the model
    def fold_in(self, items: Any, ratings: Any) -> FoldedUser:
        """A vector and bias for a user from (item, rating) pairs, by one ALS half-step.

        The item factors stay fixed, so this is instant and equals what the user half-step of
        training gives a user with these ratings. Items the model does not know are ignored.

        Raises:
            DataError: when none of the items is known to the model.
        """
        item_idx = np.atleast_1d(lookup_ids(self.item_ids, items))
        values = np.atleast_1d(np.asarray(ratings, dtype=np.float64))
        if item_idx.shape != values.shape:
            raise DataError(f"items and ratings differ in length ({item_idx.size} vs "
                            f"{values.size})")
        known = item_idx >= 0
        if not known.any():
            raise DataError("none of the rated items is known to the model")
        item_idx, values = item_idx[known].astype(np.int32), values[known]
        k = self.factors
        d = k + 1 if self.biases else k
        factors, bias = np.zeros((1, k)), np.zeros(1)
        status = np.zeros(1, dtype=np.int64)
        als_half_step(np.array([0, len(item_idx)], dtype=np.int32), item_idx, values,
                      self.item_factors, self.item_bias, self.global_mean, self.biases,
                      np.eye(d), float(self.params["reg"]), bool(self.params["weighted_reg"]),
                      factors, bias, status)
        if status[0]:
            raise DataError(f"the fold-in system is singular (reg={self.params['reg']}); "
                            "rate more items or use a model trained with reg > 0")
        return FoldedUser(factors[0], float(bias[0]), np.unique(item_idx))

    def recommend(self, user: Any, n: int = 10, *, exclude_seen: bool = True,
                  candidates: Any = None) -> Recommendations:
        """The top-n items for a raw user id or a :class:`FoldedUser`, best first.

        Items the user rated in training (or at fold-in) are left out unless
        ``exclude_seen`` is False; ``candidates`` restricts the list to those raw item ids.
        An unknown user id gets the most popular-by-bias items (the fallback model).
        """
        if isinstance(user, FoldedUser):
            factors, bias, seen = user.factors[None, :], np.array([user.bias]), user.items
        else:
            index = int(lookup_ids(self.user_ids, user))
            if index < 0:
                factors, bias, seen = np.zeros((1, self.factors)), np.zeros(1), np.empty(0)
            else:
                factors = self.user_factors[index:index + 1]
                bias = self.user_bias[index:index + 1]
                seen = self.seen_indices[self.seen_indptr[index]:self.seen_indptr[index + 1]]
        excluded = seen if exclude_seen else np.empty(0)
        items, scores = top_n_items(
            factors, bias, self.item_factors, self.item_bias, self.global_mean,
            np.array([0, len(excluded)], dtype=np.int64), excluded.astype(np.int64),
            self._candidate_mask(candidates), n)
        found = items[0] >= 0
        return Recommendations(self.item_ids[items[0][found]], scores[0][found])

    def recommend_all(self, users: Any = None, n: int = 10, *, exclude_seen: bool = True,
                      candidates: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-n raw item ids and scores for many users at once (default: every user).

        Returns arrays of shape (users, n), best first; slots without a candidate hold item
        id -1 and score -inf. Unknown user ids get the fallback ranking.
        """
        rows = np.arange(self.n_users) if users is None else np.atleast_1d(
            lookup_ids(self.user_ids, users))
        known = rows >= 0
        safe = np.where(known, rows, 0)
        factors = np.where(known[:, None], self.user_factors[safe], 0.0)
        bias = np.where(known, self.user_bias[safe], 0.0)
        if exclude_seen:
            indptr, indices = _csr_rows(self.seen_indptr, self.seen_indices, safe, known)
        else:
            indptr, indices = np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64)
        items, scores = top_n_items(factors, bias, self.item_factors, self.item_bias,
                                    self.global_mean, indptr.astype(np.int64),
                                    indices.astype(np.int64), self._candidate_mask(candidates), n)
        return np.where(items >= 0, self.item_ids[np.maximum(items, 0)], -1), scores

    def similar_items(self, item: Any, n: int = 10) -> Recommendations:
        """The n items whose factors are closest to ``item``'s by cosine, best first."""
        return self._most_similar(self.item_factors, self.item_ids, item, n, "item")

    def similar_users(self, user: Any, n: int = 10) -> Recommendations:
        """The n users whose factors are closest to ``user``'s by cosine, best first."""
        return self._most_similar(self.user_factors, self.user_ids, user, n, "user")

    def _candidate_mask(self, candidates: Any) -> np.ndarray:
        if candidates is None:
            return np.ones(self.n_items, dtype=np.bool_)
        mask = np.zeros(self.n_items, dtype=np.bool_)
        index = np.atleast_1d(lookup_ids(self.item_ids, candidates))
        mask[index[index >= 0]] = True
        return mask

    @staticmethod
    def _most_similar(factors: np.ndarray, ids: np.ndarray, raw: Any, n: int,
                      what: str) -> Recommendations:
        index = int(lookup_ids(ids, raw))
        if index < 0:
            raise DataError(f"unknown {what} {raw!r}")
        norms = np.linalg.norm(factors, axis=1)
        norms[norms == 0] = 1.0
        scores = factors @ factors[index] / (norms * norms[index])
        scores[index] = -np.inf
        n = min(n, len(ids) - 1)
        best = np.argpartition(-scores, n - 1)[:n] if n > 0 else np.empty(0, dtype=np.int64)
        best = best[np.lexsort((best, -scores[best]))]
        return Recommendations(ids[best], scores[best])

    def attach_titles(self, items: np.ndarray, titles: np.ndarray, genres: np.ndarray) -> None:
        """Record titles and genres of raw item ids (items without one get an empty string)."""
        position = lookup_ids(self.item_ids, items)
        found = position >= 0
        self.item_titles = np.full(self.n_items, "", dtype=object)
        self.item_genres = np.full(self.n_items, "", dtype=object)
        self.item_titles[position[found]] = np.asarray(titles)[found]
        self.item_genres[position[found]] = np.asarray(genres)[found]
        self.item_titles = self.item_titles.astype(str)
        self.item_genres = self.item_genres.astype(str)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model to one file (no pickle), atomically; returns the path written."""
        from alsmf.store import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> MFModel:
        """Read a model written by :meth:`save`; refuses unknown or damaged files."""
        from alsmf.store import load_model

        return load_model(path)


def _csr_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray,
              keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR made of the given rows (rows where ``keep`` is False come out empty)."""
    starts = indptr[rows]
    counts = np.where(keep, indptr[rows + 1] - starts, 0)
    new_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_indptr[1:])
    offsets = np.arange(new_indptr[-1]) - np.repeat(new_indptr[:-1], counts)
    return new_indptr, indices[np.repeat(starts, counts) + offsets].astype(np.int64)
