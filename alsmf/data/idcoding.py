"""Coding raw user and item ids as contiguous indices, after one pass over the raw columns.

A ratings file names users and items by raw ids; the model indexes them 0..n-1. Raw ids are
kept sorted, so an id's index is its rank among the distinct ids. Ids that are non-negative
and not much larger than the number of ratings (MovieLens and most exports) are ranked with a
presence table in linear time, both columns at once: each column's table is marked by its
own thread (no table is shared), then every rating's two codes are looked up in one parallel
pass, over the raw arrays themselves when the caller lets them be overwritten. Other ids fall
back to a sort (``numpy.unique``).

The choice needs each column's smallest and largest id; :func:`scan_columns` finds them in
the same parallel pass that counts ratings out of their bounds, so a 20M-rating file is read
once for all of these checks instead of once per check.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange


class ColumnScan(NamedTuple):
    """What one pass over the raw columns found."""

    user_range: tuple[int, int]
    item_range: tuple[int, int]
    bad_values: int
    """Ratings outside ``[low, high]`` or not numbers at all (NaN)."""


def scan_columns(user_raw: np.ndarray, item_raw: np.ndarray, values: np.ndarray, low: float,
                 high: float) -> ColumnScan:
    """Smallest and largest user and item ids, and the number of ratings outside [low, high].

    The columns are integer and float arrays of one length, at least one row.
    """
    chunks = numba.get_num_threads()
    lows, highs, bad = _scan(user_raw, item_raw, values, low, high, chunks)
    return ColumnScan((int(lows[0].min()), int(highs[0].max())),
                      (int(lows[1].min()), int(highs[1].max())), int(bad.sum()))


@njit(cache=True, parallel=True)
def _scan(user_raw, item_raw, values, low, high, chunks):
    """Per input chunk: the two columns' smallest and largest ids, and bad ratings."""
    n = len(values)
    lows = np.empty((2, chunks), dtype=np.int64)
    highs = np.empty((2, chunks), dtype=np.int64)
    bad = np.zeros(chunks, dtype=np.int64)
    for chunk in prange(chunks):
        start, stop = chunk * n // chunks, (chunk + 1) * n // chunks
        first = max(min(start, n - 1), 0)  # an empty chunk reports the first row's ids
        user_low = user_high = np.int64(user_raw[first])
        item_low = item_high = np.int64(item_raw[first])
        for t in range(start, stop):
            user, item = np.int64(user_raw[t]), np.int64(item_raw[t])
            user_low, user_high = min(user_low, user), max(user_high, user)
            item_low, item_high = min(item_low, item), max(item_high, item)
            bad[chunk] += not (low <= values[t] <= high)  # NaN fails both comparisons
        lows[0, chunk], highs[0, chunk] = user_low, user_high
        lows[1, chunk], highs[1, chunk] = item_low, item_high
    return lows, highs, bad


def encode_pair(user_raw: np.ndarray, item_raw: np.ndarray, scan: ColumnScan,
                overwrite: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user_ids, users, item_ids, items): sorted distinct raw ids and each rating's int32 code.

    Args:
        user_raw, item_raw: integer raw ids (int64 range), one per rating.
        scan: their :func:`scan_columns`.
        overwrite: the codes may be written over the raw arrays (when they are writeable int32
            arrays), which saves allocating and first touching two arrays of codes.
    """
    n = len(user_raw)
    if _dense(scan.user_range, n) and _dense(scan.item_range, n):
        users = _output_for(user_raw, overwrite)
        items = _output_for(item_raw, overwrite)
        user_ids, item_ids = _code_pair(user_raw, scan.user_range[1], item_raw,
                                        scan.item_range[1], users, items)
        return user_ids, users, item_ids, items
    return (*_encode_column(user_raw, scan.user_range),
            *_encode_column(item_raw, scan.item_range))


def _encode_column(raw: np.ndarray, id_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct raw ids, each rating's int32 code) of one column of ids in ``id_range``."""
    if _dense(id_range, len(raw)):
        present = np.zeros(id_range[1] + 1, dtype=np.bool_)
        _mark_present(raw, present)
        ids, code = _index_present(present)
        return ids, _look_up_codes(raw, code)
    ids, inverse = np.unique(raw, return_inverse=True)
    return ids.astype(np.int64), inverse.astype(np.int32).reshape(-1)


def _dense(id_range: tuple[int, int], n: int) -> bool:
    """Whether a presence table over 0..high is small next to the ratings (linear coding)."""
    low, high = id_range
    return low >= 0 and high < 4 * n + (1 << 20)


def _output_for(raw: np.ndarray, overwrite: bool) -> np.ndarray:
    if overwrite and raw.dtype == np.int32 and raw.flags.writeable and raw.flags.c_contiguous:
        return raw
    return np.empty(len(raw), dtype=np.int32)


@njit(cache=True, parallel=True)
def _code_pair(user_raw, user_high, item_raw, item_high, users, items):
    """Mark both presence tables (a thread each), then write every rating's two codes."""
    user_present = np.zeros(user_high + 1, dtype=np.bool_)
    item_present = np.zeros(item_high + 1, dtype=np.bool_)
    for column in prange(2):
        if column == 0:
            _mark_present(user_raw, user_present)
        else:
            _mark_present(item_raw, item_present)
    user_ids, user_code = _index_present(user_present)
    item_ids, item_code = _index_present(item_present)
    for t in prange(len(user_raw)):  # reads each raw id before writing its code: in place is safe
        users[t] = user_code[user_raw[t]]
        items[t] = item_code[item_raw[t]]
    return user_ids, item_ids


@njit(cache=True)
def _mark_present(raw, present):
    for t in range(len(raw)):
        present[raw[t]] = True


@njit(cache=True)
def _index_present(present):
    """(ids present in ascending order, code of every value 0..high)."""
    code = np.empty(len(present), dtype=np.int32)
    n_ids = 0
    for value in range(len(present)):
        code[value] = n_ids
        n_ids += present[value]
    ids = np.empty(n_ids, dtype=np.int64)
    for value in range(len(present)):
        if present[value]:
            ids[code[value]] = value
    return ids, code


@njit(cache=True, parallel=True)
def _look_up_codes(raw, code):
    codes = np.empty(len(raw), dtype=np.int32)
    for t in prange(len(raw)):
        codes[t] = code[raw[t]]
    return codes
