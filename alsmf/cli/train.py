"""``alsmf train``: fit a model, print the loss per iteration, save the model and its figure.

Every method ``alsmf compare`` knows trains here (the names of
:func:`alsmf.evaluation.methods.available_methods`). ALS takes its settings from its own
options and an optional settings file; Bayesian MF from ``--sweeps``, ``--burn-in``,
``--samples`` and, when typed, the options it shares with ALS; the baselines from ``--factors``
(when typed) and ``--seed`` where they have those fields; implicit-feedback ALS also from
``--reg``, ``--iterations``, ``--weighted-reg``, ``--solver`` and ``--cg-steps`` when typed.
``--set NAME=VALUE`` sets any field of any method; an option typed for the same field wins.
``--feedback implicit`` reads (user, item) pairs without ratings and trains implicit-feedback
ALS (``ials``). Every option is checked before the data is read. Every method writes
checkpoints and resumes them; ALS and implicit-feedback ALS also on a Dask cluster.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from alsmf.cli.options import (DATA_OPTION, DEFAULT_OUTPUT, DUPLICATES_OPTION, ITEM_COL_OPTION,
                               JSON_OPTION, MIN_ITEM_RATINGS_OPTION, MIN_USER_RATINGS_OPTION,
                               N_LAST_OPTION, RATING_COL_OPTION, SAMPLE_USERS_OPTION,
                               SPLIT_OPTION, SYNTHETIC_OPTION, TEST_FILE_OPTION,
                               TEST_FRACTION_OPTION, THREADS_OPTION, TOP_ITEMS_OPTION,
                               TOP_USERS_OPTION, TRAIN_FILE_OPTION, USER_COL_OPTION, Duplicates,
                               Feedback, Solver, SyntheticShape, user_errors)
from alsmf.cli.render import IterationPrinter, describe_data
from alsmf.data.source import DataSource, PreparedData
from alsmf.errors import AlsmfError, ConfigError
from alsmf.evaluation.crossval import Trainer
from alsmf.evaluation.methods import available_methods
from alsmf.model import MFModel
from alsmf.models.als import ALS
from alsmf.models.bayes import BayesianMF
from alsmf.models.implicit_als import ImplicitALS

METHODS = available_methods()

ALS_FIELDS = ("factors", "reg", "iterations", "biases", "weighted_reg", "tol", "seed", "solver",
              "cg_steps", "reg_bias", "implicit_weight", "implicit_reg", "reg_warmup")
"""The ALS fields train has an option for (``biases`` is set by ``--no-biases``)."""
BAYES_FIELDS = ("sweeps", "burn_in", "samples")
"""The Bayesian MF fields train has an option for, beside those it shares with ALS."""
SHARED_WITH_BAYES = ("factors", "implicit_weight", "implicit_reg")
"""ALS options that set Bayesian MF's fields too, but only when typed: its defaults differ."""
SHARED_WITH_IALS = ("factors", "reg", "iterations", "weighted_reg", "solver", "cg_steps", "seed")
"""ALS options that set implicit-feedback ALS's fields too, but only when typed: its defaults
differ (λ 0.05, 15 iterations, plain λ)."""
SHARED_FIELDS = ("factors", "seed")
"""Options every method takes, where it has the field (``--factors`` only when typed)."""
ROUND_FIELDS = ("iterations", "sweeps", "epochs", "steps")
"""The fields that count a method's rounds, one history record each."""


