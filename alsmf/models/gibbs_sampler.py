"""The Gibbs sampler of :class:`~alsmf.models.bayes.BayesianMF`: the state the loop drives.

One sweep draws, in this order, both sides' prior (m, Λ) from their conjugate conditionals,
every user's x_u = [p_u, b_u], every item's x_i (in parallel; each row's Gaussian conditional
is the ALS row system, see :mod:`alsmf.solvers.gibbs`) and the noise precision α. Every draw
comes from a generator seeded by (seed, sweep, stage) or (seed, sweep, side, row), never from
a stream carried across sweeps, so the state after a sweep is a function of the state before
it: a checkpoint holds the whole state, and a resumed run draws exactly what the
uninterrupted one would have.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.errors import NumericalError
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.implicit_features import (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS,
                                            row_terms, solve_implicit_factors)
from alsmf.ranking import clip_to_scale
from alsmf.rowsystem import RowSystem, rating_scale
from alsmf.solvers.gibbs import add_in_order, gibbs_half_step, scatter_matrix, slice_sums
from alsmf.solvers.gram import gather_source
from alsmf.solvers.predict import predict_pairs, squared_error
from alsmf.training.builder import build_model, rating_variance, seen_ratings, training_mean
from alsmf.training.scoring import TestPairs, rmse_from_sse

if TYPE_CHECKING:
    from alsmf.models.bayes import BayesianMF

_PRIOR_STRENGTH = 2.0  # β0 (Wishart) / κ0 (Gamma): pseudo-rows behind the prior mean 0
_GAMMA_SHAPE, _GAMMA_RATE = 1.0, 1.0  # a0, b0 of the per-dimension precisions and of α
_USERS, _ITEMS = 0, 1  # the ``side`` of a row's random stream

_DRAW = ("user_factors", "item_factors", "user_bias", "item_bias")
"""The current draw's arrays (rolled back on Ctrl-C)."""
_KEPT = ("user_samples", "item_samples", "user_bias_samples", "item_bias_samples",
         "alpha_samples", "reg_samples")
"""The kept draws' arrays: column (or row) ``s`` is written once, when draw s is kept."""


