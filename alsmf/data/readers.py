"""Read ratings tables (CSV, TSV, ``::``-separated text, Parquet) into :class:`Ratings`.

Delimited text is laid out by :mod:`alsmf.data.layout` (delimiter, header, names) and parsed
by the fast numeric parser of :mod:`alsmf.data.fastcsv`; files it declines (quotes, text,
empty fields) and Parquet files go through Arrow (:mod:`alsmf.data.arrow_readers`), whose
diagnostic pass names the line of the first problem. Arrow is imported only then.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from alsmf.data.fastcsv import parse_plain
from alsmf.data.inputs import require_regular_file
from alsmf.data.layout import Columns, Feedback, Layout, line_labeller, sniff_layout
from alsmf.data.ratings import DuplicatePolicy, Ratings
from alsmf.errors import DataError

PathLike = str | os.PathLike
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"


def read_table(
    path: PathLike,
    *,
    sep: str | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    timestamps: bool = True,
    feedback: Feedback = "explicit",
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
        user_col, item_col, rating_col, timestamp_col: column names; ``None`` (the default)
            recognises the column by the common names of
            :data:`~alsmf.data.layout.RECOGNISED_NAMES` (``user``, ``userId``, ``user_id``,
            ...; any case), and a header with two of them for one column is an error. A
            headerless file's columns are, in order, user, item, rating and optionally
            timestamp.
        timestamps: read the timestamp column when there is one (``False``: never).
        feedback: ``"explicit"`` ratings, or ``"implicit"`` feedback: (user, item) pairs with
            an optional count or weight column (``rating_col``, else one of
            :data:`~alsmf.data.layout.WEIGHT_NAMES`), which becomes the values; without one
            every value is 1.
        header: whether the first line names the columns; ``None`` decides from the first
            line (a header has a non-numeric field among the first three).
        scale: ``(low, high)``: ratings outside it are refused.
        duplicates: policy for repeated (user, item) pairs (see :data:`DuplicatePolicy`).
        source: the name used in messages (defaults to the path), for example
            ``"ml-100k.zip:ml-100k/u.data"`` when the file was extracted from a zip.

    Raises:
        ConfigError: an unknown ``feedback``, or one name given for two columns.
        DataError: naming the file and, where it applies, the line of the first problem.
    """
    path = Path(path)
    name = source or str(path)
    columns = Columns(user_col, item_col, rating_col, timestamp_col, timestamps, feedback)
    _check_file(path, name)
    if _is_parquet(path):
        from alsmf.data.arrow_readers import parquet_arrays, parquet_row

        arrays, row_label = parquet_arrays(path, name, columns), parquet_row
    else:
        layout = sniff_layout(path, name, sep, header, columns)
        row_label = line_labeller(path, layout)
        arrays = _parse_delimited(path, name, layout, columns, row_label)
    users, items, values, times = arrays
    if values is None:  # implicit feedback without counts or weights: each pair once
        values = np.ones(len(users), dtype=np.float32)
    return Ratings.from_arrays(users, items, values, times, source=name, scale=scale,
                               duplicates=duplicates, row_label=row_label,
                               overwrite_ids=True)  # the arrays are ours


# ---------------------------------------------------------------------- the file itself
def _check_file(path: Path, name: str) -> None:
    """Refuse a missing path, a folder, a pipe or device, a file that cannot be read or an
    empty file, with a message saying which."""
    if not path.exists():
        raise DataError(f"{name}: no such file")
    if path.is_dir():
        raise DataError(f"{name}: is a folder; expected a ratings file (CSV, TSV or Parquet)")
    if require_regular_file(path, name) == 0:
        raise DataError(f"{name}: the file is empty")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    with path.open("rb") as stream:
        return stream.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC


def _parse_delimited(path: Path, name: str, layout: Layout, columns: Columns,
                     row_label: Callable[[int], str]) -> tuple:
    """Typed parse into numpy (users, items, ratings or None, timestamps or None).

    Plain numeric files take the fast path of :mod:`alsmf.data.fastcsv`; others go through
    Arrow's CSV reader (:func:`alsmf.data.arrow_readers.parse_with_arrow`).
    """
    wanted = columns.found_in(layout.names, name, f"the header (line {layout.header_line}) has")
    roles = {"user id": "user", "item id": "item", "rating": "rating", "timestamp": "timestamp"}
    fields = {roles[what]: layout.names.index(c) for c, what in wanted.items()}
    plain = parse_plain(path, layout.sep, layout.skip_rows, len(layout.names), fields)
    if plain is not None:
        return plain
    from alsmf.data.arrow_readers import parse_with_arrow

    return parse_with_arrow(path, name, layout, wanted, row_label)
