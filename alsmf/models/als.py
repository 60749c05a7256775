"""The ALS training loop: alternate the two half-steps, keep the history, call back, stop.

One iteration follows seed 000: fix the users and solve least squares for every item, then fix
the items and solve for every user. Each half-step minimises the objective over one side: the
default solver takes a few conjugate-gradient steps per row from the previous solution
(:mod:`alsmf.solvers.cg`, float32), the ``cholesky`` solver solves each row's augmented normal
equations exactly (:mod:`alsmf.solvers.als`: Gram matrices from float32 products summed in
float64, Cholesky in float64). Either way the objective

    Σ (r_ui - μ - b_u - b_i - p_u·q_i)²
        + Σ_u w_u (λ‖p_u‖² + λ_b b_u²) + Σ_i w_i (λ‖q_i‖² + λ_b b_i²)

never increases (w = 1, or the row's rating count with weighted regularisation; λ_b = λ unless
``reg_bias`` is set): CG steps started from the previous solution only lower each row's
quadratic. μ is fixed to the training mean; without biases μ = b = 0 and the objective is seed
001's equation 1.4. With implicit features (:mod:`alsmf.models.implicit_features`) the objective gains their
terms, and each half-step is preceded by the exact solve of the implicit factors it uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.errors import AlsmfError, ConfigError
from alsmf.solvers.halfstep import HalfStep, check_solved
from alsmf.models.implicit_features import (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS, implicit_loss,
                            row_terms, solve_implicit_factors)
from alsmf.model import IterationRecord, MFModel
from alsmf.resources import check_fits, training_bytes
from alsmf.solvers.predict import squared_error
from alsmf.threads import compute_threads

SOLVERS = ("cg", "cholesky")
"""The per-row solvers of a half-step: conjugate gradient (default) or exact Cholesky."""

Callback = Callable[[IterationRecord, MFModel], "bool | None"]
"""Called after every iteration with its record and the model so far; return True to stop."""


@dataclass(frozen=True)
class ALS:
    """Explicit-feedback ALS with biases, as in seed 001.

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
        implicit_weight: weight w of the implicit features (:mod:`alsmf.models.implicit_features`): the binary
            "who rated what" matrix co-factorized with the ratings through the user factors;
            0 turns them off.
        implicit_reg: λ_z of the implicit factors.
        reg_warmup: iterations at the start that solve with half the factors' λ. From their
            near-zero start the factors grow only slowly while the full λ holds them back:
            on the ML-20M shape at λ = 0.12, 7 iterations to come within 0.5% of the final
            test RMSE, 4 with this warm-up. The later iterations minimise the stated
            objective, which never increases from the last warm-up iteration on; 0 turns the
            warm-up off (then it never increases at all).
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

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.factors, (int, np.integer)) and 1 <= self.factors <= 1024,
             f"factors must be an integer from 1 to 1024, got {self.factors!r}"),
            (_is_number(self.reg) and 0 <= self.reg < math.inf,
             f"reg (λ) must be a finite number >= 0, got {self.reg!r}"),
            (isinstance(self.iterations, (int, np.integer)) and 1 <= self.iterations <= 100_000,
             f"iterations must be an integer from 1 to 100000, got {self.iterations!r}"),
            (_is_number(self.tol) and 0 <= self.tol < 1,
             f"tol must be a number in [0, 1), got {self.tol!r}"),
            (_is_number(self.init_scale) and 0 < self.init_scale < math.inf,
             f"init_scale must be a finite number > 0, got {self.init_scale!r}"),
            (isinstance(self.seed, (int, np.integer)) and self.seed >= 0,
             f"seed must be a non-negative integer, got {self.seed!r}"),
            (self.solver in SOLVERS,
             f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}"),
            (isinstance(self.cg_steps, (int, np.integer)) and 1 <= self.cg_steps <= 64,
             f"cg_steps must be an integer from 1 to 64, got {self.cg_steps!r}"),
            (self.reg_bias is None or (_is_number(self.reg_bias) and 0 <= self.reg_bias < math.inf),
             f"reg_bias must be None or a finite number >= 0, got {self.reg_bias!r}"),
            (_is_number(self.implicit_weight) and 0 <= self.implicit_weight < math.inf,
             f"implicit_weight must be a finite number >= 0, got {self.implicit_weight!r}"),
            (_is_number(self.implicit_reg) and 0 < self.implicit_reg < math.inf,
             f"implicit_reg must be a finite number > 0, got {self.implicit_reg!r}"),
            (isinstance(self.reg_warmup, (int, np.integer)) and 0 <= self.reg_warmup <= 100_000,
             f"reg_warmup must be an integer from 0 to 100000, got {self.reg_warmup!r}"),
            (self.solver != "cg" or (_is_number(self.reg) and self.reg > 0),
             "reg = 0 needs solver='cholesky' (conjugate gradient needs a positive definite "
             "system)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def converged(self, iteration: int, previous: float, objective: float) -> bool:
        """Whether ``iteration`` lowered the objective by less than ``tol`` of ``previous``
        (the last iteration's): never during the warm-up, whose objectives may rise."""
        return (self.tol > 0 and iteration > max(1, self.reg_warmup)
                and previous - objective <= self.tol * previous)

    def params(self) -> dict:
        """The hyperparameters as a JSON-ready dict."""
        return {key: (value.item() if isinstance(value, np.generic) else value)
                for key, value in asdict(self).items()}

    def fit(
        self,
        train: Ratings,
        test: Ratings | None = None,
        *,
        callback: Callback | None = None,
        threads: int | None = None,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
    ) -> MFModel:
        """Train on ``train``; report test RMSE per iteration when ``test`` is given.

        The model knows the users and items that have training ratings; test ratings of other
        ids are scored with the model's fallback, as they would be in use.

        Args:
            train: training ratings.
            test: optional held-out ratings (any id space; matched by raw id).
            callback: called after each iteration; returning True stops training.
            threads: number of threads for the parallel half-steps (default: all cores).
            checkpoint: model file written (atomically) every ``checkpoint_every`` iterations,
                so a killed run can be resumed.
            checkpoint_every: iterations between checkpoints (>= 1).
            resume: continue from ``checkpoint`` when that file exists. An iteration depends
                only on the factors the previous one left, which the file holds exactly, so
                the result is bit-identical to an uninterrupted run. The file must come from
                the same settings (``iterations`` and ``tol`` may differ) and the same data.

        Raises:
            NumericalError: a row's system could not be solved (for example λ = 0 with a row
                that has fewer ratings than unknowns); the message names the row and iteration.
            TrainingInterrupted: Ctrl-C; its ``model`` is the model after the last finished
                iteration (the half-step in progress is rolled back).
            ConfigError: bad ``threads`` or ``checkpoint_every``, or a checkpoint that does not
                match these settings or data.
        """
        if not (isinstance(checkpoint_every, (int, np.integer)) and checkpoint_every >= 1):
            raise ConfigError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
        with compute_threads(threads):
            train = train.compact()
            needed = training_bytes(len(train), train.n_users, train.n_items, self.factors,
                                    4 if self.solver == "cg" else 8, self.implicit_weight > 0)
            check_fits(needed,
                       f"training k = {self.factors} on {len(train):,} ratings",
                       "use fewer factors or shrink the data (--top-users, --min-user-ratings)")
            state = _TrainingState.start(self, train, test)
            if resume and checkpoint is not None and Path(checkpoint).exists():
                state.restore(MFModel.load(checkpoint), Path(checkpoint))
            return self._iterate(state, callback,
                                 None if checkpoint is None else Path(checkpoint),
                                 checkpoint_every)

    def _iterate(self, state: _TrainingState, callback: Callback | None,
                 checkpoint: Path | None, checkpoint_every: int) -> MFModel:
        """Run the iterations until the limit, the tolerance or the callback stops them."""
        model = state.model
        previous = model.history[-1].objective if model.history else math.inf
        for iteration in range(len(model.history) + 1, self.iterations + 1):
            snapshot = state.snapshot()
            try:
                started = time.perf_counter()
                for solve_items in (True, False):
                    state.implicit_step(for_items=solve_items)
                    state.half_step(solve_items=solve_items, iteration=iteration)
                solved = time.perf_counter()
                objective, train_rmse, test_rmse = state.evaluate()
            except KeyboardInterrupt:
                state.roll_back(snapshot)
                raise TrainingInterrupted(model) from None
            record = IterationRecord(iteration, objective, train_rmse, test_rmse,
                                     time.perf_counter() - started, solved - started)
            model.history.append(record)
            if checkpoint is not None and iteration % checkpoint_every == 0:
                model.save(checkpoint)
            if callback is not None and callback(record, model):
                break
            if self.converged(iteration, previous, objective):
                break
            previous = objective
        return model


class TrainingInterrupted(AlsmfError):
    """Training was stopped by Ctrl-C; ``model`` holds the last finished iteration."""

    def __init__(self, model: MFModel) -> None:
        super().__init__(f"training interrupted after iteration {len(model.history)}")
        self.model = model


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class _TrainingState:
    """The arrays one training run works on, prepared once."""

    def __init__(self, config: ALS, train: Ratings, model: MFModel,
                 test_pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        self.config = config
        self.model = model
        self.test_pairs = test_pairs
        self.by_user = train.by_user()
        self.by_item = train.by_item()
        self.user_weight = train.user_counts() if config.weighted_reg else np.ones(train.n_users)
        self.item_weight = train.item_counts() if config.weighted_reg else np.ones(train.n_items)
        self.params = config.params()
        # each side's Σ of the other side's implicit factors, from its last half-step: the
        # implicit factors have not changed since, so the objective reuses them
        self.implicit_sums: dict[str, tuple[np.ndarray, float]] = {}

    @classmethod
    def start(cls, config: ALS, train: Ratings, test: Ratings | None) -> _TrainingState:
        rng = np.random.default_rng(config.seed)
        mean = float(np.mean(train.values, dtype=np.float64))
        dtype = np.float32 if config.solver == "cg" else np.float64
        model = MFModel(
            user_factors=config.init_scale * rng.standard_normal(
                (train.n_users, config.factors), dtype=dtype),
            item_factors=np.zeros((train.n_items, config.factors), dtype=dtype),
            user_bias=np.zeros(train.n_users, dtype=dtype),
            item_bias=np.zeros(train.n_items, dtype=dtype),
            global_mean=mean if config.biases else 0.0,
            fallback_mean=mean,
            user_ids=train.user_ids.copy(),
            item_ids=train.item_ids.copy(),
            seen_indptr=train.by_user().indptr.astype(np.int64),
            seen_indices=train.by_user().indices.astype(np.int32, copy=False),  # shared with
            seen_values=train.by_user().data.astype(np.float32, copy=False),  # the CSR
            biases=config.biases,
            params=config.params(),
        )
        if config.implicit_weight > 0:
            model.extras[IMPLICIT_USER_FACTORS] = np.zeros((train.n_users, config.factors), dtype)
            model.extras[IMPLICIT_ITEM_FACTORS] = np.zeros((train.n_items, config.factors), dtype)
        test_pairs = None
        if test is not None and len(test):
            test_pairs = (  # 32-bit: half the memory, and the kernels take them as they are
                _recoded(test.users, test.user_ids, train.user_ids),
                _recoded(test.items, test.item_ids, train.item_ids),
                test.values,
            )
        return cls(config, train, model, test_pairs)

    def _changing_arrays(self) -> tuple[np.ndarray, ...]:
        model = self.model
        return (model.user_factors, model.item_factors, model.user_bias, model.item_bias,
                *model.extras.values())

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """Copies of the arrays an iteration changes (a few MB; taken before each iteration)."""
        return tuple(a.copy() for a in self._changing_arrays())

    def roll_back(self, snapshot: tuple[np.ndarray, ...]) -> None:
        """Put back the arrays of :meth:`snapshot`, undoing a half-finished iteration."""
        for target, saved in zip(self._changing_arrays(), snapshot):
            target[...] = saved

    def restore(self, saved: MFModel, path: Path) -> None:
        """Continue from a checkpoint: check it matches these settings and data, take its state.

        The model keeps its training ratings, so the data check is exact: same ids, same
        (user, item, rating) triples.
        """
        ignored = ("iterations", "tol")
        ours = {k: v for k, v in self.config.params().items() if k not in ignored}
        theirs = {k: v for k, v in saved.params.items() if k not in ignored}
        if ours != theirs:
            changed = sorted(k for k in ours if ours[k] != theirs.get(k))
            raise ConfigError(f"{path}: the checkpoint was trained with other settings "
                              f"({', '.join(changed)}); delete it or train without --resume")
        model = self.model
        same_data = (np.array_equal(saved.user_ids, model.user_ids)
                     and np.array_equal(saved.item_ids, model.item_ids)
                     and np.array_equal(saved.seen_indptr, model.seen_indptr)
                     and np.array_equal(saved.seen_indices, model.seen_indices)
                     and saved.seen_values is not None
                     and np.array_equal(saved.seen_values, model.seen_values))
        if not same_data:
            raise ConfigError(f"{path}: the checkpoint was trained on other data; delete it "
                              "or train without --resume")
        if len(saved.history) > self.config.iterations:
            raise ConfigError(f"{path}: the checkpoint has {len(saved.history)} iterations, "
                              f"more than the {self.config.iterations} asked for")
        for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
            getattr(model, name)[...] = getattr(saved, name)
        for name, array in model.extras.items():
            array[...] = saved.extras[name]
        model.history = list(saved.history)

    def half_step(self, *, solve_items: bool, iteration: int) -> None:
        """Solve one side with the other fixed, in place."""
        model, config = self.model, self.config
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
        solve = HalfStep.for_iteration(self.params, iteration)
        status = solve.run(matrix.indptr, matrix.indices, matrix.data, fixed, fixed_bias,
                           model.global_mean, out, out_bias, **extra)
        check_solved(status, out, out_bias, matrix.indptr, ids, side, f"iteration {iteration}",
                     solve.reg)

    def implicit_step(self, *, for_items: bool) -> None:
        """Solve the implicit factors that the next half-step uses, exactly (if any).

        Before the item half-step: A (one row per user) from the item factors; before the
        user half-step: Z (one row per item) from the user factors.
        """
        model, config = self.model, self.config
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
        model, config = self.model, self.config
        matrix = self.by_user
        sse = squared_error(matrix.indptr, matrix.indices, matrix.data, model.user_factors,
                            model.item_factors, model.user_bias, model.item_bias,
                            model.global_mean)
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
        train_rmse = math.sqrt(sse / matrix.nnz)
        test_rmse = None
        if self.test_pairs is not None:
            users, items, values = self.test_pairs
            residuals = values - model.predict_indices(users, items)
            test_rmse = math.sqrt(float(np.mean(np.square(residuals))))
        return objective, train_rmse, test_rmse


def _recoded(codes: np.ndarray, ids: np.ndarray, training_ids: np.ndarray) -> np.ndarray:
    """Indices into ``training_ids`` of the ids ``ids[codes]`` (-1 where absent), int32.

    A test set split from the training set usually has the same id maps: its codes are then
    used as they are (no copy: at 20M ratings the test pairs are 2M rows).
    """
    if np.array_equal(ids, training_ids):
        return codes.astype(np.int32, copy=False)
    return lookup_ids(training_ids, ids).astype(np.int32)[codes]  # looked up per id, once


def _penalties(factors: np.ndarray, bias: np.ndarray, reg: float, reg_bias: float) -> np.ndarray:
    """λ‖p‖² + λ_b b² of each row (before the ALS-WR weight by its rating count)."""
    return reg * np.einsum("ij,ij->i", factors, factors) + reg_bias * bias * bias
