"""Nested tuning: choose settings on validation data carved from each training fold, then
report the test RMSE of the chosen settings on the fold's test part.

For each outer fold:

1. its training part is split once more at random into an inner training set and a validation
   set (``validation_fraction`` of it);
2. every candidate setting (:func:`alsmf.evaluation.space.candidates`) is fitted on the inner
   training set with the validation set passed as ``fit``'s test set, so the history records
   the validation RMSE after every iteration and all listed iteration counts are scored by
   one fit to the largest;
3. the setting (with its iteration count) of lowest validation RMSE is refitted on the whole
   training part, without any test data, and only then scored on the test part.

The test part never reaches ``fit``: it is used once, to score the chosen model, so the
reported test RMSE is an honest estimate of what tuning plus training achieves.

The settings to reuse (:attr:`TuningResult.best`) are those with the lowest validation RMSE
averaged over the folds (every fold tries the same candidates); they too are chosen without
test data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from alsmf.data.splits import random_split
from alsmf.errors import ConfigError
from alsmf.evaluation.crossval import Progress, Trainer, mean_and_std
from alsmf.evaluation.folds import Fold
from alsmf.evaluation.metrics import rating_metrics
from alsmf.evaluation.space import (ITERATIONS, IntUniform, LogUniform, Space, candidates,
                                    describe, iteration_counts)

DEFAULT_SPACES: dict[str, Space] = {
    "grid": {"factors": [32, 64], "reg": [0.05, 0.08, 0.12, 0.18],
             "iterations": [5, 10, 15, 25]},
    "random": {"factors": IntUniform(8, 128), "reg": LogUniform(0.02, 0.5),
               "reg_bias": LogUniform(0.001, 0.5), "iterations": [5, 10, 15, 25]},
}
"""What ``alsmf tune`` searches when no ``--param`` is given (ALS; a few minutes on ml-100k)."""


@dataclass(frozen=True)
class FoldTuning:
    """What tuning chose on one outer fold and how it scored.

    Attributes:
        fold: the outer fold's name.
        chosen: the tuned settings (and ``iterations`` when tuned) chosen on validation data.
        validation_rmse: their validation RMSE.
        test_rmse, test_mae: the refitted model's scores on the fold's test part.
        seconds: wall time of this fold's fits.
    """

    fold: str
    chosen: dict[str, Any]
    validation_rmse: float
    test_rmse: float
    test_mae: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"fold": self.fold, "chosen": self.chosen, "validation_rmse": self.validation_rmse,
                "test_rmse": self.test_rmse, "test_mae": self.test_mae, "seconds": self.seconds}


@dataclass
class TuningResult:
    """Every trial's validation RMSE on every fold, each fold's choice and its test scores.

    Attributes:
        base: the settings not tuned (the base trainer's parameters).
        method: "grid" or "random".
        trials: one row per (setting, iteration count): the setting and its validation RMSE on
            each fold, in fold order.
        fold_names: the outer folds' names, in order.
        folds: one :class:`FoldTuning` per outer fold.
    """

    base: dict[str, Any]
    method: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    fold_names: list[str] = field(default_factory=list)
    folds: list[FoldTuning] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any]:
        """The trial settings of lowest mean validation RMSE over the folds (no test data)."""
        scored = [(mean_and_std(t["validation_rmse"])[0], n) for n, t in enumerate(self.trials)]
        return dict(self.trials[min(scored)[1]]["settings"])

    def test_rmse(self) -> tuple[float, float]:
        """Mean and standard deviation over the folds of the nested test RMSE."""
        return mean_and_std([f.test_rmse for f in self.folds])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything, with the summary."""
        mean, std = self.test_rmse()
        mae_mean, mae_std = mean_and_std([f.test_mae for f in self.folds])
        return {
            "method": self.method,
            "base": self.base,
            "best": self.best,
            "folds": [f.to_dict() for f in self.folds],
            "test_rmse": {"mean": mean, "std": std},
            "test_mae": {"mean": mae_mean, "std": mae_std},
            "trials": [t | {"mean_validation_rmse": mean_and_std(t["validation_rmse"])[0]}
                       for t in self.trials],
            "fold_names": self.fold_names,
        }


@dataclass(frozen=True)
class Tuner:
    """Nested search over ``space`` around the ``base`` trainer (see the module doc).

    Attributes:
        base: a dataclass trainer (ALS or a baseline); fields not in ``space`` keep its values.
        space: field name -> list of values or distribution (:mod:`alsmf.evaluation.space`).
        method: "grid" (every combination) or "random" (``trials`` draws).
        trials: draws of a random search.
        validation_fraction: share of each training fold held out for validation.
        seed: seed of the validation splits and of the random draws.
    """

    base: Trainer
    space: Space
    method: str = "grid"
    trials: int = 20
    validation_fraction: float = 0.1
    seed: int = 0
    settings: list[dict[str, Any]] = field(init=False, repr=False, compare=False)
    """The candidate settings, each fitted once per fold (iterations not included); drawn and
    checked when the tuner is made, so a bad space fails before any fit."""

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"validation fraction must be between 0 and 1 (exclusive), got "
                              f"{self.validation_fraction}")
        object.__setattr__(self, "settings", candidates(self.base, self.space, self.method,
                                                        self.trials, self.seed))

    def fits(self, n_folds: int) -> int:
        """How many fits :meth:`run` makes on ``n_folds`` folds (for a progress bar)."""
        return n_folds * (len(self.settings) + 1)

    def run(self, folds: list[Fold], *, threads: int | None = None,
            progress: Progress | None = None) -> TuningResult:
        """Tune on every fold; ``progress`` is called after each fit."""
        counts = iteration_counts(self.space)
        result = TuningResult(base=self.base.params(), method=self.method)
        rows = [(setting, n) for setting in self.settings for n in (counts or [None])]
        result.trials = [{"settings": _with_iterations(setting, n), "validation_rmse": []}
                         for setting, n in rows]
        for fold in folds:
            started = time.perf_counter()
            inner, validation = random_split(fold.train, self.validation_fraction, self.seed)
            scores: list[float] = []
            for setting in self.settings:
                scores += self._validate(setting, counts, inner, validation, threads)
                if progress is not None:
                    progress(f"{fold.name}: {describe(setting)}")
            for trial, score in zip(result.trials, scores):
                trial["validation_rmse"].append(score)
            best = min(range(len(rows)), key=scores.__getitem__)
            chosen = result.trials[best]["settings"]
            model = replace(self.base, **chosen).fit(fold.train, threads=threads)
            test = rating_metrics(model, fold.test)
            result.folds.append(FoldTuning(fold.name, dict(chosen), scores[best], test["rmse"],
                                           test["mae"], time.perf_counter() - started))
            result.fold_names.append(fold.name)
            if progress is not None:
                progress(f"{fold.name}: chosen {describe(chosen)}, test RMSE "
                         f"{test['rmse']:.4f}")
        return result

    def _validate(self, setting: dict[str, Any], counts: list[int] | None, inner, validation,
                  threads: int | None) -> list[float]:
        """Validation RMSE of one setting at each iteration count (one fit)."""
        config = replace(self.base, **_with_iterations(setting, counts and counts[-1]))
        model = config.fit(inner, validation, threads=threads)
        if counts is None:
            return [rating_metrics(model, validation)["rmse"]]
        curve = [record.test_rmse for record in model.history]
        if not curve or any(value is None for value in curve):
            raise ConfigError(f"{type(self.base).__name__} keeps no per-iteration test RMSE; "
                              "leave iterations out of the search space")
        # a fit stopped early (tol) is what a shorter or longer run would give as well
        return [curve[min(n, len(curve)) - 1] for n in counts]


def _with_iterations(setting: dict[str, Any], n: int | None) -> dict[str, Any]:
    return setting if n is None else setting | {ITERATIONS: n}
