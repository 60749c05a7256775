"""Read ratings tables (CSV, TSV, ``::``-separated text, Parquet) into :class:`Ratings`.

The fast path parses delimited text with ``pyarrow.csv`` (multi-threaded, typed columns:
int64 ids and timestamps, float64 ratings), which loads tens of millions of rows in seconds.
Only when that typed parse fails does a slower diagnostic pass run, so that the user gets
``file, line N: what is wrong`` instead of a pyarrow traceback. Line numbers are found by
scanning the file only when a message needs one, so correct files pay nothing for them.

``::`` (MovieLens 1M/10M) is not a single-character delimiter, which pyarrow requires; such
lines are parsed with ``:`` as delimiter, which turns ``1::2::5::978300760`` into seven fields
with empty ones in between, and fields 0, 2, 4, 6 are kept.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alsmf.data.fastcsv import parse_plain
from alsmf.data.ratings import MAX_ABS_RATING, DuplicatePolicy, Ratings
from alsmf.errors import ConfigError, DataError

PathLike = str | os.PathLike
SEPARATORS: tuple[str, ...] = ("::", "\t", ",", ";")
"""Delimiters recognised by sniffing, in the order they are tried on the first line."""

PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
              (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
_SNIFF_BYTES = 1 << 16
_INT_PATTERN = r"^\s*[+-]?[0-9]+\s*$"
_LONG_INT_PATTERN = r"[0-9]{19}"  # 19 digits or more may not fit in int64
_INT64_RANGE = (-(2**63), 2**63 - 1)
_FLOAT_PATTERN = (r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
                  r"|^\s*[+-]?(nan|NaN|inf|Inf)\s*$")


@dataclass(frozen=True)
class _Columns:
    """The columns wanted from a table and how each is described in messages."""

    user: str
    item: str
    rating: str
    timestamp: str | None

    def described(self, present: list[str]) -> dict[str, str]:
        """Column name -> description, for the columns that will be read."""
        names = {self.user: "user id", self.item: "item id", self.rating: "rating"}
        if self.timestamp is not None and self.timestamp in present:
            names[self.timestamp] = "timestamp"
        return names


@dataclass(frozen=True)
class _Layout:
    """How a delimited file is laid out: delimiter, header and the names of its fields."""

    sep: str
    names: list[str]
    header_line: int | None
    """1-based line number of the header, ``None`` for a headerless file."""
    first_line: int
    """1-based line number of the first non-empty line (the header, or the first data row)."""

    @property
    def parse_delimiter(self) -> str:
        return ":" if self.sep == "::" else self.sep

    @property
    def skip_rows(self) -> int:
        return self.first_line if self.header_line is not None else self.first_line - 1

    @property
    def parse_names(self) -> list[str]:
        """Field names as pyarrow sees them (with filler names between ``::`` fields)."""
        if self.sep != "::":
            return self.names
        names: list[str] = []
        for n, name in enumerate(self.names):
            names += [name] if n == 0 else [f"__gap{n}__", name]
        return names


def read_table(
    path: PathLike,
    *,
    sep: str | None = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    timestamp_col: str | None = "timestamp",
    header: bool | None = None,
    scale: tuple[float, float] | None = None,
    duplicates: DuplicatePolicy = "error",
    source: str | None = None,
) -> Ratings:
    """Read a CSV, TSV, ``::``-separated or Parquet ratings file.

    Args:
        path: the file. Parquet is recognised by its suffix or its magic bytes; anything else
            must be delimited text.
        sep: the delimiter (one character or ``"::"``); sniffed from the first line when
            ``None`` (``::``, tab, ``,`` then ``;``).
        user_col, item_col, rating_col, timestamp_col: column names. A headerless file's
            columns are, in order, user, item, rating and optionally timestamp. The timestamp
            column is read when present; ``timestamp_col=None`` ignores it.
        header: whether the first line names the columns; ``None`` decides from the first
            line (a header has a non-numeric field among the first three).
        scale: ``(low, high)``: ratings outside it are refused.
        duplicates: policy for repeated (user, item) pairs (see :data:`DuplicatePolicy`).
        source: the name used in messages (defaults to the path), for example
            ``"ml-100k.zip:ml-100k/u.data"`` when the file was extracted from a zip.

    Raises:
        DataError: naming the file and, where it applies, the line of the first problem.
    """
    path = Path(path)
    name = source or str(path)
    _check_file(path, name)
    columns = _Columns(user_col, item_col, rating_col, timestamp_col)
    if _is_parquet(path):
        return _read_parquet(path, name, columns, scale, duplicates)
    layout = _sniff_layout(path, name, sep, header, columns)
    row_label = _line_labeller(path, layout)
    arrays = _parse_delimited(path, name, layout, columns, row_label)
    return Ratings.from_arrays(*arrays, source=name, scale=scale, duplicates=duplicates,
                               row_label=row_label)


# ---------------------------------------------------------------------- the file itself
def _check_file(path: Path, name: str) -> None:
    """Refuse a missing path, a folder or an empty file with a message saying which."""
    if not path.exists():
        raise DataError(f"{name}: no such file")
    if path.is_dir():
        raise DataError(f"{name}: is a folder; expected a ratings file (CSV, TSV or Parquet)")
    if path.stat().st_size == 0:
        raise DataError(f"{name}: the file is empty")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    with path.open("rb") as stream:
        return stream.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC


# ---------------------------------------------------------------------- delimited text
def _sniff_layout(path: Path, name: str, sep: str | None, header: bool | None,
                  columns: _Columns) -> _Layout:
    """Find the first line, the delimiter, whether there is a header, and the field names."""
    if sep is not None and sep != "::" and len(sep) != 1:
        raise ConfigError(f"sep must be one character or '::', got {sep!r}")
    first_line, text = _first_line(path, name)
    if sep is None:
        sep = _guess_separator(text, path, name)
    fields = [f.strip().strip('"').strip() for f in text.split(sep)]
    if header is None:
        header = not all(_is_number(f) for f in fields[:3])
    if header:
        return _Layout(sep, fields, first_line, first_line)
    positional = [columns.user, columns.item, columns.rating, columns.timestamp or "__timestamp__"]
    names = positional[: len(fields)] + [f"__extra{n}__" for n in range(4, len(fields))]
    if len(fields) < 3:
        raise DataError(
            f"{name}, line {first_line}: found {len(fields)} field(s) separated by {sep!r}; "
            "a file without a header needs user, item and rating columns"
        )
    return _Layout(sep, names, None, first_line)


def _first_line(path: Path, name: str) -> tuple[int, str]:
    """The 1-based number and text of the first non-empty line; refuses binary files."""
    with path.open("rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    if head.startswith(_ZIP_MAGIC):
        raise DataError(f"{name}: {_zip_problem(path)}")
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise DataError(f"{name}: unknown format: the text is {encoding}; "
                            "save it as UTF-8 and read it again")
    if b"\0" in head:
        raise DataError(f"{name}: unknown format: not CSV, TSV or Parquet (it is binary)")
    for number, raw in enumerate(head.split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            raise DataError(f"{name}: unknown format: line {number} is not UTF-8 text") from None
        if text:
            return number, text
    raise DataError(f"{name}: the file is empty (only blank lines)")


def _zip_problem(path: Path) -> str:
    """What to tell about a file that starts like a zip archive."""
    if zipfile.is_zipfile(path):
        return ("is a zip archive, not a CSV, TSV or Parquet file; a MovieLens zip is read "
                "by load_ratings or 'alsmf train --data'")
    return ("is a truncated or corrupt zip file (its central directory, at the end of the "
            "file, is missing); download or copy it again")


def _guess_separator(line: str, path: Path, name: str) -> str:
    if path.suffix.lower() == ".tsv" and "\t" in line:
        return "\t"
    for sep in SEPARATORS:
        if sep in line:
            return sep
    raise DataError(
        f"{name}: unknown format: cannot tell how fields are separated on the first line "
        f"({line[:60]!r}); expected ',', tab, ';' or '::' (or pass sep=...)"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_NARROW_TYPES = {"user id": pa.int32(), "item id": pa.int32(), "rating": pa.float32(),
                 "timestamp": pa.int64()}
_WIDE_TYPES = {"user id": pa.int64(), "item id": pa.int64(), "rating": pa.float64(),
               "timestamp": pa.int64()}


def _parse_delimited(path: Path, name: str, layout: _Layout, columns: _Columns,
                     row_label: Callable[[int], str]) -> tuple:
    """Typed, multi-threaded parse into numpy (users, items, ratings, timestamps or None).

    Plain numeric files take the fast path of :mod:`alsmf.data.fastcsv`. Others go through
    Arrow's CSV reader with the narrowest types that hold them (32-bit ids and ratings: 40% of
    the memory of 64-bit ones at 20M ratings); when a value does not fit, or a rating is not a
    finite number of at most :data:`MAX_ABS_RATING`, the file is parsed again with 64-bit
    types so that the messages show the value as written. A parse that fails even so gets a
    diagnostic pass that names the line. Each column is copied out of Arrow and dropped before
    the next, and Arrow's pool returns its memory, so the peak stays near one copy of the data.
    """
    wanted = columns.described(layout.names)
    missing = [c for c in wanted if c not in layout.names]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the header (line {layout.header_line}) has {', '.join(map(repr, layout.names))}"
        )
    roles = {"user id": "user", "item id": "item", "rating": "rating", "timestamp": "timestamp"}
    plain = parse_plain(path, layout.sep, layout.skip_rows, len(layout.names),
                        {roles[what]: layout.names.index(c) for c, what in wanted.items()})
    if plain is not None:
        return plain
    try:
        table = _arrow_csv(path, layout, {c: _NARROW_TYPES[w] for c, w in wanted.items()})
        if not _plain_ratings(table.column(columns.rating)):
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
    arrays = []
    for column, what in wanted.items():
        arrays.append(_column_to_numpy(table.column(column), name, what, row_label))
        table = table.drop_columns([column])  # frees the column's Arrow buffers ...
        pool.release_unused()  # ... and gives them back to the system
    return tuple(arrays) if len(arrays) == 4 else (*arrays, None)


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


def _arrow_csv(path: Path, layout: _Layout, types: dict[str, pa.DataType]) -> pa.Table:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=layout.parse_names,
                                       skip_rows=layout.skip_rows, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=layout.parse_delimiter),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types),
                                             null_values=[""], strings_can_be_null=True),
    )


def _diagnose(path: Path, name: str, layout: _Layout, wanted: dict[str, str],
              error: Exception) -> DataError:
    """Re-read the wanted columns as bytes to find the first line that cannot be parsed.

    Bytes rather than text, so that a field which is not UTF-8 is found and shown too.
    """
    label = _line_labeller(path, layout)
    try:
        table = _arrow_csv(path, layout, {c: pa.binary() for c in wanted})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return (_ragged_line(path, name, layout)
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


def _ragged_line(path: Path, name: str, layout: _Layout) -> DataError | None:
    """The first data line whose number of fields differs from the first line's, if any."""
    expected = len(layout.names)
    for number, line in _data_lines(path, layout):
        found = len(line.split(layout.sep.encode()))
        if found != expected:
            return DataError(
                f"{name}, line {number}: expected {expected} fields separated by "
                f"{layout.sep!r}, found {found}"
            )
    return None


