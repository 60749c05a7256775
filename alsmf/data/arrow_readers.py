"""Arrow's CSV reader for delimited files the fast parser declines, and Parquet files.

Arrow parses typed columns on all cores: int32 ids and float32 ratings first (40% of the
memory of 64-bit ones), 64-bit types when a value does not fit, so that messages show the
value as written. Only when even that fails does a slower diagnostic pass run, so that the
user gets ``file, line N: what is wrong`` instead of a pyarrow traceback.

``::`` (MovieLens 1M/10M) is not a single-character delimiter, which pyarrow requires; such
lines are parsed with ``:`` as delimiter, which turns ``1::2::5::978300760`` into seven fields
with empty ones in between, and fields 0, 2, 4, 6 are kept.

Imported only when needed: pyarrow adds tens of MB to a process that never reads through it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alsmf.data.layout import Columns, Layout, line_labeller, ragged_line
from alsmf.data.ratings import MAX_ABS_RATING
from alsmf.errors import DataError

_INT_PATTERN = r"^\s*[+-]?[0-9]+\s*$"
_LONG_INT_PATTERN = r"[0-9]{19}"  # 19 digits or more may not fit in int64
_INT64_RANGE = (-(2**63), 2**63 - 1)
_FLOAT_PATTERN = (r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
                  r"|^\s*[+-]?(nan|NaN|inf|Inf)\s*$")
_NARROW_TYPES = {"user id": pa.int32(), "item id": pa.int32(), "rating": pa.float32(),
                 "timestamp": pa.int64()}
_WIDE_TYPES = {"user id": pa.int64(), "item id": pa.int64(), "rating": pa.float64(),
               "timestamp": pa.int64()}


def parse_with_arrow(path: Path, name: str, layout: Layout, wanted: dict[str, str],
                     row_label: Callable[[int], str]) -> tuple:
    """(users, items, ratings or None, timestamps or None) as numpy, from Arrow's CSV reader.

    ``wanted`` maps the columns to read to their descriptions (:meth:`Columns.found_in`).
    Each column is copied out of Arrow and dropped before the next, and Arrow's pool returns
    its memory, so the peak stays near one copy of the data.
    """
    rating = next((column for column, what in wanted.items() if what == "rating"), None)
    try:
        table = _arrow_csv(path, layout, {c: _NARROW_TYPES[w] for c, w in wanted.items()})
        if rating is not None and not _plain_ratings(table.column(rating)):
            raise pa.ArrowInvalid("ratings need 64-bit floats")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        try:
            table = _arrow_csv(path, layout, {c: _WIDE_TYPES[w] for c, w in wanted.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise _diagnose(path, name, layout, wanted, error) from None
    if table.num_rows == 0:
        raise DataError(f"{name}: has a header (line {layout.header_line}) but no ratings")
    pool = pa.default_memory_pool()
    pool.release_unused()  # the parser's buffers
    arrays = {}
    for column, what in wanted.items():
        arrays[what] = _column_to_numpy(table.column(column), name, what, row_label)
        table = table.drop_columns([column])  # frees the column's Arrow buffers ...
        pool.release_unused()  # ... and gives them back to the system
    return _by_role(arrays)


def _by_role(arrays: dict[str, np.ndarray]) -> tuple:
    """(users, items, ratings or None, timestamps or None) from arrays by description."""
    return (arrays["user id"], arrays["item id"], arrays.get("rating"),
            arrays.get("timestamp"))


def _plain_ratings(ratings: pa.ChunkedArray) -> bool:
    """Whether float32 ratings are all finite and at most MAX_ABS_RATING in magnitude."""
    if ratings.null_count:
        return True  # reported as an empty rating, whatever the width
    largest = pc.max(pc.abs(ratings)).as_py()
    return largest is not None and math.isfinite(largest) and largest <= MAX_ABS_RATING


def _column_to_numpy(column: pa.ChunkedArray, name: str, what: str,
                     row_label: Callable[[int], str]) -> np.ndarray:
    """A column as one numpy array owned by numpy (no Arrow buffer kept alive)."""
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{name}, {row_label(row)}: {what} is empty")
    out = np.empty(len(column), dtype=column.type.to_pandas_dtype())
    position = 0
    for chunk in column.chunks:
        out[position:position + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
        position += len(chunk)
    return out


def _arrow_csv(path: Path, layout: Layout, types: dict[str, pa.DataType]) -> pa.Table:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=layout.parse_names,
                                       skip_rows=layout.skip_rows, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=layout.parse_delimiter),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types),
                                             null_values=[""], strings_can_be_null=True),
    )


def _diagnose(path: Path, name: str, layout: Layout, wanted: dict[str, str],
              error: Exception) -> DataError:
    """Re-read the wanted columns as bytes to find the first line that cannot be parsed.

    Bytes rather than text, so that a field which is not UTF-8 is found and shown too.
    """
    label = line_labeller(path, layout)
    try:
        table = _arrow_csv(path, layout, {c: pa.binary() for c in wanted})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return (ragged_line(path, name, layout)
                or DataError(f"{name}: cannot parse: {_one_line(error)}"))
    first: tuple[int, str] | None = None
    for column, what in wanted.items():
        values = table.column(column)
        if what == "rating":
            bad, problem = _not_matching(values, _FLOAT_PATTERN), "is not a number"
        else:
            bad, problem = _not_matching(values, _INT_PATTERN), "is not an integer"
            outside = _outside_int64(values)
            if len(outside) and (not len(bad) or outside[0] < bad[0]):
                bad, problem = outside, "is out of the 64-bit integer range"
        if len(bad) and (first is None or bad[0] < first[0]):
            text = values[int(bad[0])].as_py().decode("utf-8", errors="replace")
            if "\n" in text:
                first = (int(bad[0]), f"a quote opened in the {what} field is not closed on "
                                      "this line")
            else:
                first = (int(bad[0]), f"{what} {_shown(text)} {problem}")
    if first is None:
        return DataError(f"{name}: cannot parse: {_one_line(error)}")
    return DataError(f"{name}, {label(first[0])}: {first[1]}")


def _one_line(error: Exception) -> str:
    """An error's text on one line (pyarrow's messages may span several)."""
    return " ".join(str(error).split())


def _shown(text: str, limit: int = 40) -> str:
    """A field's text quoted for a message, cut short when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _not_matching(values: pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Rows whose text does not match ``pattern`` (empty cells are left to later checks)."""
    ok = pc.fill_null(pc.match_substring_regex(values, pattern), True)
    return np.flatnonzero(~ok.to_numpy(zero_copy_only=False))


