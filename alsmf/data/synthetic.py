"""Synthetic explicit ratings shaped like a MovieLens release, drawn from a known true model.

The generator is the built-in default data (no download needed) and the workload of the scale
benchmarks, so it copies what makes MovieLens hard to factorise quickly and well:

* heavy-tailed user activity: every user has at least the release's minimum of ratings
  (20 for MovieLens), most have a few dozen, a few have thousands;
* heavy-tailed item popularity: a median movie has a few dozen ratings, a few blockbusters are
  rated by a large share of all users, and every item has at least one rating;
* distinct (user, item) pairs, values on the half-star grid 0.5..5 with mean about 3.5 and
  standard deviation about 1.05.

Values come from the biased factor model r = μ + b_u + b_i + p_u·q_i + N(0, σ²), rounded to half
stars and clipped to the scale. Because the true model is known, :class:`SyntheticData` also
reports the test RMSE of the true model itself (``oracle_rmse``): about the best any model can
reach, against which a trained model's accuracy can be judged.

Everything is drawn from one ``numpy.random.Generator(PCG64(seed))``, so a seed fixes the data.
The ML-20M shape (20M ratings) takes seconds and well under 2 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError, DataError
from alsmf.solvers.predict import predict_pairs

SHAPES: dict[str, tuple[int, int, int, int]] = {
    "ml-100k": (943, 1682, 100_000, 20),
    "ml-1m": (6040, 3706, 1_000_209, 20),
    "ml-10m": (69878, 10677, 10_000_054, 20),
    "ml-20m": (138_493, 26_744, 20_000_263, 20),
}
"""Release name -> (n_users, n_items, n_ratings, minimum ratings per user)."""

SCALE: tuple[float, float] = (0.5, 5.0)
"""Rating scale of the synthetic data (MovieLens 10M/20M: half stars from 0.5 to 5)."""

# σ of log item popularity per release, chosen so that the median ratings per item comes out
# close to the release's (100k: 27, 1m: 124, 10m: 135, 20m: 18).
_ITEM_SPREAD: dict[str, float] = {"ml-100k": 1.5, "ml-1m": 1.5, "ml-10m": 2.2, "ml-20m": 3.1}
# In every MovieLens release the most popular movies are rated by about half of all users;
# popularity saturates softly near the share of draws that reaches this many users.
_TOP_REACH = 0.5
# σ of log user activity above the minimum (MovieLens: mean about twice the median).
_USER_SPREAD = 1.1
# The most active user rates at most this share of all items (ML-20M: 9,254 of 26,744).
_MAX_USER_SHARE = 0.4

# True model scales: with σ = 0.8 these give ratings of mean about 3.5 and sd about 1.05, and
# an interaction term (variance 0.3) large enough that a factor model clearly beats biases.
# μ sits a little above 3.5 because clipping at 5 pulls the mean of the ratings down.
_GLOBAL_MEAN = 3.55
_USER_BIAS_SD = 0.35
_ITEM_BIAS_SD = 0.4
_INTERACTION_VARIANCE = 0.3

_FIRST_TIMESTAMP = 946_684_800  # 2000-01-01 00:00:00 UTC


@dataclass
class SyntheticData:
    """Synthetic ratings together with the true model that produced them.

    Attributes:
        ratings: the observed ratings (half stars in 0.5..5, one per distinct pair).
        noise: σ of the Gaussian noise added before rounding.
        oracle_rmse: RMSE of the true model's noiseless prediction (clipped to the scale)
            against the observed ratings: about the best test RMSE a model can hope for.
        rank: number of latent factors of the true model.
        user_factors: true p_u, shape (n_users, rank), in the ratings' user index order.
        item_factors: true q_i, shape (n_items, rank).
        user_bias: true b_u, length n_users.
        item_bias: true b_i, length n_items.
        global_mean: true μ.
    """

    ratings: Ratings
    noise: float
    oracle_rmse: float
    rank: int
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float

    def unrounded_split(self, seed: int = 0,
                        test_fraction: float = 0.1) -> tuple[Ratings, Ratings, float]:
        """The same pairs rated truth + N(0, σ²) without rounding or clipping, split at random.

        For checks that need the noise to be exactly Gaussian (calibration of predictive
        intervals). Returns (train, test, the true model's RMSE on the test part).
        """
        r = self.ratings
        truth = predict_pairs(r.users, r.items, self.user_factors, self.item_factors,
                              self.user_bias, self.item_bias, self.global_mean)
        rng = np.random.default_rng(seed)
        values = truth + self.noise * rng.standard_normal(len(truth))
        in_test = rng.random(len(values)) < test_fraction
        users, items = r.user_ids[r.users], r.item_ids[r.items]
        train = Ratings.from_arrays(users[~in_test], items[~in_test], values[~in_test])
        test = Ratings.from_arrays(users[in_test], items[in_test], values[in_test])
        return train, test, float(np.sqrt(np.mean(np.square(values[in_test] - truth[in_test]))))


def synthetic_ratings(
    like: str = "ml-100k",
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    n_ratings: int | None = None,
    min_per_user: int | None = None,
    rank: int = 8,
    noise: float = 0.8,
    seed: int = 0,
) -> SyntheticData:
    """Draw ratings shaped like the MovieLens release ``like`` from a random true model.

    Args:
        like: release whose shape and popularity spread to copy, a key of :data:`SHAPES`.
        n_users, n_items, n_ratings, min_per_user: override the release's shape; each user
            gets at least ``min_per_user`` ratings and every item at least one.
        rank: number of latent factors of the true model.
        noise: σ of the Gaussian noise on each rating, before rounding.
        seed: seed of the one random generator everything is drawn from.

    Raises:
        DataError: ``like`` is not a known release.
        ConfigError: the shape cannot be filled (too few or too many ratings for the users and
            items), or ``rank`` / ``noise`` is out of range.
    """
    n_users, n_items, n_ratings, min_per_user = _resolve_shape(
        like, n_users, n_items, n_ratings, min_per_user
    )
    if not (isinstance(rank, (int, np.integer)) and rank >= 1):
        raise ConfigError(f"rank must be an integer >= 1, got {rank!r}")
    if not (isinstance(noise, (int, float, np.integer, np.floating)) and 0 <= noise < np.inf):
        raise ConfigError(f"noise must be a finite number >= 0, got {noise!r}")

    rng = np.random.Generator(np.random.PCG64(seed))
    users, items = _draw_pairs(rng, like, n_users, n_items, n_ratings, min_per_user)
    truth = _true_model(rng, n_users, n_items, rank)
    mean = predict_pairs(users, items, *truth)
    values = _observe(rng, mean, noise)
    oracle_rmse = _clipped_rmse(mean, values)
    del mean

    ratings = Ratings(
        users=users,
        items=items,
        values=values,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        item_ids=np.arange(1, n_items + 1, dtype=np.int64),
        timestamps=_FIRST_TIMESTAMP + np.arange(n_ratings, dtype=np.int64),
        source=f"synthetic:{like}",
        scale=SCALE,
    )
    return SyntheticData(ratings, float(noise), oracle_rmse, int(rank), *truth)


def _resolve_shape(
    like: str,
    n_users: int | None,
    n_items: int | None,
    n_ratings: int | None,
    min_per_user: int | None,
) -> tuple[int, int, int, int]:
    """The release's (n_users, n_items, n_ratings, min_per_user) with the given overrides."""
    if like not in SHAPES:
        raise DataError(f"unknown release {like!r} to imitate; choose one of {', '.join(SHAPES)}")
    base = SHAPES[like]
    overrides = (n_users, n_items, n_ratings, min_per_user)
    shape = tuple(int(b if o is None else o) for b, o in zip(base, overrides))
    _check_shape(*shape)
    return shape


def _check_shape(n_users: int, n_items: int, n_ratings: int, min_per_user: int) -> None:
    """Refuse shapes that cannot be filled with distinct pairs within the per-user limits."""
    if n_users < 1 or n_items < 1 or min_per_user < 1:
        raise ConfigError(
            f"n_users, n_items and min_per_user must be at least 1, got {n_users}, {n_items} "
            f"and {min_per_user}"
        )
    if min_per_user > n_items:
        raise ConfigError(
            f"min_per_user ({min_per_user}) cannot exceed the number of items ({n_items})"
        )
    max_per_user = _max_per_user(n_items, min_per_user)
    low = max(n_users * min_per_user, n_items)
    high = n_users * max_per_user
    if not low <= n_ratings <= high:
        raise ConfigError(
            f"{n_ratings:,} ratings cannot fill {n_users:,} users x {n_items:,} items with "
            f"{min_per_user}..{max_per_user} ratings per user and at least one per item; "
            f"choose n_ratings in {low:,}..{high:,}"
        )


def _max_per_user(n_items: int, min_per_user: int) -> int:
    """The most ratings one user may have: a share of all items, but never below the minimum."""
    return max(min_per_user, int(_MAX_USER_SHARE * n_items))


def _draw_pairs(
    rng: np.random.Generator,
    like: str,
    n_users: int,
    n_items: int,
    n_ratings: int,
    min_per_user: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) index pairs as int32 arrays, rows in a random order.

    The random row order doubles as time order (timestamps increase with the row), so that a
    temporal split mixes all users rather than cutting the user list in two.
    """
    counts = _user_counts(rng, n_users, n_ratings, min_per_user,
                          _max_per_user(n_items, min_per_user))
    items = _sample_items(rng, counts, _item_cdf(rng, n_items, _ITEM_SPREAD[like], counts))
    users = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    order = rng.permutation(n_ratings)
    return users[order], items[order]


def _user_counts(
    rng: np.random.Generator, n_users: int, n_ratings: int, min_per_user: int, max_per_user: int
) -> np.ndarray:
    """Ratings per user: the minimum plus a lognormal share of the rest, capped, summing exactly.

    The ratings above the minimum are shared in proportion to lognormal weights; users whose
    share would pass the cap are fixed at the cap and the rest is shared again among the others
    ("water filling"). Fractions are rounded by largest remainder, so the total is exact.
    """
    room = max_per_user - min_per_user
    weights = rng.lognormal(0.0, _USER_SPREAD, n_users)
    share = np.zeros(n_users)
    free = np.ones(n_users, dtype=bool)
    left = float(n_ratings - n_users * min_per_user)
    while left > 0 and free.any():
        share[free] = left * weights[free] / weights[free].sum()
        capped = free & (share >= room)
        if not capped.any():
            break
        share[capped] = room
        free &= ~capped
        left = float(n_ratings - n_users * min_per_user - share[~free].sum())
    extra = np.floor(share).astype(np.int64)
    shortfall = n_ratings - n_users * min_per_user - int(extra.sum())
    if shortfall:
        remainder = np.where(extra < room, share - extra, -1.0)
        extra[np.argsort(-remainder, kind="stable")[:shortfall]] += 1
    return min_per_user + extra


def _item_cdf(
    rng: np.random.Generator, n_items: int, spread: float, user_counts: np.ndarray
) -> np.ndarray:
    """Cumulative item popularity (ending at exactly 1): lognormal weights, softly capped.

    A pure lognormal with the spread needed for MovieLens' low median would let the top items
    reach nearly every user. Each weight w is replaced by w·c / (w + c), which leaves ordinary
    items alone and lets the most popular approach the cap c smoothly; c is the fixed point
    c = p · Σ w·c / (w + c), so that the capped share of draws is p, the share that reaches
    about :data:`_TOP_REACH` of the users.
    """
    weights = rng.lognormal(0.0, spread, n_items)
    top_share = _share_reaching(user_counts, _TOP_REACH)
    cap = top_share * weights.sum()
    for _ in range(200):  # falls monotonically to the fixed point (within 1e-12 by ~30 steps)
        capped = weights * cap / (weights + cap)
        cap = top_share * capped.sum()
    cdf = np.cumsum(capped)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _share_reaching(user_counts: np.ndarray, reach: float) -> float:
    """Share p of draws at which an item is rated by about ``reach`` of the users.

    A user with c ratings picks such an item with probability about 1 - exp(-p·c); p is found
    by bisection on the mean over users.
    """
    low, high = 0.0, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        if np.mean(-np.expm1(-mid * user_counts)) > reach:
            high = mid
        else:
            low = mid
    return low


def _sample_items(rng: np.random.Generator, counts: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Items of every rating, user after user, distinct within a user, drawn by popularity.

    First each item is put in one random rating slot, so that every item is rated at least
    once; the other slots are filled by :func:`_fill_distinct`.
    """
    n_ratings = int(counts.sum())
    n_items = len(cdf)
    items = np.full(n_ratings, -1, dtype=np.int32)
    items[rng.choice(n_ratings, size=n_items, replace=False)] = np.arange(n_items, dtype=np.int32)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    _fill_distinct(starts, items, cdf, rng)
    return items


@njit(cache=True)
def _fill_distinct(
    starts: np.ndarray, items: np.ndarray, cdf: np.ndarray, rng: np.random.Generator
) -> None:
    """Fill the empty (-1) slots of each user's run with items drawn by ``cdf``, rejecting repeats.

    ``starts[u]:starts[u + 1]`` are user u's slots. ``taken[i] == u`` marks item i as already
    given to user u, so no array is cleared between users. Serial, so the draws (and the data)
    depend on the seed alone.
    """
    taken = np.full(len(cdf), -1, dtype=np.int64)
    for u in range(len(starts) - 1):
        for slot in range(starts[u], starts[u + 1]):
            if items[slot] >= 0:
                taken[items[slot]] = u
        for slot in range(starts[u], starts[u + 1]):
            if items[slot] >= 0:
                continue
            item = np.searchsorted(cdf, rng.random(), side="right")
            while taken[item] == u:
                item = np.searchsorted(cdf, rng.random(), side="right")
            taken[item] = u
            items[slot] = item


def _true_model(
    rng: np.random.Generator, n_users: int, n_items: int, rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Random (user_factors, item_factors, user_bias, item_bias, global_mean).

    Factor entries have sd (v / rank)^(1/4), so p_u·q_i has variance v whatever the rank.
    """
    factor_sd = (_INTERACTION_VARIANCE / rank) ** 0.25
    user_factors = rng.normal(0.0, factor_sd, (n_users, rank))
    item_factors = rng.normal(0.0, factor_sd, (n_items, rank))
    user_bias = rng.normal(0.0, _USER_BIAS_SD, n_users)
    item_bias = rng.normal(0.0, _ITEM_BIAS_SD, n_items)
    return user_factors, item_factors, user_bias, item_bias, _GLOBAL_MEAN


def _clipped_rmse(mean: np.ndarray, values: np.ndarray) -> float:
    """RMSE of the true mean, clipped to the scale (in place, to save memory), against values."""
    np.clip(mean, *SCALE, out=mean)
    mean -= values
    return float(np.sqrt(np.dot(mean, mean) / len(mean)))


def _observe(rng: np.random.Generator, mean: np.ndarray, noise: float) -> np.ndarray:
    """Noisy ratings: mean + N(0, noise²), rounded to half stars and clipped to the scale."""
    values = rng.standard_normal(len(mean), dtype=np.float32)
    values *= noise
    values += mean
    values *= 2
    np.round(values, out=values)
    values /= 2
    return np.clip(values, *SCALE, out=values)
