"""The commands that use a trained model: predict, recommend, similar, rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from alsmf.catalog import ItemCatalog
from alsmf.cli.options import MODEL_OPTION, PRINT_JSON_OPTION, user_errors
from alsmf.cli.render import item_label, print_items, print_predictions, print_similar_users
from alsmf.errors import ConfigError
from alsmf.model import Explanation, MFModel, Recommendations
from alsmf.ranking import check_rank_by

EXPLAIN_HELP = ("For each item, show the user's 3 rated items that contributed most to its "
                "predicted rating, in rating points.")
EXPLAINED_ITEMS = 3
RANK_BY_HELP = ("What the list is ranked by: 'score', the model's ranking score (for a rating "
                "model with a ranking head: how likely the user is to pick the item times how "
                "they would rate it), or 'rating', the predicted rating alone.")
RANK_BY_OPTION = typer.Option("score", "--rank-by", help=RANK_BY_HELP)


@user_errors
def predict(
    pairs: list[str] = typer.Argument(None, help="USER,ITEM pairs of raw ids, e.g. 196,242."),
    model_path: Path = MODEL_OPTION,
    input_file: Optional[Path] = typer.Option(
        None, "--input", readable=False,
        help="CSV/TSV file of pairs (first two columns: user, item)."),
    as_json: bool = PRINT_JSON_OPTION,
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
    print_predictions(str(model_path), rows, as_json)


@user_errors
def recommend(
    user: int = typer.Option(..., "--user", "-u", help="Raw user id."),
    n: int = typer.Option(10, "-n", help="How many items."),
    include_seen: bool = typer.Option(False, help="Also list items the user rated."),
    explain: bool = typer.Option(False, "--explain", help=EXPLAIN_HELP),
    rank_by: str = RANK_BY_OPTION,
    model_path: Path = MODEL_OPTION,
    as_json: bool = PRINT_JSON_OPTION,
) -> None:
    """Top-n items for a user, by the model's ranking score (rated items left out by default).

    An unknown user gets the list of a user with nothing rated (a note on stderr says so).
    """
    check_rank_by(rank_by)
    model = MFModel.load(model_path)
    check_count(n)
    if user not in model.user_ids:
        typer.echo(f"note: user {user} is not in the model; listing what a user who rated "
                   "nothing gets", err=True)
    result = model.recommend(user, n, exclude_seen=not include_seen, rank_by=rank_by)
    because = _explanations(model, user, result) if explain else None
    print_items(model, result, f"recommendations for user {user}", as_json,
                score=_score_name(model, rank_by), because=because)


@user_errors
def similar(
    item: Optional[str] = typer.Option(None, "--item", "-i", help="Item id or title fragment."),
    user: Optional[int] = typer.Option(None, "--user", "-u", help="Raw user id."),
    n: int = typer.Option(10, "-n", help="How many."),
    model_path: Path = MODEL_OPTION,
    as_json: bool = PRINT_JSON_OPTION,
) -> None:
    """Items (or users) closest to one item (or user) by cosine in the latent space."""
    model = MFModel.load(model_path)
    check_count(n)
    if (item is None) == (user is None):
        raise ConfigError("give exactly one of --item or --user")
    if item is not None:
        raw = ItemCatalog.from_model(model).resolve(item)
        print_items(model, model.similar_items(raw, n),
                    f"items similar to {item_label(model, raw)}", as_json, score="cosine")
        return
    print_similar_users(user, model.similar_users(user, n), as_json)


@user_errors
def rate(
    ratings: list[str] = typer.Argument(..., help='ITEM=RATING pairs; ITEM is an id or a '
                                        'title fragment, e.g. "Star Wars (1977)=5".'),
    n: int = typer.Option(10, "-n", help="How many recommendations."),
    user: Optional[int] = typer.Option(
        None, "--user", "-u", help="Add the ratings to this trained user's instead of a new "
        "user's (a new rating of an item they rated replaces the old one)."),
    explain: bool = typer.Option(False, "--explain", help=EXPLAIN_HELP),
    rank_by: str = RANK_BY_OPTION,
    model_path: Path = MODEL_OPTION,
    as_json: bool = PRINT_JSON_OPTION,
) -> None:
    """Fold in a user from a few ratings (no retraining) and recommend for them."""
    check_rank_by(rank_by)
    model = MFModel.load(model_path)
    check_count(n)
    catalog = ItemCatalog.from_model(model)
    items, values = [], []
    for text in ratings:
        name, sep, value = text.rpartition("=")
        try:
            rating = float(value)
        except ValueError:
            rating = float("nan")
        if not sep or not name or not np.isfinite(rating):
            raise ConfigError(f"{text!r}: expected ITEM=RATING, e.g. \"Star Wars (1977)=5\"")
        items.append(catalog.resolve(name))
        values.append(rating)
    folded = model.fold_in(items, values, user=user)
    result = model.recommend(folded, n, rank_by=rank_by)
    because = _explanations(model, folded, result) if explain else None
    title = ("recommendations for the new user" if user is None
             else f"recommendations for user {user} with the new ratings")
    print_items(model, result, title, as_json, score=_score_name(model, rank_by),
                because=because)


MAX_LIST = 100_000
"""The longest list a command prints: beyond it a list is a data export, not a recommendation."""


def check_count(n: int) -> None:
    """Refuse a list length below 1 or above :data:`MAX_LIST`."""
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    if n > MAX_LIST:
        raise ConfigError(f"-n must be at most {MAX_LIST:,}, got {n:,}")


def _score_name(model: MFModel, rank_by: str) -> str | None:
    """The column of what a list is ranked by: "score" for a ranking score, none when that
    is the predicted rating (shown as "predicted" anyway)."""
    return None if model.lists_by_rating(rank_by) and model.predicts_ratings else "score"


def _explanations(model: MFModel, user: Any, result: Recommendations) -> list[Explanation]:
    """Why each recommended item scored as it did, for ``--explain``."""
    return [model.explain(user, item, EXPLAINED_ITEMS) for item in result.items]
