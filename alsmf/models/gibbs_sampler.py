"""The Gibbs sampler of :class:`~alsmf.models.bayes.BayesianMF`: the state the loop drives.

One sweep draws, in this order, both sides' prior (m, Λ) from their conjugate conditionals,
every user's x_u = [p_u, b_u], every item's x_i (in parallel; each row's Gaussian conditional
is the ALS row system, see :mod:`alsmf.solvers.gibbs`) and the noise precision α. Every draw
comes from a generator seeded by (seed, sweep, stage) or (seed, sweep, side, row), never from
a stream carried across sweeps, so the state after a sweep is a function of the state before
it: a checkpoint holds the whole state, and a resumed run draws exactly what the
uninterrupted one would have. The state's arrays, and the models they make, are a
:class:`~alsmf.models.sampler_arrays.SamplerArrays`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.errors import NumericalError
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.implicit_features import row_terms, solve_implicit_factors
from alsmf.models.sampler_arrays import ITEMS, USERS, SamplerArrays, ridge_weights
from alsmf.ranking import clip_to_scale
from alsmf.rowsystem import rating_scale
from alsmf.solvers.gibbs import add_in_order, gibbs_half_step, scatter_matrix, slice_sums
from alsmf.solvers.gram import gather_source
from alsmf.solvers.predict import predict_pairs, squared_error
from alsmf.training.builder import rating_variance, seen_ratings, training_mean
from alsmf.training.scoring import TestPairs, rmse_from_sse

if TYPE_CHECKING:
    from alsmf.models.bayes import BayesianMF

_PRIOR_STRENGTH = 2.0  # β0 (Wishart) / κ0 (Gamma): pseudo-rows behind the prior mean 0
_GAMMA_SHAPE, _GAMMA_RATE = 1.0, 1.0  # a0, b0 of the per-dimension precisions and of α
class GibbsState(SamplerArrays):
    """One Gibbs run: the current draw, the kept draws and the test sums.

    Attributes:
        settings, resumable: as the training loop reads them.
        n_kept: how many draws are kept so far.
    """

    def __init__(self, config: BayesianMF, train: Ratings, test: Ratings | None) -> None:
        self.config = config
        self.settings = config.params()
        self.resumable = config.resumable
        self.train = train
        self.user_ids, self.item_ids = train.user_ids, train.item_ids
        self.by_user = train.by_user()
        self.by_item = train.by_item()
        k = config.factors
        rng = np.random.default_rng([config.seed, 0])
        self.mean = training_mean(train)
        self.user_factors = config.init_scale * rng.standard_normal((train.n_users, k))
        self.item_factors = config.init_scale * rng.standard_normal((train.n_items, k))
        self.user_bias = np.zeros(train.n_users)
        self.item_bias = np.zeros(train.n_items)
        self.alpha = 1.0 / max(rating_variance(train.values), 1e-6)
        eye = np.eye(k + 1)
        self.user_prior = (np.zeros(k + 1), eye)  # (m, Λ) of the current draw
        self.item_prior = (np.zeros(k + 1), eye)
        # implicit factors: Z (one row per item, with the user factors), A (per user, with Q)
        self.implicit = {USERS: np.zeros((train.n_items, k)),
                         ITEMS: np.zeros((train.n_users, k))}
        self.allocate(train.n_users, train.n_items)
        self.sse = math.nan  # of the last sweep's draw
        self.seen = seen_ratings(train)  # the model's copy of the training ratings, made once
        self.scale = rating_scale(train.values)
        self.test_pairs = TestPairs.of(test, train)
        self.test_sum = np.zeros(0 if self.test_pairs is None else len(self.test_pairs.values))

    # ------------------------------------------------------------------ the loop's protocol
    def step(self, iteration: int) -> None:
        """Sweep ``iteration``: both priors, every user, every item, then α; keep the draw
        when this sweep is one of the kept ones."""
        self.sweep(iteration)
        self.sse = squared_error(self.by_user.indptr, self.by_user.indices, self.by_user.data,
                                 self.user_factors, self.item_factors, self.user_bias,
                                 self.item_bias, self.mean)
        self.alpha = draw_alpha(sweep_rng(self.config.seed, iteration, 2), self.sse,
                                len(self.train))
        if self.n_kept < len(self.kept_sweeps) and iteration == self.kept_sweeps[self.n_kept]:
            self.keep()

    def score(self) -> tuple[float, float, float | None]:
        return self.sse, rmse_from_sse(self.sse, len(self.train)), self.test_rmse()

    def stops(self, record: IterationRecord, previous: float) -> bool:
        return False  # a sampler runs its sweeps

    def snapshot(self) -> dict[str, Any]:
        """The current draw and the counters; the kept draws need no copy, since a rolled-back
        ``n_kept`` leaves a half-written column unused."""
        arrays = self._scalars_and_draw()
        return {name: np.array(value, copy=True) for name, value in arrays.items()}

    def roll_back(self, snapshot: dict[str, Any]) -> None:
        self._set_scalars_and_draw(snapshot)

    def progress(self, history: list[IterationRecord]) -> MFModel:
        return self.current_model(history)

    def model(self, history: list[IterationRecord]) -> MFModel:
        """The posterior mean of the kept draws, or the current draw before the first."""
        return self.posterior_model(history) if self.n_kept else self.current_model(history)

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        """The current draw as the model (no copy of the kept draws, which the posterior model
        would need), and the whole state as arrays."""
        return self.current_model(history), self.state_arrays()

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        """Take the whole state from the checkpoint's arrays."""
        self.set_state(arrays)

    # ------------------------------------------------------------------ sampling
    def sweep(self, sweep: int) -> None:
        """Draw both priors, then every user, then every item (in place)."""
        seed, hyperprior = self.config.seed, self.config.hyperprior
        self.user_prior = draw_prior(hyperprior, sweep_rng(seed, sweep, 0),
                                     *row_statistics(self.user_factors, self.user_bias))
        self.item_prior = draw_prior(hyperprior, sweep_rng(seed, sweep, 1),
                                     *row_statistics(self.item_factors, self.item_bias))
        weight = self.config.implicit_weight
        for side, matrix, other, fixed, fixed_bias, out, out_bias, prior, ids in (
                (USERS, self.by_user, self.by_item, self.item_factors, self.item_bias,
                 self.user_factors, self.user_bias, self.user_prior, self.train.user_ids),
                (ITEMS, self.by_item, self.by_user, self.user_factors, self.user_bias,
                 self.item_factors, self.item_bias, self.item_prior, self.train.item_ids)):
            k = fixed.shape[1]
            extra_gram, extra_rhs = np.zeros((0, 0)), np.zeros((0, k + 1))
            if weight > 0:  # this side's partner implicit factors at their conditional mean
                self.implicit[side] = solve_implicit_factors(
                    other.indptr, other.indices, out, weight, self.config.implicit_reg)
                # the terms are in the units of solve_row's system G + Λ/α: divide by α
                extra_gram, extra_rhs = row_terms(matrix.indptr, matrix.indices,
                                                  self.implicit[side], weight / self.alpha)
            status = np.zeros(matrix.shape[0], dtype=np.int64)
            gibbs_half_step(matrix.indptr, matrix.indices, matrix.data,
                            gather_source(fixed), fixed_bias,
                            self.mean, prior[1], prior[0], self.alpha, self.config.seed, sweep,
                            side, 0, extra_gram, extra_rhs, out, out_bias, status)
            check_drawn(status, out, out_bias, ids, side, sweep, self.alpha)

    def keep(self) -> None:
        """Store the current draw as kept sample number ``n_kept``; update the test sums."""
        k, s = self.config.factors, self.n_kept
        self.user_samples[:, s * k:(s + 1) * k] = self.user_factors
        self.item_samples[:, s * k:(s + 1) * k] = self.item_factors
        self.user_bias_samples[:, s] = self.user_bias
        self.item_bias_samples[:, s] = self.item_bias
        if self.config.implicit_weight > 0:
            for side, samples in self.implicit_samples.items():
                samples[:, s * k:(s + 1) * k] = self.implicit[side]
        self.alpha_samples[s] = self.alpha
        self.reg_samples[s] = ridge_weights(self.user_prior[1], self.alpha)
        self.n_kept += 1
        if self.test_pairs is not None:
            self.test_sum += self._predict_test()

    def _predict_test(self) -> np.ndarray:
        pairs = self.test_pairs
        return predict_pairs(pairs.users, pairs.items, self.user_factors, self.item_factors,
                             self.user_bias, self.item_bias, self.mean)

    def test_rmse(self) -> float | None:
        """Test RMSE of the mean of the kept draws (of the current draw before any is kept),
        clipped to the rating scale as the model's predictions are."""
        if self.test_pairs is None:
            return None
        predicted = self.test_sum / self.n_kept if self.n_kept else self._predict_test()
        return self.test_pairs.rmse_of(clip_to_scale(predicted, self.scale))

