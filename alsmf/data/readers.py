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

from alsmf.data.fastcsv import parse_plain
from alsmf.data.layout import Columns, Layout, line_labeller, sniff_layout
from alsmf.data.ratings import DuplicatePolicy, Ratings
from alsmf.errors import DataError

PathLike = str | os.PathLike
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"


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
    columns = Columns(user_col, item_col, rating_col, timestamp_col)
    if _is_parquet(path):
        from alsmf.data.arrow_readers import read_parquet

        return read_parquet(path, name, columns, scale, duplicates)
    layout = sniff_layout(path, name, sep, header, columns)
    row_label = line_labeller(path, layout)
    arrays = _parse_delimited(path, name, layout, columns, row_label)
    return Ratings.from_arrays(*arrays, source=name, scale=scale, duplicates=duplicates,
                               row_label=row_label, overwrite_ids=True)  # the arrays are ours


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


def _parse_delimited(path: Path, name: str, layout: Layout, columns: Columns,
                     row_label: Callable[[int], str]) -> tuple:
    """Typed parse into numpy (users, items, ratings, timestamps or None).

    Plain numeric files take the fast path of :mod:`alsmf.data.fastcsv`; others go through
    Arrow's CSV reader (:func:`alsmf.data.arrow_readers.parse_with_arrow`).
    """
    wanted = columns.found_in(layout.names, name, f"the header (line {layout.header_line}) has")
    roles = {"user id": "user", "item id": "item", "rating": "rating", "timestamp": "timestamp"}
    plain = parse_plain(path, layout.sep, layout.skip_rows, len(layout.names),
                        {roles[what]: layout.names.index(c) for c, what in wanted.items()})
    if plain is not None:
        return plain
    from alsmf.data.arrow_readers import parse_with_arrow

    return parse_with_arrow(path, name, layout, columns, wanted, row_label)
