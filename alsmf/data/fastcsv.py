"""A fast path for plain numeric ratings files: parse the bytes in parallel, straight to numpy.

Most ratings files (MovieLens' ``ratings.csv``, ``u.data``, ``ratings.dat`` and their exports)
are lines of integers and short decimals. For those, a numba parser that maps the file, cuts
it into 64 MB blocks at line ends, splits each block into pieces and parses the pieces on all
cores straight into 32-bit id and rating arrays is faster than a general CSV reader and holds
no copy of the file: the memory is the output arrays plus one block of mapped pages.

It accepts only what it can parse exactly: per line, the expected number of fields separated
by one delimiter (or ``::``), each field an optionally signed integer, a rating with at most
15 significant digits and no exponent, ids that fit in 32 bits and ratings of at most 1e6 in
magnitude; blank lines are skipped and ``\\r\\n`` endings accepted. Anything else (quotes,
text, empty fields, huge values) makes it answer ``None``, and the general reader takes over,
with its exact messages naming the line.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

BLOCK_BYTES = 64 << 20
"""Bytes read at once; the parser's memory beyond its output."""

_NEWLINE = 10
_RETURN = 13
_MAX_RATING = 1e6
_INT32_MAX = 2**31 - 1


@njit(cache=True)
def _count_rows(buffer: np.ndarray, size: int, at_line_start: bool) -> tuple[int, bool]:
    """Non-blank lines that end in ``buffer[:size]``, and whether the next byte starts a line.

    A line counts when it has a byte other than ``\\r`` before its ``\\n``.
    """
    rows = 0
    has_content = not at_line_start
    for t in range(size):
        byte = buffer[t]
        if byte == _NEWLINE:
            if has_content:
                rows += 1
            has_content = False
        elif byte != _RETURN:
            has_content = True
    return rows, not has_content


@njit(cache=True)
def _after_last_line_end(buffer: np.ndarray, size: int) -> int:
    """Position just after the last ``\\n`` in ``buffer[:size]`` (0 when there is none)."""
    for t in range(size - 1, -1, -1):
        if buffer[t] == _NEWLINE:
            return t + 1
    return 0


@njit(cache=True, nogil=True)
def _parse_piece(buffer: np.ndarray, start: int, stop: int, separator: int, double: bool,
                 n_fields: int, targets: np.ndarray, row: int, users: np.ndarray,
                 items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray) -> int:
    """Parse the lines in ``buffer[start:stop]`` (whole lines) into the outputs from ``row``.

    ``targets[f]`` says what field f is: 0 user, 1 item, 2 rating, 3 timestamp, -1 ignored.
    Returns the number of rows written, or -1 when a line is not plain (the caller falls back).
    """
    t = start
    written = 0
    while t < stop:
        if buffer[t] == _NEWLINE or buffer[t] == _RETURN:  # blank line
            t += 1
            continue
        field = 0
        while True:  # one field per iteration
            if t >= stop:
                return -1
            negative = False
            if buffer[t] == 45:  # '-'
                negative = True
                t += 1
            integer = 0
            digits = 0
            fraction_digits = 0
            seen_point = False
            while t < stop:
                byte = buffer[t]
                if 48 <= byte <= 57:
                    if digits >= 18:
                        return -1
                    integer = integer * 10 + (byte - 48)
                    digits += 1
                    if seen_point:
                        fraction_digits += 1
                elif byte == 46 and not seen_point:  # '.'
                    seen_point = True
                else:
                    break
                t += 1
            if digits == 0 or field >= n_fields:
                return -1
            what = targets[field]
            value = -integer if negative else integer
            if what == 2:
                if digits > 15:
                    return -1
                rating = value / 10.0 ** fraction_digits
                if abs(rating) > _MAX_RATING:
                    return -1
                ratings[row + written] = rating
            elif seen_point:
                return -1
            elif what == 0 or what == 1:
                if value > _INT32_MAX or value < -_INT32_MAX:
                    return -1
                if what == 0:
                    users[row + written] = value
                else:
                    items[row + written] = value
            elif what == 3:
                timestamps[row + written] = value
            field += 1
            if t >= stop:
                break
            byte = buffer[t]
            if byte == separator:
                t += 1
                if double:
                    if t >= stop or buffer[t] != separator:
                        return -1
                    t += 1
                continue
            if byte == _RETURN:
                t += 1
                byte = buffer[t] if t < stop else _NEWLINE
            if byte != _NEWLINE:
                return -1
            t += 1
            break
        if field != n_fields:
            return -1
        written += 1
    return written


