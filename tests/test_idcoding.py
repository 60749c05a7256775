"""Coding raw ids: the one-pass column scan, both codings against numpy.unique, overwriting."""

import numpy as np
import pytest

from alsmf.data.idcoding import encode_pair, scan_columns
from alsmf.data.ratings import Ratings
from alsmf.errors import DataError


def test_scan_finds_id_ranges_and_counts_ratings_out_of_bounds():
    rng = np.random.default_rng(0)
    users = rng.integers(-50, 1000, 10_001)
    items = rng.integers(3, 77, 10_001).astype(np.int32)
    values = rng.uniform(0, 6, 10_001).astype(np.float32)
    values[[5, 9000]] = np.nan
    scan = scan_columns(users, items, values, 1.0, 5.0)
    assert scan.user_range == (users.min(), users.max())
    assert scan.item_range == (items.min(), items.max())
    assert scan.bad_values == np.count_nonzero(~((values >= 1) & (values <= 5)))


def test_scan_of_fewer_rows_than_threads():
    scan = scan_columns(np.array([4]), np.array([-2]), np.array([np.inf]), -1e6, 1e6)
    assert scan == ((4, 4), (-2, -2), 1)


@pytest.mark.parametrize("users, items", [
    (np.array([7, 3, 7, 12, 3]), np.array([2, 0, 9, 2, 2])),            # both dense
    (np.array([7, 3, 7, 12, 3]), np.array([-1, 10**12, 4, -1, 4])),     # items need a sort
    (np.array([10**15, 3, 5, 3, 5]), np.array([2, 0, 9, 2, 2])),        # users need a sort
    (np.array([2**40, 5, 5, 2**40, 6], dtype=np.uint64), np.array([1, 1, 1, 1, 1])),
])
def test_codes_are_ranks_among_the_distinct_ids(users, items):
    scan = scan_columns(users, items, np.ones(len(users)), 0.0, 2.0)
    user_ids, user_codes, item_ids, item_codes = encode_pair(users, items, scan)
    for raw, ids, codes in ((users, user_ids, user_codes), (items, item_ids, item_codes)):
        expected_ids, expected_codes = np.unique(raw, return_inverse=True)
        assert np.array_equal(ids, expected_ids) and ids.dtype == np.int64
        assert np.array_equal(codes, expected_codes) and codes.dtype == np.int32


def test_overwrite_writes_codes_over_writeable_int32_ids_only():
    users = np.array([30, 10, 30, 20], dtype=np.int32)
    items = np.array([5, 6, 5, 5], dtype=np.int64)  # not int32: codes go to a new array
    scan = scan_columns(users, items, np.ones(4), 0.0, 2.0)
    _, user_codes, _, item_codes = encode_pair(users, items, scan, overwrite=True)
    assert user_codes is users and np.array_equal(users, [2, 0, 2, 1])
    assert np.array_equal(items, [5, 6, 5, 5]) and np.array_equal(item_codes, [0, 1, 0, 0])

    frozen = np.array([30, 10, 30, 20], dtype=np.int32)
    frozen.flags.writeable = False
    _, codes, _, _ = encode_pair(frozen, items, scan, overwrite=True)
    assert np.array_equal(frozen, [30, 10, 30, 20]) and np.array_equal(codes, [2, 0, 2, 1])


def test_from_arrays_leaves_the_callers_ids_alone_unless_told():
    users = np.array([30, 10, 30, 20], dtype=np.int32)
    items = np.array([5, 6, 6, 5], dtype=np.int32)
    kept = Ratings.from_arrays(users, items, np.ones(4))
    assert np.array_equal(users, [30, 10, 30, 20]) and np.array_equal(items, [5, 6, 6, 5])
    overwritten = Ratings.from_arrays(users, items, np.ones(4), overwrite_ids=True)
    assert np.array_equal(users, [2, 0, 2, 1]) and np.array_equal(items, [0, 1, 1, 0])
    for ratings in (kept, overwritten):
        assert np.array_equal(ratings.user_ids[ratings.users], [30, 10, 30, 20])
        assert np.array_equal(ratings.item_ids[ratings.items], [5, 6, 6, 5])


def test_ratings_are_checked_in_their_own_precision():
    # float32(0.7) is just below 0.7: a "0.7" read as float32 is on the scale 0.7..5
    values = np.array([0.7, 5.0], dtype=np.float32)
    Ratings.from_arrays(np.array([1, 2]), np.array([1, 1]), values, scale=(0.7, 5.0))
    with pytest.raises(DataError, match=r"row 1: rating 0.6 is outside the scale 0.7..5"):
        Ratings.from_arrays(np.array([1, 2]), np.array([1, 1]), np.array([5.0, 0.6]),
                            scale=(0.7, 5.0))


@pytest.mark.parametrize("values, message", [
    (np.array([1.0, np.nan, 2.0]), r"row 1: rating nan is not a finite number \(1 such rows\)"),
    (np.array([1.0, 2.0, -2e6]), r"row 2: rating -2e\+06 is too large .*; 1 such rows"),
])
def test_first_bad_rating_is_named(values, message):
    with pytest.raises(DataError, match=message):
        Ratings.from_arrays(np.array([1, 2, 3]), np.array([1, 1, 1]), values)
