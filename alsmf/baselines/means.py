"""The two baselines without factors: the global mean, and μ + b_u + b_i (Surprise's
BaselineOnly).

Both are ordinary :class:`~alsmf.model.MFModel` objects with one all-zero factor column
(k = 1): the scoring kernels read the first factor of every row, so k = 0 is not possible, and
a zero column adds exactly 0 to every prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from alsmf.baselines.fitting import BaselineState
from alsmf.checks import check_settings, is_int_in, is_number, method_params
from alsmf.data.ratings import Ratings
from alsmf.model import MFModel
from alsmf.rowsystem import RowSystem
from alsmf.training.builder import model_over, training_mean
from alsmf.training.trainer import Trainer


@dataclass(frozen=True)
class GlobalMean(Trainer):
    """Predict the training mean μ for every pair: the floor every method must beat.

    The model has biases switched on with μ set and b_u = b_i = 0 and zero factors. It takes
    no settings; its row system's ``reg`` is 0, so :meth:`MFModel.fold_in` refuses it (a
    user's ratings have nothing to fold into) with a :class:`~alsmf.errors.DataError`.
    One history record; its objective is the training squared error.
    """

    @property
    def rounds(self) -> int:
        return 1

    def params(self) -> dict:
        """The settings as a JSON-ready dict."""
        return method_params("mean", self)

    def start(self, train: Ratings, test: Ratings | None = None) -> BaselineState:
        train = train.compact()
        model = _zero_model(train, self.params(), RowSystem(0.0, 0.0, False, True))
        return BaselineState(self, train, test, model, lambda iteration: None, lambda sse: sse)


@dataclass(frozen=True)
class BiasOnly(Trainer):
    """μ + b_u + b_i by alternating least squares, as Surprise's ``BaselineOnly`` (method
    ``"als"``) fits them (Koren 2010, section 2.1).

    Minimises Σ (r_ui − μ − b_u − b_i)² + reg_u Σ_u b_u² + reg_i Σ_i b_i² with μ the training
    mean. Each epoch sets every item bias to its exact minimiser with the user biases fixed,
    b_i = Σ_u (r_ui − μ − b_u) / (reg_i + n_i), then every user bias likewise,
    b_u = Σ_i (r_ui − μ − b_i) / (reg_u + n_u), so the objective never increases. The defaults
    are Surprise's (``reg_u`` 15, ``reg_i`` 10, 10 epochs).

    Attributes:
        reg_u: λ of the user biases (>= 0).
        reg_i: λ of the item biases (>= 0).
        epochs: alternations (each: all items, then all users), 1..10000.
    """

    reg_u: float = 15.0
    reg_i: float = 10.0
    epochs: int = 10

    def __post_init__(self) -> None:
        check_settings([
            (is_number(self.reg_u) and 0 <= self.reg_u < math.inf,
             f"reg_u must be a finite number >= 0, got {self.reg_u!r}"),
            (is_number(self.reg_i) and 0 <= self.reg_i < math.inf,
             f"reg_i must be a finite number >= 0, got {self.reg_i!r}"),
            (is_int_in(self.epochs, 1, 10_000),
             f"epochs must be an integer from 1 to 10000, got {self.epochs!r}"),
        ])

    resumable: ClassVar[tuple[str, ...]] = ("epochs",)

    @property
    def rounds(self) -> int:
        return self.epochs

    def params(self) -> dict:
        """The settings as a JSON-ready dict."""
        return method_params("bias", self)

    def row_system(self) -> RowSystem:
        """λ = ``reg_u`` without weighting, so :meth:`MFModel.fold_in` (whose factors part
        is zero here) gives a new user exactly the bias this model's user update gives."""
        return RowSystem(reg=self.reg_u, reg_bias=self.reg_u, weighted_reg=False, biases=True)

    def start(self, train: Ratings, test: Ratings | None = None) -> BaselineState:
        """Fit the biases on ``train``, one history record per epoch."""
        train = train.compact()
        model = _zero_model(train, self.params(), self.row_system())
        users, items = train.users, train.items
        centred = train.values.astype(np.float64) - model.global_mean
        user_counts, item_counts = train.user_counts(), train.item_counts()

        def update(iteration: int) -> None:
            model.item_bias[:] = _sums(items, centred - model.user_bias[users],
                                       train.n_items) / (self.reg_i + item_counts)
            model.user_bias[:] = _sums(users, centred - model.item_bias[items],
                                       train.n_users) / (self.reg_u + user_counts)

        def objective(sse: float) -> float:
            return (sse + self.reg_u * float(np.dot(model.user_bias, model.user_bias))
                    + self.reg_i * float(np.dot(model.item_bias, model.item_bias)))

        return BaselineState(self, train, test, model, update, objective)


def _sums(index: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
    """Σ of ``weights`` per index value (float64)."""
    return np.bincount(index, weights=weights, minlength=length)


def _zero_model(train: Ratings, params: dict, system: RowSystem) -> MFModel:
    """A model predicting the training mean: zero biases, one zero factor column."""
    return model_over(train, system=system, params=params,
                      user_factors=np.zeros((train.n_users, 1)),
                      item_factors=np.zeros((train.n_items, 1)),
                      user_bias=np.zeros(train.n_users), item_bias=np.zeros(train.n_items),
                      global_mean=training_mean(train))
