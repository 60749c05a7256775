"""The Gibbs half-step of Bayesian matrix factorization: draw every row of one side, in parallel.

With the other side fixed, user u's unknowns x_u = [p_u, b_u] have a Gaussian conditional

    precision  A = α Σ_i y_i y_iᵀ + Λ,          y_i = [q_i, 1],
    mean       A⁻¹ (α Σ_i (r_ui - μ - b_i) y_i + Λ m),

where (m, Λ) is the side's prior and α the noise precision. Dividing by α, the mean solves
(G + Λ/α) x = b + (Λ/α) m with G and b the ALS Gram matrix and right-hand side, so each row
reuses the ALS kernels: :func:`accumulate_normal_equations` builds G and b and
:func:`solve_row` (scale 1/α) gives the mean and leaves L with L Lᵀ = G + Λ/α = A/α. A draw is
then mean + L⁻ᵀ z / √α with z standard normal, whose covariance is (α L Lᵀ)⁻¹ = A⁻¹.

The normals come from a counter-based generator: row ``row`` of a half-step reads the
splitmix64 stream keyed by (seed, sweep, side, row) and turns it into normals by Box-Muller.
No generator state is shared between threads, so a draw does not depend on which thread runs
the row or on how many threads there are.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from alsmf.solvers.cholesky import solve_lower_transpose, solve_row
from alsmf.solvers.gather import UNIT_WEIGHTS
from alsmf.solvers.gram import accumulate_normal_equations, add_extra_terms

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi
_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@njit(cache=True, nogil=True)
def splitmix64(x: np.uint64) -> np.uint64:
    """The splitmix64 output function of ``x``: a bijective 64-bit mix (Steele et al. 2014)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def stream_key(seed: int, sweep: int, side: int, row: int) -> np.uint64:
    """The key of one row's random stream: a hash of (seed, sweep, side, row)."""
    key = splitmix64(np.uint64(seed))
    key = splitmix64(key ^ np.uint64(sweep))
    key = splitmix64(key ^ np.uint64(side))
    return splitmix64(key ^ np.uint64(row))


@njit(cache=True, nogil=True)
def standard_normals(key: np.uint64, out: np.ndarray) -> None:
    """Fill ``out`` with independent N(0, 1) draws from the stream ``key`` (Box-Muller).

    Uniform j is the 53 top bits of splitmix64(key + j·golden), shifted to (0, 1), so the
    logarithm is always finite.
    """
    n = len(out)
    counter = np.uint64(0)
    for j in range(0, n, 2):
        counter += np.uint64(1)
        u1 = (float(splitmix64(key + counter * _GOLDEN) >> np.uint64(11)) + 0.5) * _UNIT
        counter += np.uint64(1)
        u2 = (float(splitmix64(key + counter * _GOLDEN) >> np.uint64(11)) + 0.5) * _UNIT
        radius = np.sqrt(-2.0 * np.log(u1))
        out[j] = radius * np.cos(_TWO_PI * u2)
        if j + 1 < n:
            out[j + 1] = radius * np.sin(_TWO_PI * u2)


@njit(cache=True, nogil=True)
def add_lower_transpose_solve(lower: np.ndarray, z: np.ndarray, scale: float,
                              out: np.ndarray) -> None:
    """``out += scale · L⁻ᵀ z`` (back substitution; ``z`` is overwritten with L⁻ᵀ z)."""
    solve_lower_transpose(lower, z)
    for i in range(len(out)):
        out[i] += scale * z[i]


@njit(cache=True, nogil=True)
def draw_row(gram: np.ndarray, rhs: np.ndarray, prior_precision: np.ndarray,
             prior_mean: np.ndarray, alpha: float, key: np.uint64, out: np.ndarray) -> int:
    """One draw from N(A⁻¹ (α b + Λ m), A⁻¹), A = α G + Λ, G = ``gram`` (lower triangle read).

    ``gram`` is overwritten by the Cholesky factor of G + Λ/α. Returns 0, or the failing
    Cholesky pivot (``out`` is then untouched).
    """
    status = solve_row(gram, rhs, prior_precision, prior_mean, 1.0 / alpha, out)
    if status != 0:
        return status
    z = np.empty(len(out))
    standard_normals(key, z)
    add_lower_transpose_solve(gram, z, 1.0 / np.sqrt(alpha), out)
    return 0


