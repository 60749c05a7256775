"""The comparison figure: test RMSE per iteration (left) and per second of training (right).

Drawn like :mod:`alsmf.plots`: matplotlib's object API on the Agg canvas, no display needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alsmf.evaluation.compare import MethodRun
from alsmf.files import replace_atomically


def plot_comparison(runs: Sequence[MethodRun], path: str | Path,
                    title: str = "test RMSE by method") -> Path:
    """Write the two-panel PNG; a method with one point (a closed form) is a dashed level line.

    The time axis is logarithmic, since methods differ in speed by orders of magnitude. The
    RMSE axis runs from the lowest point to 8% above the worst final RMSE; points of early
    iterations above that are cut off.
    Returns the path written.
    """
    if not runs:
        raise ValueError("no methods to plot")
    path = Path(path)
    figure = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasAgg(figure)
    by_iteration, by_time = figure.subplots(1, 2, sharey=True)
    for n, run in enumerate(runs):
        color = f"C{n % 10}"
        label = f"{run.name} ({run.final_rmse:.4f})"
        if len(run.test_rmse) == 1:
            for axes in (by_iteration, by_time):
                axes.axhline(run.test_rmse[0], color=color, linestyle="--", label=label)
            by_time.plot(run.seconds, run.test_rmse, "o", color=color)
            continue
        iterations = range(1, len(run.test_rmse) + 1)
        by_iteration.plot(iterations, run.test_rmse, ".-", color=color, label=label)
        by_time.plot(run.seconds, run.test_rmse, ".-", color=color, label=label)
    by_iteration.set_xlabel("iteration (epoch for SGD)")
    by_iteration.set_ylabel("test RMSE")
    by_time.set_xlabel("seconds of training (wall time since fit started)")
    by_time.set_xscale("log")
    lowest = min(min(run.test_rmse) for run in runs)
    highest = max(run.final_rmse for run in runs)
    by_iteration.set_ylim(lowest - 0.02 * lowest, highest + 0.08 * highest)  # early, far-off
    # iterations (SGD's first epochs) would otherwise squeeze the curves that matter
    for axes in (by_iteration, by_time):
        axes.grid(alpha=0.3)
    by_iteration.legend(title="method (final test RMSE)")
    figure.suptitle(title)
    return replace_atomically(path, lambda handle: figure.savefig(
        handle, dpi=110, format=path.suffix.lstrip(".") or "png"))
