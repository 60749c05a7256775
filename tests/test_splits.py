"""Tests of the train/test splits: partitions, seeds, per-user and temporal guarantees."""

from __future__ import annotations

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.data.splits import (SPLIT_METHODS, kfold, random_split, split, temporal_split,
                               user_holdout)
from alsmf.errors import ConfigError, DataError


def _random_ratings(seed: int = 0, n_users: int = 200, n_items: int = 150,
                    n: int = 4000) -> Ratings:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, n_users * n_items, n))
    # Few distinct timestamps, so ties are common and their row-order rule is exercised.
    return Ratings.from_arrays(keys // n_items + 100, keys % n_items, rng.integers(1, 6, len(keys)),
                               rng.integers(0, 50, len(keys)), source="random")


def _rows(part: Ratings, whole: Ratings) -> np.ndarray:
    """Row positions of ``part`` in ``whole`` (pairs are unique, so a pair names a row)."""
    assert part.user_ids is whole.user_ids and part.item_ids is whole.item_ids
    keys = whole.users.astype(np.int64) * whole.n_items + whole.items
    part_keys = part.users.astype(np.int64) * whole.n_items + part.items
    order = np.argsort(keys)
    return order[np.searchsorted(keys, part_keys, sorter=order)]


def _assert_partition(train: Ratings, test: Ratings, ratings: Ratings) -> None:
    rows = np.concatenate([_rows(train, ratings), _rows(test, ratings)])
    assert len(train) > 0 and len(test) > 0
    assert np.array_equal(np.sort(rows), np.arange(len(ratings)))


@pytest.mark.parametrize("method", list(SPLIT_METHODS))
def test_splits_are_disjoint_cover_everything_and_repeat_with_the_seed(method: str) -> None:
    ratings = _random_ratings()
    train, test = split(ratings, method, seed=7)
    _assert_partition(train, test, ratings)
    again_train, again_test = split(ratings, method, seed=7)
    assert np.array_equal(_rows(train, ratings), _rows(again_train, ratings))
    assert np.array_equal(_rows(test, ratings), _rows(again_test, ratings))


def test_random_split_size_and_seed() -> None:
    ratings = _random_ratings()
    _, test = random_split(ratings, test_fraction=0.25, seed=1)
    assert len(test) == round(0.25 * len(ratings))
    _, other = random_split(ratings, test_fraction=0.25, seed=2)
    assert not np.array_equal(_rows(test, ratings), _rows(other, ratings))


def test_user_holdout_keeps_train_ratings_for_every_test_user() -> None:
    ratings = _random_ratings()
    for min_train in (1, 5):
        train, test = user_holdout(ratings, test_fraction=0.3, seed=0, min_train=min_train)
        _assert_partition(train, test, ratings)
        train_counts = train.user_counts()
        assert train_counts.min() >= min(min_train, ratings.user_counts().min())
        assert (train_counts[np.unique(test.users)] >= min_train).all()
    assert abs(len(test) / len(ratings) - 0.3) < 0.05


def test_user_holdout_leaves_single_rating_users_in_train() -> None:
    ratings = Ratings.from_arrays([1, 2, 2, 2, 2], [1, 1, 2, 3, 4], np.ones(5))
    train, test = user_holdout(ratings, test_fraction=0.5, seed=0)
    assert set(test.users.tolist()) == {1}
    assert 0 in train.users.tolist() and 0 not in test.users.tolist()
    with pytest.raises(DataError, match="test set would be empty"):
        user_holdout(Ratings.from_arrays([1, 2], [1, 1], [3.0, 4.0]))


def test_temporal_split_holds_out_the_latest_per_user() -> None:
    ratings = _random_ratings()
    train, test = temporal_split(ratings, n_last=2)
    _assert_partition(train, test, ratings)
    counts = ratings.user_counts()
    assert np.array_equal(test.user_counts(), np.minimum(2, counts - 1))
    # Order by (timestamp, row): every test rating of a user comes after all its train ratings.
    rank = np.empty(len(ratings), dtype=np.int64)
    rank[np.lexsort((np.arange(len(ratings)), ratings.timestamps))] = np.arange(len(ratings))
    last_train = np.full(ratings.n_users, -1)
    np.maximum.at(last_train, train.users, rank[_rows(train, ratings)])
    assert (rank[_rows(test, ratings)] > last_train[test.users]).all()


def test_temporal_split_breaks_ties_by_row_order() -> None:
    ratings = Ratings.from_arrays([1, 1, 1, 2], [1, 2, 3, 1], [1.0, 2.0, 3.0, 4.0],
                                  timestamps=[5, 9, 9, 1])
    train, test = temporal_split(ratings)
    assert test.values.tolist() == [3.0]
    assert train.values.tolist() == [1.0, 2.0, 4.0]


def test_temporal_split_needs_timestamps() -> None:
    ratings = Ratings.from_arrays([1, 1], [1, 2], [1.0, 2.0], source="no-times.csv")
    with pytest.raises(DataError, match="no-times.csv.*timestamps"):
        temporal_split(ratings)


def test_kfold_partitions_the_ratings() -> None:
    ratings = _random_ratings()
    folds = list(kfold(ratings, k=4, seed=3))
    assert len(folds) == 4
    test_rows = [_rows(test, ratings) for _, test in folds]
    assert np.array_equal(np.sort(np.concatenate(test_rows)), np.arange(len(ratings)))
    assert max(map(len, test_rows)) - min(map(len, test_rows)) <= 1
    for train, test in folds:
        _assert_partition(train, test, ratings)


def test_errors_have_clear_messages() -> None:
    ratings = _random_ratings()
    with pytest.raises(ConfigError, match="unknown split method 'bogus'.*random, user, temporal"):
        split(ratings, "bogus")
    for fraction in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(ConfigError, match="test_fraction"):
            split(ratings, "random", test_fraction=fraction)
    with pytest.raises(ConfigError, match="n_last"):
        temporal_split(ratings, n_last=0)
    with pytest.raises(ConfigError, match="k must be"):
        kfold(ratings, k=1)
    with pytest.raises(DataError, match="cannot be split"):
        random_split(Ratings.from_arrays([1], [1], [1.0]))
