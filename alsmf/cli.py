"""The ``alsmf`` command line: parse, call the library, print. No numerics live here.

Errors caused by input (a bad file, a parameter out of range) are printed as one line naming
the problem and where it is, with exit code 2 and no traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alsmf.errors import AlsmfError, ConfigError
from alsmf.model import Explanation, IterationRecord, MFModel, Recommendations
from alsmf.models.bayes import BayesianMF
from alsmf.models.als import ALS

app = typer.Typer(help="Matrix factorization recommender trained by Alternating Least Squares.",
                  no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Get, generate and inspect rating data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DEFAULT_OUTPUT = Path("alsmf-output")


def _user_errors(command: Callable) -> Callable:
    """Turn an AlsmfError into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AlsmfError as error:
            Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {error}",
                                                       highlight=False)
            raise typer.Exit(2) from None

    return run


class SyntheticShape(str, Enum):
    ml_100k = "ml-100k"
    ml_1m = "ml-1m"
    ml_10m = "ml-10m"
    ml_20m = "ml-20m"


class Solver(str, Enum):
    cg = "cg"
    cholesky = "cholesky"


class Method(str, Enum):
    als = "als"
    bayes = "bayes"


class Duplicates(str, Enum):
    error = "error"
    last = "last"
    mean = "mean"