@user_errors
def train(
    ctx: typer.Context,
    data: Optional[Path] = DATA_OPTION,
    train_file: Optional[Path] = TRAIN_FILE_OPTION,
    test_file: Optional[Path] = TEST_FILE_OPTION,
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    split: str = SPLIT_OPTION,
    test_fraction: float = TEST_FRACTION_OPTION,
    n_last: int = N_LAST_OPTION,
    min_user_ratings: Optional[int] = MIN_USER_RATINGS_OPTION,
    min_item_ratings: Optional[int] = MIN_ITEM_RATINGS_OPTION,
    top_users: Optional[int] = TOP_USERS_OPTION,
    top_items: Optional[int] = TOP_ITEMS_OPTION,
    sample_users: Optional[float] = SAMPLE_USERS_OPTION,
    user_col: Optional[str] = USER_COL_OPTION,
    item_col: Optional[str] = ITEM_COL_OPTION,
    rating_col: Optional[str] = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
    feedback: Feedback = typer.Option(
        Feedback.explicit, help="explicit: ratings. implicit: (user, item) pairs that were "
        "used (clicks, plays, purchases), with an optional count or weight column "
        "(--rating-col, else one named count, weight, plays, clicks, value or rating; without "
        "one each pair counts 1); trains implicit-feedback ALS, --method ials."),
    method: str = typer.Option(
        "als", help=f"One of {', '.join(METHODS)}. als: alternating least squares; bayes: "
        "Bayesian MF by Gibbs sampling (--sweeps, --burn-in, --samples; predictions average "
        "the kept draws; --factors, --implicit-weight and --implicit-reg apply when typed, else "
        "its own defaults); ials: implicit-feedback ALS (--factors, --reg, --iterations, "
        "--weighted-reg, --solver, --cg-steps when typed, else its own defaults); the others "
        "are the baselines of 'alsmf compare' (--factors when "
        "typed and --seed apply where they have them). Any method: --set NAME=VALUE."),
    sweeps: int = typer.Option(BayesianMF.sweeps, help="bayes: Gibbs sweeps in all."),
    burn_in: int = typer.Option(BayesianMF.burn_in, help="bayes: sweeps discarded first."),
    samples: int = typer.Option(BayesianMF.samples, help="bayes: draws the model keeps."),
    assignments: Optional[list[str]] = typer.Option(
        None, "--set", help="Set a field of the method's settings, NAME=VALUE (repeatable), "
        "e.g. --method sgd --set epochs=40; an option typed for the same field wins."),
    settings: Optional[Path] = typer.Option(
        None, "--settings", help="ALS settings from a JSON file ('alsmf tune --save-settings'); "
        "options given on the command line override it."),
    factors: int = typer.Option(ALS.factors, "--factors", "-k", help="Number of latent factors k."),
    reg: float = typer.Option(ALS.reg, help="L2 regularisation λ of the factors."),
    reg_bias: Optional[float] = typer.Option(
        ALS.reg_bias, help=f"L2 regularisation λ_b of the biases (default {ALS.reg_bias})."),
    implicit_weight: float = typer.Option(
        ALS.implicit_weight, help="Weight of the implicit features (who rated what, "
        "co-factorized with the ratings); 0 turns them off."),
    implicit_reg: float = typer.Option(ALS.implicit_reg,
                                       help="L2 regularisation of the implicit factors."),
    iterations: int = typer.Option(ALS.iterations, "--iterations", "-n",
                                   help="Maximum ALS iterations."),
    no_biases: bool = typer.Option(False, "--no-biases",
                                   help="Pure P·Qᵀ model, no μ, b_u, b_i."),
    weighted_reg: bool = typer.Option(
        True, "--weighted-reg/--plain-reg", help="Scale λ by each row's rating count (ALS-WR)."),
    solver: Solver = typer.Option(
        Solver.cg, help="cg: a few conjugate-gradient steps per row (fast, float32); "
        "cholesky: exact solve of every row (float64, allows --reg 0)."),
    cg_steps: int = typer.Option(ALS.cg_steps,
                                 help="Conjugate-gradient steps per row and half-step."),
    reg_warmup: int = typer.Option(
        ALS.reg_warmup, help="First iterations solved with half the factors' λ, so that the "
        "factors leave their near-zero start sooner (0: none)."),
    checkpoint_every: int = typer.Option(
        0, help="Write OUTPUT/checkpoint.npz every N iterations (0: only with --resume, at the "
        "end); a killed run continues from it with --resume."),
    resume: bool = typer.Option(
        False, help="Continue from OUTPUT/checkpoint.npz when present (same data and settings; "
        "the result is identical to an uninterrupted run)."),
    tol: float = typer.Option(0.0, help="Stop when the objective improves by less than this "
                              "relative amount in one iteration (0: run all iterations)."),
    seed: int = typer.Option(0, help="Seed for the data split, sampling and initial factors."),
    threads: Optional[int] = THREADS_OPTION,
    scheduler: Optional[str] = typer.Option(
        None, help="Train on the Dask cluster whose scheduler is at this address "
        "(tcp://host:8786); the model is the same as in-process."),
    workers: Optional[int] = typer.Option(
        None, help="Train on a local Dask cluster of this many worker processes."),
    output: Path = typer.Option(DEFAULT_OUTPUT, "--output", "-o",
                                help="Folder for the model file and the loss figure."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train biased ALS (or another --method), print the loss per iteration, save the model
    and the loss figure."""
    from alsmf.training.loop import TrainingInterrupted

    console = Console(stderr=as_json, highlight=False, soft_wrap=True)
    values = dict(factors=factors, reg=reg, iterations=iterations, biases=not no_biases,
                  weighted_reg=weighted_reg, tol=tol, seed=seed, solver=solver.value,
                  cg_steps=cg_steps, reg_bias=reg_bias, implicit_weight=implicit_weight,
                  implicit_reg=implicit_reg, reg_warmup=reg_warmup, sweeps=sweeps,
                  burn_in=burn_in, samples=samples)
    typed = _typed_options(ctx)
    method = _method_for(feedback.value, method, typed)
    config = method_config(method, values, typed, settings, assignments)
    step, rounds = _rounds(config)
    checkpoint = output / "checkpoint.npz"
    saving = _checkpoint_arguments(checkpoint, checkpoint_every, resume, rounds)
    _check_cluster(method, scheduler, workers)
    _check_output(output)
    source = DataSource(
        data=data, train_file=train_file, test_file=test_file, synthetic=synthetic.value,
        split=split, test_fraction=test_fraction, n_last=n_last, seed=seed,
        min_user_ratings=min_user_ratings, min_item_ratings=min_item_ratings,
        top_users=top_users, top_items=top_items, sample_users=_count_or_fraction(sample_users),
        user_col=user_col, item_col=item_col, rating_col=rating_col, duplicates=duplicates.value,
        feedback=feedback.value)
    started = time.perf_counter()
    prepared = source.train_test()
    if not as_json:
        console.print(describe_data(prepared.summary()))
    if resume and not checkpoint.exists():
        Console(stderr=True, highlight=False, soft_wrap=True).print(_nothing_to_resume(output))
    interrupted = None
    with IterationPrinter(console, rounds, show_lines=not as_json) as printer:
        try:
            if scheduler is not None or workers is not None:
                model = _train_on_dask(config, prepared, printer, scheduler, workers, threads,
                                       saving)
            else:
                model = config.fit(prepared.train, prepared.test, callback=printer,
                                   threads=threads, **saving)
        except TrainingInterrupted as stop:
            model, interrupted = stop.model, stop
    if interrupted is not None and not model.history:
        console.print("interrupted before the first iteration finished; nothing saved")
        raise typer.Exit(130)
    prepared.attach_titles(model)
    replaced = (output / "model.npz").exists()
    model_path = _save_model(model, output / "model.npz", checkpoint)
    if replaced:  # on stderr, so that --json output stays one document
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"note: replaced the earlier model in {model_path} (-o FOLDER keeps models apart)")
    if interrupted is None:
        checkpoint.unlink(missing_ok=True)  # finished and saved: a later --resume starts afresh
    figure_path = _loss_figure(model, config, method, step, prepared.name, output / "loss.png")
    final = model.history[-1]
    if interrupted is not None:
        console.print(f"{interrupted}; the model of that iteration is saved to {model_path}")
        raise typer.Exit(130)
    if as_json:
        print(json.dumps({
            "settings": config.params() | {"threads": threads},
            "data": prepared.summary(),
            "history": [record.to_dict() for record in model.history],
            "train_rmse": final.train_rmse,
            "test_rmse": final.test_rmse,
            "seconds": time.perf_counter() - started,
            "model": str(model_path),
            "figure": str(figure_path),
        }, indent=2))
        return
    console.print(f"final: train RMSE {final.train_rmse:.4f}"
                  + (f", test RMSE {final.test_rmse:.4f}" if final.test_rmse is not None else ""))
    console.print(f"model saved to   {model_path}")
    console.print(f"loss figure in   {figure_path}")


def _method_for(feedback: str, method: str, typed: dict[str, str]) -> str:
    """The method to train: ``--method``, or for implicit feedback ``ials``, the one method
    that fits used pairs rather than ratings (a typed ``--method`` must be it)."""
    if feedback == "explicit":
        return method
    if "method" in typed and method != "ials":
        raise ConfigError(f"--feedback implicit trains implicit-feedback ALS (--method ials); "
                          f"--method {method} fits ratings")
    return "ials"


def method_config(method: str, values: dict[str, Any], typed: dict[str, str],
                  settings_file: Path | None, assignments: list[str] | None) -> Trainer:
    """The settings object of ``--method`` from train's options.

    Args:
        method: a name of :func:`~alsmf.evaluation.methods.available_methods`.
        values: the value of every option that sets a field, by field name.
        typed: the options typed on the command line: field (or option) name -> flag.
        settings_file: ``--settings`` (ALS only).
        assignments: the ``--set NAME=VALUE`` texts; they set the fields no typed option sets.

    Raises:
        ConfigError: an unknown method, an option the method does not take, an unknown field
            or a value the method refuses.
    """
    from alsmf.evaluation.settings import load_settings
    from alsmf.evaluation.space import configure, parse_assignment

    if method not in METHODS:
        raise ConfigError(f"unknown method {method}; available: {', '.join(METHODS)}")
    trainer_class = METHODS[method]
    if method == "als":
        chosen = {name: values[name] for name in ALS_FIELDS}
        if settings_file is not None:  # the file decides what was not typed
            chosen |= {name: value for name, value in load_settings(settings_file).items()
                       if name not in typed}
    elif method == "bayes":  # options shared with ALS count only when typed
        chosen = {name: values[name] for name in (*BAYES_FIELDS, "seed")}
        chosen |= {name: values[name] for name in SHARED_WITH_BAYES if name in typed}
    else:
        own = [f.name for f in fields(trainer_class)]
        takes = SHARED_WITH_IALS if method == "ials" else SHARED_FIELDS
        _refuse_foreign_options(method, own, typed, takes)
        chosen = {"seed": values["seed"]} if "seed" in own else {}
        chosen |= {name: values[name] for name in takes if name in own and name in typed}
    for name, value in (parse_assignment(text) for text in assignments or []):
        if name not in typed:
            chosen[name] = value
    return configure(trainer_class, chosen)


def _refuse_foreign_options(method: str, own: list[str], typed: dict[str, str],
                            takes: tuple[str, ...]) -> None:
    """Of train's method options a method other than ALS and Bayesian MF takes only
    ``takes``; refuse the others, so that a typed --reg-bias or --sweeps is not silently
    ignored."""
    foreign = [flag for name, flag in typed.items()
               if name in (*ALS_FIELDS, *BAYES_FIELDS, "settings") and name not in takes]
    if foreign:
        raise ConfigError(f"--method {method} does not take {', '.join(foreign)}; set its "
                          f"fields with --set NAME=VALUE ({', '.join(own) or 'it has none'})")


def _typed_options(ctx: typer.Context) -> dict[str, str]:
    """The options typed on the command line, by the field they set, with their flag."""
    field_of = {"no_biases": "biases"}
    typed = {}
    for parameter in ctx.command.params:
        source = ctx.get_parameter_source(parameter.name)
        if source is not None and source.name != "DEFAULT":
            typed[field_of.get(parameter.name, parameter.name)] = parameter.opts[0]
    return typed


def _rounds(config: Trainer) -> tuple[str, int]:
    """What one history record of the method is ("iteration", "sweep", "epoch", "step") and
    how many a fit makes at most: the progress bar's total and the figure's x axis."""
    step = next((name.removesuffix("s") for name in ROUND_FIELDS if hasattr(config, name)),
                "iteration")  # a closed form (the mean, the SVD): one record
    return step, config.rounds


def _checkpoint_arguments(checkpoint: Path, every: int, resume: bool,
                          rounds: int) -> dict[str, Any]:
    """``fit``'s checkpoint keywords for ``--checkpoint-every`` and ``--resume`` (none when
    neither is given)."""
    if every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {every}")
    if not (every or resume):
        return {}
    return dict(checkpoint=checkpoint, checkpoint_every=every or rounds, resume=resume)


def _save_model(model: MFModel, path: Path, checkpoint: Path) -> Path:
    """Write the model; a filesystem error (a full disk, say) is one line that says where the
    last good state is, and the checkpoint is kept until the model is safely written."""
    try:
        return model.save(path)
    except OSError as error:
        kept = (f"; the last checkpoint is kept in {checkpoint} (--resume continues from it)"
                if checkpoint.exists() else "")
        raise AlsmfError(f"cannot write the model to {path}: {error.strerror or error}"
                         f"{kept}") from None


def _check_output(output: Path) -> None:
    """Refuse an output folder that cannot be written, before any data is read or trained:
    a path that is a file, or a folder (or the nearest existing parent) without write
    permission."""
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file, not a folder")
    existing = next(parent for parent in (output, *output.parents) if parent.exists())
    if not existing.is_dir():
        raise ConfigError(f"--output {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {output}: {existing} is not writable")


def _nothing_to_resume(output: Path) -> str:
    """What ``--resume`` says when ``output`` holds no checkpoint: it trains from the start."""
    if (output / "model.npz").exists():
        return (f"note: {output} holds no checkpoint: its last run finished (model.npz) or "
                "never wrote one; training from iteration 1")
    return f"note: no checkpoint in {output}; training from iteration 1"


def _check_cluster(method: str, scheduler: str | None, workers: int | None) -> None:
    """Refuse ``--scheduler``/``--workers`` that cannot work, before any data is read."""
    if scheduler is None and workers is None:
        return
    if method not in ("als", "bayes", "ials"):
        raise ConfigError(f"--method {method} trains in-process; only --method als, bayes "
                          "and ials train on a Dask cluster (--scheduler, --workers)")
    if scheduler is not None and workers is not None:
        raise ConfigError("give --scheduler (an existing cluster) or --workers (a local one), "
                          "not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")


def _train_on_dask(config: ALS | BayesianMF | ImplicitALS, prepared: PreparedData,
                   printer: IterationPrinter, scheduler: str | None, workers: int | None,
                   threads: int | None, saving: dict[str, Any]) -> MFModel:
    """``alsmf train --scheduler/--workers``: the same training on a Dask cluster, with the
    checkpoint keywords ``saving`` (see :func:`_checkpoint_arguments`)."""
    from distributed import Client

    from alsmf.distributed import local_cluster, train_distributed

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as error:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            return train_distributed(config, prepared.train, prepared.test, client=client,
                                     callback=printer, **saving)
    with local_cluster(workers, threads_per_worker=threads) as cluster, Client(cluster) as client:
        return train_distributed(config, prepared.train, prepared.test, client=client,
                                 callback=printer, **saving)


def _loss_figure(model: MFModel, config: Trainer, method: str, step: str, data_name: str,
                 path: Path) -> Path:
    """The loss figure per ``step`` (iteration, sweep, ...), titled with the method, the data
    and the main settings."""
    from alsmf.plots import plot_history

    labels: dict[str, Any] = {}
    if method == "als":
        title = f"ALS on {data_name}: k={config.factors}, λ={config.reg}"
        labels["phase"] = (config.reg_warmup, "warm-up at λ/2")
    elif method == "bayes":
        title = (f"Bayesian MF (Gibbs) on {data_name}: k={config.factors}, "
                 f"burn-in {config.burn_in}")
        labels["objective_label"] = "squared error of the sweep's draw"
        labels["phase"] = (config.burn_in, "burn-in")
    else:
        title = f"{type(config).__name__} on {data_name}"
        if hasattr(config, "factors"):
            title += f": k={config.factors}"
    return plot_history(model.history, path, title=title, step=step, **labels)


def _count_or_fraction(value: float | None) -> int | float | None:
    """``--sample-users``: a count of users (>= 1) or a fraction of them (< 1)."""
    if value is None:
        return None
    if not value > 0:  # nan too
        raise ConfigError(f"--sample-users must be > 0, got {value:g}")
    if value == math.inf:
        raise ConfigError("--sample-users must be a count or a fraction, got inf")
    return value if value < 1 else int(value)
