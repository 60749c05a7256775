"""The Ratings type: id maps both ways, duplicate policies, views and derived sets."""

import numpy as np
import pandas as pd
import pytest

from alsmf.data.ratings import Ratings
from alsmf.errors import DataError


@pytest.mark.parametrize("user_raw", [
    np.array([7, 3, 7, 12, 3]),                       # small ids: presence-table coding
    np.array([-5, 10**15, -5, 42, 10**15]),           # negative and huge ids: sort coding
])
def test_ids_map_both_ways(user_raw):
    items = np.arange(5)
    ratings = Ratings.from_arrays(user_raw, items, np.ones(5))
    assert np.array_equal(ratings.user_ids, np.unique(user_raw))
    assert np.array_equal(ratings.user_ids[ratings.users], user_raw)
    assert ratings.users.dtype == np.int32 and ratings.values.dtype == np.float32
    assert np.array_equal(ratings.user_index(user_raw), ratings.users)
    assert ratings.user_index(123456).item() == -1


def test_duplicate_pairs_error_names_both_rows():
    with pytest.raises(DataError, match="rated twice, at row 1 and row 3"):
        Ratings.from_arrays(np.array([1, 2, 1, 2]), np.array([5, 5, 6, 5]), np.ones(4))


def test_duplicate_policies_last_and_mean():
    users, items = np.array([1, 1, 2, 1]), np.array([5, 5, 5, 5])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    last = Ratings.from_arrays(users, items, values, np.array([30, 10, 5, 20]), duplicates="last")
    assert sorted(zip(last.users.tolist(), last.values.tolist())) == [(0, 1.0), (1, 3.0)]
    mean = Ratings.from_arrays(users, items, values, duplicates="mean")
    assert mean.users.tolist() == [0, 1]
    np.testing.assert_allclose(mean.values, [7 / 3, 3.0], rtol=1e-6)  # values are float32
    assert len(mean.by_user().data) == 2


def test_csr_views_hold_every_rating():
    ratings = Ratings.from_arrays(np.array([1, 1, 2]), np.array([10, 20, 10]),
                                  np.array([4.0, 3.0, 5.0]))
    assert np.array_equal(ratings.by_user().toarray(), [[4, 3], [5, 0]])
    assert np.array_equal(ratings.by_item().toarray(), [[4, 5], [3, 0]])
    assert np.isnan(ratings.dense()[1, 1]) and ratings.dense()[0, 1] == 3


def test_subset_keeps_maps_and_compact_drops_unused_ids():
    ratings = Ratings.from_arrays(np.array([1, 2, 3]), np.array([10, 20, 30]), np.ones(3))
    part = ratings.subset(np.array([True, False, True]))
    assert part.n_users == 3 and len(part) == 2
    small = part.compact()
    assert small.user_ids.tolist() == [1, 3] and small.item_ids.tolist() == [10, 30]
    assert small.by_user().shape == (2, 2)


def test_in_user_order_keeps_every_rating_and_shares_the_by_user_arrays():
    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((20, 12)) < 0.4)
    order = rng.permutation(len(users))
    ratings = Ratings.from_arrays(users[order], items[order], rng.random(len(users)) * 5,
                                  rng.integers(0, 10**6, len(users)))
    ordered = ratings.in_user_order()
    key = ordered.users.astype(np.int64) * ordered.n_items + ordered.items
    assert np.all(np.diff(key) > 0)  # by user, then item
    before = sorted(zip(ratings.users.tolist(), ratings.items.tolist(), ratings.values.tolist(),
                        ratings.timestamps.tolist()))
    assert before == list(zip(ordered.users.tolist(), ordered.items.tolist(),
                              ordered.values.tolist(), ordered.timestamps.tolist()))
    assert np.shares_memory(ordered.by_user().indices, ordered.items)
    assert np.shares_memory(ordered.by_user().data, ordered.values)
    np.testing.assert_array_equal(ordered.by_user().toarray(), ratings.by_user().toarray())
    assert ordered.in_user_order() is ordered


def test_frame_round_trip_and_errors():
    frame = pd.DataFrame({"u": [3, 1], "i": [9, 8], "r": [4.5, 2.0], "timestamp": [2, 1]})
    ratings = Ratings.from_frame(frame, user_col="u", item_col="i", rating_col="r")
    back = ratings.to_frame()
    assert back["user"].tolist() == [3, 1] and back["timestamp"].tolist() == [2, 1]
    with pytest.raises(DataError, match="missing column"):
        Ratings.from_frame(frame)
    with pytest.raises(DataError, match="row 1: rating 'x' is not a number"):
        Ratings.from_frame(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": ["3", "x"]}))
    with pytest.raises(DataError, match="outside the scale 1..5"):
        Ratings.from_arrays(np.array([1]), np.array([1]), np.array([6.0]), scale=(1, 5))
