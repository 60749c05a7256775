"""The limits on what alsmf reads and downloads, so that a damaged or hostile input ends in one
line instead of filling the memory or the disk, or hanging.

Each limit has a default far above what any MovieLens release needs, and those a user could
need more of have an environment variable that sets them (read at each use, so a test or a
long-lived process can change it):

- ``ALSMF_MAX_MEMBER_BYTES`` (4 GiB): the uncompressed size of one zip member. The largest
  MovieLens ratings file, ml-32m's ``ratings.csv``, is 0.9 GB.
- ``ALSMF_MAX_TITLES_BYTES`` (64 MiB): a movies file (``u.item``, ``movies.dat``,
  ``movies.csv``), which is read whole into memory; ml-32m's is 4 MB.
- ``ALSMF_MAX_COMPRESSION_RATIO`` (100): how many times a zip member of more than
  :data:`RATIO_FLOOR_BYTES` may expand. Rating and title files compress 3 to 6 times; a zip
  bomb (a small zip that expands to gigabytes of repeated bytes) about 1,000 times.
- ``ALSMF_DOWNLOAD_DEADLINE`` (1800 seconds): a whole download, however slowly the server
  sends; ``alsmf data download --deadline`` sets it for one run.

:data:`MAX_LINE_BYTES` (16 MiB), the longest line of a text file, is fixed: no ratings or
movies file has lines of more than a few hundred bytes.

Sizes are whole numbers of bytes, optionally with a binary suffix: ``8G``, ``512M``, ``100K``.
"""

from __future__ import annotations

import math
import os
import re
from typing import Callable, TypeVar

from alsmf.errors import ConfigError

MAX_LINE_BYTES = 16 << 20
"""The longest line a text reader accepts: longer ones are not ratings (binary data, or a
file without line ends), and reading one would hold it whole in memory."""

RATIO_FLOOR_BYTES = 1 << 20
"""Members up to this uncompressed size may compress any amount: they cost nothing to read."""

MEMBER_BYTES_VARIABLE = "ALSMF_MAX_MEMBER_BYTES"
TITLES_BYTES_VARIABLE = "ALSMF_MAX_TITLES_BYTES"
RATIO_VARIABLE = "ALSMF_MAX_COMPRESSION_RATIO"
DEADLINE_VARIABLE = "ALSMF_DOWNLOAD_DEADLINE"

_DEFAULT_MEMBER_BYTES = 4 << 30
_DEFAULT_TITLES_BYTES = 64 << 20
_DEFAULT_RATIO = 100.0
_DEFAULT_DEADLINE_S = 1800.0
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_SUFFIX_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}

T = TypeVar("T")


def max_member_bytes() -> int:
    """The largest uncompressed zip member alsmf reads or extracts."""
    return _from_environment(MEMBER_BYTES_VARIABLE, _DEFAULT_MEMBER_BYTES, parse_size)


def max_titles_bytes() -> int:
    """The largest movies file alsmf reads (it is held whole in memory)."""
    return _from_environment(TITLES_BYTES_VARIABLE, _DEFAULT_TITLES_BYTES, parse_size)


def max_compression_ratio() -> float:
    """How many times a zip member larger than :data:`RATIO_FLOOR_BYTES` may expand."""
    return _from_environment(RATIO_VARIABLE, _DEFAULT_RATIO, _parse_positive)


def download_deadline_s() -> float:
    """Seconds a whole download may take."""
    return _from_environment(DEADLINE_VARIABLE, _DEFAULT_DEADLINE_S, _parse_positive)


def parse_size(text: str) -> int:
    """``"4294967296"``, ``"4G"``, ``"512MiB"`` -> bytes; a ValueError for anything else."""
    match = _SIZE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(text)
    return int(match.group(1)) << _SUFFIX_SHIFT[match.group(2).upper()]


def format_bytes(size: int) -> str:
    """A size for messages: ``"2.0 GiB"``, ``"64 MiB"``, ``"512 bytes"``."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size:,} bytes"


def _parse_positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(text)
    return value


def _from_environment(variable: str, default: T, parse: Callable[[str], T]) -> T:
    """The variable's value parsed, the default when it is unset or empty; a ConfigError
    naming the variable when it cannot be parsed."""
    text = os.environ.get(variable, "")
    if not text.strip():
        return default
    try:
        return parse(text)
    except ValueError:
        raise ConfigError(f"${variable} must be a positive number"
                          + (" of bytes (e.g. 8G)" if parse is parse_size else "")
                          + f", got {text!r}") from None
