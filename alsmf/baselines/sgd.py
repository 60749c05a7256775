"""Biased matrix factorization by stochastic gradient descent (Funk 2006; Koren, Bell &
Volinsky 2009), the method of Surprise's ``SVD`` and LIBMF.

One epoch visits every training rating once, in a fresh random order, and moves the four
parameters that rating touches against its error e = r_ui − (μ + b_u + b_i + p_u·q_i):

    b_u += lr (e − λ_b b_u)            b_i += lr (e − λ_b b_i)
    p_u += lr (e q_i − λ p_u)          q_i += lr (e p_u − λ q_i)

(p_u and q_i both updated from the old values). These are steps of lr/2 down the gradient of
the rating's own term e² + λ (‖p_u‖² + ‖q_i‖²) + λ_b (b_u² + b_i²), so an epoch descends

    Σ e² + λ (Σ_u n_u ‖p_u‖² + Σ_i n_i ‖q_i‖²) + λ_b (Σ_u n_u b_u² + Σ_i n_i b_i²),

the objective of ALS with weighted regularisation: that is the objective recorded per epoch,
and the row system (``reg``, ``reg_bias``, weighted) is what :meth:`MFModel.fold_in` solves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit

from alsmf.baselines.fitting import BaselineState, weighted_norms
from alsmf.checks import check_settings, is_int_in, is_number, method_params
from alsmf.data.ratings import Ratings
from alsmf.rowsystem import RowSystem
from alsmf.training.builder import model_over, training_mean
from alsmf.training.trainer import Trainer


@dataclass(frozen=True)
class SGD(Trainer):
    """Biased MF by SGD over shuffled ratings; the defaults are Surprise ``SVD``'s.

    Surprise's defaults (k 100, 20 epochs, learning rate 0.005, λ 0.02, factors drawn from
    N(0, 0.1²), biases from 0) are kept so the figures can be compared with its published
    ones; on ml-100k a larger λ and more epochs do better (see the benchmarks).

    Attributes:
        factors: number of latent factors k (1..1024).
        epochs: passes over the training ratings (1..100000).
        lr: learning rate (> 0).
        reg: λ of the factors (>= 0).
        reg_bias: λ_b of the biases; None = ``reg``.
        biases: learn μ + b_u + b_i with the factors (μ is the training mean).
        init_scale: standard deviation of the normal initial factors (> 0).
        seed: seed of the initial factors and of every epoch's order; the same seed gives
            the same model (the updates run on one thread, in that order).
    """

    factors: int = 100
    epochs: int = 20
    lr: float = 0.005
    reg: float = 0.02
    reg_bias: float | None = None
    biases: bool = True
    init_scale: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings([
            (is_int_in(self.factors, 1, 1024),
             f"factors must be an integer from 1 to 1024, got {self.factors!r}"),
            (is_int_in(self.epochs, 1, 100_000),
             f"epochs must be an integer from 1 to 100000, got {self.epochs!r}"),
            (is_number(self.lr) and 0 < self.lr < 1,
             f"lr (learning rate) must be a number in (0, 1), got {self.lr!r}"),
            (is_number(self.reg) and 0 <= self.reg < math.inf,
             f"reg (λ) must be a finite number >= 0, got {self.reg!r}"),
            (self.reg_bias is None or (is_number(self.reg_bias) and 0 <= self.reg_bias < math.inf),
             f"reg_bias must be None or a finite number >= 0, got {self.reg_bias!r}"),
            (isinstance(self.biases, bool), f"biases must be True or False, got {self.biases!r}"),
            (is_number(self.init_scale) and 0 < self.init_scale < math.inf,
             f"init_scale must be a finite number > 0, got {self.init_scale!r}"),
            (is_int_in(self.seed, 0, 2**63 - 1),
             f"seed must be a non-negative integer, got {self.seed!r}"),
        ])

    @property
    def bias_reg(self) -> float:
        """λ_b: ``reg_bias``, or ``reg`` when it is None."""
        return self.reg if self.reg_bias is None else self.reg_bias

    resumable: ClassVar[tuple[str, ...]] = ("epochs",)

    @property
    def rounds(self) -> int:
        return self.epochs

    def params(self) -> dict:
        """The settings as a JSON-ready dict."""
        return method_params("sgd", self)

    def row_system(self) -> RowSystem:
        """The per-rating penalties as one row's system: λ, λ_b weighted by rating count."""
        return RowSystem(reg=self.reg, reg_bias=self.bias_reg, weighted_reg=True,
                         biases=self.biases)

    def start(self, train: Ratings, test: Ratings | None = None) -> BaselineState:
        """Train on ``train``, one history record per epoch.

        ``threads`` of ``fit`` only sets the threads of the scoring between epochs; the epochs
        themselves run on one thread.
        """
        train = train.compact()
        rng = np.random.default_rng(self.seed)
        shape_users, shape_items = (train.n_users, self.factors), (train.n_items, self.factors)
        model = model_over(
            train, system=self.row_system(), params=self.params(),
            user_factors=rng.normal(0.0, self.init_scale, shape_users),
            item_factors=rng.normal(0.0, self.init_scale, shape_items),
            user_bias=np.zeros(train.n_users), item_bias=np.zeros(train.n_items),
            global_mean=training_mean(train) if self.biases else 0.0)
        values = train.values.astype(np.float64)

        def update(iteration: int) -> None:
            sgd_epoch(rng.permutation(len(values)), train.users, train.items, values,
                      model.global_mean, model.user_factors, model.item_factors,
                      model.user_bias, model.item_bias, self.lr, self.reg, self.bias_reg,
                      self.biases)

        def objective(sse: float) -> float:
            factor_penalty, bias_penalty = weighted_norms(train, model)
            return sse + self.reg * factor_penalty + self.bias_reg * bias_penalty

        return BaselineState(self, train, test, model, update, objective, rng=rng)


@njit(cache=True, nogil=True)
def sgd_epoch(order: np.ndarray, users: np.ndarray, items: np.ndarray, values: np.ndarray,
              global_mean: float, user_factors: np.ndarray, item_factors: np.ndarray,
              user_bias: np.ndarray, item_bias: np.ndarray, lr: float, reg: float,
              reg_bias: float, biases: bool) -> None:
    """One SGD pass over the ratings ``order[0], order[1], ...``, updating in place."""
    k = user_factors.shape[1]
    for t in order:
        u = users[t]
        i = items[t]
        dot = 0.0
        for f in range(k):
            dot += user_factors[u, f] * item_factors[i, f]
        error = values[t] - (global_mean + user_bias[u] + item_bias[i] + dot)
        if biases:
            user_bias[u] += lr * (error - reg_bias * user_bias[u])
            item_bias[i] += lr * (error - reg_bias * item_bias[i])
        for f in range(k):
            p = user_factors[u, f]
            q = item_factors[i, f]
            user_factors[u, f] = p + lr * (error * q - reg * p)
            item_factors[i, f] = q + lr * (error * p - reg * q)
