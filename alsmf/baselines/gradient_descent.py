"""Full-batch gradient descent on R ≈ P·Qᵀ: the seed notebooks' method, for small matrices.

The notebooks (the gradient-descent MF tutorials this project started from) minimise, over
the observed entries (r > 0),

    e = Σ (r_ij − p_i·q_j)² + (β/2) Σ_(i,j observed) (‖p_i‖² + ‖q_j‖²)

by visiting the entries in row-major order and moving p_i and q_j after each one:
p_i += α (2 e_ij q_j − β p_i), q_j += α (2 e_ij p_i − β q_j). With their small step
(α = 0.0002) one such sweep equals one full-batch step with the same α up to O(α²) terms, so
this module takes the full-batch step, which needs no order:

    P += α (2 E Q − β N_u P)        Q += α (2 Eᵀ P − β N_i Q)

(E: the residuals on the observed entries, zero elsewhere; N_u, N_i: rating counts). Started
from the notebook's printed step-0 factors, 9 999 such steps land within 1e-3 of its printed
final factors (``tests/test_baselines.py``). There are no biases and no mean: the model
predicts p_u·q_i, and a row system with λ = β/2 weighted by rating count is exactly this
objective's penalty, so :meth:`MFModel.fold_in` solves a new user's part of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from alsmf.baselines.fitting import BaselineState
from alsmf.checks import check_settings, is_int_in, is_number, method_params
from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError
from alsmf.rowsystem import RowSystem
from alsmf.training.builder import model_over
from alsmf.training.trainer import Trainer


@dataclass(frozen=True)
class GradientDescent(Trainer):
    """The notebooks' gradient descent (defaults: their K, steps, α, β and stopping rule).

    Meant for toy matrices and for showing why nobody trains this way: every step moves
    each parameter by a fixed fraction of its gradient, so thousands of steps are needed
    where ALS needs ten.

    Attributes:
        factors: K, the number of latent features (1..1024).
        steps: maximum number of full-batch steps (1..1000000).
        alpha: the step size α (> 0).
        beta: the regularisation β (>= 0); the objective's penalty is (β/2) per observed entry.
        min_objective: stop once the objective falls below this (the notebook's
            ``if e < 0.001: break``; 0 never stops early).
        seed: seed of the initial factors, uniform on [0, 1) as ``np.random.rand`` draws them.
    """

    factors: int = 2
    steps: int = 5000
    alpha: float = 0.0002
    beta: float = 0.02
    min_objective: float = 0.001
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings([
            (is_int_in(self.factors, 1, 1024),
             f"factors must be an integer from 1 to 1024, got {self.factors!r}"),
            (is_int_in(self.steps, 1, 1_000_000),
             f"steps must be an integer from 1 to 1000000, got {self.steps!r}"),
            (is_number(self.alpha) and 0 < self.alpha < 1,
             f"alpha (step size) must be a number in (0, 1), got {self.alpha!r}"),
            (is_number(self.beta) and 0 <= self.beta < math.inf,
             f"beta (regularisation) must be a finite number >= 0, got {self.beta!r}"),
            (is_number(self.min_objective) and 0 <= self.min_objective < math.inf,
             f"min_objective must be a finite number >= 0, got {self.min_objective!r}"),
            (is_int_in(self.seed, 0, 2**63 - 1),
             f"seed must be a non-negative integer, got {self.seed!r}"),
        ])

    resumable: ClassVar[tuple[str, ...]] = ("steps",)
    # a step takes about a millisecond on ml-100k, and waking more threads thousands of times
    # to score it costs more than it saves when the cores are busy: one thread unless asked
    threads_options: ClassVar[dict[str, Any]] = {"default": 1}

    @property
    def rounds(self) -> int:
        return self.steps

    def params(self) -> dict:
        """The settings as a JSON-ready dict."""
        return method_params("gd", self)

    def row_system(self) -> RowSystem:
        """λ = β/2 weighted by rating count, no biases: see the module."""
        return RowSystem(reg=self.beta / 2, reg_bias=self.beta / 2, weighted_reg=True,
                         biases=False)

    def start(self, train: Ratings, test: Ratings | None = None) -> BaselineState:
        """Train on ``train``, one history record per step.

        Raises (from the step):
            ConfigError: the objective stopped being finite (``alpha`` too large for the
                data: a step overshoots in proportion to a row's rating count).
        """
        train = train.compact()
        rng = np.random.default_rng(self.seed)
        model = model_over(
            train, system=self.row_system(), params=self.params(),
            user_factors=rng.random((train.n_users, self.factors)),
            item_factors=rng.random((train.n_items, self.factors)),
            user_bias=np.zeros(train.n_users), item_bias=np.zeros(train.n_items),
            global_mean=0.0)
        values = train.values.astype(np.float64)
        grads = (np.empty_like(model.user_factors), np.empty_like(model.item_factors))
        after: list[float] = [math.nan, math.nan]  # (sse, penalty) left by the last step

        def update(iteration: int) -> None:
            after[:] = gradient_step(train.users, train.items, values, model.user_factors,
                                     model.item_factors, self.alpha, self.beta, *grads)
            if not math.isfinite(after[0] + after[1]):
                raise ConfigError(f"gradient descent diverged at step {iteration} with "
                                  f"alpha={self.alpha}; use a smaller alpha")

        def objective(sse: float) -> float:
            return after[0] + self.beta / 2 * after[1]

        return BaselineState(self, train, test, model, update, objective,
                             stop=lambda record: record.objective < self.min_objective,
                             sse=lambda: after[0])


def matrix_factorization(R: np.ndarray, P: np.ndarray, Q: np.ndarray, steps: int = 5000,
                         alpha: float = 0.0002, beta: float = 0.02,
                         min_objective: float = 0.001) -> tuple[np.ndarray, np.ndarray]:
    """The notebooks' ``matrix_factorization(R, P, Q, K, steps, alpha, beta)`` on a dense
    matrix, by full-batch steps.

    Args:
        R: (N, M) ratings; entries <= 0 are missing, as in the notebooks.
        P: (N, K) initial user features.
        Q: (K, M) initial item features (the notebooks' layout).
        steps, alpha, beta: as in the notebooks.
        min_objective: stop once the objective e falls below it (the notebooks' 0.001).

    Returns:
        New (P, Q) arrays in the same layouts; ``P @ Q`` is the reconstructed matrix.
    """
    R = np.asarray(R, dtype=np.float64)
    users, items = np.nonzero(R > 0)
    values = R[users, items]
    P = np.array(P, dtype=np.float64)
    Q = np.array(np.asarray(Q, dtype=np.float64).T)  # (M, K), contiguous
    grads = (np.empty_like(P), np.empty_like(Q))
    for _ in range(steps):
        sse, penalty = gradient_step(users, items, values, P, Q, alpha, beta, *grads)
        if sse + beta / 2 * penalty < min_objective:
            break
    return P, Q.T.copy()


@njit(cache=True, nogil=True)
def gradient_step(users: np.ndarray, items: np.ndarray, values: np.ndarray,
                  user_factors: np.ndarray, item_factors: np.ndarray, alpha: float, beta: float,
                  user_grad: np.ndarray, item_grad: np.ndarray) -> tuple[float, float]:
    """One full-batch step in place; returns (Σ e², Σ_observed ‖p_u‖² + ‖q_i‖²) after it.

    ``user_grad`` and ``item_grad`` are scratch arrays shaped like the factors.
    """
    k = user_factors.shape[1]
    user_grad[:] = 0.0
    item_grad[:] = 0.0
    for t in range(len(values)):
        u = users[t]
        i = items[t]
        dot = 0.0
        for f in range(k):
            dot += user_factors[u, f] * item_factors[i, f]
        error = values[t] - dot
        for f in range(k):
            user_grad[u, f] += 2.0 * error * item_factors[i, f] - beta * user_factors[u, f]
            item_grad[i, f] += 2.0 * error * user_factors[u, f] - beta * item_factors[i, f]
    user_factors += alpha * user_grad
    item_factors += alpha * item_grad
    sse = 0.0
    penalty = 0.0
    for t in range(len(values)):
        u = users[t]
        i = items[t]
        dot = 0.0
        for f in range(k):
            dot += user_factors[u, f] * item_factors[i, f]
            penalty += user_factors[u, f] ** 2 + item_factors[i, f] ** 2
        error = values[t] - dot
        sse += error * error
    return sse, penalty
