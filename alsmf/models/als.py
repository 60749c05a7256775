"""Explicit-feedback ALS with biases: the settings, and the state the training loop drives.

One iteration fixes the users and solves least squares for every item, then fixes the items
and solves for every user. Each half-step minimises the objective over one side: the
default solver takes a few conjugate-gradient steps per row from the previous solution
(:mod:`alsmf.solvers.cg`, float32), the ``cholesky`` solver solves each row's augmented normal
equations exactly (:mod:`alsmf.solvers.als`: Gram matrices from float32 products summed in
float64, Cholesky in float64). Either way the objective

    Σ (r_ui - μ - b_u - b_i - p_u·q_i)²
        + Σ_u w_u (λ‖p_u‖² + λ_b b_u²) + Σ_i w_i (λ‖q_i‖² + λ_b b_i²)

never increases (w = 1, or the row's rating count with weighted regularisation; λ_b = λ unless
``reg_bias`` is set): CG steps started from the previous solution only lower each row's
quadratic. μ is fixed to the training mean; without biases μ = b = 0 and the objective is the
plain regularised squared error of R ≈ P·Qᵀ. With implicit features
(:mod:`alsmf.models.implicit_features`) the objective gains their terms, and each half-step is
preceded by the exact solve of the implicit factors it uses.

The loop itself (history, callback, tolerance, Ctrl-C, checkpoints) is the one every method
runs (:mod:`alsmf.training.loop`); :class:`ALSState` is what it drives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from alsmf.checks import check_settings, is_int_in, is_number, json_ready
from alsmf.data.ratings import Ratings
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.implicit_features import (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS,
                                            implicit_loss, row_terms, solve_implicit_factors)
from alsmf.models.ranking_head import (RANK_ALPHA, RANK_FACTORS, RANK_ITERATIONS, RANK_REG,
                                       head_bytes, head_checks, with_ranking_head)
from alsmf.resources import check_fits, training_bytes
from alsmf.rowsystem import RowSystem
from alsmf.solvers.halfstep import ROW_SOLVERS, HalfStep, check_solved
from alsmf.training.builder import model_over, training_mean
from alsmf.training.loop import LiveModelState
from alsmf.training.scoring import TestPairs, rmse_from_sse, score_test, training_sse
from alsmf.training.trainer import Trainer

SOLVERS = tuple(ROW_SOLVERS)
"""The per-row solvers of a half-step: conjugate gradient (default) or exact Cholesky."""

WARMUP_REG_SHARE = 0.5
"""Share of the factors' λ that the warm-up iterations of training use (``ALS.reg_warmup``)."""


