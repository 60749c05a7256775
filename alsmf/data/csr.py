"""Building the rating matrix in CSR form, and finding repeated (row, column) pairs.

scipy's COO-to-CSR conversion copies the indices into a COO matrix, converts, then sorts the
columns of every row: at 20M ratings that holds about 0.5 GB of temporaries. Here the entries
are placed by row with a counting sort straight into the output arrays (one chunk of the
input per thread, each with its own row table, so the order stays the input's), then each
row's columns are sorted in place (rows in parallel; a stable sort, so repeated (row, column)
pairs keep their input order and end up side by side, which is where they are counted). The
only memory beyond the output is the row tables and one row's sort order at a time.

Entries already in row order, columns ascending (the usual layout once a ratings set is put
in user order, see :func:`row_major_order`), need no placing at all: the CSR matrix is built
on the input arrays themselves, which saves a copy of the indices and values.

Counting repeats alone, the check every file gets, needs no sort: a marker per column
remembers the last row that had it (:func:`count_repeated_pairs`)."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange


@njit(cache=True)
def count_per_index(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of 0..n-1 occurs (np.bincount without its int64 copy of the input)."""
    counts = np.zeros(n, dtype=np.int64)
    for t in range(len(indices)):
        counts[indices[t]] += 1
    return counts


@njit(cache=True, parallel=True)
def _repeats_in_runs(rows: np.ndarray, cols: np.ndarray, n_cols: int, chunks: int) -> int:
    """Repeated pairs when equal rows are contiguous (-1 when they are not).

    The entries are cut into ``chunks`` ranges checked in parallel, each with its own
    last-row-seen marker per column; a run of equal rows is checked whole by the range it
    starts in. A range stops at its first row smaller than the one before (files in time
    order stop at once).
    """
    n = len(rows)
    repeats = np.zeros(chunks, dtype=np.int64)
    for chunk in prange(chunks):
        begin, end = chunk * n // chunks, (chunk + 1) * n // chunks
        while 0 < begin < n and rows[begin] == rows[begin - 1]:  # a run from before
            begin += 1
        while 0 < end < n and rows[end] == rows[end - 1]:  # a run that goes on after
            end += 1
        last_row_of_col = np.full(n_cols, -1, dtype=np.int64)
        for t in range(begin, end):
            if t and rows[t] < rows[t - 1]:
                repeats[chunk] = -1
                break
            if last_row_of_col[cols[t]] == rows[t]:
                repeats[chunk] += 1
            last_row_of_col[cols[t]] = rows[t]
    return -1 if (repeats < 0).any() else repeats.sum()


