"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): who used what, not how they rated it.

For data without ratings (clicks, plays, purchases) and for ratings used only as a signal.
Every (user, item) pair counts: a pair in the data was *used* and is fitted to a preference of
1 with confidence c = 1 + α; every other pair is fitted to 0 with the *unobserved weight* α₀
(Hu et al. use α₀ = 1; Rendle et al. 2021, "Revisiting the Performance of iALS on Item
Recommendation Benchmarks", tune it). The objective is

    Σ_(u,i) used c (1 − p_u·q_i)² + α₀ Σ_(u,i) not used (p_u·q_i)²
        + λ (Σ_u w_u ‖p_u‖² + Σ_i w_i ‖q_i‖²),

with w = 1, or the row's number of used items (``weighted_reg``, the frequency-scaled
regularisation of Rendle et al. with exponent 1). The sum over every pair stays cheap: with the
items fixed, user u's normal equations are

    (α₀ QᵀQ + (c − α₀) Σ_(i used) q_i q_iᵀ + λ w_u I) p_u = c Σ_(i used) q_i,

and QᵀQ is one k x k matrix shared by every row. Divided by c − α₀ this is exactly the row
system the explicit half-steps solve, with every used item's target t = c / (c − α₀), the
shared term g QᵀQ (g = α₀ / (c − α₀)) added to every Gram matrix as the implicit features add
theirs, and λ / (c − α₀) as the ridge; so both solvers, conjugate gradient and exact Cholesky,
and fold-in are the explicit model's kernels. The model predicts a preference p_u·q_i (no
biases) and recommends by it.