def check_drawn(status: np.ndarray, factors: np.ndarray, bias: np.ndarray, ids: np.ndarray,
                side: int, sweep: int, alpha: float) -> None:
    """Raise NumericalError naming the first row of a half-step whose draw failed (a failing
    Cholesky pivot in ``status``, or a value that is not finite); ``ids`` are the rows' ids."""
    failed = np.flatnonzero(status)
    if len(failed) or not (np.isfinite(factors).all() and np.isfinite(bias).all()):
        what = "user" if side == USERS else "item"
        where = f" ({what} {ids[int(failed[0])]})" if len(failed) else ""
        raise NumericalError(f"sweep {sweep}: a {what} draw failed{where}; the noise "
                             f"precision α = {alpha:.3g} or the prior is degenerate. Check "
                             "the ratings' scale")


def side_code(side: str) -> int:
    """The ``side`` number of a row's random stream for ``"user"`` or ``"item"`` rows."""
    return USERS if side == "user" else ITEMS


def sweep_rng(seed: int, sweep: int, stage: int) -> np.random.Generator:
    """The generator of a sweep's serial draws (stage 0, 1: the sides' priors; 2: α)."""
    return np.random.default_rng([seed, sweep, stage + 1])


def draw_alpha(rng: np.random.Generator, sse: float, n: int) -> float:
    """α from its conditional Gamma(a0 + n/2, rate b0 + SSE/2)."""
    return float(rng.gamma(_GAMMA_SHAPE + n / 2, 1.0 / (_GAMMA_RATE + sse / 2)))