@njit(cache=True, parallel=True)
def gibbs_half_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    global_mean: float,
    prior_precision: np.ndarray,
    prior_mean: np.ndarray,
    alpha: float,
    seed: int,
    sweep: int,
    side: int,
    first_row: int,
    extra_gram: np.ndarray,
    extra_rhs: np.ndarray,
    out_factors: np.ndarray,
    out_bias: np.ndarray,
    status: np.ndarray,
) -> None:
    """Draw [factors, bias] of every row of the CSR matrix from its Gaussian conditional.

    ``extra_gram`` (d x d, shared) and ``extra_rhs`` (one length-d row per CSR row) are added
    to each row's Gram matrix and right-hand side before the draw, as in the ALS half-steps
    (the implicit-feature terms, already divided by α); pass 0 x 0 and 0 x d arrays for none.

    ``prior_precision`` and ``prior_mean`` (k + 1 entries: the factors, then the bias) are the
    side's prior; a row without ratings is drawn from it. ``status[row]`` is 0, or the failing
    Cholesky pivot, in which case the row's outputs are left unchanged. Row ``row`` uses the
    random stream :func:`stream_key` (seed, sweep, side, row), so the result is the same for
    any number of threads. ``first_row`` is the side's index of the CSR's first row (0 for a
    whole side; a block's offset on a Dask worker, so that a row's draw is the same however
    the side is cut into blocks).
    """
    n_rows = len(indptr) - 1
    k = fixed_factors.shape[1]
    d = k + 1
    for row in prange(n_rows):
        gram = np.empty((d, d))
        rhs = np.empty(d)
        x = np.empty(d)
        accumulate_normal_equations(indptr, indices, values, UNIT_WEIGHTS, row, fixed_factors,
                                    fixed_bias, global_mean, gram, rhs)
        add_extra_terms(gram, rhs, extra_gram, extra_rhs, row)
        result = draw_row(gram, rhs, prior_precision, prior_mean, alpha,
                          stream_key(seed, sweep, side, first_row + row), x)
        status[row] = result
        if result != 0:
            continue
        for a in range(k):
            out_factors[row, a] = x[a]
        out_bias[row] = x[k]


STATISTICS_SLICE = 4096
"""Rows per partial sum of :func:`slice_sums` and :func:`slice_scatters`. Fixed, so the order
of the sums is too: a side cut into blocks anywhere (on a Dask worker) gets the same partial
sums, slice by slice, and hence the same totals bit for bit."""


@njit(cache=True, parallel=True)
def slice_sums(factors: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Σ x over each slice of ``STATISTICS_SLICE`` rows x = [factors, bias]: one row per
    slice, summed row by row (:func:`add_in_order` adds them)."""
    n, k = factors.shape
    n_slices = (n + STATISTICS_SLICE - 1) // STATISTICS_SLICE
    partial = np.zeros((n_slices, k + 1))
    for part in prange(n_slices):
        total = partial[part]
        for row in range(part * STATISTICS_SLICE, min(n, (part + 1) * STATISTICS_SLICE)):
            for a in range(k):
                total[a] += factors[row, a]
            total[k] += bias[row]
    return partial


@njit(cache=True, parallel=True)
def slice_scatters(factors: np.ndarray, bias: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The lower triangle of Σ (x - c)(x - c)ᵀ over each slice of ``STATISTICS_SLICE`` rows
    x = [factors, bias], c = ``center``: one matrix per slice, summed row by row.

    Slices are summed in parallel and added in order afterwards (:func:`scatter_matrix`), so
    the result does not depend on the number of threads (a BLAS product's does, and BLAS
    threads fight numba's on a busy machine).
    """
    n, k = factors.shape
    d = k + 1
    n_slices = (n + STATISTICS_SLICE - 1) // STATISTICS_SLICE
    partial = np.zeros((n_slices, d, d))
    for part in prange(n_slices):
        x = np.empty(d)
        total = partial[part]
        for row in range(part * STATISTICS_SLICE, min(n, (part + 1) * STATISTICS_SLICE)):
            for a in range(k):
                x[a] = factors[row, a] - center[a]
            x[k] = bias[row] - center[k]
            for a in range(d):
                for b in range(a + 1):
                    total[a, b] += x[a] * x[b]
    return partial


def add_in_order(partials: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """The sum of the slices' partial sums, added from zero in slice order."""
    total = np.zeros(np.shape(partials[0]))
    for part in partials:
        total += part
    return total


def symmetric_from_lower(lower: np.ndarray) -> np.ndarray:
    """``lower`` with its upper triangle set to its lower one (in place; returned)."""
    upper = np.triu_indices(len(lower), 1)
    lower[upper] = lower.T[upper]
    return lower


def scatter_matrix(factors: np.ndarray, bias: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Σ_rows (x - c)(x - c)ᵀ over the rows x = [factors, bias], c = ``center``: the
    statistic the hyperprior draw needs, summed slice by slice in a fixed order."""
    return symmetric_from_lower(add_in_order(slice_scatters(factors, bias, center)))