Value-dependent confidence (``confidence``, Hu et al.'s c_ui = 1 + α f(r_ui)): a used pair's
confidence can grow with its value r (a play or click count, or a rating used as a signal),
with f(r) = r (``"linear"``) or f(r) = log(1 + r/ε) (``"log"``, for counts spanning orders of
magnitude); ``"constant"``, the default, is f = 1 and leaves the values out. The row system
then has one weight per used item,

    (α₀ QᵀQ + Σ_(i used) (c_i − α₀) q_i q_iᵀ + λ w_u I) p_u = Σ_(i used) c_i q_i,

a weighted least squares with weight c_i − α₀ and target c_i / (c_i − α₀), divided by the
same c − α₀ (c = 1 + α) as above, so that a pair with f = 1 is exactly the constant model's.
The kernels take the weights as an optional argument (:mod:`alsmf.solvers.halfstep`), and so
does fold-in: the model's row system rebuilds them from the values it is given. Every used
pair's confidence must be above α₀, and its value a finite number >= 0.

Large dimensions: the per-iteration cost grows as k² (CG) to k³ (Cholesky), and a larger k
needs a larger λ (Rendle et al. scale λ with k); tune ``reg`` with ``factors``.
"""

from __future__ import annotations

import math
from functools import cached_property
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from alsmf.checks import check_settings, is_int_in, is_number, method_params
from alsmf.data.ratings import Ratings
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.implicit_features import gram64
from alsmf.resources import check_fits, training_bytes
from alsmf.rowsystem import CONFIDENCE_KINDS, RowSystem, confidence_signal
from alsmf.solvers.halfstep import ROW_SOLVERS, HalfStep, check_solved
from alsmf.solvers.predict import squared_error
from alsmf.training.builder import build_model, seen_ratings
from alsmf.training.loop import LiveModelState
from alsmf.training.scoring import TestPairs, rmse_from_sse
from alsmf.training.trainer import Trainer


@dataclass(frozen=True)
class ImplicitALS(Trainer):
    """Implicit-feedback ALS (see the module docstring).

    Attributes:
        factors: number of latent factors k (1..1024).
        reg: λ, the L2 weight on every user's and item's factors (> 0).
        alpha: α; a used pair's confidence is c = 1 + α (>= 0), or 1 + α f(r) by its value r
            with value-dependent ``confidence``.
        confidence: f(r), how a used pair's confidence grows with its value r:
            ``"constant"`` (f = 1, the values play no part), ``"linear"`` (f(r) = r) or
            ``"log"`` (f(r) = log(1 + r/ε)).
        epsilon: ε of ``"log"`` (> 0; the default 1 gives log(1 + r)); unused by the other
            kinds.
        unobserved_weight: α₀, the weight of every pair not in the data (0 < α₀ < 1 + α, and
            below every used pair's confidence).
        weighted_reg: scale λ by each row's number of used items.
        iterations: number of iterations (each: item half-step, then user half-step).
        solver: ``"cg"`` (a few warm-started conjugate-gradient steps per row, float32) or
            ``"cholesky"`` (the exact solve of every row, float64).
        cg_steps: conjugate-gradient steps per row and half-step (1..64).
        init_scale: standard deviation of the random initial user factors.
        seed: seed of the initial factors; the same seed gives the same model.
    """

    factors: int = 32
    reg: float = 0.05
    alpha: float = 1.0
    confidence: str = "constant"
    epsilon: float = 1.0
    unobserved_weight: float = 1.0
    weighted_reg: bool = False
    iterations: int = 15
    solver: str = "cg"
    cg_steps: int = 3
    init_scale: float = 0.01
    seed: int = 0

    resumable: ClassVar[tuple[str, ...]] = ("iterations",)

    def __post_init__(self) -> None:
        check_settings([
            (is_int_in(self.factors, 1, 1024),
             f"factors must be an integer from 1 to 1024, got {self.factors!r}"),
            (is_number(self.reg) and 0 < self.reg < math.inf,
             f"reg (λ) must be a finite number > 0, got {self.reg!r}"),
            (is_number(self.alpha) and 0 <= self.alpha < math.inf,
             f"alpha must be a finite number >= 0, got {self.alpha!r}"),
            (self.confidence in CONFIDENCE_KINDS,
             f"confidence must be one of {', '.join(CONFIDENCE_KINDS)}, got "
             f"{self.confidence!r}"),
            (is_number(self.epsilon) and 0 < self.epsilon < math.inf,
             f"epsilon must be a finite number > 0, got {self.epsilon!r}"),
            (is_number(self.unobserved_weight) and is_number(self.alpha)
             and 0 < self.unobserved_weight < 1 + self.alpha,
             f"unobserved_weight must be above 0 and below 1 + alpha, so that a used pair "
             f"weighs more than an unused one; got {self.unobserved_weight!r}"),
            (isinstance(self.weighted_reg, bool),
             f"weighted_reg must be True or False, got {self.weighted_reg!r}"),
            (is_int_in(self.iterations, 1, 100_000),
             f"iterations must be an integer from 1 to 100000, got {self.iterations!r}"),
            (self.solver in ROW_SOLVERS,
             f"solver must be one of {', '.join(ROW_SOLVERS)}, got {self.solver!r}"),
            (is_int_in(self.cg_steps, 1, 64),
             f"cg_steps must be an integer from 1 to 64, got {self.cg_steps!r}"),
            (is_number(self.init_scale) and 0 < self.init_scale < math.inf,
             f"init_scale must be a finite number > 0, got {self.init_scale!r}"),
            (is_int_in(self.seed, 0, 2**63 - 1),
             f"seed must be a non-negative integer, got {self.seed!r}"),
        ])

    @property
    def rounds(self) -> int:
        return self.iterations

    def confidences(self, values: np.ndarray) -> np.ndarray:
        """c = 1 + α f(r) of used pairs with values r (float64; 1 + α each with constant
        confidence)."""
        return 1.0 + self.alpha * confidence_signal(self.confidence, values, self.epsilon)

    def params(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict, with ``"method": "ials"``."""
        return method_params("ials", self)

    def row_system(self) -> RowSystem:
        """Every row's system divided by c − α₀ (c = 1 + α): the explicit row system with
        target c / (c − α₀), the shared term α₀ / (c − α₀) · (other side)ᵀ(other side) and
        ridge λ / (c − α₀); with value-dependent confidence, a used pair's weight
        (c_i − α₀) / (c − α₀) grows by α / (c − α₀) per unit of f."""
        confidence = 1.0 + self.alpha
        scale = confidence - self.unobserved_weight
        weighted = self.confidence != "constant"
        return RowSystem(reg=self.reg / scale, reg_bias=0.0, weighted_reg=self.weighted_reg,
                         biases=False, gram_weight=self.unobserved_weight / scale,
                         target=confidence / scale, confidence=self.confidence,
                         confidence_slope=self.alpha / scale if weighted else 0.0,
                         epsilon=self.epsilon if self.confidence == "log" else 1.0)

    def training_bytes(self, train: Ratings) -> int:
        """The memory a run on ``train`` needs (the rating models' ranking heads add it)."""
        needed = training_bytes(len(train), train.n_users, train.n_items, self.factors,
                                4 if self.solver == "cg" else 8, implicit=True)
        if self.confidence != "constant":  # float32 weights, targets and confidences
            needed += 5 * 4 * len(train)
        return needed

    def check_resources(self, train: Ratings) -> None:
        check_fits(self.training_bytes(train),
                   f"training k = {self.factors} on {len(train):,} used pairs",
                   "use fewer factors or shrink the data (--top-users, --min-user-ratings)")

    def start(self, train: Ratings, test: Ratings | None = None) -> ImplicitALSState:
        return ImplicitALSState(self, train.compact(), test)


class ImplicitALSState(LiveModelState):
    """One implicit-feedback ALS run as the training loop drives it.

    Every pair in ``train`` is a used pair; its value sets its confidence with
    value-dependent ``confidence`` and plays no part otherwise. The history's ``objective``
    is the objective of the module docstring (each used pair weighted by its own confidence),
    ``train_rmse`` the root mean squared error of the used training pairs' preferences
    (1 − p·q, unweighted), and ``test_rmse`` the same over the held-out pairs: how far the
    model is from predicting them as used.
    """

    def __init__(self, config: ImplicitALS, train: Ratings, test: Ratings | None) -> None:
        self.config = config
        self.settings = config.params()
        self.resumable = config.resumable
        self.system = config.row_system()
        self.by_user = train.by_user()
        self.by_item = train.by_item()
        # each side's used pairs in its CSR order: what they are fitted to and their weights
        # (None: all 1), from the values by the row system, as fold-in derives them
        matrices = {"user": self.by_user, "item": self.by_item}
        if self.system.confidence == "constant":
            shared = np.full(len(train), self.system.target, dtype=np.float32)
            self.targets = {side: shared for side in matrices}
            self.weights = {side: None for side in matrices}
            self.confidences = None  # the objective's weight of a used pair: 1 + α
        else:
            self.targets = {side: self.system.targets(matrix.data).astype(np.float32)
                            for side, matrix in matrices.items()}
            self.weights = {side: self.system.weights(matrix.data).astype(np.float32)
                            for side, matrix in matrices.items()}
            self.confidences = config.confidences(self.by_user.data).astype(np.float32)
        self.user_weight = train.user_counts() if config.weighted_reg else np.ones(train.n_users)
        self.item_weight = train.item_counts() if config.weighted_reg else np.ones(train.n_items)
        k = config.factors
        dtype = np.float32 if config.solver == "cg" else np.float64
        rng = np.random.default_rng(config.seed)
        # the explicit kernels add a per-row right-hand-side term with the shared Gram term;
        # implicit feedback has none
        self.no_rhs = {"user": np.zeros((train.n_users, k + 1), dtype),
                       "item": np.zeros((train.n_items, k + 1), dtype)}
        self.live = build_model(
            user_ids=train.user_ids.copy(), item_ids=train.item_ids.copy(),
            seen=seen_ratings(train),
            user_factors=config.init_scale * rng.standard_normal((train.n_users, k),
                                                                 dtype=dtype),
            item_factors=np.zeros((train.n_items, k), dtype=dtype),
            user_bias=np.zeros(train.n_users, dtype), item_bias=np.zeros(train.n_items, dtype),
            global_mean=0.0, fallback_mean=0.0, system=self.system, params=config.params())
        self.test_pairs = TestPairs.of(test, train)

    # ------------------------------------------------------------------ the loop's protocol
    def step(self, iteration: int) -> None:
        """The item half-step, then the user half-step."""
        for solve_items in (True, False):
            self.half_step(solve_items=solve_items, iteration=iteration)

    def score(self) -> tuple[float, float, float | None]:
        return self.evaluate()

    def stops(self, record: IterationRecord, previous: float) -> bool:
        return False

    def changing_arrays(self) -> tuple[np.ndarray, ...]:
        return self.live.user_factors, self.live.item_factors

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        self.live.user_factors[...] = saved.user_factors
        self.live.item_factors[...] = saved.item_factors

    # ------------------------------------------------------------------ the half-steps
    def half_step(self, *, solve_items: bool, iteration: int) -> None:
        """Solve one side with the other fixed, in place."""
        model = self.live
        if solve_items:  # the biases are zeros throughout: the model has none
            matrix, fixed, fixed_bias, out, out_bias, side, ids = (
                self.by_item, model.user_factors, model.user_bias, model.item_factors,
                model.item_bias, "item", model.item_ids)
        else:
            matrix, fixed, fixed_bias, out, out_bias, side, ids = (
                self.by_user, model.item_factors, model.item_bias, model.user_factors,
                model.user_bias, "user", model.user_ids)
        k = self.config.factors
        shared = np.zeros((k + 1, k + 1))
        shared[:k, :k] = self.system.gram_weight * gram64(fixed)
        solve = HalfStep(self.system, self.config.solver, self.config.cg_steps)
        status = solve.run(matrix.indptr, matrix.indices, self.targets[side], fixed, fixed_bias,
                           0.0, out, out_bias, extra_gram=shared, extra_rhs=self.no_rhs[side],
                           weights=self.weights[side])
        check_solved(status, out, out_bias, matrix.indptr, ids, side, f"iteration {iteration}",
                     self.system.reg)

    @cached_property
    def ones(self) -> np.ndarray:
        """1 for every used pair: Σ (1 − p·q)² of the objective is the squared error against
        it. Made at the first score, so a state never scored (a rating model's ranking head)
        does not hold it."""
        return np.ones(self.by_user.nnz, dtype=np.float32)

    @cached_property
    def zeros(self) -> np.ndarray:
        """0 for every used pair, for Σ (p·q)² of the objective (see :attr:`ones`)."""
        return np.zeros(self.by_user.nnz, dtype=np.float32)

    def evaluate(self) -> tuple[float, float, float | None]:
        """The objective, the used training pairs' RMSE and the held-out pairs' RMSE."""
        model, config, matrix = self.live, self.config, self.by_user
        zeros_u, zeros_i = model.user_bias, model.item_bias
        used_error = squared_error(matrix.indptr, matrix.indices, self.ones, model.user_factors,
                                   model.item_factors, zeros_u, zeros_i, 0.0)
        # Σ c (1 − p·q)² over the used pairs, each with its own c or all with 1 + α
        weighted_error = ((1.0 + config.alpha) * used_error if self.confidences is None else
                          squared_error(matrix.indptr, matrix.indices, self.ones,
                                        model.user_factors, model.item_factors, zeros_u,
                                        zeros_i, 0.0, self.confidences))
        used_square = squared_error(matrix.indptr, matrix.indices, self.zeros,
                                    model.user_factors, model.item_factors, zeros_u, zeros_i,
                                    0.0)
        every_square = float(np.sum(gram64(model.user_factors) * gram64(model.item_factors)))
        penalty = (np.dot(self.user_weight, _squared_norms(model.user_factors))
                   + np.dot(self.item_weight, _squared_norms(model.item_factors)))
        objective = (weighted_error
                     + config.unobserved_weight * (every_square - used_square)
                     + config.reg * float(penalty))
        test_rmse = None
        if self.test_pairs is not None:
            predicted = model.predict_indices(self.test_pairs.users, self.test_pairs.items)
            test_rmse = math.sqrt(float(np.mean(np.square(1.0 - predicted))))
        return objective, rmse_from_sse(used_error, matrix.nnz), test_rmse


def _squared_norms(factors: np.ndarray) -> np.ndarray:
    """‖x‖² of every row, in float64."""
    return np.einsum("ij,ij->i", factors, factors, dtype=np.float64)
