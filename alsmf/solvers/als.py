"""The ALS half-step: solve every row of one side with the other side fixed, in parallel.

With item factors Q and biases fixed, user u's vector x_u = [p_u, b_u] minimises

    Σ_{i ∈ I(u)} (r_ui - μ - b_i - [q_i, 1]·x_u)² + λ_u ‖x_u‖²,

whose normal equations are (Σ y_i y_iᵀ + λ_u I) x_u = Σ (r_ui - μ - b_i) y_i with y_i = [q_i, 1]
(the "augmented system": the bias is one more unknown, solved in the same step). Without biases
y_i = q_i and μ = b_i = 0 (plain ridge regression of the row's ratings). λ_u is λ, or λ·|I(u)| with
weighted regularisation (ALS-WR). The item half-step is the same with the roles swapped, on the
ratings stored by item.

Rows are independent, so ``prange`` spreads them over all cores; each row writes only its own
output, which makes the result identical whatever the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from alsmf.solvers.cholesky import solve_row
from alsmf.solvers.gram import accumulate_normal_equations, add_extra_terms


@njit(cache=True, parallel=True, nogil=True)  # a Dask worker stays responsive
def als_half_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
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
    when E is 0 x 0. ``weights`` (aligned with ``values``, each > 0) weighs each rating's
    terms in G and b (weighted least squares); empty for unit weights.

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
        accumulate_normal_equations(indptr, indices, values, weights, row, fixed_factors,
                                    fixed_bias, global_mean, gram, rhs)
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
