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
:func:`predict_interval`. The model's row system, which fold-in solves, has λ = the kept
draws' mean of the user prior's factor precision over α (λ_b likewise for the bias), no
weighting, and, with implicit features, the kept draws' implicit factors side by side / √S
(in ``extras``, as an ALS model has them) weighted by w times the mean of 1/α: the ALS
objective whose minimiser is a user's conditional mean, on the averaged item factors.

The sampler itself, the state the training loop drives, is :mod:`alsmf.models.gibbs_sampler`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from alsmf.checks import (check_settings, is_finite_number, is_int_in, is_number,
                          method_params)
from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.errors import ConfigError
from alsmf.model import MFModel
from alsmf.models.gibbs_sampler import GibbsState
from alsmf.ranking import clip_to_scale
from alsmf.models.ranking_head import (RANK_ALPHA, RANK_FACTORS, RANK_ITERATIONS, RANK_REG,
                                       head_bytes, head_checks, with_ranking_head)
from alsmf.resources import check_fits, training_bytes
from alsmf.training.trainer import Trainer

HYPERPRIORS = ("wishart", "gamma")
"""Hyperpriors of each side's prior (m, Λ): full Normal-Wishart, or Normal-Gamma per dimension."""

_INTERVAL_CHUNK = 4096  # pairs per block of predict_interval (bounds its temporary arrays)


@dataclass(frozen=True)
class BayesianMF(Trainer):
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
        implicit_weight: w of the implicit features (who rated what,
            :mod:`alsmf.models.implicit_features`): the binary matrix enters the likelihood
            as x_ui ~ N(p_u·z_i, 1/w) and N(a_u·q_i, 1/w) over every pair. The implicit
            factors z_i, a_u are not sampled: each sweep sets them to their conditional mean
            given the current draw (the ALS z step with prior precision λ_z), a plug-in
            estimate; drawing them instead let their noise swamp the signal (README). 0 turns
            them off. The default (w = 2, λ_z = 3) is the best of w in 0..3 and λ_z in 1..100
            on validation data carved from the ml-100k training folds
            (``python benchmarks/bayes.py validate``; figures in the README). The sampler
            wants a lighter w and a much smaller λ_z than ALS (3, 1000): there the implicit
            term also has to regularise, here the prior does that.
        implicit_reg: λ_z, the prior precision of the implicit factors.
        rank_factors, rank_reg, rank_alpha, rank_iterations: the ranking head, as
            :class:`~alsmf.models.als.ALS` has it (:mod:`alsmf.models.ranking_head`): its
            preferences times the posterior mean rating rank the lists.
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
    rank_factors: int = RANK_FACTORS
    rank_reg: float = RANK_REG
    rank_alpha: float = RANK_ALPHA
    rank_iterations: int = RANK_ITERATIONS

    def __post_init__(self) -> None:
        def integer(value: Any) -> bool:
            return is_int_in(value, -2**63, 2**63 - 1)

        check_settings([
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
            (is_number(self.init_scale) and 0 < self.init_scale < math.inf,
             f"init_scale must be a finite number > 0, got {self.init_scale!r}"),
            (integer(self.seed) and 0 <= self.seed < 2**63,
             f"seed must be a non-negative integer, got {self.seed!r}"),
            (is_finite_number(self.implicit_weight) and self.implicit_weight >= 0,
             f"implicit_weight must be a finite number >= 0, got {self.implicit_weight!r}"),
            (is_finite_number(self.implicit_reg) and self.implicit_reg > 0,
             f"implicit_reg must be a finite number > 0, got {self.implicit_reg!r}"),
            *head_checks(self),
        ])

    @property
    def rounds(self) -> int:
        return self.sweeps

    def params(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict, with ``"method": "bayes"``."""
        return method_params("bayes", self)

    def kept_sweeps(self) -> np.ndarray:
        """The sweep numbers (1-based, ascending) whose draws the model keeps."""
        after = self.sweeps - self.burn_in
        kept = min(self.samples, after)
        return self.burn_in + -(-np.arange(1, kept + 1) * after // kept)

    def check_resources(self, train: Ratings) -> None:
        kept = len(self.kept_sweeps())
        per_draw = 2 * self.factors + 1 if self.implicit_weight > 0 else self.factors + 1
        check_fits(training_bytes(len(train), train.n_users, train.n_items, self.factors, 8)
                   + (train.n_users + train.n_items) * kept * per_draw * 8
                   + head_bytes(self, train),
                   f"sampling k = {self.factors} with {kept} kept draws on "
                   f"{len(train):,} ratings",
                   "keep fewer draws (samples), use fewer factors or shrink the data")

    def start(self, train: Ratings, test: Ratings | None = None) -> Any:
        """A new sampler on ``train``; ``fit`` runs it.

        Each :class:`~alsmf.history.IterationRecord` of the model's history is one sweep:
        ``objective`` is the squared error Σ (r - r̂)² of that sweep's draw on the training
        ratings, ``train_rmse`` its RMSE, and ``test_rmse`` the RMSE of the posterior mean
        over the draws kept so far (before the first kept draw: of the current draw), so the
        last record's test RMSE is the returned model's. A callback receives the current draw
        as a k-factor model; when it stops the run, or Ctrl-C does, the model averages the
        draws kept by then (or is the current draw when none was kept yet). The draws do not
        depend on the number of threads. ``fit`` raises NumericalError when a row's
        conditional precision was not positive definite. The ranking head trains beside the
        sampler (:mod:`alsmf.models.ranking_head`).
        """
        train = train.compact()
        return with_ranking_head(self, GibbsState(self, train, test), train)


def predict_interval(model: MFModel, users: Any, items: Any,
                     level: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive mean and central ``level`` interval for raw (user, item) ids.

    The predictive distribution of a rating is the mixture over the kept draws s of
    Normal(μ + b_u^s + b_i^s + p_u^s·q_i^s, 1/α^s): it spreads by the draws' disagreement and
    by the noise. The bounds are its quantiles (found by bisection on the mixture's CDF),
    clipped to the model's rating scale as its predictions are. An
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
    # a rating never leaves the scale; clipping is monotone, so the clipped quantiles are
    # those of the clipped predictive distribution
    clip_to_scale(lower, model.rating_scale)
    clip_to_scale(upper, model.rating_scale)
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


