"""The ALS half-step: solve every row of one side with the other side fixed, in parallel.

With item factors Q and biases fixed, user u's vector x_u = [p_u, b_u] minimises

    Σ_{i ∈ I(u)} (r_ui - μ - b_i - [q_i, 1]·x_u)² + λ_u ‖x_u‖²,

whose normal equations are (Σ y_i y_iᵀ + λ_u I) x_u = Σ (r_ui - μ - b_i) y_i with y_i = [q_i, 1]
(the "augmented system": the bias is one more unknown, solved in the same step). Without biases
y_i = q_i and μ = b_i = 0, which is seed 001's equation 1.5.1. λ_u is λ, or λ·|I(u)| with
weighted regularisation (ALS-WR). The item half-step is the same with the roles swapped, on the
ratings stored by item.

Rows are independent, so ``prange`` spreads them over all cores; each row writes only its own
output, which makes the result identical whatever the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from alsmf.solvers.cholesky import solve_row
from alsmf.solvers.gather import gather_row


@njit(cache=True, nogil=True, fastmath=True)
def accumulate_normal_equations(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    row: int,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    global_mean: float,
    gram: np.ndarray,
    rhs: np.ndarray,
) -> None:
    """Fill the lower triangle of ``gram`` = Σ y yᵀ and ``rhs`` = Σ (r - μ - b_j) y for one row.

    ``y`` is the fixed side's factor row, extended by a constant 1 when ``gram`` has one more
    row than there are factors (the biased model). The row's vectors are first gathered into a
    contiguous block (:func:`alsmf.solvers.gather.gather_row`) and transposed, so every
    entry of the Gram matrix is a dot product of two contiguous columns; entries are computed
    4 x 2 at a time, eight multiply-adds per six loads, in registers until one store each (at
    k = 64 an exact iteration on the ML-1M shape went from 0.77 to 0.62 s, and a Gibbs sweep
    from 0.85 to 0.72 s, ``python benchmarks/bayes.py speed --shape ml-1m`` before and after;
    the previous kernel updated the whole lower triangle once per four ratings).
    """
    d = gram.shape[0]
    n = indptr[row + 1] - indptr[row]
    block = np.empty((n, d))
    targets = np.empty(n)
    gather_row(indptr, indices, values, row, fixed_factors, fixed_bias, global_mean, block,
               targets)
    columns = np.empty((d, n))  # the block transposed: each Gram entry is one dot product
    for m in range(n):
        for a in range(d):
            columns[a, m] = block[m, a]
    for a in range(d):
        total = 0.0
        for m in range(n):
            total += columns[a, m] * targets[m]
        rhs[a] = total
    for a in range(0, d, 4):  # rows a..a+3 against columns b, b+1 (clamped at the edge)
        a1 = min(a + 1, d - 1)
        a2 = min(a + 2, d - 1)
        a3 = min(a + 3, d - 1)
        for b in range(0, a3 + 1, 2):
            b1 = min(b + 1, d - 1)
            s00 = 0.0
            s01 = 0.0
            s10 = 0.0
            s11 = 0.0
            s20 = 0.0
            s21 = 0.0
            s30 = 0.0
            s31 = 0.0
            for m in range(n):
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
            for i, j, value in ((a, b, s00), (a, b1, s01), (a1, b, s10), (a1, b1, s11),
                                (a2, b, s20), (a2, b1, s21), (a3, b, s30), (a3, b1, s31)):
                if j <= i:  # the lower triangle only
                    gram[i, j] = value


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


@njit(cache=True, parallel=True, nogil=True)  # a Dask worker stays responsive
def als_half_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    global_mean: float,
    with_bias: bool,
    prior_precision: np.ndarray,
    weighted_reg: bool,
    extra_gram: np.ndarray,
    extra_rhs: np.ndarray,
    out_factors: np.ndarray,
    out_bias: np.ndarray,
    status: np.ndarray,
) -> None:
    """Solve every row of the CSR matrix (indptr, indices, values) against the fixed side.

    Each row solves (G + w·P + E) x = b + e, where G, b are the row's normal equations, P is
    ``prior_precision`` (d x d, d = k + 1 with the bias: diag(λ, …, λ, λ_b) for ALS), w is
    the row's rating count when ``weighted_reg`` else 1, and ``extra_gram`` E (d x d, shared)
    and ``extra_rhs`` e (one length-d row per CSR row) are the implicit-feature terms, skipped
    when E is 0 x 0.

    Writes each row's factors into ``out_factors`` and, when ``with_bias``, its bias into
    ``out_bias``. A row without ratings gets zeros (the prior mean). ``status[row]`` is 0, or
    the failing Cholesky pivot when the row's system is not positive definite; such a row's
    outputs are left unchanged.
    """
    n_rows = len(indptr) - 1
    k = fixed_factors.shape[1]
    d = k + 1 if with_bias else k
    zero_mean = np.zeros(d)
    for row in prange(n_rows):
        count = indptr[row + 1] - indptr[row]
        status[row] = 0
        if count == 0:
            out_factors[row, :] = 0.0
            if with_bias:
                out_bias[row] = 0.0
            continue
        gram = np.empty((d, d))
        rhs = np.empty(d)
        x = np.empty(d)
        accumulate_normal_equations(indptr, indices, values, row, fixed_factors, fixed_bias,
                                    global_mean, gram, rhs)
        add_extra_terms(gram, rhs, extra_gram, extra_rhs, row)
        scale = float(count) if weighted_reg else 1.0
        result = solve_row(gram, rhs, prior_precision, zero_mean, scale, x)
        status[row] = result
        if result != 0:
            continue
        for a in range(k):
            out_factors[row, a] = x[a]
        if with_bias:
            out_bias[row] = x[k]
