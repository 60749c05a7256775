"""Tests of the synthetic MovieLens-shaped generator: shape, validity, determinism, realism."""

from __future__ import annotations

import numpy as np
import pytest

from alsmf.data.synthetic import SCALE, SHAPES, SyntheticData, synthetic_ratings
from alsmf.errors import ConfigError, DataError

SMALL = dict(n_users=150, n_items=300, n_ratings=9_000)


@pytest.fixture(scope="module")
def ml100k() -> SyntheticData:
    return synthetic_ratings("ml-100k")


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    return synthetic_ratings("ml-100k", **SMALL, seed=3)


def _true_mean(data: SyntheticData) -> np.ndarray:
    r = data.ratings
    interaction = np.sum(data.user_factors[r.users] * data.item_factors[r.items], axis=1)
    return data.global_mean + data.user_bias[r.users] + data.item_bias[r.items] + interaction


def _assert_shape(data: SyntheticData, n_users: int, n_items: int, n_ratings: int, rank: int):
    r = data.ratings
    assert (len(r), r.n_users, r.n_items) == (n_ratings, n_users, n_items)
    # every id in the maps is used: no user or item without ratings
    assert r.user_counts().min() >= 1 and r.item_counts().min() >= 1
    assert data.user_factors.shape == (n_users, rank)
    assert data.item_factors.shape == (n_items, rank)
    assert data.user_bias.shape == (n_users,) and data.item_bias.shape == (n_items,)


def test_ml100k_shape_matches_the_release(ml100k):
    n_users, n_items, n_ratings, min_per_user = SHAPES["ml-100k"]
    _assert_shape(ml100k, n_users, n_items, n_ratings, rank=8)
    assert ml100k.ratings.user_counts().min() >= min_per_user
    assert ml100k.ratings.source == "synthetic:ml-100k"
    assert ml100k.ratings.scale == SCALE


def test_overridden_shape_matches_exactly(small):
    _assert_shape(small, SMALL["n_users"], SMALL["n_items"], SMALL["n_ratings"], rank=8)
    assert small.ratings.user_counts().min() >= 20


def test_overrides_of_minimum_and_rank():
    data = synthetic_ratings("ml-1m", n_users=40, n_items=60, n_ratings=500, min_per_user=5,
                             rank=3)
    _assert_shape(data, 40, 60, 500, rank=3)
    assert data.ratings.user_counts().min() >= 5
    assert data.ratings.source == "synthetic:ml-1m"


@pytest.mark.parametrize("fixture", ["ml100k", "small"])
def test_no_duplicate_pairs(fixture, request):
    r = request.getfixturevalue(fixture).ratings
    keys = r.users.astype(np.int64) * r.n_items + r.items
    assert len(np.unique(keys)) == len(r)


def test_arrays_have_the_ratings_layout(ml100k):
    r = ml100k.ratings
    assert r.users.dtype == np.int32 and r.items.dtype == np.int32
    assert r.values.dtype == np.float32 and r.timestamps.dtype == np.int64
    assert np.array_equal(r.user_ids, np.arange(1, r.n_users + 1))
    assert np.array_equal(r.item_ids, np.arange(1, r.n_items + 1))
    assert np.all(np.diff(r.timestamps) > 0)


def test_values_are_half_stars_within_the_scale(ml100k):
    values = ml100k.ratings.values
    assert values.min() >= 0.5 and values.max() <= 5.0
    assert np.array_equal(values * 2, np.round(values * 2))
    assert len(np.unique(values)) == 10


def test_same_seed_same_data_other_seed_other_data():
    first = synthetic_ratings(**SMALL, seed=7)
    again = synthetic_ratings(**SMALL, seed=7)
    other = synthetic_ratings(**SMALL, seed=8)
    for name in ("users", "items", "values", "timestamps"):
        assert np.array_equal(getattr(first.ratings, name), getattr(again.ratings, name))
    assert np.array_equal(first.user_factors, again.user_factors)
    assert first.oracle_rmse == again.oracle_rmse
    assert not np.array_equal(first.ratings.items, other.ratings.items)
    assert not np.array_equal(first.ratings.values, other.ratings.values)


def test_oracle_rmse_is_the_clipped_true_mean_against_the_ratings(ml100k):
    mean = np.clip(_true_mean(ml100k), *SCALE)
    rmse = np.sqrt(np.mean((mean - ml100k.ratings.values) ** 2))
    assert ml100k.oracle_rmse == pytest.approx(rmse, rel=1e-6)


def test_oracle_rmse_is_noise_plus_rounding():
    noise = 0.3
    data = synthetic_ratings(noise=noise)
    expected = np.sqrt(noise**2 + 0.5**2 / 12)  # rounding to half stars: uniform error
    assert data.oracle_rmse == pytest.approx(expected, rel=0.03)
    # away from the ends of the scale, where clipping cannot help, the match is closer
    mean = _true_mean(data)
    inside = (mean > 0.5 + 3 * noise + 0.25) & (mean < 5.0 - 3 * noise - 0.25)
    errors = mean[inside] - data.ratings.values[inside]
    assert np.sqrt(np.mean(errors**2)) == pytest.approx(expected, rel=0.02)


def test_default_oracle_rmse_is_lowered_only_by_clipping(ml100k):
    expected = np.sqrt(ml100k.noise**2 + 0.5**2 / 12)
    assert 0.88 * expected < ml100k.oracle_rmse < expected


def test_ratings_look_like_movielens(ml100k):
    values = ml100k.ratings.values
    assert 3.3 < values.mean() < 3.7
    assert 0.9 < values.std() < 1.2


def test_activity_and_popularity_are_heavy_tailed(ml100k):
    users = ml100k.ratings.user_counts()
    items = ml100k.ratings.item_counts()
    assert users.max() > 5 * np.median(users)
    assert items.max() > 8 * np.median(items)
    assert users.max() <= 0.4 * ml100k.ratings.n_items
    assert items.max() < ml100k.ratings.n_users


def test_unknown_release_lists_the_choices():
    with pytest.raises(DataError, match="ml-100k, ml-1m, ml-10m, ml-20m"):
        synthetic_ratings("ml-5m")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_users=100, n_items=300, n_ratings=1_000),    # below 20 per user
        dict(n_users=10, n_items=100, n_ratings=1_000),     # above 40% of items per user
        dict(n_users=10, n_items=500, n_ratings=300),       # fewer ratings than items
        dict(n_users=0, n_items=100, n_ratings=100),
        dict(n_users=10, n_items=100, n_ratings=300, rank=0),
        dict(n_users=10, n_items=100, n_ratings=300, noise=-1.0),
    ],
)
def test_impossible_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        synthetic_ratings(**kwargs)