# --------------------------------------------------------------------------- train
@app.command()
@_user_errors
def train(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(
        None, "--data", help="MovieLens folder or .zip, or a CSV/TSV/Parquet ratings file."),
    train_file: Optional[Path] = typer.Option(
        None, "--train", help="Training ratings file (use with --test), e.g. ml-100k u1.base."),
    test_file: Optional[Path] = typer.Option(None, "--test", help="Test ratings file."),
    synthetic: SyntheticShape = typer.Option(
        SyntheticShape.ml_100k, "--synthetic",
        help="Synthetic data shaped like this release; the default data when no file is given."),
    split: str = typer.Option(
        "random", help="How to hold out test ratings: random, user (per-user holdout), "
        "temporal (each user's last ratings), or an ml-100k fold u1..u5, ua, ub."),
    test_fraction: float = typer.Option(0.2, help="Share of ratings held out (random, user)."),
    n_last: int = typer.Option(1, help="Ratings per user held out by the temporal split."),
    min_user_ratings: Optional[int] = typer.Option(None, help="k-core: min ratings per user."),
    min_item_ratings: Optional[int] = typer.Option(None, help="k-core: min ratings per item."),
    top_users: Optional[int] = typer.Option(None, help="Keep the N most active users."),
    top_items: Optional[int] = typer.Option(None, help="Keep the M most rated items."),
    sample_users: Optional[float] = typer.Option(
        None, help="Keep a random sample of users: a count (>= 1) or a fraction (< 1)."),
    user_col: str = typer.Option("user", help="User column of a generic ratings file."),
    item_col: str = typer.Option("item", help="Item column of a generic ratings file."),
    rating_col: str = typer.Option("rating", help="Rating column of a generic ratings file."),
    duplicates: Duplicates = typer.Option(
        Duplicates.error, help="Repeated (user, item) pairs: refuse, keep the last, or average."),
    method: Method = typer.Option(
        Method.als, help="als: alternating least squares; bayes: Bayesian MF by Gibbs sampling "
        "(--sweeps, --burn-in, --samples; predictions average the kept draws; --factors, "
        "--implicit-weight and --implicit-reg apply when typed, else its own defaults)."),
    sweeps: int = typer.Option(BayesianMF.sweeps, help="bayes: Gibbs sweeps in all."),
    burn_in: int = typer.Option(BayesianMF.burn_in, help="bayes: sweeps discarded first."),
    samples: int = typer.Option(BayesianMF.samples, help="bayes: draws the model keeps."),
    settings: Optional[Path] = typer.Option(
        None, "--settings", help="ALS settings from a JSON file ('alsmf tune --save-settings'); "
        "options given on the command line override it."),
    factors: int = typer.Option(ALS.factors, "--factors", "-k", help="Number of latent factors k."),
    reg: float = typer.Option(ALS.reg, help="L2 regularisation λ of the factors."),
    reg_bias: Optional[float] = typer.Option(
        ALS.reg_bias, help="L2 regularisation of the biases (default: the value of --reg)."),
    implicit_weight: float = typer.Option(
        ALS.implicit_weight, help="Weight of the implicit features (who rated what, "
        "co-factorized with the ratings); 0 turns them off."),
    implicit_reg: float = typer.Option(ALS.implicit_reg,
                                       help="L2 regularisation of the implicit factors."),
    iterations: int = typer.Option(ALS.iterations, "--iterations", "-n",
                                   help="Maximum ALS iterations."),
    no_biases: bool = typer.Option(False, "--no-biases", help="Pure P·Qᵀ model, no μ, b_u, b_i."),
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
    threads: Optional[int] = typer.Option(None, help="Threads for the solves (default: all)."),
    scheduler: Optional[str] = typer.Option(
        None, help="Train on the Dask cluster whose scheduler is at this address "
        "(tcp://host:8786); the model is the same as in-process."),
    workers: Optional[int] = typer.Option(
        None, help="Train on a local Dask cluster of this many worker processes."),
    output: Path = typer.Option(DEFAULT_OUTPUT, "--output", "-o",
                                help="Folder for the model file and the loss figure."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Train biased ALS (or Bayesian MF), print the loss per iteration, save the model and the
    loss figure."""
    from alsmf.plots import plot_history
    from alsmf.training.loop import TrainingInterrupted

    console = Console(stderr=as_json, highlight=False, soft_wrap=True)
    given = dict(factors=factors, reg=reg, iterations=iterations, biases=not no_biases,
                 weighted_reg=weighted_reg, tol=tol, seed=seed, solver=solver.value,
                 cg_steps=cg_steps, reg_bias=reg_bias, implicit_weight=implicit_weight,
                 implicit_reg=implicit_reg, reg_warmup=reg_warmup)
    if method is Method.bayes:  # options shared with ALS count only when typed
        typed = {name: given[name] for name in ("factors", "implicit_weight", "implicit_reg")
                 if ctx.get_parameter_source(name).name != "DEFAULT"}
        config = BayesianMF(sweeps=sweeps, burn_in=burn_in, samples=samples, seed=seed, **typed)
    else:
        config = ALS(**_with_settings_file(ctx, given, settings))
    started = time.perf_counter()
    prepared = _prepare_data(
        data=data, train_file=train_file, test_file=test_file, synthetic=synthetic.value,
        split=split, test_fraction=test_fraction, n_last=n_last, seed=seed,
        shrink_options=dict(min_user_ratings=min_user_ratings, min_item_ratings=min_item_ratings,
                            top_users=top_users, top_items=top_items,
                            sample_users=_count_or_fraction(sample_users)),
        read_options=dict(user_col=user_col, item_col=item_col, rating_col=rating_col,
                          duplicates=duplicates.value),
    )
    if not as_json:
        console.print(prepared.describe())
    checkpoint = output / "checkpoint.npz"
    if checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {checkpoint_every}")
    interrupted = None
    rounds = config.sweeps if method is Method.bayes else config.iterations
    if method is Method.bayes and (checkpoint_every or resume or scheduler or workers):
        raise ConfigError("--method bayes trains in-process without checkpoints")
    with _IterationPrinter(console, rounds, show_lines=not as_json) as printer:
        if scheduler is not None or workers is not None:
            if checkpoint_every or resume:
                raise ConfigError("--checkpoint-every and --resume work in-process only; a Dask "
                                  "cluster recomputes what a lost worker held instead")
            model = _train_on_dask(config, prepared, printer, scheduler, workers, threads)
        else:
            saving = {} if method is Method.bayes else dict(
                checkpoint=checkpoint if checkpoint_every or resume else None,
                checkpoint_every=checkpoint_every or config.iterations, resume=resume)
            try:
                model = config.fit(prepared.train, prepared.test, callback=printer,
                                   threads=threads, **saving)
            except TrainingInterrupted as stop:
                model, interrupted = stop.model, stop
    if interrupted is None:
        checkpoint.unlink(missing_ok=True)  # finished: a later --resume starts afresh
    elif not model.history:
        console.print("interrupted before the first iteration finished; nothing saved")
        raise typer.Exit(130)
    if prepared.titles is not None:
        model.attach_titles(*(prepared.titles[c].to_numpy() for c in ("item", "title", "genres")))
    model_path = model.save(output / "model.npz")
    if method is Method.bayes:
        figure_path = plot_history(
            model.history, output / "loss.png", step="sweep",
            objective_label="squared error of the sweep's draw",
            title=f"Bayesian MF (Gibbs) on {prepared.name}: k={config.factors}, "
                  f"burn-in {config.burn_in}")
    else:
        figure_path = plot_history(
            model.history, output / "loss.png",
            title=f"ALS on {prepared.name}: k={config.factors}, λ={config.reg}")
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


def _train_on_dask(config: ALS, prepared: _PreparedData, printer: _IterationPrinter,
                   scheduler: str | None, workers: int | None, threads: int | None) -> MFModel:
    """``alsmf train --scheduler/--workers``: the same training on a Dask cluster."""
    if scheduler is not None and workers is not None:
        raise ConfigError("give --scheduler (an existing cluster) or --workers (a local one), "
                          "not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    from distributed import Client

    from alsmf.distributed import local_cluster, train_distributed

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as error:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            return train_distributed(config, prepared.train, prepared.test, client=client,
                                     callback=printer)
    with local_cluster(workers, threads_per_worker=threads) as cluster, Client(cluster) as client:
        return train_distributed(config, prepared.train, prepared.test, client=client,
                                 callback=printer)


def _with_settings_file(ctx: typer.Context, given: dict[str, Any],
                        settings: Path | None) -> dict[str, Any]:
    """ALS keyword arguments: the settings file's values, except options typed explicitly."""
    if settings is None:
        return given
    from alsmf.evaluation.settings import load_settings

    option_of = {"biases": "no_biases"}
    chosen = dict(given)
    for name, value in load_settings(settings).items():
        source = ctx.get_parameter_source(option_of.get(name, name))
        if source is None or source.name == "DEFAULT":  # not typed: the file decides
            chosen[name] = value
    return chosen


def _count_or_fraction(value: float | None) -> int | float | None:
    if value is None:
        return None
    if value <= 0:
        raise ConfigError(f"--sample-users must be > 0, got {value:g}")
    return value if value < 1 else int(value)


class _PreparedData:
    """The train and test ratings a command trains on, and where they came from."""

    def __init__(self, name: str, train, test, notes: dict[str, Any], titles=None) -> None:
        self.name = name
        # the model covers the ids with training ratings; compacting here, once, lets the
        # uncompacted copy go before training (at 20M ratings: 120 MB less at the peak), and
        # in user order the by-user matrix shares the ratings' arrays (150 MB less)
        self.train = train.compact().in_user_order()
        self.test = test
        self.notes = notes
        self.titles = titles

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "train_ratings": len(self.train),
            "test_ratings": 0 if self.test is None else len(self.test),
            "users": self.train.n_users,
            "items": self.train.n_items,
        } | self.notes

    def describe(self) -> str:
        s = self.summary()
        text = (f"data: {s['source']}: {s['train_ratings']:,} train / {s['test_ratings']:,} test "
                f"ratings, {s['users']:,} users, {s['items']:,} items")
        if "oracle_rmse" in s:
            text += (f"\n      synthetic noise σ = {s['noise']:g}; best achievable test RMSE "
                     f"(true model) = {s['oracle_rmse']:.4f}")
        return text


def _prepare_data(*, data, train_file, test_file, synthetic, split, test_fraction, n_last, seed,
                  shrink_options, read_options) -> _PreparedData:
    """Load (or generate), shrink and split the ratings as the options say."""
    from alsmf.data.filters import shrink
    from alsmf.data.movielens import FOLDS, load_fold, load_ratings
    from alsmf.data.splits import split as split_ratings
    from alsmf.data.synthetic import synthetic_ratings

    if (train_file is None) != (test_file is None):
        raise ConfigError("--train and --test go together: give both files")
    if train_file is not None:
        if data is not None:
            raise ConfigError("give either --data or --train/--test, not both")
        train = load_ratings(train_file, **read_options)
        test = load_ratings(test_file, **read_options)
        return _PreparedData(f"{train_file} / {test_file}", train, test, {})
    notes: dict[str, Any] = {}
    titles = _release_titles(data)
    if data is not None and split in FOLDS:
        train, test = load_fold(data, split)
        return _PreparedData(f"{data} ({split})", train, test, {}, titles)
    if split in FOLDS:
        raise ConfigError(f"--split {split} is an ml-100k fold: give --data PATH to ml-100k")
    if data is not None:  # time is only needed to split by it or keep the latest duplicate
        needs_time = split == "temporal" or read_options.get("duplicates") == "last"
        ratings = load_ratings(data, timestamps=needs_time, **read_options)
        name = str(data)
    else:
        generated = synthetic_ratings(synthetic, seed=seed)
        ratings, name = generated.ratings, f"synthetic {synthetic}"
        notes = {"noise": generated.noise, "oracle_rmse": generated.oracle_rmse}
    if any(value is not None for value in shrink_options.values()):
        ratings = shrink(ratings, seed=seed, **shrink_options)
    train, test = split_ratings(ratings, split, test_fraction=test_fraction, n_last=n_last,
                                seed=seed)
    del ratings  # the whole set goes before _PreparedData reorders the training part
    return _PreparedData(name, train, test, notes, titles)


def _release_titles(data: Path | None):
    """Titles and genres when ``data`` is a MovieLens release with a movies file, else None."""
    from alsmf.data.movielens import detect_release
    from alsmf.data.titles import read_titles

    if data is None:
        return None
    try:
        detect_release(data)
    except AlsmfError:
        return None  # a generic ratings file: no titles
    return read_titles(data)



class _IterationPrinter:
    """Training callback: a progress bar plus one line per iteration."""

    def __init__(self, console: Console, total: int, show_lines: bool) -> None:
        self.console = console
        self.show_lines = show_lines
        self.progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task("train", total=total)

    def __enter__(self) -> _IterationPrinter:
        self.progress.start()
        if self.show_lines:
            self.progress.console.print(
                f"{'iter':>4}  {'objective':>14}  {'train RMSE':>10}  {'test RMSE':>10}  "
                f"{'seconds':>8}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, record: IterationRecord, model: MFModel) -> None:
        self.progress.advance(self.task)
        if self.show_lines:
            test = "-" if record.test_rmse is None else f"{record.test_rmse:.4f}"
            self.progress.console.print(
                f"{record.iteration:>4}  {record.objective:>14.2f}  {record.train_rmse:>10.4f}  "
                f"{test:>10}  {record.seconds:>8.3f}")


# --------------------------------------------------------------------------- predict
@app.command()
@_user_errors
def predict(
    pairs: list[str] = typer.Argument(None, help="USER,ITEM pairs of raw ids, e.g. 196,242."),
    model_path: Path = typer.Option(DEFAULT_OUTPUT / "model.npz", "--model", "-m",
                                    help="Model file written by 'alsmf train'."),
    input_file: Optional[Path] = typer.Option(
        None, "--input", help="CSV/TSV file of pairs (first two columns: user, item)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Score user/item pairs with a trained model (unknown ids get the documented fallback)."""
    from alsmf.data.pairs import parse_pairs, read_pairs

    model = MFModel.load(model_path)
    if input_file is not None:
        users, items = read_pairs(input_file)
    elif pairs:
        users, items = parse_pairs(pairs)
    else:
        raise ConfigError("give USER,ITEM pairs or --input FILE")
    scores = model.predict(users, items)
    known_user = np.isin(users, model.user_ids)
    known_item = np.isin(items, model.item_ids)
    rows = [{"user": int(u), "item": int(i), "prediction": float(s),
             "known_user": bool(ku), "known_item": bool(ki)}
            for u, i, s, ku, ki in zip(users, items, scores, known_user, known_item)]
    if as_json:
        print(json.dumps({"model": str(model_path), "predictions": rows}, indent=2))
        return
    table = Table("user", "item", "prediction", "note")
    for row in rows:
        note = "" if row["known_user"] and row["known_item"] else "fallback: unknown " + " and ".join(
            side for side in ("user", "item") if not row[f"known_{side}"])
        table.add_row(str(row["user"]), str(row["item"]), f"{row['prediction']:.3f}", note)
    Console().print(table)


# --------------------------------------------------------------------------- using a model
MODEL_OPTION = typer.Option(DEFAULT_OUTPUT / "model.npz", "--model", "-m",
                            help="Model file written by 'alsmf train'.")
EXPLAIN_HELP = ("For each item, show the user's 3 rated items that contributed most to its "
                "predicted rating, in rating points.")
EXPLAINED_ITEMS = 3


@app.command()
@_user_errors
def recommend(
    user: int = typer.Option(..., "--user", "-u", help="Raw user id."),
    n: int = typer.Option(10, "-n", help="How many items."),
    include_seen: bool = typer.Option(False, help="Also list items the user rated."),
    explain: bool = typer.Option(False, "--explain", help=EXPLAIN_HELP),
    model_path: Path = MODEL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Top-n items for a user, by predicted rating (rated items left out by default)."""
    model = MFModel.load(model_path)
    _check_count(n)
    result = model.recommend(user, n, exclude_seen=not include_seen)
    because = _explanations(model, user, result) if explain else None
    _print_items(model, result, f"recommendations for user {user}", as_json, because=because)


@app.command()
@_user_errors
def similar(
    item: Optional[str] = typer.Option(None, "--item", "-i", help="Item id or title fragment."),
    user: Optional[int] = typer.Option(None, "--user", "-u", help="Raw user id."),
    n: int = typer.Option(10, "-n", help="How many."),
    model_path: Path = MODEL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Items (or users) closest to one item (or user) by cosine in the latent space."""
    model = MFModel.load(model_path)
    _check_count(n)
    if (item is None) == (user is None):
        raise ConfigError("give exactly one of --item or --user")
    if item is not None:
        raw = _resolve_item(model, item)
        _print_items(model, model.similar_items(raw, n),
                     f"items similar to {_item_label(model, raw)}", as_json, score="cosine")
        return
    result = model.similar_users(user, n)
    if as_json:
        print(json.dumps({"user": user, "similar_users": [
            {"user": int(u), "cosine": float(c)} for u, c in zip(result.items, result.scores)]}))
        return
    heading = f"users similar to user {user}"
    table = Table("user", "cosine", title=heading, min_width=len(heading))
    for u, c in zip(result.items, result.scores):
        table.add_row(str(u), f"{c:.3f}")
    Console().print(table)


@app.command()
@_user_errors
def rate(
    ratings: list[str] = typer.Argument(..., help='ITEM=RATING pairs; ITEM is an id or a '
                                        'title fragment, e.g. "Star Wars (1977)=5".'),
    n: int = typer.Option(10, "-n", help="How many recommendations."),
    user: Optional[int] = typer.Option(
        None, "--user", "-u", help="Add the ratings to this trained user's instead of a new "
        "user's (a new rating of an item they rated replaces the old one)."),
    explain: bool = typer.Option(False, "--explain", help=EXPLAIN_HELP),
    model_path: Path = MODEL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Fold in a user from a few ratings (no retraining) and recommend for them."""
    model = MFModel.load(model_path)
    _check_count(n)
    items, values = [], []
    for text in ratings:
        name, sep, value = text.rpartition("=")
        try:
            rating = float(value)
        except ValueError:
            rating = float("nan")
        if not sep or not name or not np.isfinite(rating):
            raise ConfigError(f"{text!r}: expected ITEM=RATING, e.g. \"Star Wars (1977)=5\"")
        items.append(_resolve_item(model, name))
        values.append(rating)
    folded = model.fold_in(items, values, user=user)
    result = model.recommend(folded, n)
    because = _explanations(model, folded, result) if explain else None
    title = ("recommendations for the new user" if user is None
             else f"recommendations for user {user} with the new ratings")
    _print_items(model, result, title, as_json, because=because)


def _check_count(n: int) -> None:
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")


def _resolve_item(model: MFModel, text: str) -> int:
    """A raw item id from an id or, when the model has titles, a title fragment."""
    text = text.strip()
    if text.lstrip("-").isdigit() and int(text) in model.item_ids:
        return int(text)
    if model.item_titles is None:
        raise ConfigError(f"unknown item {text!r} (this model has no titles to search)")
    import pandas as pd

    from alsmf.data.titles import find_items

    frame = pd.DataFrame({"item": model.item_ids, "title": model.item_titles,
                          "genres": model.item_genres})
    matches = find_items(frame, text)
    if len(matches) == 0:
        raise ConfigError(f"no item matches {text!r}")
    exact = matches["title"].str.lower() == text.lower()
    if len(matches) > 1 and not exact.iloc[0]:
        shown = "; ".join(matches["title"].head(5))
        raise ConfigError(f"{text!r} matches {len(matches)} items ({shown}...): be more precise")
    return int(matches["item"].iloc[0])


def _item_label(model: MFModel, item: int) -> str:
    if model.item_titles is None:
        return f"item {item}"
    return f"{model.item_titles[np.searchsorted(model.item_ids, item)]} (item {item})"


def _explanations(model: MFModel, user: Any, result: Recommendations) -> list[Explanation]:
    """Why each recommended item scored as it did, for ``--explain``."""
    return [model.explain(user, item, EXPLAINED_ITEMS) for item in result.items]


def _print_items(model: MFModel, result: Recommendations, title: str, as_json: bool,
                 score: str = "predicted", because: list[Explanation] | None = None) -> None:
    """A ranked list of items as a table, or as JSON; with the explanations when given."""
    rows = [{"rank": rank, "item": int(item), score: float(value)} | _title_fields(model, item)
            for rank, (item, value) in enumerate(zip(result.items, result.scores), start=1)]
    for row, explanation in zip(rows, because or []):
        row["baseline"] = explanation.baseline
        row["because"] = _contributors(model, explanation)
    if as_json:
        print(json.dumps({"title": title, "items": rows}, indent=2))
        return
    columns = list(rows[0].keys()) if rows else ["rank", "item", score]
    columns = [column for column in columns if column != "baseline"]
    table = Table(*("because you rated" if c == "because" else c for c in columns),
                  title=title, min_width=len(title))
    for row in rows:
        table.add_row(*(_cell(row[column]) for column in columns))
    Console().print(table)


def _contributors(model: MFModel, explanation: Explanation) -> list[dict[str, Any]]:
    """The explanation's rated items as JSON-ready rows, with titles when the model has them."""
    rows = []
    for item, rating, contribution in zip(explanation.items, explanation.ratings,
                                          explanation.contributions):
        row = {"item": int(item), "rating": float(rating), "contribution": float(contribution)}
        if model.item_titles is not None:
            row["title"] = _title_fields(model, item)["title"]
        rows.append(row)
    return rows


def _title_fields(model: MFModel, item: int) -> dict[str, str]:
    """``title`` and ``genres`` of a raw item id when the model has titles, else nothing."""
    if model.item_titles is None:
        return {}
    position = np.searchsorted(model.item_ids, item)
    return {"title": str(model.item_titles[position]), "genres": str(model.item_genres[position])}


def _cell(value: Any) -> str:
    """A table cell: floats to 3 decimals, explanations one rated item per line."""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return "\n".join(f"{entry.get('title') or 'item ' + str(entry['item'])} "
                         f"(rated {entry['rating']:g}): {entry['contribution']:+.2f}"
                         for entry in value)
    return str(value)


# --------------------------------------------------------------------------- data
@data_app.command("download")
@_user_errors
def data_download(
    name: str = typer.Argument(..., help="Release name, e.g. ml-100k, ml-1m, ml-20m."),
    cache: Optional[Path] = typer.Option(None, help="Cache folder (default: $ALSMF_DATA or "
                                         "~/.cache/alsmf)."),
    base_url: Optional[str] = typer.Option(None, help="Mirror to download from."),
    force: bool = typer.Option(False, help="Download again even if already present."),
) -> None:
    """Download a MovieLens release from GroupLens, verify its checksum and extract it."""
    from alsmf.data.download import download_release

    console = Console(stderr=True)
    with Progress(TextColumn(f"downloading {name}"), BarColumn(), TextColumn("{task.completed:,} B"),
                  console=console, transient=True) as progress:
        task = progress.add_task(name, total=None)

        def report(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        folder = download_release(name, cache_dir=cache, base_url=base_url, progress=report,
                                  force=force)
    print(folder)


@data_app.command("synthetic")
@_user_errors
def data_synthetic(
    output: Path = typer.Argument(..., help="File to write (.csv or .parquet)."),
    like: SyntheticShape = typer.Option(SyntheticShape.ml_100k, help="Release to imitate."),
    noise: float = typer.Option(0.8, help="Standard deviation σ of the rating noise."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Write synthetic ratings shaped like a MovieLens release (user,item,rating,timestamp)."""
    from alsmf.data.synthetic import synthetic_ratings

    generated = synthetic_ratings(like.value, noise=noise, seed=seed)
    frame = generated.ratings.to_frame()
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".parquet":
        frame.to_parquet(output, index=False)
    elif output.suffix in (".csv", ".tsv"):
        frame.to_csv(output, index=False, sep="\t" if output.suffix == ".tsv" else ",")
    else:
        raise ConfigError(f"{output}: choose a .csv, .tsv or .parquet file name")
    print(f"{output}: {len(frame):,} ratings; noise σ = {generated.noise:g}, best achievable "
          f"RMSE = {generated.oracle_rmse:.4f}")


@data_app.command("info")
@_user_errors
def data_info(
    path: Path = typer.Argument(..., help="MovieLens folder/zip or ratings file."),
) -> None:
    """Describe a ratings file: counts, density, rating scale and distribution."""
    from alsmf.data.movielens import load_ratings

    ratings = load_ratings(path)
    users, items = ratings.user_counts(), ratings.item_counts()
    table = Table("", "value", title=str(path), min_width=len(str(path)))
    table.add_row("ratings", f"{len(ratings):,}")
    table.add_row("users", f"{ratings.n_users:,}")
    table.add_row("items", f"{ratings.n_items:,}")
    table.add_row("density", f"{len(ratings) / (ratings.n_users * ratings.n_items):.4%}")
    table.add_row("ratings per user (min/median/max)",
                  f"{users.min()} / {np.median(users):g} / {users.max()}")
    table.add_row("ratings per item (min/median/max)",
                  f"{items.min()} / {np.median(items):g} / {items.max()}")
    table.add_row("rating mean / sd", f"{ratings.values.mean():.3f} / {ratings.values.std():.3f}")
    Console().print(table)


# --------------------------------------------------------------------------- evaluation
FOLDS_OPTION = typer.Option(
    "5", "--folds", help="u1..u5: ml-100k's canonical folds (give --data PATH to ml-100k); "
    "or K: K random folds, each rating tested once.")
SETTINGS_OPTION = typer.Option(
    None, "--settings", help="ALS settings file written by 'alsmf tune --save-settings'.")
SET_OPTION = typer.Option(
    None, "--set", help="Set any ALS field, NAME=VALUE (repeatable), e.g. --set reg_bias=0.05 "
    "--set weighted_reg=false.")
NOISE_OPTION = typer.Option(0.8, help="σ of the rating noise of synthetic data.")
SYNTHETIC_OPTION = typer.Option(
    SyntheticShape.ml_100k, "--synthetic",
    help="Synthetic data shaped like this release; the default data when no file is given.")
DATA_OPTION = typer.Option(
    None, "--data", help="MovieLens folder or .zip, or a CSV/TSV/Parquet ratings file.")
USER_COL_OPTION = typer.Option("user", help="User column of a generic ratings file.")
ITEM_COL_OPTION = typer.Option("item", help="Item column of a generic ratings file.")
RATING_COL_OPTION = typer.Option("rating", help="Rating column of a generic ratings file.")
DUPLICATES_OPTION = typer.Option(
    Duplicates.error, help="Repeated (user, item) pairs: refuse, keep the last, or average.")
THREADS_OPTION = typer.Option(None, help="Threads for the solves (default: all).")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout (progress "
                           "goes to stderr).")


class Search(str, Enum):
    grid = "grid"
    random = "random"


@app.command()
@_user_errors
def evaluate(
    data: Optional[Path] = DATA_OPTION,
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    noise: float = NOISE_OPTION,
    folds: str = FOLDS_OPTION,
    user_col: str = USER_COL_OPTION,
    item_col: str = ITEM_COL_OPTION,
    rating_col: str = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
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
    threads: Optional[int] = THREADS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Cross-validate ALS: RMSE, MAE and top-N ranking metrics per fold, with mean and std."""
    from alsmf.evaluation.crossval import cross_validate
    from alsmf.evaluation.tables import crossval_table

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    config = _als_config(settings, assignments, factors=factors, reg=reg, iterations=iterations)
    fold_list, source = _evaluation_folds(data, synthetic, noise, folds, seed, dict(
        user_col=user_col, item_col=item_col, rating_col=rating_col, duplicates=duplicates.value))
    with _fit_progress("cross-validating", len(fold_list)) as progress:
        result = cross_validate(config, fold_list, k=top, threshold=threshold, threads=threads,
                                progress=progress)
    if as_json:
        print(json.dumps({"data": source, "k": top, "threshold": threshold}
                         | result.to_dict(), indent=2))
        return
    Console().print(crossval_table(result, top, f"ALS on {source['source']}"))


@app.command()
@_user_errors
def tune(
    data: Optional[Path] = DATA_OPTION,
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    noise: float = NOISE_OPTION,
    folds: str = FOLDS_OPTION,
    user_col: str = USER_COL_OPTION,
    item_col: str = ITEM_COL_OPTION,
    rating_col: str = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
    params: Optional[list[str]] = typer.Option(
        None, "--param", "-p", help="An ALS field to search (repeatable): NAME=V1,V2,... or, for "
        "--search random, NAME=log:LOW:HIGH (log-uniform), uniform:LOW:HIGH or int:LOW:HIGH. "
        "'iterations' takes a list of counts, all scored by one fit. Default: k, λ and "
        "iterations."),
    search: Search = typer.Option(Search.grid, help="grid: every combination; random: "
                                  "--trials draws."),
    trials: int = typer.Option(20, help="Settings drawn by a random search."),
    validation_fraction: float = typer.Option(
        0.1, help="Share of each training fold held out to choose the settings."),
    settings: Optional[Path] = SETTINGS_OPTION,
    assignments: Optional[list[str]] = SET_OPTION,
    save_settings: Optional[Path] = typer.Option(
        None, "--save-settings", help="Write the settings of lowest mean validation RMSE to "
        "this JSON file, for 'alsmf train --settings FILE'."),
    seed: int = typer.Option(0, help="Seed for the folds, validation splits, draws and data."),
    threads: Optional[int] = THREADS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Nested tuning: choose ALS settings on validation data, report their test RMSE.

    The validation data is carved from each training fold; the fold's test part never reaches
    training and scores only the chosen settings.
    """
    from dataclasses import replace

    from alsmf.evaluation.settings import save_settings as write_settings
    from alsmf.evaluation.space import parse_setting, space_to_json
    from alsmf.evaluation.tables import trials_table, tuning_table
    from alsmf.evaluation.tuning import DEFAULT_SPACES, Tuner

    base = _als_config(settings, assignments)
    space = dict(parse_setting(text) for text in params) if params else DEFAULT_SPACES[search.value]
    tuner = Tuner(base, space, search.value, trials, validation_fraction, seed)
    fold_list, source = _evaluation_folds(data, synthetic, noise, folds, seed, dict(
        user_col=user_col, item_col=item_col, rating_col=rating_col, duplicates=duplicates.value))
    with _fit_progress("tuning", tuner.fits(len(fold_list))) as progress:
        result = tuner.run(fold_list, threads=threads, progress=progress)
    best = replace(base, **result.best).params()
    report = {"data": source, "space": space_to_json(space)} | result.to_dict()
    if save_settings is not None:
        report["settings_file"] = str(write_settings(save_settings, best, {
            "data": source, "method": search.value, "space": report["space"],
            "best": result.best, "nested_test_rmse": report["test_rmse"]}))
    if as_json:
        print(json.dumps(report | {"settings": best}, indent=2))
        return
    console = Console()
    console.print(tuning_table(result, f"nested {search.value} search on {source['source']}"))
    console.print(trials_table(result, 5, "best settings by mean validation RMSE"))
    if "settings_file" in report:
        console.print(f"settings saved to {report['settings_file']}")


@app.command("compare")
@_user_errors
def compare_methods(
    data: Optional[Path] = DATA_OPTION,
    train_file: Optional[Path] = typer.Option(
        None, "--train", help="Training ratings file (use with --test), e.g. ml-100k u1.base."),
    test_file: Optional[Path] = typer.Option(None, "--test", help="Test ratings file."),
    synthetic: SyntheticShape = SYNTHETIC_OPTION,
    split: str = typer.Option(
        "random", help="How to hold out test ratings: random, user, temporal, or an ml-100k "
        "fold u1..u5, ua, ub."),
    test_fraction: float = typer.Option(0.2, help="Share of ratings held out (random, user)."),
    user_col: str = USER_COL_OPTION,
    item_col: str = ITEM_COL_OPTION,
    rating_col: str = RATING_COL_OPTION,
    duplicates: Duplicates = DUPLICATES_OPTION,
    methods: Optional[str] = typer.Option(
        None, help="Comma-separated methods: als, bayes, sgd, svd, bias, mean, gd (default: als, "
        "sgd, svd, bias)."),
    factors: Optional[int] = typer.Option(None, "--factors", "-k", help="k for every method "
                                          "with factors (default: each method's own)."),
    assignments: Optional[list[str]] = typer.Option(
        None, "--set", help="METHOD.NAME=VALUE (repeatable), e.g. --set sgd.epochs=40."),
    seed: int = typer.Option(0, help="Seed for the split and the synthetic data."),
    threads: Optional[int] = THREADS_OPTION,
    output: Path = typer.Option(DEFAULT_OUTPUT, "--output", "-o",
                                help="Folder for the figure compare.png."),
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
    prepared = _prepare_data(
        data=data, train_file=train_file, test_file=test_file, synthetic=synthetic.value,
        split=split, test_fraction=test_fraction, n_last=1, seed=seed, shrink_options={},
        read_options=dict(user_col=user_col, item_col=item_col, rating_col=rating_col,
                          duplicates=duplicates.value))
    with _fit_progress("comparing", len(trainers)) as progress:
        runs = compare(trainers, prepared.train, prepared.test, threads=threads,
                       progress=progress)
    figure = plot_comparison(runs, output / "compare.png", f"test RMSE on {prepared.name}")
    if as_json:
        print(json.dumps({"data": prepared.summary(), "methods": [r.to_dict() for r in runs],
                          "figure": str(figure)}, indent=2))
        return
    console = Console()
    console.print(prepared.describe())
    console.print(comparison_table(runs, f"methods on {prepared.name}"))
    console.print(f"figure in {figure}")


def _als_config(settings_file: Path | None, assignments: list[str] | None, **explicit: Any):
    """ALS from a settings file, then ``--set`` fields, then the options given explicitly."""
    from alsmf.evaluation.settings import load_settings
    from alsmf.evaluation.space import configure, parse_assignment
    from alsmf.models.als import ALS

    chosen = load_settings(settings_file) if settings_file is not None else {}
    chosen |= dict(parse_assignment(text) for text in assignments or [])
    chosen |= {name: value for name, value in explicit.items() if value is not None}
    return configure(ALS, chosen, "ALS settings")


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


def _evaluation_folds(data: Path | None, synthetic: SyntheticShape, noise: float, folds: str,
                      seed: int, read_options: dict[str, Any]) -> tuple[list, dict[str, Any]]:
    """The folds ``--folds`` asks for, and a JSON-ready description of the data."""
    from alsmf.data.movielens import load_ratings
    from alsmf.data.synthetic import synthetic_ratings
    from alsmf.evaluation.folds import movielens_folds, parse_folds, random_folds

    choice = parse_folds(folds)
    if choice == "u1..u5":
        if data is None:
            raise ConfigError("--folds u1..u5 are ml-100k's folds: give --data PATH to ml-100k")
        return movielens_folds(data), {"source": f"{data} (u1..u5)"}
    if data is not None:
        ratings = load_ratings(data, timestamps=read_options["duplicates"] == "last",
                               **read_options)
        source: dict[str, Any] = {"source": str(data)}
    else:
        generated = synthetic_ratings(synthetic.value, noise=noise, seed=seed)
        ratings = generated.ratings
        source = {"source": f"synthetic {synthetic.value}", "noise": generated.noise,
                  "oracle_rmse": generated.oracle_rmse}
    return random_folds(ratings, choice, seed), source | {"ratings": len(ratings), "folds": choice}


class _fit_progress:
    """A progress bar on stderr advanced after each fit; yields the advance function."""

    def __init__(self, label: str, total: int) -> None:
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.description}"),
                                 console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("", total=total)

    def __enter__(self) -> Callable[[str], None]:
        self.progress.start()
        return self.advance

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, description: str) -> None:
        self.progress.update(self.task, advance=1, description=description)


def main() -> None:
    """Entry point of the ``alsmf`` command."""
    app()


if __name__ == "__main__":
    sys.exit(main())