@njit(cache=True, parallel=True)
def _parse_block(buffer: np.ndarray, size: int, pieces: int, separator: int, double: bool,
                 n_fields: int, targets: np.ndarray, row: int, users: np.ndarray,
                 items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray) -> int:
    """Parse a block of whole lines in parallel pieces.

    Returns the rows written, -1 when a line is not plain, -2 when the outputs are too short.
    """
    bounds = np.empty(pieces + 1, dtype=np.int64)
    bounds[0] = 0
    bounds[pieces] = size
    for p in range(1, pieces):  # cut after a line end near p/pieces of the block
        t = max(size * p // pieces, bounds[p - 1], 1)
        while t < size and buffer[t - 1] != _NEWLINE:
            t += 1
        bounds[p] = t
    counts = np.zeros(pieces, dtype=np.int64)
    for p in prange(pieces):
        counts[p] = _count_rows(buffer[bounds[p]:bounds[p + 1]], bounds[p + 1] - bounds[p],
                                True)[0]
        if bounds[p + 1] > bounds[p] and buffer[bounds[p + 1] - 1] != _NEWLINE:
            last = bounds[p + 1] - 1  # the file's last line has no line end
            while last >= bounds[p] and buffer[last] == _RETURN:
                last -= 1
            if last >= bounds[p] and buffer[last] != _NEWLINE:
                counts[p] += 1
    offsets = np.zeros(pieces + 1, dtype=np.int64)
    for p in range(pieces):
        offsets[p + 1] = offsets[p] + counts[p]
    if row + offsets[pieces] > len(users):
        return -2  # the outputs are too short: the caller grows them and calls again
    results = np.zeros(pieces, dtype=np.int64)
    for p in prange(pieces):
        results[p] = _parse_piece(buffer, bounds[p], bounds[p + 1], separator, double, n_fields,
                                  targets, row + offsets[p], users, items, ratings, timestamps)
    for p in range(pieces):
        if results[p] != counts[p]:
            return -1
    return offsets[pieces]


def parse_plain(path: Path, separator: str, skip_lines: int, n_fields: int,
                fields: dict[str, int]) -> tuple[np.ndarray, ...] | None:
    """(users, items, ratings, timestamps or None) of a plain numeric file, or None.

    Args:
        path: the file.
        separator: one character, or ``"::"``.
        skip_lines: lines before the first data line (header and blank lines).
        n_fields: fields per line.
        fields: field position of ``"user"``, ``"item"``, ``"rating"`` and, when wanted,
            ``"timestamp"``.
    """
    if len(separator) == 2 and separator[0] == separator[1]:
        separator_byte, double = ord(separator[0]), True
    elif len(separator) == 1 and ord(separator) < 128:
        separator_byte, double = ord(separator), False
    else:
        return None
    targets = np.full(n_fields, -1, dtype=np.int64)
    for code, name in enumerate(("user", "item", "rating", "timestamp")):
        if name in fields:
            targets[fields[name]] = code
    file_size = os.path.getsize(path)
    if file_size == 0:
        return None
    with open(path, "rb") as stream:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            parsed = _parse_mapped(mapped, file_size, skip_lines, separator_byte, double,
                                   n_fields, targets, "timestamp" in fields)
        finally:  # the parser's views died with its frame, unless a traceback holds them
            with contextlib.suppress(BufferError):  # then the mapping closes when they go
                mapped.close()
    if parsed is None:
        return None
    outputs, row = parsed
    if row == 0:
        return None  # nothing but blank lines: the general reader explains
    users, items, ratings, timestamps = (array[:row] for array in outputs)
    return users, items, ratings, (timestamps if "timestamp" in fields else None)


def _parse_mapped(mapped: mmap.mmap, file_size: int, skip_lines: int, separator: int,
                  double: bool, n_fields: int, targets: np.ndarray,
                  with_time: bool) -> tuple[list[np.ndarray], int] | None:
    """Parse the mapped file block by block: (outputs, rows), or None when a line is not plain.

    The parser reads the page cache in place (no copy of the file); each parsed block's pages
    are released from this process, so its memory stays at one block beyond the outputs.
    """
    data = np.frombuffer(mapped, dtype=np.uint8)
    position = 0
    for _ in range(skip_lines):
        position = mapped.find(b"\n", position) + 1
        if position == 0:
            return None
    outputs: list[np.ndarray] = []
    row, released = 0, 0
    pieces = 4 * numba.get_num_threads()
    while position < file_size:
        block = data[position:position + BLOCK_BYTES]
        last = position + len(block) >= file_size
        end = len(block) if last else _after_last_line_end(block, len(block))
        if end == 0:  # a line longer than the block: not a ratings file we can parse
            return None
        if not outputs:  # size the outputs from the first block's rows per byte
            per_byte = _count_rows(block, end, True)[0] / end
            outputs = _grown([], 0, int(per_byte * file_size * 1.05) + 1024, with_time)
        while True:
            written = _parse_block(block, end, pieces, separator, double, n_fields, targets,
                                   row, *outputs)
            if written != -2:
                break
            outputs = _grown(outputs, row, 2 * len(outputs[0]), with_time)
        if written < 0:
            return None
        row += written
        position += end
        done = position // mmap.PAGESIZE * mmap.PAGESIZE
        if hasattr(mmap, "MADV_DONTNEED") and done > released:
            mapped.madvise(mmap.MADV_DONTNEED, released, done - released)
            released = done
    return outputs, row


def _grown(outputs: list[np.ndarray], rows: int, capacity: int,
           with_time: bool) -> list[np.ndarray]:
    """Output arrays of ``capacity`` rows holding the first ``rows`` rows of ``outputs``.

    The spare capacity costs no memory until written: large ``np.empty`` pages are mapped on
    first touch.
    """
    grown = [np.empty(capacity, dtype=np.int32), np.empty(capacity, dtype=np.int32),
             np.empty(capacity, dtype=np.float32),
             np.empty(capacity if with_time else 0, dtype=np.int64)]
    for old, new in zip(outputs, grown):
        new[:rows] = old[:rows]
    return grown