def _outside_int64(values: pa.ChunkedArray) -> np.ndarray:
    """Rows holding an integer too large for int64 (only long digit runs are converted)."""
    long = pc.fill_null(pc.match_substring_regex(values, _LONG_INT_PATTERN), False)
    rows = np.flatnonzero(long.to_numpy(zero_copy_only=False))
    low, high = _INT64_RANGE
    outside = []
    for row in rows:
        text = values[int(row)].as_py().strip()  # bytes: int() accepts ASCII digits
        try:
            number = int(text)
        except ValueError:
            continue
        if not low <= number <= high:
            outside.append(row)
    return np.asarray(outside, dtype=np.int64)


def _to_arrays(table: pa.Table, name: str, wanted: dict[str, str],
               row_label: Callable[[int], str]) -> tuple:
    """(users, items, ratings or None, timestamps or None) as numpy, refusing empty cells."""
    return _by_role({what: _column_without_gaps(table, column, what, name, row_label)
                     for column, what in wanted.items()})


def _column_without_gaps(table: pa.Table, column: str, what: str, name: str,
                         row_label: Callable[[int], str]) -> np.ndarray:
    """``table``'s ``column`` as numpy; a DataError naming the first empty cell."""
    values = table.column(column)
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{name}, {row_label(row)}: {what} is empty")
    return values.to_numpy()


def parquet_arrays(path: Path, name: str, columns: Columns) -> tuple:
    """(users, items, ratings or None, timestamps or None) from the wanted columns of a
    Parquet file, checking their presence and types."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{name}: unknown format: not a valid Parquet file ({error})") from None
    wanted = columns.found_in(schema.names, name, "columns are")
    for column, what in wanted.items():
        _check_parquet_type(name, column, what, schema.field(column).type)
    # column by column and batch by batch into one numpy array per column, ids narrowed to
    # int32 where they fit (the fast CSV parser's type, whose arrays the id coding then
    # overwrites in place): Arrow's whole table beside 64-bit copies held about twice the
    # memory of reading the same ratings from CSV
    try:
        file = pq.ParquetFile(path)
        n_rows = file.metadata.num_rows
        if n_rows == 0:
            raise DataError(f"{name}: the Parquet file has no rows")
        arrays = {what: _parquet_column(file, column, what, name, n_rows)
                  for column, what in wanted.items()}
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{name}: cannot read the Parquet file ({error})") from None
    finally:  # Arrow's allocator keeps what the batches freed; training needs it more
        pa.default_memory_pool().release_unused()
    return _by_role(arrays)


_BATCH_ROWS = 1 << 20
"""Rows of a Parquet column turned into numpy at a time."""

_INT32 = np.iinfo(np.int32)


def _parquet_column(file: pq.ParquetFile, column: str, what: str, name: str,
                    n_rows: int) -> np.ndarray:
    """One column of a Parquet file as numpy, read a batch at a time into one array: ids as
    int32 when they all fit (int64 otherwise), timestamps as int64 seconds, ratings in their
    own type; a DataError naming the first empty cell."""
    out: np.ndarray | None = None
    start = 0
    for batch in file.iter_batches(batch_size=_BATCH_ROWS, columns=[column]):
        values = batch.column(0)
        if values.null_count:
            row = start + int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{name}, {parquet_row(row)}: {what} is empty")
        part = values.to_numpy(zero_copy_only=False)
        if np.issubdtype(part.dtype, np.datetime64):
            part = part.astype("datetime64[s]").astype(np.int64)
        if out is None:
            ids = what in ("user id", "item id") and np.issubdtype(part.dtype, np.integer)
            out = np.empty(n_rows, dtype=np.int32 if ids else part.dtype)
        if out.dtype == np.int32 and part.dtype != np.int32 and len(part) and not (
                _INT32.min <= part.min() and part.max() <= _INT32.max):
            # an id past int32: the whole column in the file's 64-bit type (uint64 ids past
            # int64 are then refused by the range check, as from any reader)
            out = out.astype(part.dtype if part.dtype.itemsize == 8 else np.int64)
        out[start:start + len(part)] = part
        start += len(part)
    return out


def _check_parquet_type(name: str, column: str, what: str, dtype: pa.DataType) -> None:
    if what == "rating":
        ok = pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
        expected = "numbers"
    elif what == "timestamp":
        ok = pa.types.is_integer(dtype) or pa.types.is_timestamp(dtype)
        expected = "integers (seconds) or timestamps"
    else:
        ok = pa.types.is_integer(dtype)
        expected = "integers"
    if not ok:
        raise DataError(f"{name}: column {column!r} ({what}) has type {dtype}; expected {expected}")


def parquet_row(row: int) -> str:
    """Where row ``row`` (0-based) of a Parquet file is, for messages."""
    return f"row {row + 1}"
