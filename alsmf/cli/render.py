"""How the commands show results: tables, ranked item lists with their explanations, JSON,
and the progress bars on stderr.

Every function here only formats what the library computed; JSON goes to stdout with
``print`` so that it stays pure JSON, tables go through rich.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alsmf.data.ratings import Ratings
from alsmf.model import Explanation, IterationRecord, MFModel, Recommendations


def describe_data(summary: dict[str, Any]) -> str:
    """The "data: ..." line of ``train`` and ``compare`` from a data summary (which says when
    every rating trains), plus the noise line of synthetic data."""
    split = (f"{summary['train_ratings']:,} train / {summary['test_ratings']:,} test ratings"
             if summary["test_ratings"] else
             f"{summary['train_ratings']:,} ratings, all for training (no test set)")
    text = (f"data: {summary['source']}: {split}, {summary['users']:,} users, "
            f"{summary['items']:,} items")
    if "oracle_rmse" in summary:
        text += (f"\n      synthetic noise σ = {summary['noise']:g}; best achievable test RMSE "
                 f"(true model) = {summary['oracle_rmse']:.4f}")
    return text


class IterationPrinter:
    """Training callback: a progress bar plus one line per iteration."""

    def __init__(self, console: Console, total: int, show_lines: bool) -> None:
        self.console = console
        self.show_lines = show_lines
        self.progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task("train", total=total)

    def __enter__(self) -> IterationPrinter:
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


class fit_progress:
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


@contextmanager
def download_progress(name: str) -> Iterator[Callable[[int, int | None], None]]:
    """A byte counter on stderr for a download; yields the ``progress(done, total)`` callback
    that :func:`alsmf.data.download.download_release` calls. Off a terminal it shows nothing
    (it would leave an empty line before an error's one line)."""
    console = Console(stderr=True)
    with Progress(TextColumn(f"downloading {name}"), BarColumn(),
                  TextColumn("{task.completed:,} B"), console=console, transient=True,
                  disable=not console.is_terminal) as progress:
        task = progress.add_task(name, total=None)

        def report(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield report


def print_predictions(model_path: str, rows: list[dict[str, Any]], as_json: bool) -> None:
    """``predict``'s scored pairs, noting which fell back for an unknown user or item."""
    if as_json:
        print(json.dumps({"model": model_path, "predictions": rows}, indent=2))
        return
    table = Table("user", "item", "prediction", "note")
    for row in rows:
        unknown = [side for side in ("user", "item") if not row[f"known_{side}"]]
        note = "fallback: unknown " + " and ".join(unknown) if unknown else ""
        table.add_row(str(row["user"]), str(row["item"]), f"{row['prediction']:.3f}", note)
    Console().print(table)


def print_similar_users(user: int, result: Recommendations, as_json: bool) -> None:
    """``similar --user``: the nearest users and their cosines."""
    if as_json:
        print(json.dumps({"user": user, "similar_users": [
            {"user": int(u), "cosine": float(c)} for u, c in zip(result.items, result.scores)]}))
        return
    heading = f"users similar to user {user}"
    table = Table("user", "cosine", title=heading, min_width=len(heading))
    for u, c in zip(result.items, result.scores):
        table.add_row(str(u), f"{c:.3f}")
    Console().print(table)


def ratings_info(ratings: Ratings) -> dict[str, Any]:
    """What ``data info`` reports: counts, density, ratings per user and item, the rating
    scale, mean and spread, and the distribution of the rating values (the share of each
    distinct value, or of ten equal bins when there are more than 20 distinct values)."""
    users, items = ratings.user_counts(), ratings.item_counts()
    values = ratings.values.astype(np.float64)
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) <= 20:
        distribution = {f"{v:g}": int(c) for v, c in zip(distinct, counts)}
    else:
        counts, edges = np.histogram(values, bins=10)
        distribution = {f"{lo:g} to {hi:g}": int(c)
                        for lo, hi, c in zip(edges[:-1], edges[1:], counts)}
    return {
        "ratings": len(ratings), "users": ratings.n_users, "items": ratings.n_items,
        "density": len(ratings) / (ratings.n_users * ratings.n_items),
        "ratings_per_user": {"min": int(users.min()), "median": float(np.median(users)),
                             "max": int(users.max())},
        "ratings_per_item": {"min": int(items.min()), "median": float(np.median(items)),
                             "max": int(items.max())},
        "scale": [float(values.min()), float(values.max())],
        "mean": float(values.mean()), "sd": float(values.std()),
        "distribution": distribution,
    }


def print_ratings_info(title: str, ratings: Ratings, as_json: bool = False) -> None:
    """``data info``: :func:`ratings_info` as a table, or as JSON."""
    info = ratings_info(ratings)
    if as_json:
        print(json.dumps({"source": title} | info, indent=2))
        return
    table = Table("", "value", title=title, min_width=len(title))
    table.add_row("ratings", f"{info['ratings']:,}")
    table.add_row("users", f"{info['users']:,}")
    table.add_row("items", f"{info['items']:,}")
    table.add_row("density", f"{info['density']:.4%}")
    for side in ("user", "item"):
        spread = info[f"ratings_per_{side}"]
        table.add_row(f"ratings per {side} (min/median/max)",
                      f"{spread['min']} / {spread['median']:g} / {spread['max']}")
    table.add_row("rating scale (lowest/highest)", " / ".join(f"{v:g}" for v in info["scale"]))
    table.add_row("rating mean / sd", f"{info['mean']:.3f} / {info['sd']:.3f}")
    total = info["ratings"]
    table.add_row("distribution", "\n".join(f"{value}: {count:,} ({count / total:.1%})"
                                            for value, count in info["distribution"].items()))
    Console().print(table)


def item_label(model: MFModel, item: int) -> str:
    """"TITLE (item ID)" when the model has titles, else "item ID"."""
    if model.item_titles is None:
        return f"item {item}"
    return f"{model.item_titles[np.searchsorted(model.item_ids, item)]} (item {item})"


def print_items(model: MFModel, result: Recommendations, title: str, as_json: bool,
                score: str | None = "score", because: list[Explanation] | None = None) -> None:
    """A ranked list of items as a table, or as JSON; with the explanations when given.

    Each row shows what the list is ranked by under the name ``score`` (None: not shown, when
    it is the predicted rating itself) and the predicted rating, where the result has them.
    """
    rows = []
    for rank, position in enumerate(range(len(result.items)), start=1):
        item = result.items[position]
        row: dict[str, Any] = {"rank": rank, "item": int(item)}
        if score is not None:
            row[score] = float(result.scores[position])
        if result.ratings is not None:
            row["predicted"] = float(result.ratings[position])
        rows.append(row | _title_fields(model, item))
    for row, explanation in zip(rows, because or []):
        row["baseline"] = explanation.baseline
        row["because"] = _contributors(model, explanation)
    if as_json:
        print(json.dumps({"title": title, "items": rows}, indent=2))
        return
    columns = list(rows[0].keys()) if rows else ["rank", "item"]
    # the reasons need the width: a table with them leaves the genres to --json, and shows the
    # baseline as the first line of the reasons
    hidden = {"baseline", "genres"} if because else {"baseline"}
    columns = [column for column in columns if column not in hidden]
    table = Table(*("because you rated" if c == "because" else c for c in columns),
                  title=title, min_width=len(title))
    for row in rows:
        table.add_row(*(_reasons(row) if column == "because" else _cell(row[column])
                        for column in columns))
    Console().print(table)


def _contributors(model: MFModel, explanation: Explanation) -> list[dict[str, Any]]:
    """The explanation's rated items as JSON-ready rows, with titles when the model has them."""
    rows = []
    for item, rating, contribution in zip(explanation.items, explanation.ratings,
                                          explanation.contributions):
        usual = model.global_mean + float(model.item_bias[np.searchsorted(model.item_ids, item)])
        row = {"item": int(item), "rating": float(rating), "item_baseline": usual,
               "contribution": float(contribution)}
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
    """A table cell: floats to 3 decimals."""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _reasons(row: dict[str, Any]) -> str:
    """An explanation as table lines: the baseline (what everyone is predicted for the item),
    then each rated item with how far the user's rating is from what that item usually gets
    and the points it adds. A rating below an item's usual adds points to items unlike it, so
    a film rated 1 can be a reason for another; the distance makes that readable."""
    lines = [f"baseline {row['baseline']:.2f}"]
    for entry in row["because"]:
        name = entry.get("title") or f"item {entry['item']}"
        gap = entry["rating"] - entry["item_baseline"]
        side = "above" if gap >= 0 else "below"
        lines.append(f"{name} (rated {entry['rating']:g}, {abs(gap):.1f} {side} its usual): "
                     f"{entry['contribution']:+.2f}")
    return "\n".join(lines)
