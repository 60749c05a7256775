"""What the commands share: option declarations, their enums, and the rule that an input
error is one line on stderr with exit code 2.

An option used by several commands is declared here once, so its flag, default and help read
the same everywhere; options of one command stay with that command.
"""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console

from alsmf.errors import AlsmfError

DEFAULT_OUTPUT = Path("alsmf-output")
"""Where ``alsmf train`` writes its model and loss figure, and the use commands read it."""
COMPARE_OUTPUT = Path("alsmf-compare")
"""Where ``alsmf compare`` writes its figure: apart from the trained model's folder."""


def user_errors(command: Callable) -> Callable:
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


class Duplicates(str, Enum):
    error = "error"
    last = "last"
    mean = "mean"


class Feedback(str, Enum):
    explicit = "explicit"
    implicit = "implicit"


class Search(str, Enum):
    grid = "grid"
    random = "random"


# --------------------------------------------------------------------------- data
# readable=False: alsmf says in one line why an input cannot be read (click would draw a box)
DATA_OPTION = typer.Option(
    None, "--data", readable=False,
    help="MovieLens folder or .zip, or a CSV/TSV/Parquet ratings file.")
TRAIN_FILE_OPTION = typer.Option(
    None, "--train", readable=False,
    help="Training ratings file, e.g. ml-100k u1.base; alone, every rating trains (no test "
    "set).")
TEST_FILE_OPTION = typer.Option(None, "--test", readable=False,
                                help="Test ratings file (with --train).")
SYNTHETIC_OPTION = typer.Option(
    SyntheticShape.ml_100k, "--synthetic",
    help="Synthetic data shaped like this release; the default data when no file is given.")
NOISE_OPTION = typer.Option(0.8, help="σ of the rating noise of synthetic data.")
SPLIT_OPTION = typer.Option(
    "random", help="How to hold out test ratings: random, user (per-user holdout), "
    "temporal (each user's last ratings), or an ml-100k fold u1..u5, ua, ub.")
TEST_FRACTION_OPTION = typer.Option(
    0.2, help="Share of ratings held out (random, user); 0 holds out none: every rating trains "
    "(train only).")
N_LAST_OPTION = typer.Option(1, help="Ratings per user held out by the temporal split.")
FOLDS_OPTION = typer.Option(
    "5", "--folds", help="u1..u5: ml-100k's canonical folds (give --data PATH to ml-100k); "
    "or K: K random folds, each rating tested once.")
MIN_USER_RATINGS_OPTION = typer.Option(None, help="k-core: min ratings per user.")
MIN_ITEM_RATINGS_OPTION = typer.Option(None, help="k-core: min ratings per item.")
TOP_USERS_OPTION = typer.Option(None, help="Keep the N most active users.")
TOP_ITEMS_OPTION = typer.Option(None, help="Keep the M most rated items.")
SAMPLE_USERS_OPTION = typer.Option(
    None, help="Keep a random sample of users: a count (>= 1) or a fraction (< 1).")
USER_COL_OPTION = typer.Option(
    None, help="User column of a generic ratings file (default: the header's user, userId, "
    "user_id or UserID, in any case).")
ITEM_COL_OPTION = typer.Option(
    None, help="Item column of a generic ratings file (default: the header's item, itemId, "
    "item_id, movie, movieId or movie_id, in any case).")
RATING_COL_OPTION = typer.Option(
    None, help="Rating column of a generic ratings file (default: the header's rating, score "
    "or value, in any case).")
DUPLICATES_OPTION = typer.Option(
    Duplicates.error, help="Repeated (user, item) pairs: refuse, keep the last, or average.")

# --------------------------------------------------------------------------- training
SETTINGS_OPTION = typer.Option(
    None, "--settings", help="ALS settings file written by 'alsmf tune --save-settings'.")
THREADS_OPTION = typer.Option(None, help="Threads for the solves (default: all).")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout (progress "
                           "goes to stderr).")

# --------------------------------------------------------------------------- using a model
MODEL_OPTION = typer.Option(DEFAULT_OUTPUT / "model.npz", "--model", "-m",
                            help="Model file written by 'alsmf train'.")
PRINT_JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout.")