@dataclass(frozen=True)
class ALS(Trainer):
    """Explicit-feedback ALS with biases: μ + b_u + b_i + p_u·q_i.

    Attributes:
        factors: number of latent factors k (1..1024).
        reg: L2 regularisation λ (>= 0; 0 only when every row has enough ratings).
        iterations: maximum number of iterations (each = item half-step + user half-step).
        biases: learn μ + b_u + b_i alongside the factors (solved inside each half-step).
        weighted_reg: scale λ by each row's rating count (ALS-WR, as Spark and LensKit do).
        tol: stop when the relative decrease of the objective in one iteration is below this
            (0 runs every iteration).
        init_scale: standard deviation of the random initial user factors.
        seed: seed of the random initial factors; the same seed gives the same model.
        solver: ``"cg"`` (default): ``cg_steps`` conjugate-gradient steps per row, warm-started
            from the previous iteration, float32 factors; several times faster and, after a
            few iterations, as accurate as ``"cholesky"``: the exact solve of every row's
            normal equations (float32 products summed in float64, Cholesky in float64;
            needed for reg = 0).
        cg_steps: conjugate-gradient steps per row and half-step (1..64).
        reg_bias: λ of the biases b_u, b_i (scaled like ``reg`` by ``weighted_reg``); None
            uses ``reg``. Biases need less shrinkage than factors: they are one number
            estimated from all of a row's ratings.
        implicit_weight: weight w of the implicit features
            (:mod:`alsmf.models.implicit_features`): the binary
            "who rated what" matrix co-factorized with the ratings through the user factors;
            0 turns them off.
        implicit_reg: λ_z of the implicit factors.
        reg_warmup: iterations at the start that solve with half the factors' λ. From their
            near-zero start the factors grow only slowly while the full λ holds them back, so
            the first iterations barely move the test RMSE (the README measures it). The
            later iterations minimise the stated objective, which never increases from the
            last warm-up iteration on; 0 turns the warm-up off (then it never increases at
            all).
        rank_factors, rank_reg, rank_alpha, rank_iterations: k, λ, α and iterations of the
            ranking head (:mod:`alsmf.models.ranking_head`), the implicit-feedback model of
            who rated what that lists are ranked with (:mod:`alsmf.ranking`);
            ``rank_factors = 0`` trains none, and lists rank by predicted rating.
    """

    factors: int = 64
    reg: float = 0.12
    iterations: int = 25
    biases: bool = True
    weighted_reg: bool = True
    tol: float = 0.0
    init_scale: float = 0.1
    seed: int = 0
    solver: str = "cg"
    cg_steps: int = 3
    reg_bias: float | None = 0.02
    implicit_weight: float = 3.0
    implicit_reg: float = 1000.0
    reg_warmup: int = 2
    rank_factors: int = RANK_FACTORS
    rank_reg: float = RANK_REG
    rank_alpha: float = RANK_ALPHA
    rank_iterations: int = RANK_ITERATIONS

    resumable: ClassVar[tuple[str, ...]] = ("iterations", "tol")

    def __post_init__(self) -> None:
        check_settings([
            (is_int_in(self.factors, 1, 1024),
             f"factors must be an integer from 1 to 1024, got {self.factors!r}"),
            (is_number(self.reg) and 0 <= self.reg < math.inf,
             f"reg (λ) must be a finite number >= 0, got {self.reg!r}"),
            (isinstance(self.iterations, (int, np.integer)) and 1 <= self.iterations <= 100_000,
             f"iterations must be an integer from 1 to 100000, got {self.iterations!r}"),
            (is_number(self.tol) and 0 <= self.tol < 1,
             f"tol must be a number in [0, 1), got {self.tol!r}"),
            (is_number(self.init_scale) and 0 < self.init_scale < math.inf,
             f"init_scale must be a finite number > 0, got {self.init_scale!r}"),
            (isinstance(self.seed, (int, np.integer)) and self.seed >= 0,
             f"seed must be a non-negative integer, got {self.seed!r}"),
            (self.solver in SOLVERS,
             f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}"),
            (isinstance(self.cg_steps, (int, np.integer)) and 1 <= self.cg_steps <= 64,
             f"cg_steps must be an integer from 1 to 64, got {self.cg_steps!r}"),
            (self.reg_bias is None or (is_number(self.reg_bias) and 0 <= self.reg_bias < math.inf),
             f"reg_bias must be None or a finite number >= 0, got {self.reg_bias!r}"),
            (is_number(self.implicit_weight) and 0 <= self.implicit_weight < math.inf,
             f"implicit_weight must be a finite number >= 0, got {self.implicit_weight!r}"),
            (is_number(self.implicit_reg) and 0 < self.implicit_reg < math.inf,
             f"implicit_reg must be a finite number > 0, got {self.implicit_reg!r}"),
            (isinstance(self.reg_warmup, (int, np.integer)) and 0 <= self.reg_warmup <= 100_000,
             f"reg_warmup must be an integer from 0 to 100000, got {self.reg_warmup!r}"),
            (self.solver != "cg" or (is_number(self.reg) and self.reg > 0),
             "reg = 0 needs solver='cholesky' (conjugate gradient needs a positive definite "
             "system)"),
            *head_checks(self),
        ])

    def converged(self, iteration: int, previous: float, objective: float) -> bool:
        """Whether ``iteration`` lowered the objective by less than ``tol`` of ``previous``
        (the last iteration's): never during the warm-up, whose objectives may rise."""
        return (self.tol > 0 and iteration > max(1, self.reg_warmup)
                and previous - objective <= self.tol * previous)

    @property
    def rounds(self) -> int:
        return self.iterations

    def params(self) -> dict[str, Any]:
        """The hyperparameters as a JSON-ready dict."""
        return json_ready(self)

    def row_system(self) -> RowSystem:
        """What every row solves at the full λ (the model's, for fold-in)."""
        return RowSystem(reg=self.reg, reg_bias=self.reg if self.reg_bias is None
                         else self.reg_bias, weighted_reg=self.weighted_reg,
                         biases=self.biases, implicit_weight=self.implicit_weight)

    def half_step(self, iteration: int) -> HalfStep:
        """The half-step of training iteration ``iteration`` (counted from 1): the full row
        system, with the factors' λ times :data:`WARMUP_REG_SHARE` in the first
        ``reg_warmup`` iterations (``reg_warmup`` says why)."""
        system = self.row_system()
        if iteration <= self.reg_warmup:
            system = replace(system, reg=system.reg * WARMUP_REG_SHARE)
        return HalfStep(system, self.solver, self.cg_steps)

    def check_resources(self, train: Ratings) -> None:
        needed = training_bytes(len(train), train.n_users, train.n_items, self.factors,
                                4 if self.solver == "cg" else 8, self.implicit_weight > 0)
        needed += head_bytes(self, train)
        check_fits(needed, f"training k = {self.factors} on {len(train):,} ratings",
                   "use fewer factors or shrink the data (--top-users, --min-user-ratings)")

    def start(self, train: Ratings, test: Ratings | None = None) -> Any:
        """The run's state: an :class:`ALSState`, with the ranking head beside it."""
        train = train.compact()
        return with_ranking_head(self, ALSState.start(self, train, test), train)


