"""Random data the tests share."""

import numpy as np

from alsmf.data.ratings import Ratings


def random_ratings(seed: int = 0, n_users: int = 60, n_items: int = 40, density: float = 0.3, *,
                   every_user: bool = True, every_item: bool = True, first_user: int = 0,
                   first_item: int = 0, timestamps: bool = False) -> Ratings:
    """Each cell of an ``n_users`` x ``n_items`` matrix rated with probability ``density``,
    the ratings uniform on 1..5, all drawn from one generator seeded with ``seed``.

    Args:
        every_user: give every user a rating (every user rates the first item).
        every_item: give every item a rating (the first user rates every item).
        first_user, first_item: raw id of the first row and column; the others follow on.
        timestamps: give the ratings timestamps, their row numbers 0, 1, ... (else none).
    """
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    if every_user:
        mask[:, 0] = True
    if every_item:
        mask[0, :] = True
    users, items = np.nonzero(mask)
    values = rng.integers(1, 6, size=len(users)).astype(float)
    return Ratings.from_arrays(users + first_user, items + first_item, values,
                               np.arange(len(users)) if timestamps else None)
