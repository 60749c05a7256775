"""Train/test splits of a ratings set.

Every split returns ``(train, test)`` as :class:`~alsmf.data.ratings.Ratings` that keep the
id maps of the input, so an index means the same user or item in both. Ratings keep their
row order inside each part. Random choices come from ``numpy.random.default_rng(seed)``: the
same seed gives the same split. Per-user splits rank the ratings inside each user with one
sort of the whole array instead of a Python loop over users, so they scale to 20M ratings.
"""

from __future__ import annotations

import numbers
from typing import Callable, Iterator

import numpy as np

from alsmf.data.filters import check_count
from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError, DataError

Split = tuple[Ratings, Ratings]


def random_split(ratings: Ratings, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Put a random ``test_fraction`` of all ratings in test (at least one, and one in train).

    Users or items may end up only in test; use :func:`user_holdout` when every test user
    must also be in train.
    """
    check_fraction(test_fraction)
    n = len(ratings)
    if n < 2:
        raise DataError(f"{ratings.source}: {n} rating(s) cannot be split into train and test")
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return _parts(ratings, test)


def user_holdout(
    ratings: Ratings, test_fraction: float = 0.2, seed: int = 0, min_train: int = 1
) -> Split:
    """Hold out a random ``test_fraction`` of each user's ratings, keeping ``min_train`` in train.

    A user with ``c`` ratings puts ``floor(test_fraction * c + u)`` of them in test, ``u``
    uniform in [0, 1): this rounds randomly so that users with few ratings still add up to
    ``test_fraction`` overall. The count is capped at ``c - min_train``, so users with at most
    ``min_train`` ratings stay wholly in train and every test user has ratings in train.

    Raises:
        ConfigError: ``test_fraction`` outside (0, 1) or ``min_train`` not a positive integer.
        DataError: no user has more than ``min_train`` ratings, so the test set would be empty.
    """
    check_fraction(test_fraction)
    check_count("min_train", min_train)
    rng = np.random.default_rng(seed)
    counts = ratings.user_counts()
    n_test = np.floor(test_fraction * counts + rng.random(len(counts))).astype(np.int64)
    n_test = np.clip(n_test, 0, np.maximum(counts - min_train, 0))
    order = np.lexsort((rng.random(len(ratings)), ratings.users))
    test = _rank_in_user(ratings, order) < n_test[ratings.users]
    _require_test(ratings, test, f"no user has more than min_train={min_train} rating(s)")
    return _parts(ratings, test)


def temporal_split(ratings: Ratings, n_last: int = 1) -> Split:
    """Put each user's ``n_last`` latest ratings in test; a later row wins a timestamp tie.

    Every user keeps at least its earliest rating in train, so users with a single rating stay
    wholly in train.

    Raises:
        DataError: the ratings have no timestamps, or no user has two ratings.
        ConfigError: ``n_last`` is not a positive integer.
    """
    if ratings.timestamps is None:
        raise DataError(f"{ratings.source}: the temporal split needs timestamps, and there are "
                        "none")
    check_count("n_last", n_last)
    counts = ratings.user_counts()
    n_test = np.minimum(n_last, np.maximum(counts - 1, 0))
    # lexsort is stable, so equal timestamps keep row order: the later row counts as later.
    order = np.lexsort((ratings.timestamps, ratings.users))
    from_end = counts[ratings.users] - 1 - _rank_in_user(ratings, order)
    test = from_end < n_test[ratings.users]
    _require_test(ratings, test, "no user has two or more ratings")
    return _parts(ratings, test)


def kfold(ratings: Ratings, k: int = 5, seed: int = 0) -> Iterator[Split]:
    """Yield ``k`` (train, test) pairs; each rating is in exactly one test fold.

    Ratings are shuffled once and dealt to folds in turn, so fold sizes differ by at most one.

    Raises:
        ConfigError: ``k`` is not an integer of at least 2.
        DataError: there are fewer ratings than folds.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ConfigError(f"kfold: k must be an integer of at least 2, got {k!r}")
    if len(ratings) < k:
        raise DataError(f"{ratings.source}: {len(ratings)} rating(s) cannot fill {k} folds")
    fold = np.empty(len(ratings), dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(len(ratings))] = np.arange(len(ratings)) % k
    return (_parts(ratings, fold == f) for f in range(k))


SPLIT_METHODS: dict[str, str] = {
    "random": "a random share of all ratings",
    "user": "a random share of each user's ratings (per-user holdout)",
    "temporal": "each user's last ratings by timestamp",
}
"""Names accepted by :func:`split`, with what each holds out."""


def split(
    ratings: Ratings,
    method: str,
    *,
    test_fraction: float = 0.2,
    n_last: int = 1,
    seed: int = 0,
) -> Split:
    """Split by a method name from :data:`SPLIT_METHODS` (as the command line does).

    ``test_fraction`` and ``seed`` apply to "random" and "user"; ``n_last`` to "temporal".

    Raises:
        ConfigError: unknown method or an argument out of range.
    """
    methods: dict[str, Callable[[], Split]] = {
        "random": lambda: random_split(ratings, test_fraction, seed),
        "user": lambda: user_holdout(ratings, test_fraction, seed),
        "temporal": lambda: temporal_split(ratings, n_last),
    }
    if method not in methods:
        raise ConfigError(
            f"unknown split method {method!r}; choose one of {', '.join(SPLIT_METHODS)}"
        )
    check_fraction(test_fraction)
    return methods[method]()


def check_fraction(test_fraction: float) -> None:
    """Refuse a test fraction that would leave train or test empty by construction."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def _rank_in_user(ratings: Ratings, order: np.ndarray) -> np.ndarray:
    """Position of each rating among its user's ratings, given an ``order`` sorted by user."""
    counts = ratings.user_counts()
    starts = np.cumsum(counts) - counts
    ranks = np.empty(len(ratings), dtype=np.int64)
    ranks[order] = np.arange(len(ratings)) - starts[ratings.users[order]]
    return ranks


def _require_test(ratings: Ratings, test: np.ndarray, why_empty: str) -> None:
    """Raise a DataError saying ``why_empty`` when the test mask selects nothing."""
    if not test.any():
        raise DataError(f"{ratings.source}: the test set would be empty: {why_empty}")


def _parts(ratings: Ratings, test: np.ndarray) -> Split:
    """``(train, test)`` from a boolean mask of the test ratings."""
    return ratings.subset(~test), ratings.subset(test)
