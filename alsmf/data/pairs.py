"""(user, item) pairs to score, from the command line or a file, with clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from alsmf.errors import DataError

_PAIR = re.compile(r"^\s*(-?\d+)\s*[,:]\s*(-?\d+)\s*$")


def parse_pairs(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``"USER,ITEM"`` (or ``"USER:ITEM"``) strings of integer raw ids."""
    users, items = [], []
    for position, text in enumerate(texts, start=1):
        match = _PAIR.match(text)
        if match is None:
            raise DataError(f"pair {position} {text!r}: expected USER,ITEM with integer ids, "
                            "e.g. 196,242")
        users.append(int(match.group(1)))
        items.append(int(match.group(2)))
    return np.array(users, dtype=np.int64), np.array(items, dtype=np.int64)


def read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read pairs from a CSV/TSV file whose first two columns are user and item ids.

    A header line is allowed (it is recognised by a non-numeric first field).
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, sep=None, engine="python", header=None, dtype=str,
                            usecols=[0, 1], skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: cannot read user,item pairs ({error})") from None
    first_line = 1
    if len(frame) and not frame.iloc[0, 0].strip().lstrip("-").isdigit():
        frame = frame.iloc[1:]
        first_line = 2
    if frame.empty:
        raise DataError(f"{path}: no pairs to score")
    columns = []
    for column, what in ((0, "user id"), (1, "item id")):
        values = pd.to_numeric(frame.iloc[:, column].str.strip(), errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | (values % 1 != 0).to_numpy())
        if len(bad):
            row = int(bad[0])
            raise DataError(f"{path}, line {first_line + row}: {what} "
                            f"{frame.iloc[row, column]!r} is not an integer")
        columns.append(values.to_numpy(dtype=np.int64))
    return columns[0], columns[1]