def _data_lines(path: Path, layout: _Layout):
    """Yield (1-based line number, bytes) for each non-empty data line, as pyarrow sees them."""
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            line = line.rstrip(b"\r\n")
            if number > layout.skip_rows and line:
                yield number, line


def _line_labeller(path: Path, layout: _Layout) -> Callable[[int], str]:
    """``row -> "line N"``, scanning the file on demand (blank lines do not count as rows)."""

    def row_label(row: int) -> str:
        for index, (number, _) in enumerate(_data_lines(path, layout)):
            if index == row:
                return f"line {number}"
        return f"data row {row + 1}"

    return row_label


# ---------------------------------------------------------------------- shared by both formats
def _to_arrays(table: pa.Table, name: str, columns: _Columns, row_label: Callable[[int], str]):
    """(users, items, ratings, timestamps or None) as numpy, refusing empty cells."""
    described = columns.described(table.column_names)
    for column, what in described.items():
        values = table.column(column)
        if values.null_count:
            row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{name}, {row_label(row)}: {what} is empty")
    arrays = [table.column(c).to_numpy() for c in described]
    return tuple(arrays) if len(arrays) == 4 else (*arrays, None)


# ---------------------------------------------------------------------- parquet
def _read_parquet(path: Path, name: str, columns: _Columns, scale, duplicates) -> Ratings:
    """Read the wanted columns of a Parquet file, checking their presence and types."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{name}: unknown format: not a valid Parquet file ({error})") from None
    described = columns.described(schema.names)
    missing = [c for c in described if c not in schema.names]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(map(repr, missing))}; "
            f"columns are {', '.join(map(repr, schema.names))}"
        )
    for column, what in described.items():
        _check_parquet_type(name, column, what, schema.field(column).type)
    try:
        table = pq.read_table(path, columns=list(described))
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{name}: cannot read the Parquet file ({error})") from None
    if table.num_rows == 0:
        raise DataError(f"{name}: the Parquet file has no rows")
    users, items, values, timestamps = _to_arrays(table, name, columns, _parquet_row)
    if timestamps is not None and np.issubdtype(timestamps.dtype, np.datetime64):
        timestamps = timestamps.astype("datetime64[s]").astype(np.int64)
    return Ratings.from_arrays(users, items, values, timestamps, source=name, scale=scale,
                               duplicates=duplicates, row_label=_parquet_row)


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


def _parquet_row(row: int) -> str:
    return f"row {row + 1}"