def row_statistics(factors: np.ndarray, bias: np.ndarray
                   ) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, mean, scatter about the mean) of the rows [factors, bias] of one side, each summed
    slice by slice in a fixed order (:mod:`alsmf.solvers.gibbs`), so a side held in blocks
    gives the same numbers."""
    mean = add_in_order(slice_sums(factors, bias)) / len(bias)
    return len(bias), mean, scatter_matrix(factors, bias, mean)


def draw_prior(hyperprior: str, rng: np.random.Generator, n: int, mean: np.ndarray,
               scatter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A side's (m, Λ) from its conditional given the rows' statistics (:func:`row_statistics`),
    under the ``"wishart"`` or ``"gamma"`` hyperprior."""
    draw = _draw_wishart_prior if hyperprior == "wishart" else _draw_gamma_prior
    return draw(rng, n, mean, scatter)


def _draw_wishart_prior(rng: np.random.Generator, n: int, mean: np.ndarray,
                        scatter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, Λ) from the Normal-Wishart conditional given the side's n rows' mean and scatter
    (Salakhutdinov & Mnih 2008, eq. 14).

    Prior: Λ ~ Wishart(W0 = I, ν0 = d), m | Λ ~ Normal(0, (β0 Λ)⁻¹).
    """
    d = len(mean)
    shrink = _PRIOR_STRENGTH * n / (_PRIOR_STRENGTH + n)
    scatter_inverse = np.eye(d) + scatter + shrink * np.outer(mean, mean)
    scale = np.linalg.inv((scatter_inverse + scatter_inverse.T) / 2)
    precision = _wishart(rng, scale, d + n)
    mean_n = n * mean / (_PRIOR_STRENGTH + n)
    lower = np.linalg.cholesky((_PRIOR_STRENGTH + n) * precision)
    prior_mean = mean_n + np.linalg.solve(lower.T, rng.standard_normal(d))
    return prior_mean, precision


def _wishart(rng: np.random.Generator, scale: np.ndarray, dof: float) -> np.ndarray:
    """A draw from Wishart(scale, dof) by the Bartlett decomposition."""
    d = len(scale)
    bartlett = np.tril(rng.standard_normal((d, d)), -1)
    bartlett[np.diag_indices(d)] = np.sqrt(rng.chisquare(dof - np.arange(d)))
    factor = np.linalg.cholesky(scale) @ bartlett
    draw = factor @ factor.T
    return (draw + draw.T) / 2


def _draw_gamma_prior(rng: np.random.Generator, n: int, mean: np.ndarray,
                      scatter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, diagonal Λ) from independent Normal-Gamma conditionals, one per dimension, given
    the side's n rows' mean and scatter.

    Prior per dimension: λ ~ Gamma(a0, b0), m | λ ~ Normal(0, 1/(κ0 λ)).
    """
    spread = np.diag(scatter)
    rate = _GAMMA_RATE + spread / 2 + _PRIOR_STRENGTH * n * mean**2 / (2 * (_PRIOR_STRENGTH + n))
    precision = rng.gamma(_GAMMA_SHAPE + n / 2, 1.0 / rate)
    strength = _PRIOR_STRENGTH + n
    prior_mean = n * mean / strength + rng.standard_normal(len(mean)) / np.sqrt(
        strength * precision)
    return prior_mean, np.diag(precision)
