"""read_table: delimited and Parquet ratings files, and the messages bad files get."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsmf.data.readers import read_table
from alsmf.errors import ConfigError, DataError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def triples(ratings) -> list[tuple[int, int, float]]:
    frame = ratings.to_frame()
    return list(zip(frame.user.tolist(), frame.item.tolist(), frame.rating.tolist()))


# ---------------------------------------------------------------------- formats
@pytest.mark.parametrize("name, text", [
    ("header.csv", "user,item,rating,timestamp\n10,20,4,100\n11,20,3.5,101\n"),
    ("plain.tsv", "10\t20\t4\t100\n11\t20\t3.5\t101\n"),
    ("semicolon.txt", "user;item;rating;timestamp\n10;20;4;100\n11;20;3.5;101\n"),
    ("ml.dat", "10::20::4::100\n11::20::3.5::101\n"),
    ("header.dat", "user::item::rating::timestamp\n10::20::4::100\n11::20::3.5::101\n"),
    ("blank-lines.csv", "\nuser,item,rating,timestamp\n10,20,4,100\n\n11,20,3.5,101\n\n"),
    ("crlf-bom.csv", "\ufeffuser,item,rating,timestamp\r\n10,20,4,100\r\n11,20,3.5,101\r\n"),
])
def test_delimited_formats_are_sniffed(tmp_path, name, text):
    ratings = read_table(write(tmp_path, name, text))
    assert triples(ratings) == [(10, 20, 4.0), (11, 20, 3.5)]
    assert ratings.timestamps.tolist() == [100, 101]
    assert ratings.source == str(tmp_path / name)


def test_headerless_three_columns_have_no_timestamps(tmp_path):
    ratings = read_table(write(tmp_path, "r.csv", "1,2,5\n3,4,1\n"))
    assert triples(ratings) == [(1, 2, 5.0), (3, 4, 1.0)]
    assert ratings.timestamps is None


def test_custom_column_names_and_extra_columns(tmp_path):
    path = write(tmp_path, "r.csv", "title,uid,mid,stars,ts\nx,1,2,5,7\ny,3,2,1,8\n")
    ratings = read_table(path, user_col="uid", item_col="mid", rating_col="stars",
                         timestamp_col="ts")
    assert triples(ratings) == [(1, 2, 5.0), (3, 2, 1.0)]
    assert ratings.timestamps.tolist() == [7, 8]
    assert read_table(path, user_col="uid", item_col="mid", rating_col="stars",
                      timestamps=False).timestamps is None


def test_explicit_separator_and_header(tmp_path):
    path = write(tmp_path, "r.txt", "1|2|5\n3|4|1\n")
    assert len(read_table(path, sep="|", header=False)) == 2
    with pytest.raises(ConfigError, match="one character"):
        read_table(path, sep="||")


def test_scale_and_duplicate_policy_pass_through(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating,timestamp\n1,2,3,10\n1,2,5,20\n2,2,4,5\n")
    ratings = read_table(path, duplicates="last", scale=(1, 5))
    assert triples(ratings) == [(1, 2, 5.0), (2, 2, 4.0)]
    assert ratings.scale == (1, 5)


def test_parquet_with_integer_and_datetime_timestamps(tmp_path):
    frame = pd.DataFrame({"user": [5, 6], "item": [7, 7], "rating": [1.5, 2.0],
                          "timestamp": pd.to_datetime([1, 2], unit="s")})
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    ratings = read_table(tmp_path / "r.parquet")
    assert triples(ratings) == [(5, 7, 1.5), (6, 7, 2.0)]
    assert ratings.timestamps.tolist() == [1, 2]
    # recognised by its magic bytes, whatever the suffix
    (tmp_path / "r.bin").write_bytes((tmp_path / "r.parquet").read_bytes())
    assert len(read_table(tmp_path / "r.bin")) == 2


def test_parquet_custom_columns(tmp_path):
    pd.DataFrame({"u": [1], "i": [2], "r": np.array([3], dtype=np.int8)}).to_parquet(
        tmp_path / "r.parquet", index=False)
    assert triples(read_table(tmp_path / "r.parquet", user_col="u", item_col="i",
                              rating_col="r")) == [(1, 2, 3.0)]


# ---------------------------------------------------------------------- column names
CANONICAL = "user,item,rating,timestamp\n10,20,4,100\n11,20,3.5,101\n10,21,2,102\n"


def same_ratings(a, b) -> bool:
    """Whether two Ratings hold the same ids, values and timestamps in the same order."""
    arrays = ("users", "items", "values", "user_ids", "item_ids")
    return (all(np.array_equal(getattr(a, n), getattr(b, n)) for n in arrays)
            and (a.timestamps is None) == (b.timestamps is None)
            and (a.timestamps is None or np.array_equal(a.timestamps, b.timestamps)))


@pytest.mark.parametrize("header", [
    "userId,movieId,rating,timestamp",  # MovieLens' ratings.csv, under another file name
    "user_id,item_id,rating,ts",
    "UserID,MovieID,Rating,time",
    "userid,itemId,score,timestamp",
    "USER,movie_id,value,TIMESTAMP",
])
def test_common_header_names_read_as_the_canonical_ones(tmp_path, header):
    canonical = read_table(write(tmp_path, "canonical.csv", CANONICAL))
    text = CANONICAL.replace("user,item,rating,timestamp", header)
    assert same_ratings(read_table(write(tmp_path, "exported.csv", text)), canonical)
    # the same through Arrow: a quoted header and a text column keep the fast parser away
    quoted = '"' + header.replace(",", '","') + '",note\n' + "".join(
        f"{line},x\n" for line in CANONICAL.splitlines()[1:])
    assert same_ratings(read_table(write(tmp_path, "quoted.csv", quoted)), canonical)


def test_parquet_columns_are_recognised_by_the_same_names(tmp_path):
    frame = pd.DataFrame({"userId": [10, 11, 10], "movieId": [20, 20, 21],
                          "Score": [4.0, 3.5, 2.0], "ts": [100, 101, 102]})
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    canonical = read_table(write(tmp_path, "canonical.csv", CANONICAL))
    assert same_ratings(read_table(tmp_path / "r.parquet"), canonical)


def test_a_named_column_wins_over_the_recognised_names(tmp_path):
    path = write(tmp_path, "r.csv", "user,customer,item,rating\n1,7,20,4\n2,8,20,3\n")
    assert triples(read_table(path)) == [(1, 20, 4.0), (2, 20, 3.0)]
    assert triples(read_table(path, user_col="customer")) == [(7, 20, 4.0), (8, 20, 3.0)]
    # a name given is matched exactly: 'User' is not 'user'
    with pytest.raises(DataError, match="missing column.*'User'; the header"):
        read_table(path, user_col="User")


def test_two_recognised_names_for_one_column_are_an_error_naming_both(tmp_path):
    path = write(tmp_path, "r.csv", "user,userId,item,rating\n1,7,20,4\n")
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert str(caught.value) == (
        f"{path}: ambiguous header: 'user', 'userId' could each be the user id column; "
        "name the one to use with --user-col (or user_col=...)")
    assert triples(read_table(path, user_col="userId")) == [(7, 20, 4.0)]
    # a column named for one role is no candidate for another
    both = write(tmp_path, "both.csv", "item,movie,user,rating\n20,30,1,4\n")
    assert triples(read_table(both, item_col="movie")) == [(1, 30, 4.0)]


def test_one_name_for_two_columns_is_refused(tmp_path):
    path = write(tmp_path, "r.csv", CANONICAL)
    with pytest.raises(ConfigError, match="one column cannot be two of user, item, rating "
                                          "and timestamp: user 'item', item 'item'"):
        read_table(path, user_col="item", item_col="item")


# ---------------------------------------------------------------------- implicit feedback
@pytest.mark.parametrize("name, text", [
    ("pairs.csv", "1,10\n2,10\n1,11\n"),
    ("pairs.tsv", "user\titem\n1\t10\n2\t10\n1\t11\n"),
    ("pairs-time.csv", "userId,movieId,timestamp\n1,10,5\n2,10,6\n1,11,7\n"),
])
def test_implicit_feedback_pairs_without_counts_are_worth_one(tmp_path, name, text):
    ratings = read_table(write(tmp_path, name, text), feedback="implicit")
    assert triples(ratings) == [(1, 10, 1.0), (2, 10, 1.0), (1, 11, 1.0)]
    assert ratings.values.dtype == np.float32


@pytest.mark.parametrize("column", ["count", "Weight", "plays", "clicks", "value", "rating"])
def test_implicit_feedback_reads_a_count_or_weight_column_as_the_values(tmp_path, column):
    path = write(tmp_path, "clicks.csv", f"user,item,{column}\n1,10,3\n2,10,1\n1,11,12\n")
    assert triples(read_table(path, feedback="implicit")) == [(1, 10, 3.0), (2, 10, 1.0),
                                                               (1, 11, 12.0)]


def test_implicit_feedback_column_options_duplicates_and_parquet(tmp_path):
    path = write(tmp_path, "plays.csv", "user,item,minutes,plays\n1,10,30,3\n1,10,60,2\n")
    # a named column wins over a recognised one; repeated pairs follow the duplicates policy
    assert triples(read_table(path, feedback="implicit", rating_col="minutes",
                              duplicates="mean")) == [(1, 10, 45.0)]
    with pytest.raises(DataError, match="rated twice, at line 2 and line 3"):
        read_table(path, feedback="implicit")
    with pytest.raises(DataError, match=r"missing column\(s\) 'seconds'"):
        read_table(path, feedback="implicit", rating_col="seconds")
    both = write(tmp_path, "both.csv", "user,item,count,weight\n1,10,3,0.5\n")
    with pytest.raises(DataError, match="'count', 'weight' could each be the rating column"):
        read_table(both, feedback="implicit")
    pd.DataFrame({"user_id": [5, 6], "item_id": [7, 7]}).to_parquet(tmp_path / "p.parquet",
                                                                    index=False)
    assert triples(read_table(tmp_path / "p.parquet", feedback="implicit")) == [(5, 7, 1.0),
                                                                                 (6, 7, 1.0)]
    with pytest.raises(ConfigError, match="unknown feedback 'clicks'; choose one of explicit, "
                                          "implicit"):
        read_table(path, feedback="clicks")


def test_explicit_feedback_still_needs_the_rating_and_says_how_to_read_pairs(tmp_path):
    hint = "pairs without ratings are implicit feedback: alsmf train --feedback implicit"
    for text, start in (("user,item\n1,10\n", "missing column(s) 'rating'"),
                        ("1,10\n2,10\n", "line 1: found 2 field(s)")):
        with pytest.raises(DataError) as caught:
            read_table(write(tmp_path, "pairs.csv", text))
        assert start in str(caught.value) and hint in str(caught.value)
    with pytest.raises(DataError, match="line 1: found 1 field.*needs user and item columns"):
        read_table(write(tmp_path, "ids.csv", "1\n2\n"), sep=",", feedback="implicit")


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("text, fragments", [
    ("user,item,rating\n1,2,3\n\nabc,3,4\n", ["line 4", "user id 'abc' is not an integer"]),
    ("user,item,rating\n1,2,3\n1,2.5,3\n", ["line 3", "item id '2.5' is not an integer"]),
    ("user,item,rating\n1,2,3\n2,3,good\n", ["line 3", "rating 'good' is not a number"]),
    ("1::2::3::4\n1::3::x::5\n", ["line 2", "rating 'x' is not a number"]),
    ("user,item,rating\n1,2,3\n2,3\n", ["line 3", "expected 3 fields", "found 2"]),
    ("user,item,rating\n1,2,3\n2,,4\n", ["line 3", "item id is empty"]),
    ("user,item,rating\n1,2,3\n2,3,nan\n", ["line 3", "not a finite number"]),
    ("user,item,rating\n1,2,3\n\n2,3,9\n", ["line 4", "outside the scale 1..5"]),
    ("user,item,rating\n1,2,3\n2,3,4\n1,2,5\n", ["line 2 and line 4", "rated twice"]),
    ("user,item,rating\n", ["has a header (line 1) but no ratings"]),
    ("", ["the file is empty"]),
    ("\n\n", ["empty"]),
    ("u,i,rating\n1,2,3\n", ["missing column(s) 'user', 'item'", "'u', 'i', 'rating'"]),
    ("1,2\n3,4\n", ["line 1", "found 2 field(s)"]),
    ("hello world\n", ["unknown format", "cannot tell how fields are separated"]),
])
def test_bad_files_name_the_file_and_line(tmp_path, text, fragments):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError) as caught:
        read_table(path, scale=(1, 5))
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message
    assert "Arrow" not in message and "CSV conversion" not in message


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_binary_file_is_an_unknown_format(tmp_path):
    (tmp_path / "r.csv").write_bytes(b"\x00\x01binary")
    with pytest.raises(DataError, match="unknown format"):
        read_table(tmp_path / "r.csv")
    (tmp_path / "r.parquet").write_text("user,item,rating\n")
    with pytest.raises(DataError, match="not a valid Parquet file"):
        read_table(tmp_path / "r.parquet")


def test_parquet_wrong_types_and_missing_columns(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": ["a"], "item": [1], "rating": [1.0]}).to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"r.parquet: column 'user' \(user id\) has type .*string"):
        read_table(path)
    pd.DataFrame({"uid": [1], "item": [1], "rating": [1.0]}).to_parquet(path, index=False)
    with pytest.raises(DataError, match="missing column.*'user'.*columns are 'uid'"):
        read_table(path)
    pd.DataFrame({"user": [1, None], "item": [1, 2], "rating": [1.0, 2.0]}).to_parquet(
        path, index=False)
    with pytest.raises(DataError, match="has type double"):
        read_table(path)
    pd.DataFrame({"user": pd.array([1, None], dtype="Int64"), "item": [1, 2],
                  "rating": [1.0, 2.0]}).to_parquet(path, index=False)
    with pytest.raises(DataError, match="row 2: user id is empty"):
        read_table(path)


def test_parquet_is_read_batch_by_batch_into_the_same_ratings(tmp_path, monkeypatch):
    """Small batches: ids past int32 in a late batch widen the column, and an empty cell in a
    late batch is named by its row (the 61st)."""
    import alsmf.data.arrow_readers as arrow_readers

    monkeypatch.setattr(arrow_readers, "_BATCH_ROWS", 7)
    rng = np.random.default_rng(3)
    users = rng.integers(1, 40, 100).astype(np.int64)
    users[90] = 2**40  # past int32, in the 13th batch
    items = rng.permutation(100).astype(np.int64) + 1
    frame = pd.DataFrame({"user": users, "item": items,
                          "rating": rng.integers(1, 6, 100).astype(np.float32)})
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    frame.to_csv(tmp_path / "r.csv", index=False)
    from_parquet, from_csv = read_table(tmp_path / "r.parquet"), read_table(tmp_path / "r.csv")
    assert np.array_equal(from_parquet.user_ids, from_csv.user_ids)
    assert 2**40 in from_parquet.user_ids
    for name in ("users", "items", "values"):
        assert np.array_equal(getattr(from_parquet, name), getattr(from_csv, name))
    frame["item"] = frame["item"].astype("Int64")
    frame.loc[60, "item"] = None
    frame.to_parquet(tmp_path / "gap.parquet", index=False)
    with pytest.raises(DataError, match="row 61: item id is empty"):
        read_table(tmp_path / "gap.parquet")
