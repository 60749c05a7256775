"""The commands that measure: evaluate (cross-validation), tune (nested search), compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from alsmf.cli.options import (COMPARE_OUTPUT, DATA_OPTION, DUPLICATES_OPTION, FOLDS_OPTION,
                               ITEM_COL_OPTION, JSON_OPTION, NOISE_OPTION, RATING_COL_OPTION,
                               SETTINGS_OPTION, SPLIT_OPTION, SYNTHETIC_OPTION,
                               TEST_FILE_OPTION, TEST_FRACTION_OPTION, THREADS_OPTION,
                               TRAIN_FILE_OPTION, USER_COL_OPTION, Duplicates, Search,
                               SyntheticShape, user_errors)
from alsmf.cli.render import describe_data, fit_progress
from alsmf.cli.use import MAX_LIST
from alsmf.data.source import DataSource
from alsmf.errors import ConfigError
from alsmf.models.als import ALS
from alsmf.ranking import check_rank_by

SET_OPTION = typer.Option(
    None, "--set", help="Set any field of the method (ALS unless --method says otherwise), "
    "NAME=VALUE (repeatable), e.g. --set reg_bias=0.05 --set weighted_reg=false.")


@user_errors
def evaluate(
    data: Optional[Path] = DATA_OPTION,
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    noise: float = NOISE_OPTION,
    folds: str = FOLDS_OPTION,
    user_col: Optional[str] = USER_COL_OPTION,
    item_col: Optional[str] = ITEM_COL_OPTION,
    rating_col: Optional[str] = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
    method: str = typer.Option(
        "als", help="The method to cross-validate: a name 'alsmf compare' knows (als, bayes, "
        "ials, the baselines); its fields by --set, --factors/--reg/--iterations where it has "
        "them."),
    settings: Optional[Path] = SETTINGS_OPTION,
    factors: Optional[int] = typer.Option(None, "--factors", "-k", help="Latent factors k "
                                          f"(default {ALS.factors})."),
    reg: Optional[float] = typer.Option(None, help=f"L2 regularisation λ (default {ALS.reg})."),
    iterations: Optional[int] = typer.Option(None, "--iterations", "-n",
                                             help=f"ALS iterations (default {ALS.iterations})."),
    assignments: Optional[list[str]] = SET_OPTION,
    top: int = typer.Option(10, "--top", help="Length k of the top-N lists ranked."),
    threshold: float = typer.Option(4.0, help="A held-out rating >= this makes the item "
                                    "relevant to the user."),
    seed: int = typer.Option(0, help="Seed for the random folds and the synthetic data."),
    rank_by: str = typer.Option("score", "--rank-by", help="What the top-N lists rank by: "
                                "'score' (the model's ranking score) or 'rating'."),
    threads: Optional[int] = THREADS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Cross-validate ALS (or another --method): RMSE, MAE and top-N ranking metrics per fold,
    with mean and std."""
    from alsmf.evaluation.crossval import cross_validate
    from alsmf.evaluation.tables import crossval_table

    if not 1 <= top <= MAX_LIST:
        raise ConfigError(f"--top must be from 1 to {MAX_LIST:,}, got {top:,}")
    check_rank_by(rank_by)
    config = _method_config(method, settings, assignments, factors=factors, reg=reg,
                            iterations=iterations)
    source = DataSource(data=data, synthetic=synthetic.value, noise=noise, folds=folds,
                        seed=seed, user_col=user_col, item_col=item_col, rating_col=rating_col,
                        duplicates=duplicates.value)
    fold_list, description = source.cross_validation_folds()
    with fit_progress("cross-validating", len(fold_list)) as progress:
        result = cross_validate(config, fold_list, k=top, threshold=threshold, threads=threads,
                                progress=progress, rank_by=rank_by)
    if as_json:
        print(json.dumps({"data": description, "k": top, "threshold": threshold}
                         | result.to_dict(), indent=2))
        return
    label = "ALS" if method == "als" else method
    Console().print(crossval_table(result, top, f"{label} on {description['source']}"))


