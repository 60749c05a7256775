"""Rich tables of evaluation results, as ``alsmf evaluate``, ``tune`` and ``compare`` print them."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table

from alsmf.evaluation.compare import MethodRun
from alsmf.evaluation.crossval import CrossValidation
from alsmf.evaluation.space import describe
from alsmf.evaluation.tuning import TuningResult

_HEADINGS = {"rmse": "RMSE", "mae": "MAE", "precision": "P@{k}", "recall": "R@{k}",
             "ndcg": "NDCG@{k}", "map": "MAP@{k}", "hit_rate": "hit@{k}",
             "coverage": "coverage@{k}"}


def crossval_table(result: CrossValidation, k: int | None, title: str) -> Table:
    """One column per fold, then the mean and the standard deviation; one row per metric."""
    table = Table("", *(fold.fold for fold in result.folds), "mean", "std", title=title,
                  min_width=len(title))
    mean, std = result.mean(), result.std()
    for name in result.metric_names():
        table.add_row(_HEADINGS[name].format(k=k),
                      *(f"{fold.metrics[name]:.4f}" for fold in result.folds),
                      f"[bold]{mean[name]:.4f}[/]", f"{std[name]:.4f}")
    table.add_row("iterations", *(str(fold.iterations) for fold in result.folds), "", "")
    table.add_row("seconds", *(f"{fold.seconds:.2f}" for fold in result.folds), "", "")
    return table


def tuning_table(result: TuningResult, title: str, k: int = 10) -> Table:
    """One row per outer fold: the settings chosen on validation data and their test scores."""
    table = Table("fold", title=title, min_width=len(title))
    table.add_column("chosen on validation", overflow="fold")
    names = list(result.folds[0].test) if result.folds else ["rmse", "mae"]
    headings = [f"validation {_heading(result.metric, k)}",
                *(f"test {_heading(name, k)}" for name in names), "seconds"]
    for heading in headings:
        table.add_column(heading)
    for fold in result.folds:
        table.add_row(fold.fold, describe(fold.chosen), f"{fold.validation:.4f}",
                      *(f"{fold.test[name]:.4f}" for name in names), f"{fold.seconds:.1f}")
    summary = result.to_dict()
    cells = []
    for name in names:
        mean, std = summary[f"test_{name}"]["mean"], summary[f"test_{name}"]["std"]
        cells.append(f"[bold]{mean:.4f}[/] ± {std:.4f}" if name == result.metric
                     else f"{mean:.4f}")
    table.add_row("mean ± std", "", "", *cells, "")
    return table


def trials_table(result: TuningResult, rows: int, title: str) -> Table:
    """The ``rows`` best trials by mean validation score over the folds."""
    key = result.validation_key
    sign = 1.0 if result.metric == "rmse" else -1.0
    trials = sorted(result.to_dict()["trials"], key=lambda t: sign * t[f"mean_{key}"])[:rows]
    table = Table(title=title, min_width=len(title))
    table.add_column("settings", overflow="fold")
    for heading in (*result.fold_names, "mean"):
        table.add_column(heading)
    for trial in trials:
        table.add_row(describe(trial["settings"]), *(f"{v:.4f}" for v in trial[key]),
                      f"{trial[f'mean_{key}']:.4f}")
    return table


def _heading(metric: str, k: int) -> str:
    return _HEADINGS[metric].format(k=k)


def comparison_table(runs: Sequence[MethodRun], title: str) -> Table:
    """One row per method: final test RMSE and MAE, best RMSE on the way, iterations, time."""
    table = Table("method", "test RMSE", "test MAE", "best RMSE (iteration)", "iterations",
                  "seconds", title=title, min_width=len(title))
    for run in runs:
        best = min(range(len(run.test_rmse)), key=run.test_rmse.__getitem__)
        table.add_row(run.name, f"{run.final_rmse:.4f}", f"{run.final_mae:.4f}",
                      f"{run.test_rmse[best]:.4f} ({best + 1})", str(len(run.test_rmse)),
                      f"{run.fit_seconds:.2f}")
    return table
