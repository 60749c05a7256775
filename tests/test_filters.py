"""Tests of the dataset filters: k-core fixed point, top-N, sampling and shrink."""

from __future__ import annotations

import numpy as np
import pytest

from alsmf.data.filters import k_core, sample_users, shrink, top_items, top_users
from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError, DataError


def _ratings(pairs: list[tuple[int, int]]) -> Ratings:
    users, items = np.array(pairs).T
    return Ratings.from_arrays(users, items, np.ones(len(pairs)), source="test")


def _random_ratings(seed: int = 0, n: int = 3000) -> Ratings:
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.6, 4 * n) % 300
    items = rng.zipf(1.4, 4 * n) % 200
    keys = np.unique(users * 1000 + items)[:n]
    return Ratings.from_arrays(keys // 1000, keys % 1000, rng.integers(1, 6, len(keys)),
                               np.arange(len(keys)), source="random")


def _raw_pairs(ratings: Ratings) -> set[tuple[int, int]]:
    return set(zip(ratings.user_ids[ratings.users].tolist(),
                   ratings.item_ids[ratings.items].tolist()))


def test_k_core_needs_more_than_one_pass() -> None:
    # With thresholds 2 the first pass only drops (30, 3) (item 3 has one rating); that
    # leaves user 30 with one rating, which a second pass must drop.
    ratings = _ratings([(10, 1), (10, 2), (20, 1), (20, 2), (30, 2), (30, 3)])
    result = k_core(ratings, 2, 2)
    assert _raw_pairs(result) == {(10, 1), (10, 2), (20, 1), (20, 2)}
    assert result.user_ids.tolist() == [10, 20]
    assert result.item_ids.tolist() == [1, 2]


def test_k_core_cascade_can_empty_and_names_the_filter() -> None:
    # A chain: each removal makes the next user or item too small, until nothing is left.
    ratings = _ratings([(1, 1), (1, 2), (2, 2), (2, 3), (3, 3)])
    with pytest.raises(DataError, match=r"k-core.*5 ratings, 3 users and 3 items"):
        k_core(ratings, 2, 2)


def test_k_core_on_random_data_satisfies_thresholds_and_is_fixed_point() -> None:
    ratings = _random_ratings()
    result = k_core(ratings, min_user_ratings=5, min_item_ratings=4)
    assert result.user_counts().min() >= 5
    assert result.item_counts().min() >= 4
    assert 0 < len(result) < len(ratings)
    again = k_core(result, 5, 4)
    assert _raw_pairs(again) == _raw_pairs(result)
    # Nothing a k-core keeps was dropped wrongly: it is a subset of the input.
    assert _raw_pairs(result) <= _raw_pairs(ratings)
    # One single pass would not have been enough on this data.
    once = ratings.subset((ratings.user_counts()[ratings.users] >= 5)
                          & (ratings.item_counts()[ratings.items] >= 4)).compact()
    assert once.user_counts().min() < 5 or once.item_counts().min() < 4


def test_top_users_keeps_the_most_active_with_ties_by_index() -> None:
    ratings = _ratings([(5, 1), (5, 2), (5, 3), (6, 1), (7, 1), (7, 2), (8, 1), (8, 2)])
    result = top_users(ratings, 2)
    assert result.user_ids.tolist() == [5, 7]  # 7 and 8 tie on 2 ratings: lower index wins
    assert len(result) == 5
    assert top_users(ratings, 100).user_ids.tolist() == [5, 6, 7, 8]


def test_top_items_keeps_the_most_rated() -> None:
    ratings = _ratings([(1, 9), (2, 9), (3, 9), (1, 4), (2, 4), (3, 7)])
    result = top_items(ratings, 1)
    assert result.item_ids.tolist() == [9]
    assert result.user_ids.tolist() == [1, 2, 3]


def test_sample_users_count_fraction_and_seed() -> None:
    ratings = _random_ratings()
    active = np.count_nonzero(ratings.user_counts())
    by_count = sample_users(ratings, n=20, seed=3)
    assert by_count.n_users == 20
    assert _raw_pairs(by_count) == _raw_pairs(sample_users(ratings, n=20, seed=3))
    assert _raw_pairs(by_count) != _raw_pairs(sample_users(ratings, n=20, seed=4))
    # All ratings of each sampled user are kept.
    kept = np.isin(ratings.user_ids[ratings.users], by_count.user_ids)
    assert kept.sum() == len(by_count)
    assert sample_users(ratings, fraction=0.5).n_users == round(0.5 * active)


@pytest.mark.parametrize("kwargs", [{}, {"n": 3, "fraction": 0.5}, {"n": 0},
                                    {"fraction": 0.0}, {"fraction": 1.5}])
def test_sample_users_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        sample_users(_random_ratings(), **kwargs)


@pytest.mark.parametrize("call", [lambda r: top_users(r, 0), lambda r: top_items(r, -1),
                                  lambda r: k_core(r, 0, 1), lambda r: k_core(r, 2, 2.5)])
def test_bad_counts_raise_config_error(call) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        call(_random_ratings())


def test_shrink_applies_k_core_last_so_thresholds_hold() -> None:
    ratings = _random_ratings()
    result = shrink(ratings, min_user_ratings=3, min_item_ratings=3, top_users=100,
                    top_items=80, sample_users=0.8, seed=1)
    assert result.user_counts().min() >= 3
    assert result.item_counts().min() >= 3
    assert result.n_users <= 100 and result.n_items <= 80
    expected = k_core(top_items(top_users(sample_users(ratings, fraction=0.8, seed=1), 100), 80),
                      3, 3)
    assert _raw_pairs(result) == _raw_pairs(expected)


def test_shrink_sample_count_and_no_op() -> None:
    ratings = _random_ratings()
    assert shrink(ratings, sample_users=10).n_users == 10
    assert _raw_pairs(shrink(ratings)) == _raw_pairs(ratings)
    with pytest.raises(ConfigError):
        shrink(ratings, sample_users=2.5)
    with pytest.raises(DataError, match="k-core"):
        shrink(ratings, min_user_ratings=10_000)
