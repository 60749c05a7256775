"""Copying one row's fixed-side vectors into a contiguous block: the first step of every solve.

The fixed side's factor matrix is larger than the caches (ML-20M's user factors: 35 MB) and a
row's ratings point into it in no useful order, so every solver starts by gathering the rows it
needs into a small contiguous block that stays in cache for the rest of the row's work, asking
for the rows a few ratings ahead with :func:`alsmf.solvers.prefetch.prefetch`. CG wants the
vectors as rows (:func:`gather_row`); the Gram kernel wants them as columns
(:func:`gather_columns`), a chunk of ratings at a time. A weighted least-squares row scales
what was gathered by the root of each rating's weight (:func:`weigh_rows`,
:func:`weigh_columns`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alsmf.solvers.prefetch import prefetch

PREFETCH_DISTANCE = 8
"""How many ratings ahead the gather asks for the next factor rows."""

UNIT_WEIGHTS = np.empty(0, dtype=np.float32)
"""The ``weights`` argument of the kernels for "every rating weighs 1": no weights at all."""


@njit(cache=True, nogil=True, inline="always")
def prefetch_factor_row(fixed_factors: np.ndarray, j: int) -> None:
    """Ask for every cache line of ``fixed_factors[j]``."""
    line = max(1, 64 // fixed_factors.itemsize)  # entries per 64-byte cache line
    for a in range(0, fixed_factors.shape[1], line):
        prefetch(fixed_factors, j, a)


@njit(cache=True, nogil=True)
def gather_row(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, row: int,
               fixed_factors: np.ndarray, fixed_bias: np.ndarray, global_mean: float,
               block: np.ndarray, targets: np.ndarray) -> int:
    """Copy the fixed side's vectors of ``row``'s ratings into ``block``; fill the targets.

    ``block`` has the factors' k columns, or k + 1 for the augmented vector [q_j, 1] (the last
    column is then set to 1); it takes the block's precision (float32 for CG).
    ``targets[m] = r_m - μ - b_j``. Returns the number of ratings n (block rows 0..n-1 are
    filled).
    """
    start = indptr[row]
    n = indptr[row + 1] - start
    k = fixed_factors.shape[1]
    augmented = block.shape[1] > k
    for m in range(n):
        if m + PREFETCH_DISTANCE < n:
            prefetch_factor_row(fixed_factors, indices[start + m + PREFETCH_DISTANCE])
        j = indices[start + m]
        for a in range(k):  # a scalar loop: numba's slice copy is ~2x slower
            block[m, a] = fixed_factors[j, a]
        if augmented:
            block[m, k] = 1.0
        targets[m] = values[start + m] - global_mean - fixed_bias[j]
    return n


@njit(cache=True, nogil=True)
def gather_columns(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, row: int,
                   first: int, count: int, fixed_factors: np.ndarray, fixed_bias: np.ndarray,
                   global_mean: float, columns: np.ndarray, targets: np.ndarray) -> None:
    """Copy the vectors of ``row``'s ratings ``first .. first + count - 1`` into columns.

    ``columns[a, m]`` receives entry a of the m-th vector (the transpose of
    :func:`gather_row`'s block), so that each Gram entry is a dot product of two contiguous
    rows of ``columns``; with k + 1 rows the last is set to 1 (the augmented vector). It takes
    the precision of ``columns``. ``targets[m] = r_m - μ - b_j``.
    """
    start = indptr[row] + first
    end = indptr[row + 1]
    k = fixed_factors.shape[1]
    augmented = columns.shape[0] > k
    for m in range(count):
        if start + m + PREFETCH_DISTANCE < end:  # across the chunk's end: the next chunk's
            prefetch_factor_row(fixed_factors, indices[start + m + PREFETCH_DISTANCE])
        j = indices[start + m]
        for a in range(k):
            columns[a, m] = fixed_factors[j, a]
        if augmented:
            columns[k, m] = 1.0
        targets[m] = values[start + m] - global_mean - fixed_bias[j]


@njit(cache=True, nogil=True)
def weigh_rows(weights: np.ndarray, start: int, count: int, block: np.ndarray,
               targets: np.ndarray) -> None:
    """Scale vector m of a :func:`gather_row` block and its target by √w, w = ``weights[start
    + m]``, for m < count.

    The kernels then form Σ ỹ ỹᵀ and Σ t̃ ỹ of the scaled vectors as they would for unit
    weights, and these are the weighted sums Σ w y yᵀ and Σ w t y: a weighted least-squares
    row costs one pass over its block more than an unweighted one, and no kernel needs a
    second, weighted copy. The root is taken in float32 from the float32 weight, so a row
    solves alike whether its weights come in float32 (training) or float64 (fold-in).
    Weights must be > 0.
    """
    for m in range(count):
        scale = np.sqrt(np.float32(weights[start + m]))
        for a in range(block.shape[1]):
            block[m, a] *= scale
        targets[m] *= scale


@njit(cache=True, nogil=True)
def weigh_columns(weights: np.ndarray, start: int, count: int, columns: np.ndarray,
                  targets: np.ndarray) -> None:
    """:func:`weigh_rows` for a :func:`gather_columns` chunk: scale column m and its target
    by √w, w = ``weights[start + m]``, for m < count."""
    for m in range(count):
        scale = np.sqrt(np.float32(weights[start + m]))
        for a in range(columns.shape[0]):
            columns[a, m] *= scale
        targets[m] *= scale
