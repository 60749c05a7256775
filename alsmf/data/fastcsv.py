"""A fast path for plain numeric ratings files: parse the bytes in parallel, straight to numpy.

Most ratings files (MovieLens' ``ratings.csv``, ``u.data``, ``ratings.dat`` and their exports)
are lines of integers and short decimals. For those, a numba parser that maps the file, cuts
it into 16 MB blocks at line ends, splits each block into pieces and parses the pieces on all
cores straight into 32-bit id and rating arrays is faster than a general CSV reader and holds
no copy of the file: the memory is the output arrays plus one block of mapped pages.

It accepts only what it can parse exactly: lines of the user and item ids (in either order),
the rating and optionally a fourth field (the timestamp), separated by one delimiter (or
``::``); each an optionally signed integer of at most 16 digits, the rating possibly a decimal
of at most 15 significant digits without exponent; ids that fit in 32 bits and ratings of at
most 1e6 in magnitude. Blank lines are skipped and ``\\r\\n`` endings accepted. Numbers are
read eight bytes at a time (:mod:`alsmf.data.bytewords`). Anything else (other column
layouts, quotes, text, empty fields, huge values) makes it answer ``None``, and the general
reader takes over, with its exact messages naming the line.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from alsmf.data.bytemasks import MASK_BYTES, byte_mask, population_count
from alsmf.data.bytewords import (POWERS_OF_TEN, READ_AHEAD, count_digits, load_word,
                                  read_number)

BLOCK_BYTES = 16 << 20
"""Bytes parsed at once; the parser's memory beyond its output (a block small enough to be
read again from the cache by the parse after the line-end count)."""

SLACK = READ_AHEAD
"""Bytes the parser may read past the end of the lines it parses (a number's two words)."""

_NEWLINE = 10
_RETURN = 13
_MINUS = 45
_POINT = 46
_MAX_RATING = 1e6
_RATING_DIGITS = 15  # at most this many significant digits: exact in float64
_INT32_MAX = 2**31 - 1
_LONGEST_PLAIN_LINE = 256
"""No line the parser accepts is longer: four numbers of at most 18 characters each (sign,
16 digits or a 15-digit decimal), their separators and a ``\r\n``."""
_PAGE_BYTES = 4096
_FAULTED_SHARE = 0.95
"""Share of the expected rows whose output pages are faulted in before the parse. Less than
all: a first block of shorter lines than the rest overestimates the rows, and pages faulted
in past the last row would stay mapped (a file sorted by user, whose first ids are short,
is overestimated by a few percent)."""
_POWERS_OF_TEN_FLOAT = POWERS_OF_TEN.astype(np.float64)


@njit(cache=True)
def _count_line_ends(piece: np.ndarray) -> int:
    """How many ``\\n`` bytes the piece holds: 64 bytes at a time
    (:func:`alsmf.data.bytemasks.byte_mask`), the last few one by one."""
    count = 0
    whole = len(piece) - len(piece) % MASK_BYTES
    for t in range(0, whole, MASK_BYTES):
        count += np.int64(population_count(byte_mask(piece, t, _NEWLINE)))
    for t in range(whole, len(piece)):
        count += piece[t] == _NEWLINE
    return count


@njit(cache=True)
def _after_last_line_end(buffer: np.ndarray, size: int) -> int:
    """Position just after the last ``\\n`` in ``buffer[:size]`` (0 when there is none)."""
    for t in range(size - 1, -1, -1):
        if buffer[t] == _NEWLINE:
            return t + 1
    return 0


@njit(cache=True, nogil=True, _nrt=False)
def _parse_piece(buffer: np.ndarray, start: int, stop: int, separator: int, double: bool,
                 fourth: bool, row: int, first_ids: np.ndarray, second_ids: np.ndarray,
                 ratings: np.ndarray, timestamps: np.ndarray) -> int:
    """Parse the lines in ``buffer[start:stop]`` (whole lines, the last one ending in
    ``\\n``) into the outputs from ``row``; :data:`SLACK` bytes past ``stop`` are read.

    A line is two ids, a rating and, when ``fourth``, an integer stored in ``timestamps``
    when that array is not empty. Numbers are read a word at a time
    (:func:`alsmf.data.bytewords.read_number`). Returns the number of rows written, or -1
    when a line is not plain (the caller falls back).

    Written out field by field, with every check a branch that leaves the function: the
    position ``t`` then depends only on digit counts, never on a check's outcome. The parse
    is bound by instructions per line, so what is rare stays off the usual path: a blank line
    or a sign is looked at only where no digit starts a field, a ``\\r`` only where a line
    does not end in ``\\n``, and a separator (one byte or two) is matched by one 8-byte load
    and a mask. Helpers returning the position or a failure mark were measurably slower: the
    compiler turned their checks into selects on ``t``, which put the loads they test on
    every field's dependency chain.
    """
    t = start
    written = 0
    gap = 1 + double  # bytes of one separator
    separator_mask = np.uint64(0xFFFF if double else 0xFF)  # the separator's bytes of a word
    separator_word = np.uint64(separator * 257 if double else separator)
    keep_fourth = len(timestamps) > 0
    while t < stop:
        out = row + written
        first, digits = read_number(buffer, t)
        if digits == 0:
            byte = buffer[t]
            if byte == _NEWLINE or byte == _RETURN:  # blank line
                t += 1
                continue
            if byte != _MINUS:
                return -1
            t += 1
            first, digits = read_number(buffer, t)
            if digits == 0 or first > _INT32_MAX:
                return -1
            first = -first
        t += digits
        if first > _INT32_MAX or (load_word(buffer, t) & separator_mask) != separator_word:
            return -1
        t += gap
        second, digits = read_number(buffer, t)
        if digits == 0:
            if buffer[t] != _MINUS:
                return -1
            t += 1
            second, digits = read_number(buffer, t)
            if digits == 0 or second > _INT32_MAX:
                return -1
            second = -second
        t += digits
        if second > _INT32_MAX or (load_word(buffer, t) & separator_mask) != separator_word:
            return -1
        t += gap
        whole, digits = read_number(buffer, t)
        negative = False
        if digits == 0:
            if buffer[t] != _MINUS:
                return -1
            t += 1
            negative = True
            whole, digits = read_number(buffer, t)
            if digits == 0:
                return -1
        t += digits
        places = 0
        if buffer[t] == _POINT:
            fraction, places = read_number(buffer, t + 1)
            t += 1 + places
            whole = whole * POWERS_OF_TEN[places] + fraction
        rating = (-whole if negative else whole) / _POWERS_OF_TEN_FLOAT[places]
        if digits + places > _RATING_DIGITS or abs(rating) > _MAX_RATING:
            return -1
        if fourth:
            if (load_word(buffer, t) & separator_mask) != separator_word:
                return -1
            t += gap
            if keep_fourth:
                stamp, digits = read_number(buffer, t)
            else:  # a dropped timestamp's digits are counted, not valued
                stamp, digits = 0, count_digits(buffer, t)
            if digits == 0:
                if buffer[t] != _MINUS:
                    return -1
                t += 1
                if keep_fourth:
                    stamp, digits = read_number(buffer, t)
                else:
                    stamp, digits = 0, count_digits(buffer, t)
                if digits == 0:
                    return -1
                stamp = -stamp
            t += digits
            if keep_fourth:
                timestamps[out] = stamp
        if buffer[t] != _NEWLINE:
            if buffer[t] != _RETURN or buffer[t + 1] != _NEWLINE:
                return -1
            t += 1
        t += 1
        first_ids[out] = first
        second_ids[out] = second
        ratings[out] = rating
        written += 1
    return written


@njit(cache=True)
def _close_gaps(pieces_rows: np.ndarray, offsets: np.ndarray, row: int, first_ids: np.ndarray,
                second_ids: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray) -> int:
    """Move each piece's rows down to follow the previous piece's; returns the rows in all.

    A piece writes from where its line count says it starts; blank lines leave rows
    unwritten at its end, which the next pieces' rows close up.
    """
    total = 0
    for p in range(len(pieces_rows)):
        source = row + offsets[p]
        target = row + total
        if target != source:
            for k in range(pieces_rows[p]):  # ascending: target < source, so overlap is safe
                first_ids[target + k] = first_ids[source + k]
                second_ids[target + k] = second_ids[source + k]
                ratings[target + k] = ratings[source + k]
                if len(timestamps):
                    timestamps[target + k] = timestamps[source + k]
        total += pieces_rows[p]
    return total


@njit(cache=True, parallel=True)
def _parse_block(buffer: np.ndarray, size: int, pieces: int, separator: int, double: bool,
                 fourth: bool, row: int, first_ids: np.ndarray, second_ids: np.ndarray,
                 ratings: np.ndarray, timestamps: np.ndarray) -> int:
    """Parse ``buffer[:size]`` (whole lines, the last one ending in ``\\n``) in parallel pieces.

    Each piece's rows go where the line ends before it say; :data:`SLACK` bytes past
    ``size`` are read. Returns the rows written, -1 when a line is not plain, -2 when the
    outputs are too short.
    """
    bounds = np.empty(pieces + 1, dtype=np.int64)
    bounds[0] = 0
    bounds[pieces] = size
    for p in range(1, pieces):  # cut after a line end near p/pieces of the block
        t = max(size * p // pieces, bounds[p - 1], 1)
        while t < size and buffer[t - 1] != _NEWLINE:
            t += 1
        bounds[p] = t
    offsets = np.zeros(pieces + 1, dtype=np.int64)
    for p in prange(pieces):
        offsets[p + 1] = _count_line_ends(buffer[bounds[p]:bounds[p + 1]])
    for p in range(pieces):
        offsets[p + 1] += offsets[p]
    if row + offsets[pieces] > len(first_ids):
        return -2  # the outputs are too short: the caller grows them and calls again
    pieces_rows = np.zeros(pieces, dtype=np.int64)
    for p in prange(pieces):
        pieces_rows[p] = _parse_piece(buffer, bounds[p], bounds[p + 1], separator, double,
                                      fourth, row + offsets[p], first_ids, second_ids,
                                      ratings, timestamps)
    if (pieces_rows < 0).any():
        return -1
    return _close_gaps(pieces_rows, offsets, row, first_ids, second_ids, ratings, timestamps)


def parse_plain(path: Path, separator: str, skip_lines: int, n_fields: int,
                fields: dict[str, int]) -> tuple[np.ndarray, ...] | None:
    """(users, items, ratings, timestamps or None) of a plain numeric file, or None.

    Args:
        path: the file.
        separator: one character, or ``"::"``.
        skip_lines: lines before the first data line (header and blank lines).
        n_fields: fields per line.
        fields: field position of ``"user"``, ``"item"``, ``"rating"`` and, when wanted,
            ``"timestamp"``. The fast path takes the ids in the first two fields (either
            order), the rating third and at most a fourth field (the timestamp, or ignored);
            other layouts, pairs without a rating among them, are left to the general reader.
    """
    if len(separator) == 2 and separator[0] == separator[1]:
        separator_byte, double = ord(separator[0]), True
    elif len(separator) == 1 and ord(separator) < 128:
        separator_byte, double = ord(separator), False
    else:
        return None
    ids = (fields["user"], fields["item"])
    if (sorted(ids) != [0, 1] or fields.get("rating") != 2 or n_fields not in (3, 4)
            or fields.get("timestamp", 3) != 3):
        return None
    file_size = os.path.getsize(path)
    if file_size == 0:
        return None
    syntax = _Syntax(separator_byte, double, n_fields == 4)
    with open(path, "rb") as stream:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            parsed = _parse_mapped(mapped, file_size, skip_lines, syntax, "timestamp" in fields)
        finally:  # the parser's views died with its frame, unless a traceback holds them
            with contextlib.suppress(BufferError):  # then the mapping closes when they go
                mapped.close()
    if parsed is None:
        return None
    outputs, row = parsed
    if row == 0:
        return None  # nothing but blank lines: the general reader explains
    first_ids, second_ids, ratings, timestamps = (array[:row] for array in outputs)
    users, items = (first_ids, second_ids) if ids == (0, 1) else (second_ids, first_ids)
    return users, items, ratings, (timestamps if "timestamp" in fields else None)


class _Syntax(NamedTuple):
    """What a line looks like, as the kernels take it."""

    separator: int
    double: bool
    fourth: bool
    """Lines have a fourth field after the rating."""


def _parse_mapped(mapped: mmap.mmap, file_size: int, skip_lines: int, syntax: _Syntax,
                  with_time: bool) -> tuple[list[np.ndarray], int] | None:
    """Parse the mapped file block by block: (outputs, rows), or None when a line is not plain.

    The parser reads the page cache in place (no copy of the file); each parsed block's pages
    are released from this process, so its memory stays at one block beyond the outputs. As
    it reads up to :data:`SLACK` bytes past the lines it parses, the mapping is parsed up to
    the last line end at least that far from the end of the file, and the lines after it
    from a padded copy.
    """
    data = np.frombuffer(mapped, dtype=np.uint8)
    position = 0
    for _ in range(skip_lines):
        position = mapped.find(b"\n", position) + 1
        if position == 0:
            return None
    body_end = max(mapped.rfind(b"\n", position, max(file_size - SLACK, 0)) + 1, position)
    outputs: list[np.ndarray] = []
    row, released = 0, 0
    pieces = 4 * numba.get_num_threads()
    while position < body_end:
        block = data[position:]  # the parser reads past the block's lines
        size = min(BLOCK_BYTES, body_end - position)
        end = _after_last_line_end(block, size)
        if size - end > _LONGEST_PLAIN_LINE:
            # the line that starts there cannot be plain; stopping now also keeps a short
            # first region (lines, then a long run without line ends) from sizing the
            # outputs for a file full of such lines
            return None
        outputs, written = _parse_region(block, end, pieces, syntax, outputs, row,
                                         file_size, with_time)
        if written < 0:
            return None
        row += written
        position += end
        done = position // mmap.PAGESIZE * mmap.PAGESIZE
        if hasattr(mmap, "MADV_DONTNEED") and done > released:
            mapped.madvise(mmap.MADV_DONTNEED, released, done - released)
            released = done
    tail = _padded_tail(data[body_end:])
    outputs, written = _parse_region(tail, len(tail) - SLACK, 1, syntax, outputs, row,
                                     file_size, with_time)
    return None if written < 0 else (outputs, row + written)


def _padded_tail(rest: np.ndarray) -> np.ndarray:
    """A copy of the file's last bytes ending in a line end, then :data:`SLACK` zero bytes."""
    missing_line_end = len(rest) > 0 and rest[-1] != _NEWLINE
    tail = np.zeros(len(rest) + missing_line_end + SLACK, dtype=np.uint8)
    tail[:len(rest)] = rest
    if missing_line_end:
        tail[len(rest)] = _NEWLINE
    return tail


def _parse_region(buffer: np.ndarray, size: int, pieces: int, syntax: _Syntax,
                  outputs: list[np.ndarray], row: int, file_size: int,
                  with_time: bool) -> tuple[list[np.ndarray], int]:
    """Parse ``buffer[:size]`` into the outputs from ``row``, growing them when they are short
    (the first region sizes them from its rows per byte): (outputs, rows written or -1)."""
    if not outputs:
        expected = _count_line_ends(buffer[:size]) / max(size, 1) * file_size
        outputs = _grown([], 0, int(expected * 1.05) + 1024, with_time)
        for output in outputs:
            _fault_in(output.view(np.uint8), int(expected * _FAULTED_SHARE) * output.itemsize)
    while True:
        written = _parse_block(buffer, size, pieces, *syntax, row, *outputs)
        if written != -2:
            return outputs, written
        outputs = _grown(outputs, row, 2 * len(outputs[0]), with_time)


@njit(cache=True, parallel=True)
def _fault_in(data: np.ndarray, size: int) -> None:
    """Map the pages of ``data[:size]`` (fresh memory) by writing a zero into each, all
    threads at once.

    Faulting most of the expected rows' pages in before the parse was faster in interleaved
    runs than letting the parse's threads fault them in as they write. The rest of the
    capacity is left to be mapped as it is written, or never.
    """
    size = min(size, len(data))
    for page in prange((size + _PAGE_BYTES - 1) // _PAGE_BYTES):
        data[min(page * _PAGE_BYTES, size - 1)] = 0


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
