"""One row's normal equations: the Gram matrix G = Σ y yᵀ and right-hand side b = Σ t y.

With per-rating weights w (implicit-feedback ALS's confidences) they are G = Σ w y yᵀ and
b = Σ w t y: each chunk's vectors and targets are scaled by √w after the gather
(:func:`alsmf.solvers.gather.weigh_columns`) and summed as below; without weights that pass is
skipped and nothing else changes.

Every exact solve (an ALS half-step, a fold-in, a Gibbs draw) starts here, and at k = 64 this
is most of an exact iteration's work: ~n·k² multiply-adds per row against ~k³/6 for its
Cholesky factorisation. Two choices make it fast:

- **Chunks.** The row's vectors are gathered :data:`CHUNK` ratings at a time into a
  column-major block (:func:`alsmf.solvers.gather.gather_columns`) that stays in the L2
  cache, and each chunk's products are added to G. Gathering a long row whole (an ML-20M item
  has up to 67,000 ratings) made a block of megabytes that every Gram entry streamed from
  memory again, and one fresh allocation per row.
- **float32 inside a chunk.** The vectors are stored and multiplied in float32, twice the SIMD
  width of float64; each chunk's sums (at most :data:`CHUNK` products, split over the SIMD
  lanes) are added to G and b in float64, so rounding does not grow with the row's length.
  The factors come out within ~1e-6 (relative) of an all-float64 solve; the Cholesky
  factorisation and the triangular solves stay in float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alsmf.solvers.gather import gather_columns, weigh_columns

CHUNK = 1000
"""Ratings per chunk: at k = 64 a chunk is 65 x 1000 float32 values (260 KB), which stays in
the L2 cache (512 KB per core here). Each chunk ends every Gram entry with a horizontal sum of
SIMD lanes, so longer chunks are cheaper, up to the cache (the exact solver's speed at ML-20M
shape, ``benchmarks/peers.py``, is with this value). Not a power of two: rows a power of two
apart share cache sets."""


LANES = 8
"""float32 SIMD lanes (AVX2): chunks are padded with zero vectors to a whole number of them,
so the dot products never fall back to a scalar loop for the last few ratings."""


@njit(cache=True, nogil=True, inline="always")
def _whole_lanes(count: int) -> int:
    return (count + LANES - 1) // LANES * LANES


@njit(cache=True, nogil=True, fastmath=True)
def add_chunk_products(columns: np.ndarray, targets: np.ndarray, count: int, gram: np.ndarray,
                       rhs: np.ndarray) -> None:
    """Add Σ_m y_m y_mᵀ (lower triangle) to ``gram`` and Σ_m t_m y_m to ``rhs``, m < count.

    ``columns`` holds y_m as column m, so every entry is a dot product of two contiguous rows.
    Entries are computed 4 x 2 at a time, eight multiply-adds per six loads, in registers
    (SIMD lanes along m) until one add each into ``gram``.
    """
    d = gram.shape[0]
    zero = columns.dtype.type(0.0)
    for a in range(d):
        total = zero
        for m in range(count):
            total += columns[a, m] * targets[m]
        rhs[a] += total
    for a in range(0, d, 4):  # rows a..a+3 against columns b, b+1 (clamped at the edge)
        a1 = min(a + 1, d - 1)
        a2 = min(a + 2, d - 1)
        a3 = min(a + 3, d - 1)
        for b in range(0, a3 + 1, 2):
            b1 = min(b + 1, d - 1)
            s00 = zero
            s01 = zero
            s10 = zero
            s11 = zero
            s20 = zero
            s21 = zero
            s30 = zero
            s31 = zero
            for m in range(count):
                y0 = columns[b, m]
                y1 = columns[b1, m]
                x0 = columns[a, m]
                x1 = columns[a1, m]
                x2 = columns[a2, m]
                x3 = columns[a3, m]
                s00 += x0 * y0
                s01 += x0 * y1
                s10 += x1 * y0
                s11 += x1 * y1
                s20 += x2 * y0
                s21 += x2 * y1
                s30 += x3 * y0
                s31 += x3 * y1
            for i, j, value in ((0, 0, s00), (0, 1, s01), (1, 0, s10), (1, 1, s11),
                                (2, 0, s20), (2, 1, s21), (3, 0, s30), (3, 1, s31)):
                # each entry once (the clamped ones repeat) and the lower triangle only
                if a + i < d and b + j <= a + i:
                    gram[a + i, b + j] += value


@njit(cache=True, nogil=True)
def accumulate_normal_equations(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    row: int,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    global_mean: float,
    gram: np.ndarray,
    rhs: np.ndarray,
) -> None:
    """Fill the lower triangle of ``gram`` = Σ w y yᵀ and ``rhs`` = Σ w (r - μ - b_j) y for one
    row.

    ``y`` is the fixed side's factor row, extended by a constant 1 when ``gram`` has one more
    row than there are factors (the biased model). ``weights`` (aligned with ``values``, each
    > 0) gives each rating's w, or is empty for w = 1. ``gram`` and ``rhs`` are float64; the
    products are formed in float32 chunks (see the module docstring).
    """
    d = gram.shape[0]
    for a in range(d):
        rhs[a] = 0.0
        for b in range(a + 1):
            gram[a, b] = 0.0
    n = indptr[row + 1] - indptr[row]
    width = max(1, min(n, CHUNK))  # a row without ratings: G = 0, b = 0
    columns = np.empty((d, _whole_lanes(width)), dtype=np.float32)
    targets = np.empty(columns.shape[1], dtype=np.float32)
    for first in range(0, n, width):
        count = min(width, n - first)
        gather_columns(indptr, indices, values, row, first, count, fixed_factors, fixed_bias,
                       global_mean, columns, targets)
        if len(weights):
            weigh_columns(weights, indptr[row] + first, count, columns, targets)
        padded = _whole_lanes(count)
        for m in range(count, padded):  # zero vectors: they add nothing to G or b
            targets[m] = 0.0
            for a in range(d):
                columns[a, m] = 0.0
        add_chunk_products(columns, targets, padded, gram, rhs)


def gather_source(fixed_factors: np.ndarray) -> np.ndarray:
    """The fixed side's factors as the exact kernels read them: float32, C-contiguous.

    The gathers convert to float32 anyway; reading a float32 copy halves their memory traffic
    (ML-20M's item half-step gathers 18M rows from a 35 MB matrix). Every caller passes the
    same type, so training, fold-in and the sampler run one compiled kernel and agree to the
    last bit on the same row.
    """
    return np.ascontiguousarray(fixed_factors, dtype=np.float32)


@njit(cache=True, nogil=True, inline="always")
def add_extra_terms(gram: np.ndarray, rhs: np.ndarray, extra_gram: np.ndarray,
                    extra_rhs: np.ndarray, row: int) -> None:
    """Add the shared ``extra_gram`` (lower triangle) and ``extra_rhs[row]`` to one row's
    normal equations; nothing when ``extra_gram`` is 0 x 0 (the implicit-feature terms)."""
    if extra_gram.shape[0] == 0:
        return
    for a in range(gram.shape[0]):
        rhs[a] += extra_rhs[row, a]
        for b in range(a + 1):
            gram[a, b] += extra_gram[a, b]
