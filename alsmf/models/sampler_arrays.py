"""A Gibbs sampler's state as arrays, and the models it describes: the current draw, or the
posterior mean of the kept draws.

Shared by the in-process sampler (:mod:`alsmf.models.gibbs_sampler`) and the Dask one
(:mod:`alsmf.distributed.gibbs`), which gathers its blocks into these arrays: both hand out
the same models and write checkpoints of the same arrays.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.implicit_features import IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS
from alsmf.rowsystem import RowSystem
from alsmf.training.builder import build_model

if TYPE_CHECKING:
    from alsmf.models.bayes import BayesianMF

USERS, ITEMS = 0, 1
"""The ``side`` of a row's random stream, and the keys of a sampler's implicit factors:
``implicit[USERS]`` are the Z rows (one per item) the user draws use, ``implicit[ITEMS]`` the
A rows (one per user) the item draws use."""

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
    the same checkpoints. Besides the arrays, whoever fills them sets ``config``,
    ``settings``, ``user_ids``, ``item_ids``, ``seen`` (the training ratings as a model keeps
    them), ``mean`` and ``scale``.
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
        self.implicit_samples = {USERS: np.zeros((n_items, implicit_columns)),
                                 ITEMS: np.zeros((n_users, implicit_columns))}
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
                   "implicit_users": self.implicit[USERS],
                   "implicit_items": self.implicit[ITEMS], "test_sum": self.test_sum}
        return arrays

    def adopt(self, arrays: dict[str, np.ndarray]) -> None:
        """Take the whole state from ``arrays`` as they are, without copying (a state
        gathered from a cluster); ``kept_sweeps`` is set apart."""
        for name in _DRAW + _KEPT:
            setattr(self, name, arrays[name])
        self.implicit_samples = {side: arrays[f"implicit_samples_{side}"]
                                 for side in (USERS, ITEMS)}
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
        self.implicit = {USERS: arrays["implicit_users"].copy(),
                         ITEMS: arrays["implicit_items"].copy()}

    def current_model(self, history: list[IterationRecord]) -> MFModel:
        """The current draw as a k-factor model (shares the sampler's arrays)."""
        reg, reg_bias = ridge_weights(self.user_prior[1], self.alpha)
        return self._model(self.user_factors, self.item_factors, self.user_bias,
                           self.item_bias, RowSystem(reg, reg_bias, False, True,
                                                     self.config.implicit_weight / self.alpha),
                           {"noise_precision": self.alpha, "kept_samples": 0},
                           self._implicit_extras(self.implicit[USERS], self.implicit[ITEMS]),
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
              for side in (USERS, ITEMS)))
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



def ridge_weights(precision: np.ndarray, alpha: float) -> tuple[float, float]:
    """The ALS weights (λ of the factors, λ of the bias) equivalent to a prior precision.

    Multiplying the log posterior of a row by 1/α turns it into ALS's objective with penalty
    xᵀ (Λ/α) x; λ is the mean of Λ/α's factor diagonal, λ_bias its bias entry. Fold-in with
    these is kernel ridge regression on the posterior-averaged item kernel.
    """
    diagonal = np.diag(precision) / alpha
    return float(np.mean(diagonal[:-1])), float(diagonal[-1])
