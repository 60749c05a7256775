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
    b"1,2,3\n12345678901234567,2,3\n",  # 17 digits: more than a number is read fast
    b"1,2,3\r4\n", b"1,-,3\n", b"1,2,3.5.5\n", b"1,2,3,\n",  # stray bytes
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
        f"{u},{i},{r},{t}" for u, i, r, t in zip(
            rng.integers(1, 50, 300), rng.integers(1, 80, 300), rng.integers(1, 6, 300),
            rng.integers(0, 10**9, 300))]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    options = dict(user_col="userId", item_col="movieId", duplicates="last")
    fast = readers.read_table(path, **options)
    monkeypatch.setattr(readers, "parse_plain", lambda *args: None)
    general = readers.read_table(path, **options)
    for name in ("users", "items", "values", "timestamps", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name))


@pytest.mark.parametrize("text, expected", [
    ("7,8,0.5,1\n", (7, 8, 0.5, 1)),
    ("-3,-4,-2.25,-5\n", (-3, -4, -2.25, -5)),  # signs anywhere
    ("1,2,5.,12345678\n", (1, 2, 5.0, 12345678)),  # 8 digits: one word exactly
    ("1,2,4,123456789\n", (1, 2, 4.0, 123456789)),  # 9 digits: two words
    ("2147483647,2,1,1234567890123456\n", (2**31 - 1, 2, 1.0, 1234567890123456)),  # 16 digits
    ("1,2,123456.789012345,0\n", (1, 2, np.float32(123456.789012345), 0)),  # 15 significant
    ("00012,0,-0.0,0\n", (12, 0, 0.0, 0)),
])
def test_numbers_of_every_length_and_sign_parse_exactly(tmp_path, text, expected):
    fields = FIELDS | {"timestamp": 3}
    parsed = parse_plain(write(tmp_path, text.encode()), ",", 0, 4, fields)
    assert [array[0] for array in parsed] == list(expected)
    assert len(parsed[0]) == 1


@pytest.mark.parametrize("data", [b"1,2,3", b"1,2,3\r\n", b"\n\n1,2,3", b"1,2,3\n" * 5 + b"9,8,7"])
def test_short_files_and_the_last_line_parse_from_the_padded_tail(tmp_path, data):
    """Files shorter than the parser's read-ahead, and the last lines of any file, are parsed
    from a padded copy: the same rows as everywhere else."""
    users, items, ratings, _ = parse_plain(write(tmp_path, data), ",", 0, 3, FIELDS)
    expected = np.array([line.split(b",") for line in data.split() if line], dtype=np.int64)
    np.testing.assert_array_equal(users, expected[:, 0])
    np.testing.assert_array_equal(items, expected[:, 1])
    np.testing.assert_array_equal(ratings, expected[:, 2])


def test_blank_lines_in_every_piece_leave_no_gaps(tmp_path, monkeypatch):
    """Pieces are placed by their line ends; blank lines among them must not leave holes."""
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 10**6, size=(3000, 3))
    lines = [f"{u},{i},{r}" for u, i, r in rows]
    for position in sorted(rng.choice(len(lines), 400, replace=False), reverse=True):
        lines.insert(position, "" if position % 2 else "\r")
    monkeypatch.setattr(fastcsv, "BLOCK_BYTES", 4000)
    users, items, ratings, _ = parse_plain(write(tmp_path, "\n".join(lines).encode()), ",", 0,
                                           3, FIELDS)
    np.testing.assert_array_equal(users, rows[:, 0])
    np.testing.assert_array_equal(items, rows[:, 1])
    np.testing.assert_array_equal(ratings, rows[:, 2].astype(np.float32))


@pytest.mark.parametrize("data, separator", [
    (b"1:2::3\n", "::"), (b"1::2:::3\n", "::"), (b"1::2::3:\n", "::"),  # half separators
    (b"1,2,3\r\r\n", ","), (b"1,2,3\r4\r\n", ","),  # a return not before the line end
])
def test_stray_separator_and_return_bytes_are_left_to_the_general_reader(tmp_path, data,
                                                                        separator):
    assert parse_plain(write(tmp_path, data), separator, 0, 3, FIELDS) is None


def test_ids_in_either_order_and_an_ignored_fourth_field(tmp_path):
    path = write(tmp_path, b"5::1::4.5::99\n6::2::3::98\n")
    users, items, ratings, timestamps = parse_plain(path, "::", 0, 4,
                                                    {"item": 0, "user": 1, "rating": 2})
    np.testing.assert_array_equal(users, [1, 2])
    np.testing.assert_array_equal(items, [5, 6])
    np.testing.assert_array_equal(ratings, np.array([4.5, 3.0], dtype=np.float32))
    assert timestamps is None


@pytest.mark.parametrize("fourth, accepted", [
    (b"-7", True), (b"12345678", True), (b"1234567890123456", True),  # 8 and 16 digits
    (b"12345678901234567", False), (b"1.5", False), (b"-", False), (b"", False), (b"x", False),
])
def test_a_fourth_field_not_kept_is_checked_as_one_that_is(tmp_path, fourth, accepted):
    """Without timestamps the fourth field's digits are counted, not valued: the same lines
    are accepted and refused either way."""
    path = write(tmp_path, b"1,2,3.5," + fourth + b"\n4,5,1,0\n")
    for fields in (FIELDS, FIELDS | {"timestamp": 3}):
        parsed = parse_plain(path, ",", 0, 4, fields)
        assert (parsed is not None) == accepted
        if accepted:
            np.testing.assert_array_equal(parsed[0], [1, 4])
            np.testing.assert_array_equal(parsed[2], np.array([3.5, 1], dtype=np.float32))


@pytest.mark.parametrize("n_fields, fields", [
    (3, {"rating": 0, "user": 1, "item": 2}),  # rating first
    (4, {"user": 0, "rating": 1, "item": 2}),  # an ignored field among them
    (5, FIELDS | {"timestamp": 3}),  # a fifth field
    (4, {"timestamp": 0, "item": 1, "rating": 2, "user": 3}),  # an id in the fourth field
])
def test_other_layouts_are_left_to_the_general_reader(tmp_path, n_fields, fields):
    path = write(tmp_path, b",".join([b"1"] * n_fields) + b"\n")
    assert parse_plain(path, ",", 0, n_fields, fields) is None


def test_swapped_columns_read_as_the_general_reader_reads_them(tmp_path, monkeypatch):
    path = write(tmp_path, b"movieId,userId,rating,timestamp\n10,1,4.5,7\n20,-1,2,8\n10,2,3,9\n")
    options = dict(user_col="userId", item_col="movieId")
    assert parse_plain(path, ",", 1, 4, {"item": 0, "user": 1, "rating": 2}) is not None
    fast = readers.read_table(path, **options)
    monkeypatch.setattr(readers, "parse_plain", lambda *args: None)
    general = readers.read_table(path, **options)
    for name in ("users", "items", "values", "timestamps", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name))
    np.testing.assert_array_equal(fast.user_ids, [-1, 1, 2])


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 127, 128, 129, 5000])
@pytest.mark.parametrize("offset", [0, 3])
def test_line_ends_are_counted_64_bytes_at_a_time_and_in_the_tail(length, offset):
    rng = np.random.default_rng(length)
    data = rng.choice(np.frombuffer(b"\n,0.9\r", dtype=np.uint8), length + offset)
    piece = data[offset:]  # unaligned, as a piece of a mapped file is
    assert fastcsv._count_line_ends(piece) == np.count_nonzero(piece == ord("\n"))
