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
from alsmf.solvers.predict import predict_pairs


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
        biases: whether μ, b_u, b_i are part of the model.
        params: the hyperparameters that produced the model.
        history: one record per training iteration.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    fallback_mean: float
    user_ids: np.ndarray
    item_ids: np.ndarray
    biases: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    history: list[IterationRecord] = field(default_factory=list)

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

