"""Cross-validation: train on each fold's training part, score on its test part, keep it all.

Every fold's numbers are kept (not only the mean), so spread and outliers stay visible; the
summary is the mean and the sample standard deviation (ddof = 1; 0 for a single fold) of each
metric over the folds.

Any trainer works that has ``fit(train, test=None, *, callback=None, threads=None) -> MFModel``
and ``params() -> dict``: :class:`alsmf.models.als.ALS` and the baselines of :mod:`alsmf.baselines`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from alsmf.data.ratings import Ratings
from alsmf.evaluation.folds import Fold
from alsmf.evaluation.metrics import ranking_metrics, rating_metrics
from alsmf.model import MFModel

Progress = Callable[[str], None]
"""Called after each fit with a short description of what was just done."""


class Trainer(Protocol):
    """What cross-validation, tuning and comparison need of a training configuration."""

    def fit(self, train: Ratings, test: Ratings | None = None, *, callback: Any = None,
            threads: int | None = None) -> MFModel: ...

    def params(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FoldResult:
    """The scores of one fold.

    Attributes:
        fold: the fold's name.
        metrics: rmse and mae, plus the ranking metrics at ``k`` when they were asked for.
        seconds: wall time of the fit.
        iterations: iterations the fit ran.
        test_rmse_history: test RMSE after each iteration (empty when the trainer keeps none).
        train_ratings, test_ratings: sizes of the fold's parts.
    """

    fold: str
    metrics: dict[str, float]
    seconds: float
    iterations: int
    test_rmse_history: list[float]
    train_ratings: int
    test_ratings: int

    def to_dict(self) -> dict[str, Any]:
        return {"fold": self.fold, **self.metrics, "seconds": self.seconds,
                "iterations": self.iterations, "test_rmse_history": self.test_rmse_history,
                "train_ratings": self.train_ratings, "test_ratings": self.test_ratings}


@dataclass
class CrossValidation:
    """Per-fold results of one trainer and their summary."""

    settings: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)

    def metric_names(self) -> list[str]:
        return list(self.folds[0].metrics) if self.folds else []

    def mean(self) -> dict[str, float]:
        """Mean of each metric over the folds."""
        return {name: mean_and_std([f.metrics[name] for f in self.folds])[0]
                for name in self.metric_names()}

    def std(self) -> dict[str, float]:
        """Sample standard deviation of each metric over the folds (0 for one fold)."""
        return {name: mean_and_std([f.metrics[name] for f in self.folds])[1]
                for name in self.metric_names()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: settings, every fold, mean and std."""
        return {"settings": self.settings, "folds": [f.to_dict() for f in self.folds],
                "mean": self.mean(), "std": self.std()}


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 when there is a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def evaluate_model(model: MFModel, test: Ratings, *, k: int | None = 10,
                   threshold: float = 4.0, rank_by: str = "score") -> dict[str, float]:
    """Rating metrics of ``model`` on ``test``, and ranking metrics at ``k`` unless k is None.

    A model of implicit feedback predicts preferences (used or not), not ratings, so it gets
    the ranking metrics alone.
    """
    metrics = rating_metrics(model, test) if model.predicts_ratings else {}
    if k is not None:
        ranking = ranking_metrics(model, test, k, threshold, rank_by)
        metrics |= {name: getattr(ranking, name) for name in
                    ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")}
    return metrics


def _summary(fold: str, metrics: dict[str, float]) -> str:
    """One fold's headline figure for the progress line: its test RMSE, or its NDCG."""
    if "rmse" in metrics:
        return f"{fold}: test RMSE {metrics['rmse']:.4f}"
    return f"{fold}: NDCG {metrics.get('ndcg', float('nan')):.4f}"


def cross_validate(trainer: Trainer, folds: Iterable[Fold], *, k: int | None = 10,
                   threshold: float = 4.0, threads: int | None = None,
                   progress: Progress | None = None, rank_by: str = "score") -> CrossValidation:
    """Fit ``trainer`` on each fold's training part and score it on the fold's test part.

    The test part is also passed to ``fit`` so that the history records the test RMSE after
    every iteration; it does not influence training (for choosing settings without looking at
    the test part, see :mod:`alsmf.evaluation.tuning`).

    Args:
        trainer: the configuration to evaluate.
        folds: the folds, e.g. :func:`~alsmf.evaluation.folds.random_folds`.
        k: length of the top-N lists for the ranking metrics; None skips them.
        threshold: smallest test rating that makes an item relevant.
        threads: threads for training.
        progress: called after each fold.
        rank_by: what the lists rank by (:meth:`MFModel.recommend`'s ``rank_by``).
    """
    result = CrossValidation(settings=trainer.params())
    for fold in folds:
        started = time.perf_counter()
        model = trainer.fit(fold.train, fold.test, threads=threads)
        seconds = time.perf_counter() - started
        result.folds.append(FoldResult(
            fold=fold.name,
            metrics=evaluate_model(model, fold.test, k=k, threshold=threshold,
                                   rank_by=rank_by),
            seconds=seconds,
            iterations=len(model.history),
            test_rmse_history=[r.test_rmse for r in model.history if r.test_rmse is not None],
            train_ratings=len(fold.train),
            test_ratings=len(fold.test),
        ))
        if progress is not None:
            progress(_summary(fold.name, result.folds[-1].metrics))
    return result
