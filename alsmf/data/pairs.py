"""(user, item) pairs to score, from the command line or a file, with clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from alsmf.data.inputs import require_regular_file
from alsmf.errors import DataError

_PAIR = re.compile(r"^\s*(-?\d+)\s*[,:]\s*(-?\d+)\s*$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_PAIR_SEPARATORS = ("\t", ",", ";")


def parse_pairs(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``"USER,ITEM"`` (or ``"USER:ITEM"``) strings of integer raw ids."""
    users, items = [], []
    for position, text in enumerate(texts, start=1):
        match = _PAIR.match(text)
        if match is None:
            raise DataError(f"pair {position} {text!r}: expected USER,ITEM with integer ids, "
                            "e.g. 196,242")
        for out, what, value in ((users, "user id", match.group(1)),
                                 (items, "item id", match.group(2))):
            if not -(2**63) <= int(value) < 2**63:
                raise DataError(f"pair {position} {text!r}: {what} {value} is out of the "
                                "64-bit integer range")
            out.append(int(value))
    return np.array(users, dtype=np.int64), np.array(items, dtype=np.int64)


def read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read pairs from a CSV/TSV file whose first two columns are user and item ids.

    Fields are separated by the first of tab, ``,``, ``;`` found on the first line, else by
    spaces. A header line is allowed (it is recognised by a non-integer first field); blank
    lines are skipped; bytes that are not UTF-8 are replaced, so a header in another encoding
    is skipped like any other and an id holding such bytes is reported as not an integer.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a file of pairs")
    require_regular_file(path, str(path))
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip()]
    if not lines:
        raise DataError(f"{path}: no pairs to score (the file is empty)")
    sep = next((s for s in _PAIR_SEPARATORS if s in lines[0][1]), None)
    if not _INTEGER.match(lines[0][1].split(sep)[0].strip().strip('"').strip()):
        lines = lines[1:]
        if not lines:
            raise DataError(f"{path}: no pairs to score (only a header)")
    users = np.empty(len(lines), dtype=np.int64)
    items = np.empty(len(lines), dtype=np.int64)
    for row, (number, line) in enumerate(lines):
        fields = line.split(sep)
        if len(fields) < 2:
            shown = "spaces" if sep is None else repr(sep)
            raise DataError(f"{path}, line {number}: expected a user id and an item id "
                            f"separated by {shown}, got {line[:60]!r}")
        for out, what, value in ((users, "user id", fields[0]), (items, "item id", fields[1])):
            value = value.strip().strip('"').strip()
            if not _INTEGER.match(value):
                raise DataError(f"{path}, line {number}: {what} {value!r} is not an integer")
            number_value = int(value)
            if not -(2**63) <= number_value < 2**63:
                raise DataError(f"{path}, line {number}: {what} {value!r} is out of the "
                                "64-bit integer range")
            out[row] = number_value
    return users, items
