"""What every baseline's ``fit`` shares: settings checks, the model shell, scoring, the loop.

A baseline fits an ordinary :class:`~alsmf.model.MFModel`, so prediction, RMSE,
recommendation, fold-in, saving and plots work on it unchanged. The model keeps the training
ratings as ``ALS.fit`` leaves them (the seen CSR, by user), its history holds one
:class:`~alsmf.model.IterationRecord` per epoch or iteration, and the callback is called after
each one as ALS calls it (returning True stops), so ``alsmf compare`` can draw every method's
test RMSE per iteration and per second.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError
from alsmf.model import IterationRecord, MFModel
from alsmf.solvers.predict import squared_error
from alsmf.models.als import Callback, TrainingInterrupted

Score = tuple[float, float, "float | None"]
"""(objective, train RMSE, test RMSE or None) of the model as it stands."""


def is_number(value: object) -> bool:
    """A real number that is not a bool (True would pass as 1 otherwise)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_int_in(value: object, low: int, high: int) -> bool:
    """An integer (not a bool) from ``low`` to ``high``."""
    return (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and low <= value <= high)


def check_settings(checks: Sequence[tuple[bool, str]]) -> None:
    """Raise :class:`ConfigError` with the message of the first failed check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def json_params(method: str, fields: dict[str, Any], **derived: Any) -> dict[str, Any]:
    """A baseline's settings as a JSON-ready dict: ``method``, its fields, then ``derived``.

    ``derived`` carries what ALS-side code reads from a model's params: ``reg``,
    ``weighted_reg`` and ``biases`` describe the half-step :meth:`MFModel.fold_in` solves.
    """
    params = {"method": method} | fields | derived
    return {key: (value.item() if isinstance(value, np.generic) else value)
            for key, value in params.items()}


def new_model(train: Ratings, params: dict[str, Any], *, user_factors: np.ndarray,
              item_factors: np.ndarray, user_bias: np.ndarray, item_bias: np.ndarray,
              global_mean: float, biases: bool) -> MFModel:
    """An :class:`MFModel` over ``train``'s ids (``train`` compacted) holding these arrays.

    The seen CSR is the training ratings by user, built as ``ALS.fit`` builds it, so
    recommendations skip rated items and ``fold_in(..., user=)`` can update trained users.
    """
    by_user = train.by_user()
    return MFModel(
        user_factors=user_factors,
        item_factors=item_factors,
        user_bias=user_bias,
        item_bias=item_bias,
        global_mean=float(global_mean),
        fallback_mean=float(np.mean(train.values, dtype=np.float64)),
        user_ids=train.user_ids.copy(),
        item_ids=train.item_ids.copy(),
        seen_indptr=by_user.indptr.astype(np.int64),
        seen_indices=by_user.indices.astype(np.int32, copy=False),
        seen_values=by_user.data.astype(np.float32, copy=False),
        biases=biases,
        params=params,
    )


class Scorer:
    """Train and test RMSE of a model over ``train``'s index space (``train`` compacted).

    Test ratings are matched by raw id; ids the training data lacks get the model's fallback,
    as in ``ALS.fit``.
    """

    def __init__(self, train: Ratings, test: Ratings | None) -> None:
        self.by_user = train.by_user()
        self.test_pairs = None
        if test is not None and len(test):
            self.test_pairs = (
                train.user_index(test.user_ids[test.users]).astype(np.int32),
                train.item_index(test.item_ids[test.items]).astype(np.int32),
                test.values,
            )

    def train_sse(self, model: MFModel) -> float:
        """Σ (r - r̂)² over the training ratings."""
        matrix = self.by_user
        return squared_error(matrix.indptr, matrix.indices, matrix.data, model.user_factors,
                             model.item_factors, model.user_bias, model.item_bias,
                             model.global_mean)

    def train_rmse(self, sse: float) -> float:
        """RMSE from the training sum of squared errors."""
        return math.sqrt(sse / self.by_user.nnz)

    def test_rmse(self, model: MFModel) -> float | None:
        """RMSE on the test ratings, or None without a test set."""
        if self.test_pairs is None:
            return None
        users, items, values = self.test_pairs
        residuals = values - model.predict_indices(users, items)
        return math.sqrt(float(np.mean(np.square(residuals))))


def iterate(model: MFModel, iterations: int, step: Callable[[int], None],
            score: Callable[[], Score], callback: Callback | None,
            stop: Callable[[IterationRecord], bool] | None = None) -> MFModel:
    """Run ``step`` (which updates the model in place) up to ``iterations`` times.

    After each step the model is scored, a record is appended to its history and
    ``callback(record, model)`` is called; a True return, or ``stop(record)``, ends the loop.
    Ctrl-C puts back the arrays of the last finished iteration and raises
    :class:`~alsmf.models.als.TrainingInterrupted` carrying the model.
    """
    arrays = (model.user_factors, model.item_factors, model.user_bias, model.item_bias)
    for iteration in range(1, iterations + 1):
        snapshot = tuple(array.copy() for array in arrays)
        try:
            started = time.perf_counter()
            step(iteration)
            stepped = time.perf_counter()
            objective, train_rmse, test_rmse = score()
        except KeyboardInterrupt:
            for target, saved in zip(arrays, snapshot):
                target[...] = saved
            raise TrainingInterrupted(model) from None
        record = IterationRecord(iteration, float(objective), float(train_rmse), test_rmse,
                                 time.perf_counter() - started, stepped - started)
        model.history.append(record)
        if callback is not None and callback(record, model):
            break
        if stop is not None and stop(record):
            break
    return model


def weighted_norms(train: Ratings, model: MFModel) -> tuple[float, float]:
    """(Σ_u n_u ‖p_u‖² + Σ_i n_i ‖q_i‖², Σ_u n_u b_u² + Σ_i n_i b_i²): the penalties of a
    per-rating regulariser, where each rating shrinks its user's and its item's parameters."""
    users, items = train.user_counts(), train.item_counts()
    factors = (np.dot(users, np.einsum("ij,ij->i", model.user_factors, model.user_factors))
               + np.dot(items, np.einsum("ij,ij->i", model.item_factors, model.item_factors)))
    biases = (np.dot(users, np.square(model.user_bias))
              + np.dot(items, np.square(model.item_bias)))
    return float(factors), float(biases)
