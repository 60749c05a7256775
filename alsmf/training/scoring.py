"""Train and test RMSE as every method's training reports them after each iteration.

Test ratings are matched to the model by raw id; ids the training data lacks score with the
model's fallback, as they would in use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.model import MFModel
from alsmf.solvers.predict import squared_error


@dataclass(frozen=True)
class TestPairs:
    """Held-out ratings coded as indices into a training set's ids (-1: unknown there).

    Attributes:
        users, items: int32 model indices (32-bit: half the memory, and the kernels take
            them as they are).
        values: the held-out ratings.
    """

    __test__ = False  # a library class, not a pytest test case

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, test: Ratings | None, train: Ratings) -> TestPairs | None:
        """``test`` coded against ``train``'s ids; None without test ratings."""
        if test is None or not len(test):
            return None
        return cls(_recoded(test.users, test.user_ids, train.user_ids),
                   _recoded(test.items, test.item_ids, train.item_ids), test.values)

    def rmse_of(self, predicted: np.ndarray) -> float:
        """RMSE of ``predicted`` (one value per pair) against the held-out ratings."""
        return math.sqrt(float(np.mean(np.square(self.values - predicted))))

    def rmse(self, model: MFModel) -> float:
        """The model's test RMSE."""
        return self.rmse_of(model.predict_indices(self.users, self.items))


def _recoded(codes: np.ndarray, ids: np.ndarray, training_ids: np.ndarray) -> np.ndarray:
    """Indices into ``training_ids`` of the ids ``ids[codes]`` (-1 where absent), int32.

    A test set split from the training set usually has the same id maps: its codes are then
    used as they are (no copy: at 20M ratings the test pairs are 2M rows).
    """
    if np.array_equal(ids, training_ids):
        return codes.astype(np.int32, copy=False)
    return lookup_ids(training_ids, ids).astype(np.int32)[codes]  # looked up per id, once


def score_test(pairs: TestPairs | None, model: MFModel) -> float | None:
    """The model's RMSE on ``pairs``, or None without a test set."""
    return None if pairs is None else pairs.rmse(model)


def training_sse(by_user, model: MFModel) -> float:
    """Σ (r − r̂)² of the model over the training ratings (the by-user CSR)."""
    return squared_error(by_user.indptr, by_user.indices, by_user.data, model.user_factors,
                         model.item_factors, model.user_bias, model.item_bias,
                         model.global_mean)


def rmse_from_sse(sse: float, count: int) -> float:
    """RMSE from a sum of squared errors over ``count`` ratings."""
    return math.sqrt(sse / count)
