"""Several trainers on one train/test split: test RMSE after each iteration and over time.

Each trainer is fitted with the test set passed to ``fit`` (so its history records the test
RMSE after every iteration) and a callback that stamps the wall time since ``fit`` was
called, so the time axis is the same for every method: everything ``fit`` does, set-up
included, up to the end of that iteration. A trainer that calls back no iteration (a closed
form, such as the global mean) counts as one iteration taking its whole fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from alsmf.data.ratings import Ratings
from alsmf.evaluation.crossval import Progress, Trainer
from alsmf.evaluation.metrics import rating_metrics


@dataclass(frozen=True)
class MethodRun:
    """One trainer's curve and final scores.

    Attributes:
        name: the label given to the trainer.
        settings: its ``params()``.
        test_rmse: test RMSE after each iteration.
        seconds: wall time since ``fit`` started at the end of each iteration.
        final_rmse, final_mae: scores of the returned model on the test set.
        fit_seconds: wall time of the whole ``fit``.
    """

    name: str
    settings: dict[str, Any]
    test_rmse: list[float]
    seconds: list[float]
    final_rmse: float
    final_mae: float
    fit_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "settings": self.settings, "test_rmse": self.test_rmse,
                "seconds": self.seconds, "final_rmse": self.final_rmse,
                "final_mae": self.final_mae, "fit_seconds": self.fit_seconds}


def compare(trainers: Mapping[str, Trainer], train: Ratings, test: Ratings, *,
            threads: int | None = None, progress: Progress | None = None) -> list[MethodRun]:
    """Fit every trainer on ``train`` and follow its test RMSE on ``test``, in the given order."""
    runs = []
    for name, trainer in trainers.items():
        curve: list[float] = []
        stamps: list[float] = []
        started = time.perf_counter()

        def record(entry: Any, model: Any) -> None:
            stamps.append(time.perf_counter() - started)
            curve.append(entry.test_rmse)

        model = trainer.fit(train, test, callback=record, threads=threads)
        fit_seconds = time.perf_counter() - started
        final = rating_metrics(model, test)
        if not curve or any(value is None for value in curve):
            curve, stamps = [final["rmse"]], [fit_seconds]
        runs.append(MethodRun(name, trainer.params(), curve, stamps, final["rmse"],
                              final["mae"], fit_seconds))
        if progress is not None:
            progress(f"{name}: test RMSE {final['rmse']:.4f}")
    return runs
