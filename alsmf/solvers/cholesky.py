"""The per-row solve that every alsmf trainer shares.

Each row of an ALS half-step, a fold-in of a new user, a Gibbs draw of the Bayesian model and a
Dask worker's block all end in the same small problem: given the Gram matrix ``G`` of the fixed
side over the row's ratings, the right-hand side ``b`` and a Gaussian prior with precision ``P``
and mean ``m`` (weighted by ``scale``), find

    x = (G + scale * P)^-1 (b + scale * P m).

For ALS, ``P`` is the identity, ``m`` is zero and ``scale`` is λ (or λ·n_ratings for ALS-WR):
the regularised normal equations of an ALS row. :func:`solve_row` solves it by Cholesky and leaves
the factor ``L`` in place so that a sampler can draw ``x + L^-T z`` without factoring again.

The functions are numba-compiled so the parallel half-step kernels can call them per row
without Python overhead; they only read the lower triangle of ``gram``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


_REORDERED_SUMS = {"reassoc"}
"""Fast-math flags of the factorisation and solves: their dot products may be summed in SIMD
lanes. Not "contract": fused multiply-adds change the rounding by which a singular system's
pivot comes out 0 or below (and is refused); nor "nnan"/"ninf": the pivot check needs them."""


@njit(cache=True, nogil=True, fastmath=_REORDERED_SUMS)
def cholesky_in_place(a: np.ndarray) -> int:
    """Factor the symmetric matrix ``a`` (lower triangle read) as L·Lᵀ, writing L into ``a``.

    Column by column (Cholesky–Crout): each entry of L is a dot product of two contiguous row
    prefixes, computed four rows at a time so that every load of the pivot row serves four
    multiply-adds (against one row at a time, strictly in order: an exact ALS iteration at
    ML-1M shape, k = 64, 0.62 -> 0.52 s, ``python benchmarks/bayes.py speed --shape ml-1m``).

    Returns 0 on success, or the 1-based index of the first pivot that is not positive and
    finite (the matrix is not positive definite), leaving ``a`` partly overwritten.
    """
    d = a.shape[0]
    for j in range(d):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not (s > 0.0) or not np.isfinite(s):
            return j + 1
        pivot = np.sqrt(s)
        a[j, j] = pivot
        inverse = 1.0 / pivot
        i = j + 1
        while i + 3 < d:  # rows i..i+3 of column j
            t0 = a[i, j]
            t1 = a[i + 1, j]
            t2 = a[i + 2, j]
            t3 = a[i + 3, j]
            for k in range(j):
                pivot_row = a[j, k]
                t0 -= a[i, k] * pivot_row
                t1 -= a[i + 1, k] * pivot_row
                t2 -= a[i + 2, k] * pivot_row
                t3 -= a[i + 3, k] * pivot_row
            a[i, j] = t0 * inverse
            a[i + 1, j] = t1 * inverse
            a[i + 2, j] = t2 * inverse
            a[i + 3, j] = t3 * inverse
            i += 4
        for i in range(i, d):  # the last rows, one at a time
            t = a[i, j]
            for k in range(j):
                t -= a[i, k] * a[j, k]
            a[i, j] = t * inverse
    for i in range(d):  # make the result exactly lower triangular
        for j in range(i + 1, d):
            a[i, j] = 0.0
    return 0


@njit(cache=True, nogil=True, fastmath=_REORDERED_SUMS)
def solve_lower_transpose(lower: np.ndarray, b: np.ndarray) -> None:
    """Solve Lᵀ x = b in place (``b`` becomes x), given the lower-triangular L.

    Column by column: once x_i is known, its multiples are taken off the entries above it,
    reading row i of L, which is contiguous (the row-by-row order reads L's columns, one cache
    line per entry).
    """
    for i in range(lower.shape[0] - 1, -1, -1):
        x = b[i] / lower[i, i]
        b[i] = x
        for k in range(i):
            b[k] -= lower[i, k] * x


@njit(cache=True, nogil=True, fastmath=_REORDERED_SUMS)
def cholesky_solve(lower: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Solve L·Lᵀ x = b given the Cholesky factor L; ``out`` may alias ``b``."""
    d = lower.shape[0]
    for i in range(d):  # forward: L y = b
        t = b[i]
        for k in range(i):
            t -= lower[i, k] * out[k]
        out[i] = t / lower[i, i]
    solve_lower_transpose(lower, out)  # backward: Lᵀ x = y


@njit(cache=True, nogil=True, fastmath=_REORDERED_SUMS)
def solve_row(
    gram: np.ndarray,
    rhs: np.ndarray,
    prior_precision: np.ndarray,
    prior_mean: np.ndarray,
    scale: float,
    out: np.ndarray,
) -> int:
    """Solve (gram + scale·P) x = rhs + scale·P·m for one row; write x into ``out``.

    Args:
        gram: d x d Gram matrix of the fixed side (lower triangle read). Overwritten with the
            Cholesky factor L of the regularised matrix, for samplers that need it.
        rhs: length-d right-hand side; left unchanged.
        prior_precision: d x d prior precision P (the identity for ALS).
        prior_mean: length-d prior mean m (zero for ALS).
        scale: weight of the prior (λ, or λ·n for ALS-WR).
        out: length-d output.

    Returns:
        0 on success, else the 1-based pivot where the matrix was not positive definite
        (``out`` is then left untouched).
    """
    d = gram.shape[0]
    for i in range(d):
        for j in range(i + 1):
            gram[i, j] += scale * prior_precision[i, j]
    status = cholesky_in_place(gram)
    if status != 0:
        return status
    for i in range(d):
        t = rhs[i]
        for j in range(d):
            t += scale * prior_precision[i, j] * prior_mean[j]
        out[i] = t
    cholesky_solve(gram, out, out)
    return 0
