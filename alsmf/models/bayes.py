"""Bayesian matrix factorization (BPMF with biases) trained by Gibbs sampling on the ALS kernels.

The model (Salakhutdinov & Mnih 2008, with biases):

    r_ui ~ Normal(μ + b_u + b_i + p_u·q_i, 1/α),
    x_u = [p_u, b_u] ~ Normal(m_U, Λ_U⁻¹),   x_i = [q_i, b_i] ~ Normal(m_I, Λ_I⁻¹),
    (m, Λ) of each side ~ Normal-Wishart(0, β0 = 2, W0 = I, ν0 = k + 1), or, with
    ``hyperprior="gamma"``, a Normal-Gamma(0, κ0 = 2, a0 = 1, b0 = 1) per dimension
    (diagonal Λ, as myFM does),   α ~ Gamma(1, 1),

and μ fixed to the training mean. One sweep draws, in this order, both sides' (m, Λ) from
their conjugate conditionals, every user's x_u, every item's x_i (in parallel; each row's
Gaussian conditional is the ALS row system, see :mod:`alsmf.solvers.gibbs`) and α.

Predictions average the kept draws after the burn-in. The returned :class:`MFModel` is exact
for that average: with S kept draws, (1/S) Σ_s (μ + b_u^s + b_i^s + p_u^s·q_i^s) is the
prediction of a model whose factors are the S draws side by side, each scaled by 1/√S (so it
has S·k columns), and whose biases are the draws' means. It predicts, recommends, saves and
loads like any ALS model. Its memory is (n_users + n_items)·S·(k + 1)·8 bytes, plus
(n_users + n_items)·S·k·8 for the implicit factors' draws when implicit features are on (ml-100k
with the defaults k = 10, S = 100: 44 MB; ML-20M, k = 64, S = 16: 2.7 GB), and fold-in solves one
(S·k + 1)-unknown system. The bias and α draws are kept in ``model.extras`` for
:func:`predict_interval`. Fold-in uses ``params["reg"]`` = the kept draws' mean of the user
prior's factor precision over α (``reg_bias`` likewise for the bias), ``weighted_reg`` False,
and, with implicit features, the kept draws' implicit factors side by side / √S (in
``extras``, as an ALS model has them) weighted by ``params["fold_in_implicit_weight"]`` = w
times the mean of 1/α: the ALS objective whose minimiser is a user's conditional mean, on the
averaged item factors.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from scipy.special import ndtr, ndtri

from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.errors import ConfigError, NumericalError
from alsmf.models.implicit_features import (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS, row_terms,
                            solve_implicit_factors)
from alsmf.model import IterationRecord, MFModel
from alsmf.resources import check_fits, training_bytes
from alsmf.solvers.gibbs import gibbs_half_step, scatter_matrix
from alsmf.solvers.gram import gather_source
from alsmf.solvers.predict import predict_pairs, squared_error
from alsmf.threads import compute_threads
from alsmf.models.als import TrainingInterrupted

HYPERPRIORS = ("wishart", "gamma")
"""Hyperpriors of each side's prior (m, Λ): full Normal-Wishart, or Normal-Gamma per dimension."""

Callback = Callable[[IterationRecord, MFModel], "bool | None"]
"""Called after every sweep with its record and the current draw; return True to stop."""

_PRIOR_STRENGTH = 2.0  # β0 (Wishart) / κ0 (Gamma): pseudo-rows behind the prior mean 0
_GAMMA_SHAPE, _GAMMA_RATE = 1.0, 1.0  # a0, b0 of the per-dimension precisions and of α
_USERS, _ITEMS = 0, 1  # the ``side`` of a row's random stream
_INTERVAL_CHUNK = 4096  # pairs per block of predict_interval (bounds its temporary arrays)