@user_errors
def tune(
    data: Optional[Path] = DATA_OPTION,
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    noise: float = NOISE_OPTION,
    folds: str = FOLDS_OPTION,
    user_col: Optional[str] = USER_COL_OPTION,
    item_col: Optional[str] = ITEM_COL_OPTION,
    rating_col: Optional[str] = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
    method: str = typer.Option(
        "als", help="The method to tune: a name 'alsmf compare' knows; give its fields to "
        "search with -p (ALS has a default space)."),
    params: Optional[list[str]] = typer.Option(
        None, "--param", "-p", help="A field to search (repeatable): NAME=V1,V2,... or, for "
        "--search random, NAME=log:LOW:HIGH (log-uniform), uniform:LOW:HIGH or int:LOW:HIGH. "
        "'iterations' takes a list of counts, all scored by one fit. Default (ALS): k, λ and "
        "iterations."),
    metric: str = typer.Option(
        "rmse", help="What to choose by on the validation data: rmse (lowest), or the top-N "
        "ranking metrics ndcg, precision, recall (highest)."),
    top: int = typer.Option(10, "--top", help="Length k of the top-N lists a ranking metric "
                            "scores."),
    threshold: float = typer.Option(4.0, help="A held-out rating >= this makes the item "
                                    "relevant to the user."),
    search: Search = typer.Option(Search.grid, help="grid: every combination; random: "
                                  "--trials draws."),
    trials: int = typer.Option(20, help="Settings drawn by a random search."),
    validation_fraction: float = typer.Option(
        0.1, help="Share of each training fold held out to choose the settings."),
    settings: Optional[Path] = SETTINGS_OPTION,
    assignments: Optional[list[str]] = SET_OPTION,
    save_settings: Optional[Path] = typer.Option(
        None, "--save-settings", help="Write the ALS settings of best mean validation score to "
        "this JSON file, for 'alsmf train --settings FILE'."),
    seed: int = typer.Option(0, help="Seed for the folds, validation splits, draws and data."),
    threads: Optional[int] = THREADS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Nested tuning: choose settings (of ALS or another --method) on validation data by RMSE
    or a ranking metric, report their test scores.

    The validation data is carved from each training fold; the fold's test part never reaches
    training and scores only the chosen settings.
    """
    from dataclasses import replace

    from alsmf.evaluation.settings import save_settings as write_settings
    from alsmf.evaluation.space import parse_setting, space_to_json
    from alsmf.evaluation.tables import trials_table, tuning_table
    from alsmf.evaluation.tuning import DEFAULT_SPACES, Tuner

    base = _method_config(method, settings, assignments)
    if not params and method != "als":
        raise ConfigError(f"give the fields of --method {method} to search with -p NAME=V1,V2")
    if save_settings is not None and method != "als":
        raise ConfigError("--save-settings writes ALS settings (for 'alsmf train --settings'); "
                          f"--method {method} prints its best settings instead")
    space = dict(parse_setting(text) for text in params) if params else DEFAULT_SPACES[search.value]
    tuner = Tuner(base, space, search.value, trials, validation_fraction, seed, metric=metric,
                  top=top, threshold=threshold)
    source = DataSource(data=data, synthetic=synthetic.value, noise=noise, folds=folds,
                        seed=seed, user_col=user_col, item_col=item_col, rating_col=rating_col,
                        duplicates=duplicates.value)
    fold_list, description = source.cross_validation_folds()
    with fit_progress("tuning", tuner.fits(len(fold_list))) as progress:
        result = tuner.run(fold_list, threads=threads, progress=progress)
    best = replace(base, **result.best).params()
    report = {"data": description, "space": space_to_json(space)} | result.to_dict()
    if save_settings is not None:
        report["settings_file"] = str(write_settings(save_settings, best, {
            "data": description, "method": search.value, "space": report["space"],
            "best": result.best, f"nested_test_{metric}": report[f"test_{metric}"]}))
    if as_json:
        print(json.dumps(report | {"settings": best}, indent=2))
        return
    console = Console()
    console.print(tuning_table(result, f"nested {search.value} search on "
                                       f"{description['source']}", top))
    console.print(trials_table(result, 5, f"best settings by mean validation {metric}"))
    if "settings_file" in report:
        console.print(f"settings saved to {report['settings_file']}")


@user_errors
def compare_methods(
    data: Optional[Path] = DATA_OPTION,
    train_file: Optional[Path] = TRAIN_FILE_OPTION,
    test_file: Optional[Path] = TEST_FILE_OPTION,
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    split: str = SPLIT_OPTION,
    test_fraction: float = TEST_FRACTION_OPTION,
    user_col: Optional[str] = USER_COL_OPTION,
    item_col: Optional[str] = ITEM_COL_OPTION,
    rating_col: Optional[str] = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
    methods: Optional[str] = typer.Option(
        None, help="Comma-separated methods: als, bayes, ials, sgd, svd, bias, mean, gd "
        "(default: als, sgd, svd, bias)."),
    factors: Optional[int] = typer.Option(None, "--factors", "-k", help="k for every method "
                                          "with factors (default: each method's own)."),
    assignments: Optional[list[str]] = typer.Option(
        None, "--set", help="METHOD.NAME=VALUE (repeatable), e.g. --set sgd.epochs=40."),
    seed: int = typer.Option(0, help="Seed for the split and the synthetic data."),
    threads: Optional[int] = THREADS_OPTION,
    output: Path = typer.Option(COMPARE_OUTPUT, "--output", "-o",
                                help="Folder for the figure compare.png (not the folder "
                                "`alsmf train` writes its model to)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train several methods on one split: test RMSE per iteration and per second."""
    from alsmf.evaluation.compare import compare
    from alsmf.evaluation.figures import plot_comparison
    from alsmf.evaluation.methods import DEFAULT_METHODS, make_trainers
    from alsmf.evaluation.tables import comparison_table

    names = list(DEFAULT_METHODS) if methods is None else [
        name.strip() for name in methods.split(",") if name.strip()]
    trainers = make_trainers(names, factors, _method_settings(assignments))
    source = DataSource(data=data, train_file=train_file, test_file=test_file,
                        synthetic=synthetic.value, split=split, test_fraction=test_fraction,
                        seed=seed, user_col=user_col, item_col=item_col, rating_col=rating_col,
                        duplicates=duplicates.value)
    prepared = source.train_test(test_needed_by="compare")
    with fit_progress("comparing", len(trainers)) as progress:
        runs = compare(trainers, prepared.train, prepared.test, threads=threads,
                       progress=progress)
    figure = plot_comparison(runs, output / "compare.png", f"test RMSE on {prepared.name}")
    if as_json:
        print(json.dumps({"data": prepared.summary(), "methods": [r.to_dict() for r in runs],
                          "figure": str(figure)}, indent=2))
        return
    console = Console()
    console.print(describe_data(prepared.summary()))
    console.print(comparison_table(runs, f"methods on {prepared.name}"))
    console.print(f"figure in {figure}")


def _method_config(method: str, settings_file: Path | None, assignments: list[str] | None,
                   **explicit: Any) -> Any:
    """The settings of ``method`` from a settings file, then ``--set`` fields, then the options
    given explicitly (None: not given); an option the method has no field for is refused."""
    from alsmf.evaluation.methods import available_methods
    from alsmf.evaluation.settings import load_settings
    from alsmf.evaluation.space import configure, field_names, parse_assignment

    methods = available_methods()
    if method not in methods:
        raise ConfigError(f"unknown method {method}; available: {', '.join(methods)}")
    cls = methods[method]
    given = {name: value for name, value in explicit.items() if value is not None}
    foreign = sorted(name for name in given if name not in field_names(cls))
    if foreign:
        raise ConfigError(f"--method {method} does not take "
                          f"{', '.join('--' + name for name in foreign)}; set its fields with "
                          "--set NAME=VALUE")
    chosen = load_settings(settings_file) if settings_file is not None else {}
    chosen |= dict(parse_assignment(text) for text in assignments or [])
    chosen |= given
    return configure(cls, chosen, "ALS settings" if method == "als" else f"{method} settings")


def _method_settings(assignments: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--set METHOD.NAME=VALUE`` options as method -> {field: value}."""
    from alsmf.evaluation.space import parse_assignment

    settings: dict[str, dict[str, Any]] = {}
    for text in assignments or []:
        method, dot, rest = text.partition(".")
        if not dot or "=" in method:
            raise ConfigError(f"--set {text!r}: expected METHOD.NAME=VALUE, e.g. sgd.epochs=40")
        name, value = parse_assignment(rest)
        settings.setdefault(method.strip(), {})[name] = value
    return settings
