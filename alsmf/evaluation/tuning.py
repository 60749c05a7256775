"""Nested tuning: choose settings on validation data carved from each training fold, then
report the test score of the chosen settings on the fold's test part.

The score is the test RMSE, or a top-N ranking metric (``metric``: ``ndcg``, ``precision`` or
``recall`` of the top-``top`` lists, an item relevant when its held-out rating is at least
``threshold``), which is maximised instead.

For each outer fold:

1. its training part is split once more at random into an inner training set and a validation
   set (``validation_fraction`` of it);
2. every candidate setting (:func:`alsmf.evaluation.space.candidates`) is fitted on the inner
   training set and scored on the validation set; all listed iteration counts are scored by
   one fit to the largest (the RMSE from the history of a fit given the validation set as its
   test set, a ranking metric from the model as it stands after each listed iteration);
3. the setting (with its iteration count) of best validation score is refitted on the whole
   training part, without any test data, and only then scored on the test part.

The test part never reaches ``fit``: it is used once, to score the chosen model, so the
reported test RMSE is an honest estimate of what tuning plus training achieves.

The settings to reuse (:attr:`TuningResult.best`) are those with the best validation score
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
from alsmf.evaluation.metrics import ranking_metrics, rating_metrics
from alsmf.evaluation.space import (ITERATIONS, IntUniform, LogUniform, Space, candidates,
                                    describe, iteration_counts)

DEFAULT_SPACES: dict[str, Space] = {
    "grid": {"factors": [32, 64], "reg": [0.05, 0.08, 0.12, 0.18],
             "iterations": [5, 10, 15, 25]},
    "random": {"factors": IntUniform(8, 128), "reg": LogUniform(0.02, 0.5),
               "reg_bias": LogUniform(0.001, 0.5), "iterations": [5, 10, 15, 25]},
}
"""What ``alsmf tune`` searches when no ``--param`` is given (ALS; a few minutes on ml-100k)."""

METRICS = ("rmse", "ndcg", "precision", "recall")
"""What tuning can choose by: the test RMSE (lower is better) or a top-N ranking metric."""


@dataclass(frozen=True)
class FoldTuning:
    """What tuning chose on one outer fold and how it scored.

    Attributes:
        fold: the outer fold's name.
        chosen: the tuned settings (and ``iterations`` when tuned) chosen on validation data.
        metric: what they were chosen by (one of :data:`METRICS`).
        validation: their validation score.
        test: the refitted model's scores on the fold's test part: ``rmse`` and ``mae`` for a
            model that predicts ratings, and the ranking ``metric`` when it is one.
        seconds: wall time of this fold's fits.
    """

    fold: str
    chosen: dict[str, Any]
    metric: str
    validation: float
    test: dict[str, float]
    seconds: float

    @property
    def validation_rmse(self) -> float:
        """The validation score when the settings were chosen by RMSE."""
        return self.validation

    @property
    def test_rmse(self) -> float:
        return self.test["rmse"]

    @property
    def test_mae(self) -> float:
        return self.test["mae"]

    def to_dict(self) -> dict[str, Any]:
        return ({"fold": self.fold, "chosen": self.chosen,
                 f"validation_{self.metric}": self.validation}
                | {f"test_{name}": value for name, value in self.test.items()}
                | {"seconds": self.seconds})


@dataclass
class TuningResult:
    """Every trial's validation RMSE on every fold, each fold's choice and its test scores.

    Attributes:
        base: the settings not tuned (the base trainer's parameters).
        method: "grid" or "random".
        metric: what the settings were chosen by (one of :data:`METRICS`).
        trials: one row per (setting, iteration count): the setting and its validation score
            (``validation_<metric>``) on each fold, in fold order.
        fold_names: the outer folds' names, in order.
        folds: one :class:`FoldTuning` per outer fold.
    """

    base: dict[str, Any]
    method: str
    metric: str = "rmse"
    trials: list[dict[str, Any]] = field(default_factory=list)
    fold_names: list[str] = field(default_factory=list)
    folds: list[FoldTuning] = field(default_factory=list)

    @property
    def validation_key(self) -> str:
        """The trials' key of their validation scores: ``validation_<metric>``."""
        return f"validation_{self.metric}"

    @property
    def best(self) -> dict[str, Any]:
        """The trial settings of best mean validation score over the folds (no test data)."""
        sign = 1.0 if self.metric == "rmse" else -1.0
        scored = [(sign * mean_and_std(t[self.validation_key])[0], n)
                  for n, t in enumerate(self.trials)]
        return dict(self.trials[min(scored)[1]]["settings"])

    def test_rmse(self) -> tuple[float, float]:
        """Mean and standard deviation over the folds of the nested test RMSE."""
        return self.test_summary("rmse")

    def test_summary(self, name: str) -> tuple[float, float]:
        """Mean and standard deviation over the folds of the nested test score ``name``."""
        return mean_and_std([f.test[name] for f in self.folds])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything, with the summary."""
        scores = self.folds[0].test if self.folds else {}
        summary = {f"test_{name}": dict(zip(("mean", "std"), self.test_summary(name)))
                   for name in scores}
        key = self.validation_key
        return {
            "method": self.method,
            "metric": self.metric,
            "base": self.base,
            "best": self.best,
            "folds": [f.to_dict() for f in self.folds],
            **summary,
            "trials": [t | {f"mean_{key}": mean_and_std(t[key])[0]} for t in self.trials],
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
        metric: what to choose by, one of :data:`METRICS` (RMSE is minimised, the others
            maximised).
        top: length of the top-N lists a ranking metric scores.
        threshold: smallest held-out rating that makes an item relevant.
    """

    base: Trainer
    space: Space
    method: str = "grid"
    trials: int = 20
    validation_fraction: float = 0.1
    seed: int = 0
    metric: str = "rmse"
    top: int = 10
    threshold: float = 4.0
    settings: list[dict[str, Any]] = field(init=False, repr=False, compare=False)
    """The candidate settings, each fitted once per fold (iterations not included); drawn and
    checked when the tuner is made, so a bad space fails before any fit."""

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"validation fraction must be between 0 and 1 (exclusive), got "
                              f"{self.validation_fraction}")
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1:
            raise ConfigError(f"the list length must be a positive integer, got {self.top!r}")
        object.__setattr__(self, "settings", candidates(self.base, self.space, self.method,
                                                        self.trials, self.seed))

    def fits(self, n_folds: int) -> int:
        """How many fits :meth:`run` makes on ``n_folds`` folds (for a progress bar)."""
        return n_folds * (len(self.settings) + 1)

    def run(self, folds: list[Fold], *, threads: int | None = None,
            progress: Progress | None = None) -> TuningResult:
        """Tune on every fold; ``progress`` is called after each fit."""
        counts = iteration_counts(self.space)
        result = TuningResult(base=self.base.params(), method=self.method, metric=self.metric)
        rows = [(setting, n) for setting in self.settings for n in (counts or [None])]
        result.trials = [{"settings": _with_iterations(setting, n), result.validation_key: []}
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
                trial[result.validation_key].append(score)
            sign = 1.0 if self.metric == "rmse" else -1.0
            best = min(range(len(rows)), key=lambda n: sign * scores[n])
            chosen = result.trials[best]["settings"]
            model = replace(self.base, **chosen).fit(fold.train, threads=threads)
            test = self._test_scores(model, fold.test)
            result.folds.append(FoldTuning(fold.name, dict(chosen), self.metric, scores[best],
                                           test, time.perf_counter() - started))
            result.fold_names.append(fold.name)
            if progress is not None:
                progress(f"{fold.name}: chosen {describe(chosen)}, test {self.metric} "
                         f"{test[self.metric]:.4f}")
        return result

    def _test_scores(self, model, test) -> dict[str, float]:
        """RMSE and MAE of a model that predicts ratings, and the ranking metric chosen by."""
        scores = {}
        if model.predicts_ratings:
            scores |= rating_metrics(model, test)
        if self.metric != "rmse":
            scores[self.metric] = self._ranking_score(model, test)
        return scores

    def _ranking_score(self, model, ratings) -> float:
        return getattr(ranking_metrics(model, ratings, self.top, self.threshold), self.metric)

    def _validate(self, setting: dict[str, Any], counts: list[int] | None, inner, validation,
                  threads: int | None) -> list[float]:
        """Validation score of one setting at each iteration count (one fit)."""
        config = replace(self.base, **_with_iterations(setting, counts and counts[-1]))
        if self.metric != "rmse":
            return self._validate_ranking(config, counts, inner, validation, threads)
        model = config.fit(inner, validation, threads=threads)
        if counts is None:
            return [rating_metrics(model, validation)["rmse"]]
        curve = [record.test_rmse for record in model.history]
        if not curve or any(value is None for value in curve):
            raise ConfigError(f"{type(self.base).__name__} keeps no per-iteration test RMSE; "
                              "leave iterations out of the search space")
        # a fit stopped early (tol) is what a shorter or longer run would give as well
        return [curve[min(n, len(curve)) - 1] for n in counts]

    def _validate_ranking(self, config: Trainer, counts: list[int] | None, inner, validation,
                          threads: int | None) -> list[float]:
        """The ranking metric of one setting at each iteration count, scored in the callback
        on the model as it stands after that iteration (one fit)."""
        if counts is None:
            return [self._ranking_score(config.fit(inner, threads=threads), validation)]
        wanted, found = set(counts), {}

        def score(record: Any, model: Any) -> None:
            if record.iteration in wanted:
                found[record.iteration] = self._ranking_score(model, validation)

        model = config.fit(inner, callback=score, threads=threads)
        last = len(model.history)
        if last not in found:  # stopped early (tol): later counts give this model as well
            found[last] = self._ranking_score(model, validation)
        return [found[min(n, last)] for n in counts]


def _with_iterations(setting: dict[str, Any], n: int | None) -> dict[str, Any]:
    return setting if n is None else setting | {ITERATIONS: n}
