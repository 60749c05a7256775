"""Figures: the train and test loss per iteration, drawn as training reports them.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display needed), so it works
on servers and in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alsmf.files import replace_atomically
from alsmf.model import IterationRecord


def plot_history(history: Sequence[IterationRecord], path: str | Path,
                 title: str = "ALS: train and test RMSE per iteration", *,
                 step: str = "iteration",
                 objective_label: str = "objective (squared error + L2 penalty)",
                 phase: tuple[int, str] | None = None) -> Path:
    """Draw train and test RMSE (left) and the objective (right) per iteration to a PNG.

    ``phase``: (last iteration, label) of a first phase that minimises something else (ALS's
    warm-up at λ/2, a sampler's burn-in), shaded on both panels so that its jumps read as
    what they are. Returns the path written. The test curve is left out when there was no
    test set.
    """
    if not history:
        raise ValueError("no iterations to plot")
    path = Path(path)
    iterations = [record.iteration for record in history]
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    rmse_axes, objective_axes = figure.subplots(1, 2)
    if phase is not None and phase[0] >= 1:
        for axes in (rmse_axes, objective_axes):
            axes.axvspan(0.5, min(phase[0], iterations[-1]) + 0.5, color="0.9", zorder=0,
                         label=phase[1])

    rmse_axes.plot(iterations, [r.train_rmse for r in history], "o-", label="train RMSE")
    if all(record.test_rmse is not None for record in history):
        test = [r.test_rmse for r in history]
        rmse_axes.plot(iterations, test, "s-", label="test RMSE")
        best = min(range(len(test)), key=test.__getitem__)
        rmse_axes.annotate(f"{test[best]:.4f}", (iterations[best], test[best]),
                           textcoords="offset points", xytext=(0, 8), ha="center")
    rmse_axes.set_xlabel(step)
    rmse_axes.set_ylabel("RMSE")
    rmse_axes.grid(alpha=0.3)
    rmse_axes.legend()

    objective_axes.plot(iterations, [r.objective for r in history], "o-", color="tab:purple")
    objective_axes.set_xlabel(step)
    objective_axes.set_ylabel(objective_label)
    objective_axes.grid(alpha=0.3)

    figure.suptitle(title)
    return replace_atomically(path, lambda handle: figure.savefig(
        handle, dpi=110, format=path.suffix.lstrip(".") or "png"))