def _chunks(n: int, n_rows: int) -> int:
    """Input chunks placed in parallel by the counting sorts below: one per thread, fewer when
    their per-chunk row tables (chunks x n_rows) would outgrow the input."""
    return max(1, min(numba.get_num_threads(), n // max(n_rows, 1)))


@njit(cache=True, parallel=True)
def _chunk_starts(rows: np.ndarray, n_rows: int, chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, starts) of a stable counting sort by row whose input chunks are placed in
    parallel: ``starts[c, r]`` is where chunk c's first entry of row r goes."""
    n = len(rows)
    starts = np.zeros((chunks, n_rows), dtype=np.int64)
    for c in prange(chunks):
        for t in range(c * n // chunks, (c + 1) * n // chunks):
            starts[c, rows[t]] += 1
    indptr = np.empty(n_rows + 1, dtype=np.int64)
    total = 0
    for r in range(n_rows):
        indptr[r] = total
        for c in range(chunks):
            count = starts[c, r]
            starts[c, r] = total
            total += count
    indptr[n_rows] = total
    return indptr, starts


@njit(cache=True, parallel=True)
def _place_by_row(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, starts: np.ndarray,
                  indices: np.ndarray, data: np.ndarray) -> None:
    """Counting sort of the entries by row into (indices, data), input order kept, chunks in
    parallel. ``cols=None`` places each entry's position instead; ``values=None`` no data."""
    n = len(rows)
    chunks = starts.shape[0]
    for c in prange(chunks):
        fill = starts[c]
        for t in range(c * n // chunks, (c + 1) * n // chunks):
            position = fill[rows[t]]
            fill[rows[t]] += 1
            if cols is None:
                indices[position] = t
            else:
                indices[position] = cols[t]
            if values is not None:
                data[position] = values[t]


def _columns_by_row(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple:
    """(indptr, columns grouped by row): a counting sort of the columns alone, order kept."""
    indptr, starts = _chunk_starts(rows, n_rows, _chunks(len(rows), n_rows))
    grouped = np.empty(len(cols), dtype=np.int32)
    _place_by_row(rows, cols, None, starts, grouped, None)
    return indptr, grouped


@njit(cache=True, parallel=True)
def _repeats_within_rows(indptr: np.ndarray, grouped: np.ndarray, n_cols: int,
                         chunks: int) -> int:
    """Repeated columns within each row, with a last-row-seen marker per column.

    The rows are cut into ``chunks`` ranges checked in parallel, each with its own marker
    array; no row is sorted.
    """
    n_rows = len(indptr) - 1
    repeats = np.zeros(chunks, dtype=np.int64)
    for chunk in prange(chunks):
        last_row_of_col = np.full(n_cols, -1, dtype=np.int64)
        for r in range(chunk * n_rows // chunks, (chunk + 1) * n_rows // chunks):
            for t in range(indptr[r], indptr[r + 1]):
                if last_row_of_col[grouped[t]] == r:
                    repeats[chunk] += 1
                last_row_of_col[grouped[t]] = r
    return repeats.sum()


def count_repeated_pairs(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> int:
    """How many entries repeat an earlier (row, col) pair.

    Files grouped by row (MovieLens is sorted by user) are checked in one pass with a
    last-row-seen marker per column; others first have their entries grouped by whichever
    side has fewer indices (a counting sort, 4 bytes per entry, whose table of write
    positions then stays smaller in cache) and are then checked the same way, in parallel.
    """
    repeated = _repeats_in_runs(rows, cols, shape[1], _chunks(len(rows), shape[1]))
    if repeated >= 0:
        return int(repeated)
    if shape[1] < shape[0]:  # a pair repeats in both orientations alike
        rows, cols, shape = cols, rows, (shape[1], shape[0])
    indptr, grouped = _columns_by_row(rows, cols, shape[0])
    chunks = max(1, min(shape[0], 4 * numba.get_num_threads()))
    return int(_repeats_within_rows(indptr, grouped, shape[1], chunks))


@njit(cache=True, parallel=True)
def _sort_each_row(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> int:
    """Sort every row's columns (and values) ascending; returns the number of repeats."""
    n_rows = len(indptr) - 1
    repeats = np.zeros(n_rows, dtype=np.int64)
    for r in prange(n_rows):
        start, stop = indptr[r], indptr[r + 1]
        ordered = True
        for t in range(start + 1, stop):
            if indices[t] < indices[t - 1]:
                ordered = False
                break
        if not ordered:
            order = np.argsort(indices[start:stop], kind="mergesort")
            row_indices = indices[start:stop][order]
            row_data = data[start:stop][order]
            indices[start:stop] = row_indices
            data[start:stop] = row_data
        for t in range(start + 1, stop):
            if indices[t] == indices[t - 1]:
                repeats[r] += 1
    return repeats.sum()


@njit(cache=True)
def _row_major_indptr(rows: np.ndarray, cols: np.ndarray, indptr: np.ndarray) -> bool:
    """Fill ``indptr`` and say True when the entries are by row with columns strictly ascending."""
    indptr[:] = 0
    for t in range(len(rows)):
        if t and (rows[t] < rows[t - 1] or (rows[t] == rows[t - 1] and cols[t] <= cols[t - 1])):
            return False
        indptr[rows[t] + 1] += 1
    for r in range(len(indptr) - 1):
        indptr[r + 1] += indptr[r]
    return True


@njit(cache=True, parallel=True)
def _sort_row_positions(indptr: np.ndarray, order: np.ndarray, cols: np.ndarray) -> None:
    """Sort each row's entry positions by column, stably (rows in parallel)."""
    for r in prange(len(indptr) - 1):
        start, stop = indptr[r], indptr[r + 1]
        positions = order[start:stop]
        by_column = np.argsort(cols[positions], kind="mergesort")
        order[start:stop] = positions[by_column]


def row_major_order(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> np.ndarray | None:
    """The permutation that puts the entries by row, columns ascending (stable), or None
    when they already are (and no (row, col) pair repeats)."""
    n = len(rows)
    index_dtype = np.int32 if n < 2**31 else np.int64
    indptr = np.empty(n_rows + 1, dtype=np.int64)
    if _row_major_indptr(rows, cols, indptr):
        return None
    indptr, starts = _chunk_starts(rows, n_rows, _chunks(n, n_rows))
    order = np.empty(n, dtype=index_dtype)
    _place_by_row(rows, None, None, starts, order, None)
    _sort_row_positions(indptr, order, cols)
    return order


def build_csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
              shape: tuple[int, int]) -> tuple[sp.csr_matrix, int]:
    """The (rows x cols) CSR matrix of the entries, float32, columns ascending in each row.

    Returns the matrix and the number of entries that repeat an earlier (row, col) pair; when
    that is not zero the matrix holds every entry, repeats side by side (no summing), and the
    caller decides what a repeat means. Entries already in that order, with int32 ``cols`` and
    float32 ``values``, are not copied: the matrix's indices and data are those arrays.
    """
    n = len(rows)
    index_dtype = np.int32 if n < 2**31 and max(shape) < 2**31 else np.int64
    if cols.dtype == np.int32 and values.dtype == np.float32 and index_dtype == np.int32:
        indptr = np.empty(shape[0] + 1, dtype=np.int64)
        if _row_major_indptr(rows, cols, indptr):
            matrix = sp.csr_matrix((values, cols, indptr.astype(np.int32)), shape=shape,
                                   copy=False)
            return matrix, 0
    indptr, starts = _chunk_starts(rows, shape[0], _chunks(n, shape[0]))
    indptr = indptr.astype(index_dtype)
    indices = np.empty(n, dtype=np.int32)
    data = np.empty(n, dtype=np.float32)
    _place_by_row(rows, cols, values, starts, indices, data)
    repeated = _sort_each_row(indptr, indices, data)
    matrix = sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)
    return matrix, int(repeated)