class SamplerArrays:
    """A sampler's state as arrays (the current draw, its priors and α, the implicit factors,
    the kept draws and the test sums) and the models they describe.

    :class:`GibbsState` samples into these arrays in process; a Dask run gathers its blocks
    into them (:mod:`alsmf.distributed.gibbs`), so both hand out the same models and write
    the same checkpoints. Besides the arrays, a subclass sets ``config``, ``settings``,
    ``user_ids``, ``item_ids``, ``seen`` (the training ratings as a model keeps them),
    ``mean`` and ``scale``.
    """

    config: BayesianMF
    settings: dict[str, Any]
    user_ids: np.ndarray
    item_ids: np.ndarray
    seen: tuple[np.ndarray, np.ndarray, np.ndarray | None]
    mean: float
    scale: tuple[float, float]

    def allocate(self, n_users: int, n_items: int) -> None:
        """Zero kept draws and the counters of a run (the current draw is set apart)."""
        config, k = self.config, self.config.factors
        self.kept_sweeps = config.kept_sweeps()
        kept = len(self.kept_sweeps)
        self.user_samples = np.zeros((n_users, kept * k))
        self.item_samples = np.zeros((n_items, kept * k))
        implicit_columns = kept * k if config.implicit_weight > 0 else 0
        self.implicit_samples = {_USERS: np.zeros((n_items, implicit_columns)),
                                 _ITEMS: np.zeros((n_users, implicit_columns))}
        self.user_bias_samples = np.zeros((n_users, kept))
        self.item_bias_samples = np.zeros((n_items, kept))
        self.alpha_samples = np.zeros(kept)
        self.reg_samples = np.zeros((kept, 2))  # (factor, bias) prior precision / α
        self.n_kept = 0

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The whole state, as a checkpoint holds it (no copies)."""
        arrays = self._scalars_and_draw()
        arrays |= {name: getattr(self, name) for name in _KEPT}
        arrays |= {f"implicit_samples_{side}": samples
                   for side, samples in self.implicit_samples.items()}
        return arrays

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Take the whole state from a checkpoint's arrays (into the allocated arrays)."""
        self._set_scalars_and_draw(arrays)
        for name in _KEPT:
            getattr(self, name)[...] = arrays[name]
        for side, samples in self.implicit_samples.items():
            samples[...] = arrays[f"implicit_samples_{side}"]

    def _scalars_and_draw(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in _DRAW}
        arrays |= {"alpha": np.array([self.alpha]), "n_kept": np.array([self.n_kept]),
                   "user_prior_mean": self.user_prior[0],
                   "user_prior_precision": self.user_prior[1],
                   "item_prior_mean": self.item_prior[0],
                   "item_prior_precision": self.item_prior[1],
                   "implicit_users": self.implicit[_USERS],
                   "implicit_items": self.implicit[_ITEMS], "test_sum": self.test_sum}
        return arrays

    def adopt(self, arrays: dict[str, np.ndarray]) -> None:
        """Take the whole state from ``arrays`` as they are, without copying (a state
        gathered from a cluster); ``kept_sweeps`` is set apart."""
        for name in _DRAW + _KEPT:
            setattr(self, name, arrays[name])
        self.implicit_samples = {side: arrays[f"implicit_samples_{side}"]
                                 for side in (_USERS, _ITEMS)}
        self.test_sum = arrays["test_sum"]
        self._set_scalars(arrays)

    def _set_scalars_and_draw(self, arrays: dict[str, np.ndarray]) -> None:
        for name in _DRAW:
            getattr(self, name)[...] = arrays[name]
        self._set_scalars(arrays)
        self.test_sum[...] = arrays["test_sum"]

    def _set_scalars(self, arrays: dict[str, np.ndarray]) -> None:
        self.alpha = float(arrays["alpha"][0])
        self.n_kept = int(arrays["n_kept"][0])
        self.user_prior = (arrays["user_prior_mean"].copy(), arrays["user_prior_precision"].copy())
        self.item_prior = (arrays["item_prior_mean"].copy(), arrays["item_prior_precision"].copy())
        self.implicit = {_USERS: arrays["implicit_users"].copy(),
                         _ITEMS: arrays["implicit_items"].copy()}

    def current_model(self, history: list[IterationRecord]) -> MFModel:
        """The current draw as a k-factor model (shares the sampler's arrays)."""
        reg, reg_bias = ridge_weights(self.user_prior[1], self.alpha)
        return self._model(self.user_factors, self.item_factors, self.user_bias,
                           self.item_bias, RowSystem(reg, reg_bias, False, True,
                                                     self.config.implicit_weight / self.alpha),
                           {"noise_precision": self.alpha, "kept_samples": 0},
                           self._implicit_extras(self.implicit[_USERS], self.implicit[_ITEMS]),
                           history)

    def posterior_model(self, history: list[IterationRecord]) -> MFModel:
        """The model predicting the mean of the kept draws (factors side by side / √S).

        Once every draw is kept, the kept factors are scaled in place rather than copied (at
        scale they are the largest arrays of the run), so this is the run's last use of them.
        """
        s, k = self.n_kept, self.config.factors
        scale = 1.0 / math.sqrt(s)
        user_factors = self.user_samples[:, :s * k] if s < len(self.kept_sweeps) \
            else self.user_samples
        item_factors = self.item_samples[:, :s * k] if s < len(self.kept_sweeps) \
            else self.item_samples
        user_factors = np.ascontiguousarray(user_factors)
        item_factors = np.ascontiguousarray(item_factors)
        user_factors *= scale
        item_factors *= scale
        reg, reg_bias = np.mean(self.reg_samples[:s], axis=0)
        extras = {"user_bias_samples": np.ascontiguousarray(self.user_bias_samples[:, :s]),
                  "item_bias_samples": np.ascontiguousarray(self.item_bias_samples[:, :s]),
                  "alpha_samples": self.alpha_samples[:s].copy()}
        extras |= self._implicit_extras(
            *(np.ascontiguousarray(self.implicit_samples[side][:, :s * k]) * scale
              for side in (_USERS, _ITEMS)))
        system = RowSystem(float(reg), float(reg_bias), False, True,
                           self.config.implicit_weight
                           * float(np.mean(1.0 / extras["alpha_samples"])))
        return self._model(user_factors, item_factors,
                           np.mean(extras["user_bias_samples"], axis=1),
                           np.mean(extras["item_bias_samples"], axis=1), system,
                           {"noise_precision": float(np.mean(extras["alpha_samples"])),
                            "kept_samples": s}, extras, history)

    def _implicit_extras(self, item_side: np.ndarray,
                         user_side: np.ndarray) -> dict[str, np.ndarray]:
        """The implicit factors as the model's extras, for fold-in and explain (none if off).

        ``item_side`` are the Z rows (one per item, paired with the user factors) of the
        model's columns, ``user_side`` the A rows (one per user, paired with the items').
        """
        if self.config.implicit_weight == 0:
            return {}
        return {IMPLICIT_ITEM_FACTORS: item_side, IMPLICIT_USER_FACTORS: user_side}

    def _model(self, user_factors: np.ndarray, item_factors: np.ndarray, user_bias: np.ndarray,
               item_bias: np.ndarray, system: RowSystem, derived: dict[str, Any],
               extras: dict[str, np.ndarray], history: list[IterationRecord]) -> MFModel:
        model = build_model(
            user_ids=self.user_ids.copy(), item_ids=self.item_ids.copy(),
            seen=self.seen, user_factors=user_factors, item_factors=item_factors,
            user_bias=user_bias, item_bias=item_bias, global_mean=self.mean,
            fallback_mean=self.mean, system=replace(system, rating_scale=self.scale),
            params=self.settings | derived, extras=extras)
        model.history = history
        return model


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
        self.implicit = {_USERS: np.zeros((train.n_items, k)),
                         _ITEMS: np.zeros((train.n_users, k))}
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
                (_USERS, self.by_user, self.by_item, self.item_factors, self.item_bias,
                 self.user_factors, self.user_bias, self.user_prior, self.train.user_ids),
                (_ITEMS, self.by_item, self.by_user, self.user_factors, self.user_bias,
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
        what = "user" if side == _USERS else "item"
        where = f" ({what} {ids[int(failed[0])]})" if len(failed) else ""
        raise NumericalError(f"sweep {sweep}: a {what} draw failed{where}; the noise "
                             f"precision α = {alpha:.3g} or the prior is degenerate. Check "
                             "the ratings' scale")


def ridge_weights(precision: np.ndarray, alpha: float) -> tuple[float, float]:
    """The ALS weights (λ of the factors, λ of the bias) equivalent to a prior precision.

    Multiplying the log posterior of a row by 1/α turns it into ALS's objective with penalty
    xᵀ (Λ/α) x; λ is the mean of Λ/α's factor diagonal, λ_bias its bias entry. Fold-in with
    these is kernel ridge regression on the posterior-averaged item kernel.
    """
    diagonal = np.diag(precision) / alpha
    return float(np.mean(diagonal[:-1])), float(diagonal[-1])


def side_code(side: str) -> int:
    """The ``side`` number of a row's random stream for ``"user"`` or ``"item"`` rows."""
    return _USERS if side == "user" else _ITEMS


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