@dataclass(frozen=True)
class BayesianMF:
    """Bayesian biased matrix factorization by Gibbs sampling (see the module docstring).

    Attributes:
        factors: number of latent factors k (1..1024).
        sweeps: number of Gibbs sweeps in all, burn-in included.
        burn_in: sweeps discarded before draws are kept (< sweeps).
        samples: how many draws the model keeps, evenly spaced over the sweeps after the
            burn-in and ending with the last one (all of them when there are fewer such
            sweeps). Predictions average them; the model's memory grows linearly with it.
        hyperprior: ``"wishart"`` (full-covariance Normal-Wishart, as BPMF) or ``"gamma"``
            (independent Normal-Gamma per dimension, as myFM).
        init_scale: standard deviation of the random initial factors.
        seed: fixes every random draw; the same seed gives the same model for any number of
            threads.
        implicit_weight: w of the implicit features (who rated what, :mod:`alsmf.models.implicit_features`):
            the binary matrix enters the likelihood as x_ui ~ N(p_u·z_i, 1/w) and
            N(a_u·q_i, 1/w) over every pair. The implicit factors z_i, a_u are not sampled:
            each sweep sets them to their conditional mean given the current draw (the ALS
            z step with prior precision λ_z), a plug-in estimate; drawing them instead let
            their noise swamp the signal (ml-100k validation RMSE 0.907 against 0.895 at
            w = 3, λ_z = 1000). 0 turns them off. The default (w = 2, λ_z = 3) is the best of
            w in 0..3 and λ_z in 1..100 on validation data carved from the ml-100k training
            folds (``python benchmarks/bayes.py validate``, README): 0.8931 against 0.9052
            without. The sampler wants a lighter w and a much smaller λ_z than ALS (3, 1000):
            there the implicit term also has to regularise, here the prior does that.
        implicit_reg: λ_z, the prior precision of the implicit factors.
    """

    factors: int = 10
    sweeps: int = 200
    burn_in: int = 20
    samples: int = 100
    hyperprior: str = "wishart"
    init_scale: float = 0.1
    seed: int = 0
    implicit_weight: float = 2.0
    implicit_reg: float = 3.0

    def __post_init__(self) -> None:
        def integer(value: Any) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        checks = [
            (integer(self.factors) and 1 <= self.factors <= 1024,
             f"factors must be an integer from 1 to 1024, got {self.factors!r}"),
            (integer(self.sweeps) and 1 <= self.sweeps <= 1_000_000,
             f"sweeps must be an integer from 1 to 1000000, got {self.sweeps!r}"),
            (integer(self.burn_in) and 0 <= self.burn_in,
             f"burn_in must be an integer >= 0, got {self.burn_in!r}"),
            (not (integer(self.burn_in) and integer(self.sweeps)) or self.burn_in < self.sweeps,
             f"burn_in ({self.burn_in}) must be smaller than sweeps ({self.sweeps}): no draw "
             "would be kept; raise --sweeps or lower --burn-in"),
            (integer(self.samples) and 1 <= self.samples <= 10_000,
             f"samples must be an integer from 1 to 10000, got {self.samples!r}"),
            (self.hyperprior in HYPERPRIORS,
             f"hyperprior must be one of {', '.join(HYPERPRIORS)}, got {self.hyperprior!r}"),
            (isinstance(self.init_scale, (int, float, np.integer, np.floating))
             and 0 < self.init_scale < math.inf,
             f"init_scale must be a finite number > 0, got {self.init_scale!r}"),
            (integer(self.seed) and 0 <= self.seed < 2**63,
             f"seed must be a non-negative integer, got {self.seed!r}"),
            (_is_finite_number(self.implicit_weight) and self.implicit_weight >= 0,
             f"implicit_weight must be a finite number >= 0, got {self.implicit_weight!r}"),
            (_is_finite_number(self.implicit_reg) and self.implicit_reg > 0,
             f"implicit_reg must be a finite number > 0, got {self.implicit_reg!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def params(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict, with ``"method": "bayes"``."""
        settings = {key: (value.item() if isinstance(value, np.generic) else value)
                    for key, value in asdict(self).items()}
        return {"method": "bayes", **settings}

    def kept_sweeps(self) -> np.ndarray:
        """The sweep numbers (1-based, ascending) whose draws the model keeps."""
        after = self.sweeps - self.burn_in
        kept = min(self.samples, after)
        return self.burn_in + -(-np.arange(1, kept + 1) * after // kept)

    def fit(self, train: Ratings, test: Ratings | None = None, *,
            callback: Callback | None = None, threads: int | None = None) -> MFModel:
        """Sample the posterior given ``train``; record the test RMSE per sweep if ``test``.

        Each :class:`IterationRecord` of ``model.history`` is one sweep: ``objective`` is the
        squared error Σ (r - r̂)² of that sweep's draw on the training ratings, ``train_rmse``
        its RMSE, and ``test_rmse`` the RMSE of the posterior mean over the draws kept so far
        (before the first kept draw: of the current draw), so the last record's test RMSE is
        the returned model's.

        Args:
            train: training ratings.
            test: optional held-out ratings (matched by raw id; unknown ids use the fallback).
            callback: called after each sweep with the record and the current draw as a
                k-factor model; returning True stops, and the model averages the draws kept
                by then (or is the current draw when none was kept yet).
            threads: threads for the parallel half-steps (default: all cores); the draws do
                not depend on it.

        Raises:
            TrainingInterrupted: Ctrl-C; its ``model`` averages the draws kept so far (or is
                the current draw when none was kept yet).
            ConfigError: bad ``threads``, or the run does not fit in memory.
            NumericalError: a row's conditional precision was not positive definite.
        """
        with compute_threads(threads):
            train = train.compact()
            kept = len(self.kept_sweeps())
            per_draw = 2 * self.factors + 1 if self.implicit_weight > 0 else self.factors + 1
            check_fits(training_bytes(len(train), train.n_users, train.n_items, self.factors, 8)
                       + (train.n_users + train.n_items) * kept * per_draw * 8,
                       f"sampling k = {self.factors} with {kept} kept draws on "
                       f"{len(train):,} ratings",
                       "keep fewer draws (samples), use fewer factors or shrink the data")
            return _Sampler(self, train, test).run(callback)


def predict_interval(model: MFModel, users: Any, items: Any,
                     level: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive mean and central ``level`` interval for raw (user, item) ids.

    The predictive distribution of a rating is the mixture over the kept draws s of
    Normal(μ + b_u^s + b_i^s + p_u^s·q_i^s, 1/α^s): it spreads by the draws' disagreement and
    by the noise. The bounds are its quantiles (found by bisection on the mixture's CDF). An
    unknown user or item counts with factors and bias zero, as in :meth:`MFModel.predict`;
    its interval covers the noise and the known side's spread only.

    Returns:
        (mean, lower, upper), float64 arrays; ``mean`` equals ``model.predict``.

    Raises:
        ConfigError: ``model`` was not trained by :class:`BayesianMF`, or ``level`` is not
            in (0, 1).
    """
    if model.params.get("method") != "bayes" or "alpha_samples" not in model.extras:
        raise ConfigError("predictive intervals need the kept draws of a Bayesian model "
                          "(alsmf train --method bayes, run past its burn-in)")
    if not 0 < level < 1:
        raise ConfigError(f"level must be between 0 and 1, got {level!r}")
    user_idx = np.atleast_1d(lookup_ids(model.user_ids, users)).astype(np.int64)
    item_idx = np.atleast_1d(lookup_ids(model.item_ids, items)).astype(np.int64)
    if user_idx.shape != item_idx.shape:
        raise ValueError(f"users and items differ in length ({user_idx.size} vs {item_idx.size})")
    sd = 1.0 / np.sqrt(model.extras["alpha_samples"])
    tail = (1.0 - level) / 2.0
    lower, upper = np.empty(len(user_idx)), np.empty(len(user_idx))
    for start in range(0, len(user_idx), _INTERVAL_CHUNK):
        chunk = slice(start, start + _INTERVAL_CHUNK)
        draws = _draw_predictions(model, user_idx[chunk], item_idx[chunk])
        lower[chunk] = _mixture_quantile(draws, sd, tail)
        upper[chunk] = _mixture_quantile(draws, sd, 1.0 - tail)
    return model.predict_indices(user_idx, item_idx), lower, upper


def _draw_predictions(model: MFModel, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """(pairs, S) prediction of each kept draw: μ + b_u^s + b_i^s + p_u^s·q_i^s."""
    kept = len(model.extras["alpha_samples"])
    k = model.factors // kept
    known_user, known_item = user_idx >= 0, item_idx >= 0
    users = model.user_factors[np.where(known_user, user_idx, 0)].reshape(-1, kept, k)
    items = model.item_factors[np.where(known_item, item_idx, 0)].reshape(-1, kept, k)
    both = (known_user & known_item)[:, None]
    draws = model.global_mean + kept * np.einsum("psk,psk->ps", users, items) * both
    draws += model.extras["user_bias_samples"][np.where(known_user, user_idx, 0)] \
        * known_user[:, None]
    draws += model.extras["item_bias_samples"][np.where(known_item, item_idx, 0)] \
        * known_item[:, None]
    return draws


def _mixture_quantile(means: np.ndarray, sd: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each row's equal-weight mixture of Normal(means[:, s], sd[s]²)."""
    z = ndtri(q)
    low = np.min(means + z * sd, axis=1) - 1e-9  # the mixture's quantile lies between the
    high = np.max(means + z * sd, axis=1) + 1e-9  # components' own q-quantiles
    for _ in range(40):  # halves the bracket (a few rating points wide) to below 1e-11
        mid = (low + high) / 2
        below = np.mean(ndtr((mid[:, None] - means) / sd), axis=1) < q
        low = np.where(below, mid, low)
        high = np.where(below, high, mid)
    return (low + high) / 2


class _Sampler:
    """The state of one Gibbs run: the current draw, the kept draws and the test sums."""

    def __init__(self, config: BayesianMF, train: Ratings, test: Ratings | None) -> None:
        self.config = config
        self.train = train
        self.by_user = train.by_user()
        self.by_item = train.by_item()
        k = config.factors
        rng = np.random.default_rng([config.seed, 0])
        self.mean = float(np.mean(train.values, dtype=np.float64))
        self.user_factors = config.init_scale * rng.standard_normal((train.n_users, k))
        self.item_factors = config.init_scale * rng.standard_normal((train.n_items, k))
        self.user_bias = np.zeros(train.n_users)
        self.item_bias = np.zeros(train.n_items)
        self.alpha = 1.0 / max(float(np.var(train.values)), 1e-6)
        eye = np.eye(k + 1)
        self.user_prior = (np.zeros(k + 1), eye)  # (m, Λ) of the current draw
        self.item_prior = (np.zeros(k + 1), eye)
        # implicit factors: Z (one row per item, with the user factors), A (per user, with Q)
        self.implicit = {_USERS: np.zeros((train.n_items, k)),
                         _ITEMS: np.zeros((train.n_users, k))}
        self.kept_sweeps = config.kept_sweeps()
        kept = len(self.kept_sweeps)
        self.user_samples = np.zeros((train.n_users, kept * k))
        self.item_samples = np.zeros((train.n_items, kept * k))
        implicit_columns = kept * k if config.implicit_weight > 0 else 0
        self.implicit_samples = {_USERS: np.zeros((train.n_items, implicit_columns)),
                                 _ITEMS: np.zeros((train.n_users, implicit_columns))}
        self.user_bias_samples = np.zeros((train.n_users, kept))
        self.item_bias_samples = np.zeros((train.n_items, kept))
        self.alpha_samples = np.zeros(kept)
        self.reg_samples = np.zeros((kept, 2))  # (factor, bias) prior precision / α
        self.n_kept = 0
        self.history: list[IterationRecord] = []
        by_user = self.by_user  # the model's copy of the training ratings, made once
        self.seen = (by_user.indptr.astype(np.int64),
                     by_user.indices.astype(np.int32, copy=False),
                     by_user.data.astype(np.float32, copy=False))
        self.test_pairs = None
        if test is not None and len(test):
            self.test_pairs = (train.user_index(test.user_ids[test.users]).astype(np.int32),
                               train.item_index(test.item_ids[test.items]).astype(np.int32),
                               test.values)
            self.test_sum = np.zeros(len(test))

    def run(self, callback: Callback | None) -> MFModel:
        """Run the sweeps; return the posterior-mean model of the kept draws."""
        for sweep in range(1, self.config.sweeps + 1):
            started = time.perf_counter()
            try:
                self.sweep(sweep)
            except KeyboardInterrupt:  # a part-done sweep is still a valid Gibbs state
                raise TrainingInterrupted(self.posterior_model() if self.n_kept
                                          else self.current_model()) from None
            solved = time.perf_counter()
            sse = squared_error(self.by_user.indptr, self.by_user.indices, self.by_user.data,
                                self.user_factors, self.item_factors, self.user_bias,
                                self.item_bias, self.mean)
            self.alpha = _draw_alpha(self._rng(sweep, 2), sse, len(self.train))
            if self.n_kept < len(self.kept_sweeps) and sweep == self.kept_sweeps[self.n_kept]:
                self.keep()
            record = IterationRecord(sweep, sse, math.sqrt(sse / len(self.train)),
                                     self.test_rmse(), time.perf_counter() - started,
                                     solved - started)
            self.history.append(record)
            if callback is not None and callback(record, self.current_model()):
                break
        return self.posterior_model() if self.n_kept else self.current_model()

    def _rng(self, sweep: int, stage: int) -> np.random.Generator:
        """The generator of a sweep's serial draws (stage 0, 1: the sides' priors; 2: α)."""
        return np.random.default_rng([self.config.seed, sweep, stage + 1])

    def sweep(self, sweep: int) -> None:
        """Draw both priors, then every user, then every item (in place)."""
        draw_prior = _draw_wishart_prior if self.config.hyperprior == "wishart" \
            else _draw_gamma_prior
        self.user_prior = draw_prior(self._rng(sweep, 0), self.user_factors, self.user_bias)
        self.item_prior = draw_prior(self._rng(sweep, 1), self.item_factors, self.item_bias)
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
                            side, extra_gram, extra_rhs, out, out_bias, status)
            failed = np.flatnonzero(status)
            if len(failed) or not (np.isfinite(out).all() and np.isfinite(out_bias).all()):
                what = "user" if side == _USERS else "item"
                row = int(failed[0]) if len(failed) else None
                where = f" ({what} {ids[row]})" if row is not None else ""
                raise NumericalError(f"sweep {sweep}: a {what} draw failed{where}; the noise "
                                     f"precision α = {self.alpha:.3g} or the prior is "
                                     "degenerate. Check the ratings' scale")

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
        self.reg_samples[s] = _ridge_weights(self.user_prior[1], self.alpha)
        self.n_kept += 1
        if self.test_pairs is not None:
            self.test_sum += self._predict_test()

    def _predict_test(self) -> np.ndarray:
        users, items, _ = self.test_pairs
        return predict_pairs(users, items, self.user_factors, self.item_factors, self.user_bias,
                             self.item_bias, self.mean)

    def test_rmse(self) -> float | None:
        """Test RMSE of the mean of the kept draws (of the current draw before any is kept)."""
        if self.test_pairs is None:
            return None
        predicted = self.test_sum / self.n_kept if self.n_kept else self._predict_test()
        return math.sqrt(float(np.mean(np.square(self.test_pairs[2] - predicted))))

    def current_model(self) -> MFModel:
        """The current draw as a k-factor model (shares the sampler's arrays)."""
        reg, reg_bias = _ridge_weights(self.user_prior[1], self.alpha)
        return self._model(self.user_factors, self.item_factors, self.user_bias,
                           self.item_bias, {"reg": reg, "reg_bias": reg_bias,
                                            "fold_in_implicit_weight":
                                                self.config.implicit_weight / self.alpha,
                                            "noise_precision": self.alpha, "kept_samples": 0},
                           self._implicit_extras(self.implicit[_USERS], self.implicit[_ITEMS]))

    def posterior_model(self) -> MFModel:
        """The model predicting the mean of the kept draws (factors side by side / √S)."""
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
        return self._model(user_factors, item_factors,
                           np.mean(extras["user_bias_samples"], axis=1),
                           np.mean(extras["item_bias_samples"], axis=1),
                           {"reg": float(reg), "reg_bias": float(reg_bias),
                            "fold_in_implicit_weight": self.config.implicit_weight
                            * float(np.mean(1.0 / extras["alpha_samples"])),
                            "noise_precision": float(np.mean(extras["alpha_samples"])),
                            "kept_samples": s}, extras)

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
               item_bias: np.ndarray, derived: dict[str, Any],
               extras: dict[str, np.ndarray]) -> MFModel:
        return MFModel(
            user_factors=user_factors, item_factors=item_factors,
            user_bias=user_bias, item_bias=item_bias,
            global_mean=self.mean, fallback_mean=self.mean,
            user_ids=self.train.user_ids.copy(), item_ids=self.train.item_ids.copy(),
            seen_indptr=self.seen[0], seen_indices=self.seen[1], seen_values=self.seen[2],
            biases=True,
            params=self.config.params() | {"weighted_reg": False, "solver": "cholesky"}
            | derived,
            history=self.history,
            extras=extras,
        )


def _is_finite_number(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and math.isfinite(value))


def _ridge_weights(precision: np.ndarray, alpha: float) -> tuple[float, float]:
    """The ALS weights (λ of the factors, λ of the bias) equivalent to a prior precision.

    Multiplying the log posterior of a row by 1/α turns it into ALS's objective with penalty
    xᵀ (Λ/α) x; λ is the mean of Λ/α's factor diagonal, λ_bias its bias entry. Fold-in with
    these is kernel ridge regression on the posterior-averaged item kernel.
    """
    diagonal = np.diag(precision) / alpha
    return float(np.mean(diagonal[:-1])), float(diagonal[-1])


def _draw_alpha(rng: np.random.Generator, sse: float, n: int) -> float:
    """α from its conditional Gamma(a0 + n/2, rate b0 + SSE/2)."""
    return float(rng.gamma(_GAMMA_SHAPE + n / 2, 1.0 / (_GAMMA_RATE + sse / 2)))


def _row_statistics(factors: np.ndarray, bias: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, mean, scatter about the mean) of the rows [factors, bias] of one side."""
    mean = np.append(factors.mean(axis=0), bias.mean())
    return len(bias), mean, scatter_matrix(factors, bias, mean)


def _draw_wishart_prior(rng: np.random.Generator, factors: np.ndarray,
                        bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, Λ) from the Normal-Wishart conditional given the side's rows (BPMF, eq. 14).

    Prior: Λ ~ Wishart(W0 = I, ν0 = d), m | Λ ~ Normal(0, (β0 Λ)⁻¹).
    """
    n, mean, scatter = _row_statistics(factors, bias)
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


def _draw_gamma_prior(rng: np.random.Generator, factors: np.ndarray,
                      bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, diagonal Λ) from independent Normal-Gamma conditionals, one per dimension.

    Prior per dimension: λ ~ Gamma(a0, b0), m | λ ~ Normal(0, 1/(κ0 λ)).
    """
    n, mean, scatter = _row_statistics(factors, bias)
    spread = np.diag(scatter)
    rate = _GAMMA_RATE + spread / 2 + _PRIOR_STRENGTH * n * mean**2 / (2 * (_PRIOR_STRENGTH + n))
    precision = rng.gamma(_GAMMA_SHAPE + n / 2, 1.0 / rate)
    strength = _PRIOR_STRENGTH + n
    prior_mean = n * mean / strength + rng.standard_normal(len(mean)) / np.sqrt(
        strength * precision)
    return prior_mean, np.diag(precision)
