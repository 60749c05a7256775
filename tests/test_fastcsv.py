"""The fast path for plain numeric files: same arrays as the general reader, or a clear None."""

import numpy as np
import pandas as pd
import pytest

import alsmf.data.fastcsv as fastcsv
import alsmf.data.readers as readers
from alsmf.data.fastcsv import parse_plain

FIELDS = {"user": 0, "item": 1, "rating": 2}


def write(tmp_path, data: bytes):
    path = tmp_path / "ratings.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data, separator", [
    (b"1,2,3.5\n4,5,1\n", ","),
    (b"1,2,3.5\r\n\r\n4,5,1", ","),  # CRLF, a blank line, no final line end
    (b"1::2::3.5\n4::5::1\n", "::"),
    (b"1\t2\t3.5\n\n\n4\t5\t1\n\n", "\t"),
])
def test_plain_files_parse_exactly(tmp_path, data, separator):
    users, items, ratings, timestamps = parse_plain(write(tmp_path, data), separator, 0, 3, FIELDS)
    np.testing.assert_array_equal(users, [1, 4])
    np.testing.assert_array_equal(items, [2, 5])
    np.testing.assert_array_equal(ratings, np.array([3.5, 1.0], dtype=np.float32))
    assert timestamps is None and users.dtype == np.int32 and ratings.dtype == np.float32


@pytest.mark.parametrize("data", [
    b"1,2,3.5\n4,5,\n",  # empty field
    b"1,2,x\n", b'1,"2",3\n', b"1,2,1e3\n", b"1,2,nan\n",  # not plain numbers
    b"1,2,3,4\n",  # a field too many
    b"1,2\n",  # a field too few
    b"99999999999,2,3\n",  # id beyond 32 bits
    b"1,2,2000000\n",  # rating beyond 1e6
    b"1,2.5,3\n",  # fractional id
    b"\n\n",  # nothing but blank lines
])
def test_anything_else_is_left_to_the_general_reader(tmp_path, data):
    assert parse_plain(write(tmp_path, data), ",", 0, 3, FIELDS) is None


def test_many_blocks_growing_outputs_and_timestamps_match_pandas(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(-5, 10**6, 5000), "item": rng.integers(0, 999, 5000),
                          "rating": rng.integers(1, 11, 5000) / 2,
                          "timestamp": rng.integers(0, 2**40, 5000)})
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(fastcsv, "BLOCK_BYTES", 1000)  # dozens of blocks, lines cut across them
    users, items, ratings, timestamps = parse_plain(path, ",", 1, 4, FIELDS | {"timestamp": 3})
    np.testing.assert_array_equal(users, frame["user"])
    np.testing.assert_array_equal(items, frame["item"])
    np.testing.assert_array_equal(ratings, frame["rating"].astype(np.float32))
    np.testing.assert_array_equal(timestamps, frame["timestamp"])


def test_read_table_gives_the_same_ratings_with_and_without_the_fast_path(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    lines = ["userId,movieId,rating,timestamp"] + [
        f"{u},{i},{r},{t}" for u, i, r, t in zip(rng.integers(1, 50, 300), rng.integers(1, 80, 300),
                                                 rng.integers(1, 6, 300), rng.integers(0, 10**9, 300))]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    options = dict(user_col="userId", item_col="movieId", duplicates="last")
    fast = readers.read_table(path, **options)
    monkeypatch.setattr(readers, "parse_plain", lambda *args: None)
    general = readers.read_table(path, **options)
    for name in ("users", "items", "values", "timestamps", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name))