class ALSState(LiveModelState):
    """One ALS run as the training loop drives it: the model being trained and the arrays
    the half-steps need, prepared once.

    Attributes:
        config: the settings.
        live: the model being trained (its arrays are updated in place).
    """

    def __init__(self, config: ALS, train: Ratings, model: MFModel,
                 test_pairs: TestPairs | None) -> None:
        self.config = config
        self.live = model
        self.settings = config.params()
        self.resumable = config.resumable
        self.test_pairs = test_pairs
        self.by_user = train.by_user()
        self.by_item = train.by_item()
        self.user_weight = train.user_counts() if config.weighted_reg else np.ones(train.n_users)
        self.item_weight = train.item_counts() if config.weighted_reg else np.ones(train.n_items)
        # each side's Σ of the other side's implicit factors, from its last half-step: the
        # implicit factors have not changed since, so the objective reuses them
        self.implicit_sums: dict[str, tuple[np.ndarray, float]] = {}

    @classmethod
    def start(cls, config: ALS, train: Ratings, test: Ratings | None) -> ALSState:
        """The starting point: random user factors, zero item factors and biases."""
        rng = np.random.default_rng(config.seed)
        mean = training_mean(train)
        dtype = np.float32 if config.solver == "cg" else np.float64
        extras = {}
        if config.implicit_weight > 0:
            extras[IMPLICIT_USER_FACTORS] = np.zeros((train.n_users, config.factors), dtype)
            extras[IMPLICIT_ITEM_FACTORS] = np.zeros((train.n_items, config.factors), dtype)
        model = model_over(
            train, system=config.row_system(), params=config.params(),
            user_factors=config.init_scale * rng.standard_normal(
                (train.n_users, config.factors), dtype=dtype),
            item_factors=np.zeros((train.n_items, config.factors), dtype=dtype),
            user_bias=np.zeros(train.n_users, dtype=dtype),
            item_bias=np.zeros(train.n_items, dtype=dtype),
            global_mean=mean if config.biases else 0.0, extras=extras)
        return cls(config, train, model, TestPairs.of(test, train))

    # ------------------------------------------------------------------ the loop's protocol
    def step(self, iteration: int) -> None:
        """One iteration: the item half-step, then the user half-step, each after the
        implicit factors it uses."""
        for solve_items in (True, False):
            self.implicit_step(for_items=solve_items)
            self.half_step(solve_items=solve_items, iteration=iteration)

    def score(self) -> tuple[float, float, float | None]:
        return self.evaluate()

    def stops(self, record: IterationRecord, previous: float) -> bool:
        return self.config.converged(record.iteration, previous, record.objective)

    def changing_arrays(self) -> tuple[np.ndarray, ...]:
        model = self.live
        return (model.user_factors, model.item_factors, model.user_bias, model.item_bias,
                *model.extras.values())

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        model = self.live
        for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
            getattr(model, name)[...] = getattr(saved, name)
        for name, array in model.extras.items():
            array[...] = saved.extras[name]

    # ------------------------------------------------------------------ the half-steps
    def half_step(self, *, solve_items: bool, iteration: int) -> None:
        """Solve one side with the other fixed, in place."""
        model, config = self.live, self.config
        if solve_items:
            matrix, fixed, fixed_bias = self.by_item, model.user_factors, model.user_bias
            out, out_bias, side = model.item_factors, model.item_bias, "item"
            ids = model.item_ids
        else:
            matrix, fixed, fixed_bias = self.by_user, model.item_factors, model.item_bias
            out, out_bias, side = model.user_factors, model.user_bias, "user"
            ids = model.user_ids
        extra = {}
        implicit = model.extras.get(IMPLICIT_USER_FACTORS if solve_items else IMPLICIT_ITEM_FACTORS)
        if implicit is not None:
            gram, rhs = row_terms(matrix.indptr, matrix.indices, implicit, config.implicit_weight)
            extra = {"extra_gram": gram, "extra_rhs": rhs}
            self.implicit_sums[side] = (rhs, config.implicit_weight)  # w·Σ c_j, for the loss
        solve = config.half_step(iteration)
        status = solve.run(matrix.indptr, matrix.indices, matrix.data, fixed, fixed_bias,
                           model.global_mean, out, out_bias, **extra)
        check_solved(status, out, out_bias, matrix.indptr, ids, side, f"iteration {iteration}",
                     solve.reg)

    def implicit_step(self, *, for_items: bool) -> None:
        """Solve the implicit factors that the next half-step uses, exactly (if any).

        Before the item half-step: A (one row per user) from the item factors; before the
        user half-step: Z (one row per item) from the user factors.
        """
        model, config = self.live, self.config
        if config.implicit_weight == 0:
            return
        if for_items:
            target, matrix, fixed = IMPLICIT_USER_FACTORS, self.by_user, model.item_factors
        else:
            target, matrix, fixed = IMPLICIT_ITEM_FACTORS, self.by_item, model.user_factors
        self.implicit_sums.pop("item" if for_items else "user", None)  # stale from now on
        model.extras[target][...] = solve_implicit_factors(
            matrix.indptr, matrix.indices, fixed, config.implicit_weight, config.implicit_reg)

    def evaluate(self) -> tuple[float, float, float | None]:
        """The objective, train RMSE and test RMSE of the current model."""
        model, config = self.live, self.config
        matrix = self.by_user
        sse = training_sse(matrix, model)
        reg_bias = config.reg if config.reg_bias is None else config.reg_bias
        penalty = (np.dot(self.user_weight, _penalties(model.user_factors, model.user_bias,
                                                       config.reg, reg_bias))
                   + np.dot(self.item_weight, _penalties(model.item_factors, model.item_bias,
                                                         config.reg, reg_bias)))
        objective = sse + float(penalty)
        if config.implicit_weight > 0:
            by_item = self.by_item
            objective += implicit_loss(matrix.indptr, matrix.indices, model.user_factors,
                                       model.extras[IMPLICIT_ITEM_FACTORS],
                                       config.implicit_weight, config.implicit_reg,
                                       self.implicit_sums.get("user"))
            objective += implicit_loss(by_item.indptr, by_item.indices, model.item_factors,
                                       model.extras[IMPLICIT_USER_FACTORS],
                                       config.implicit_weight, config.implicit_reg,
                                       self.implicit_sums.get("item"))
        return objective, rmse_from_sse(sse, matrix.nnz), score_test(self.test_pairs, model)


def _penalties(factors: np.ndarray, bias: np.ndarray, reg: float, reg_bias: float) -> np.ndarray:
    """λ‖p‖² + λ_b b² of each row (before the ALS-WR weight by its rating count)."""
    return reg * np.einsum("ij,ij->i", factors, factors) + reg_bias * bias * bias
