"""Filters that shrink a ratings set so that it trains quickly on a PC.

Each filter returns a new, compacted :class:`~alsmf.data.ratings.Ratings` (only users and
items that still have ratings stay in the id maps). :func:`shrink` chains them in one fixed,
documented order. All work on whole arrays (``bincount``, masks), never per user in Python,
so they run in seconds on MovieLens 20M.

A filter that would leave no rating raises :class:`~alsmf.errors.DataError` naming the filter
and the sizes before it; an argument out of range raises :class:`~alsmf.errors.ConfigError`.
"""

from __future__ import annotations

import numbers

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError, DataError


def k_core(ratings: Ratings, min_user_ratings: int = 1, min_item_ratings: int = 1) -> Ratings:
    """Keep the largest subset where every user and every item has enough ratings.

    Dropping a sparse item can push a user under its threshold and the other way round, so
    the filter repeats until nothing changes: the result is a fixed point, and running
    ``k_core`` on it again returns the same ratings.

    Raises:
        ConfigError: a threshold is not a positive integer.
        DataError: no rating survives.
    """
    check_count("min_user_ratings", min_user_ratings)
    check_count("min_item_ratings", min_item_ratings)
    rows = np.arange(len(ratings))
    users, items = ratings.users, ratings.items
    while True:
        user_counts = np.bincount(users, minlength=ratings.n_users)
        item_counts = np.bincount(items, minlength=ratings.n_items)
        keep = (user_counts[users] >= min_user_ratings) & (item_counts[items] >= min_item_ratings)
        if keep.all():
            break
        rows, users, items = rows[keep], users[keep], items[keep]
    what = f"k-core (min_user_ratings={min_user_ratings}, min_item_ratings={min_item_ratings})"
    return _keep_rows(ratings, rows, what)


def top_users(ratings: Ratings, n: int) -> Ratings:
    """Keep the ratings of the ``n`` users with the most ratings (ties: lower index first)."""
    check_count("n", n)
    keep = _top(ratings.user_counts(), n)[ratings.users]
    return _keep_rows(ratings, keep, f"top_users (n={n})")


def top_items(ratings: Ratings, m: int) -> Ratings:
    """Keep the ratings of the ``m`` most rated items (ties: lower index first)."""
    check_count("m", m)
    keep = _top(ratings.item_counts(), m)[ratings.items]
    return _keep_rows(ratings, keep, f"top_items (m={m})")


def sample_users(
    ratings: Ratings, n: int | None = None, fraction: float | None = None, seed: int = 0
) -> Ratings:
    """Keep all ratings of a random sample of users, drawn without replacement.

    Give exactly one of ``n`` (a count; all users are kept when there are fewer) or
    ``fraction`` in (0, 1] (rounded, at least one user). Users without ratings are never drawn.

    Raises:
        ConfigError: both or neither of ``n`` and ``fraction``, or one is out of range.
    """
    if (n is None) == (fraction is None):
        raise ConfigError("sample_users: give exactly one of n (a count) or fraction")
    active = np.flatnonzero(ratings.user_counts())
    if n is not None:
        check_count("n", n)
        size = min(n, len(active))
        what = f"sample_users (n={n})"
    else:
        if not 0 < fraction <= 1:
            raise ConfigError(f"sample_users: fraction must be in (0, 1], got {fraction}")
        size = max(1, round(fraction * len(active)))
        what = f"sample_users (fraction={fraction})"
    chosen = np.zeros(ratings.n_users, dtype=bool)
    chosen[np.random.default_rng(seed).choice(active, size=size, replace=False)] = True
    return _keep_rows(ratings, chosen[ratings.users], what)


def shrink(
    ratings: Ratings,
    *,
    min_user_ratings: int | None = None,
    min_item_ratings: int | None = None,
    top_users: int | None = None,
    top_items: int | None = None,
    sample_users: int | float | None = None,
    seed: int = 0,
) -> Ratings:
    """Apply the requested filters in a fixed order; ``None`` skips a filter.

    The order is: 1. ``sample_users`` (an ``int`` is a count of users, a ``float`` a fraction
    in (0, 1]), 2. ``top_users``, 3. ``top_items``, 4. k-core with ``min_user_ratings`` and
    ``min_item_ratings``. The k-core comes last because the earlier filters can leave users or
    items with few ratings; running it last guarantees the thresholds hold in the result.

    Raises:
        ConfigError: an argument is out of range (see the single filters).
        DataError: a filter removed every rating; the message names it.
    """
    if sample_users is not None:
        if isinstance(sample_users, bool) or not isinstance(sample_users, numbers.Real):
            raise ConfigError(f"sample_users must be a count or a fraction, got {sample_users!r}")
        if isinstance(sample_users, numbers.Integral):
            ratings = _sample_users(ratings, n=int(sample_users), seed=seed)
        else:
            ratings = _sample_users(ratings, fraction=float(sample_users), seed=seed)
    if top_users is not None:
        ratings = _top_users(ratings, top_users)
    if top_items is not None:
        ratings = _top_items(ratings, top_items)
    if min_user_ratings is not None or min_item_ratings is not None:
        ratings = k_core(
            ratings,
            1 if min_user_ratings is None else min_user_ratings,
            1 if min_item_ratings is None else min_item_ratings,
        )
    return ratings


# The keyword arguments of shrink shadow the filter functions; these names reach them.
_sample_users, _top_users, _top_items = sample_users, top_users, top_items


def check_count(name: str, value: int) -> None:
    """Refuse a count that is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _top(counts: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the ``n`` largest counts; equal counts go to the lower index."""
    order = np.argsort(-counts, kind="stable")
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[order[:n]] = True
    return chosen


def _keep_rows(ratings: Ratings, rows: np.ndarray, what: str) -> Ratings:
    """The selected ratings, compacted; a DataError naming ``what`` if none is left."""
    result = ratings.subset(rows)
    if len(result) == 0:
        raise DataError(
            f"{ratings.source}: the {what} filter removed every rating; before it there were "
            f"{len(ratings):,} ratings, {np.count_nonzero(ratings.user_counts()):,} users and "
            f"{np.count_nonzero(ratings.item_counts()):,} items"
        )
    return result.compact()
