"""The fast ALS half-step: a few conjugate-gradient steps per row, warm-started.

Each row's problem is the same as in :mod:`alsmf.solvers.cholesky` with a diagonal prior,

    (Yᵀ Y + diag(λ_r, …, λ_r, λ_b) + E) x = Yᵀ t + e,

where the rows of ``Y`` are the fixed side's vectors y_j = [q_j, 1] over the row's ratings,
``t_j = r_j - μ - b_j``, and ``E``, ``e`` are the optional implicit-feature terms. Forming
``YᵀY`` costs n·d²/2 multiply-adds and the Cholesky factorisation d³/3 more; conjugate
gradient only multiplies by ``YᵀY`` as ``Yᵀ(Y v)``, 2·n·d multiply-adds a step, and started
from the row's previous solution two or three steps per half-step give the exact solver's
final test RMSE (implicit and cmfrec use the same method).

Speed comes from the memory layout: each row's vectors are gathered once into a contiguous
block (the fixed side's factor matrix is scattered in memory and larger than the caches, so the
gather asks for rows ahead, :mod:`alsmf.solvers.gather`; the block then stays in cache
for every step), and the products walk four block rows at a time so the compiler keeps four
dot products and one accumulator in vector registers. Rows are independent, so the half-step runs
them in parallel and the result does not depend on the number of threads.

The bias column of ``Y`` is implicit: ``bias_weight`` is 1.0 for the biased model and 0.0
without biases, which keeps x's last entry (the bias) at exactly zero.

Per-rating weights W (implicit-feedback ALS's confidences) make the row's problem
(YᵀWY + …) x = YᵀW t + …: the gathered rows and targets are scaled by √w
(:func:`alsmf.solvers.gather.weigh_rows`) and the steps run unchanged. The implicit bias column
is not scaled, so weights are for rows without biases.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from alsmf.solvers.gather import gather_row, weigh_rows


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def regularised_gram_times(block: np.ndarray, n: int, bias_weight: float, ridge: np.ndarray,
                           extra_gram: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """``out = (YᵀY + diag(ridge) + E) v`` with ``Y = [block[:n], bias_weight]``, without
    forming YᵀY; ``E = extra_gram`` is skipped when it is 0 x 0."""
    k = block.shape[1]
    for a in range(k + 1):
        out[a] = ridge[a] * v[a]
    if extra_gram.shape[0] > 0:
        for a in range(k + 1):
            t = out[a]
            for b in range(k + 1):
                t += extra_gram[a, b] * v[b]
            out[a] = t
    vb = bias_weight * v[k]
    stop4 = n - n % 4
    for m in range(0, stop4, 4):  # four rows at once: four dot products, one pass over out
        s0 = vb
        s1 = vb
        s2 = vb
        s3 = vb
        for a in range(k):
            va = v[a]
            s0 += block[m, a] * va
            s1 += block[m + 1, a] * va
            s2 += block[m + 2, a] * va
            s3 += block[m + 3, a] * va
        for a in range(k):
            out[a] += s0 * block[m, a] + s1 * block[m + 1, a] + s2 * block[m + 2, a] \
                + s3 * block[m + 3, a]
        out[k] += bias_weight * (s0 + s1 + s2 + s3)
    for m in range(stop4, n):
        s = vb
        for a in range(k):
            s += block[m, a] * v[a]
        for a in range(k):
            out[a] += s * block[m, a]
        out[k] += bias_weight * s


@njit(cache=True, nogil=True, fastmath=True)
def conjugate_gradient_steps(block: np.ndarray, n: int, bias_weight: float, ridge: np.ndarray,
                             extra_gram: np.ndarray, x: np.ndarray, residual: np.ndarray,
                             steps: int) -> None:
    """Run CG steps on (YᵀY + diag(ridge) + E) x = Yᵀ t + e from ``x``, whose residual is
    given; in place.

    Args:
        block: at least n rows; row m is the fixed side's factor vector of rating m.
        n: number of ratings of the row.
        bias_weight: 1.0 to solve for the bias (x's last entry) too, 0.0 to keep it at 0.
        ridge: length k + 1, the row's L2 weights: λ_r for the factors, the bias λ last
            (> 0 keeps the system positive definite).
        extra_gram: E, a (k + 1) x (k + 1) positive semi-definite term shared by all rows
            (the implicit-feature Gram), or 0 x 0 for none.
        x: length k + 1; the starting point (the previous solution) and the result.
        residual: Yᵀ t + e - (YᵀY + diag(ridge) + E) x for the starting x; overwritten.
        steps: number of CG steps; stops early once the residual vanishes.
    """
    d = block.shape[1] + 1
    direction = np.empty(d, dtype=x.dtype)
    product = np.empty(d, dtype=x.dtype)
    norm2 = 0.0
    for a in range(d):
        direction[a] = residual[a]
        norm2 += residual[a] * residual[a]
    for _ in range(steps):
        if norm2 < 1e-20:
            break
        regularised_gram_times(block, n, bias_weight, ridge, extra_gram, direction, product)
        curvature = 0.0
        for a in range(d):
            curvature += direction[a] * product[a]
        if not curvature > 0.0:  # only possible with a zero ridge and a singular system
            break
        alpha = norm2 / curvature
        new_norm2 = 0.0
        for a in range(d):
            x[a] += alpha * direction[a]
            residual[a] -= alpha * product[a]
            new_norm2 += residual[a] * residual[a]
        beta = new_norm2 / norm2
        for a in range(d):
            direction[a] = residual[a] + beta * direction[a]
        norm2 = new_norm2


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def normal_residual(block: np.ndarray, targets: np.ndarray, n: int, bias_weight: float,
                    ridge: np.ndarray, extra_gram: np.ndarray, extra_rhs: np.ndarray,
                    x: np.ndarray, out: np.ndarray) -> None:
    """``out = Yᵀ(t - Y x) + e - (diag(ridge) + E) x``, the residual of the regularised normal
    equations (``E``, ``e`` skipped when empty)."""
    k = block.shape[1]
    for a in range(k + 1):
        out[a] = -ridge[a] * x[a]
    if extra_gram.shape[0] > 0:
        for a in range(k + 1):
            t = out[a] + extra_rhs[a]
            for b in range(k + 1):
                t -= extra_gram[a, b] * x[b]
            out[a] = t
    xb = bias_weight * x[k]
    stop4 = n - n % 4
    for m in range(0, stop4, 4):
        e0 = targets[m] - xb
        e1 = targets[m + 1] - xb
        e2 = targets[m + 2] - xb
        e3 = targets[m + 3] - xb
        for a in range(k):
            xa = x[a]
            e0 -= block[m, a] * xa
            e1 -= block[m + 1, a] * xa
            e2 -= block[m + 2, a] * xa
            e3 -= block[m + 3, a] * xa
        for a in range(k):
            out[a] += e0 * block[m, a] + e1 * block[m + 1, a] + e2 * block[m + 2, a] \
                + e3 * block[m + 3, a]
        out[k] += bias_weight * (e0 + e1 + e2 + e3)
    for m in range(stop4, n):
        e = targets[m] - xb
        for a in range(k):
            e -= block[m, a] * x[a]
        for a in range(k):
            out[a] += e * block[m, a]
        out[k] += bias_weight * e


@njit(cache=True, nogil=True, fastmath=True)
def conjugate_gradient_row(block: np.ndarray, targets: np.ndarray, n: int, bias_weight: float,
                           ridge: np.ndarray, extra_gram: np.ndarray, extra_rhs: np.ndarray,
                           x: np.ndarray, steps: int) -> None:
    """Improve ``x`` towards the solution of (YᵀY + diag(ridge) + E) x = Yᵀ t + e by CG steps,
    in place (arguments as in :func:`conjugate_gradient_steps`; ``targets`` are
    t_m = r_m - μ - b_j for the n ratings, ``extra_rhs`` is e, ignored when E is 0 x 0)."""
    residual = np.empty(block.shape[1] + 1, dtype=x.dtype)
    normal_residual(block, targets, n, bias_weight, ridge, extra_gram, extra_rhs, x, residual)
    conjugate_gradient_steps(block, n, bias_weight, ridge, extra_gram, x, residual, steps)


@njit(cache=True, parallel=True, nogil=True)  # a Dask worker stays responsive
def cg_half_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    global_mean: float,
    with_bias: bool,
    reg: float,
    reg_bias: float,
    weighted_reg: bool,
    steps: int,
    extra_gram: np.ndarray,
    extra_rhs: np.ndarray,
    out_factors: np.ndarray,
    out_bias: np.ndarray,
) -> None:
    """Update every row of the CSR matrix against the fixed side by ``steps`` CG steps.

    ``out_factors`` and ``out_bias`` hold the starting point (the previous iteration's
    solution) and receive the result. ``reg`` weighs the factors and ``reg_bias`` the bias,
    both times the row's rating count when ``weighted_reg``. ``extra_gram`` (shared, d x d)
    and ``extra_rhs`` (one length-d row per CSR row) add a term to every row's system, as the
    implicit features do; pass 0 x 0 and 0 x d arrays for none. The kernel computes in
    float32 (any float input is converted as it is gathered): half the memory traffic and
    twice the SIMD width of float64, and the solution is still far more accurate than the
    model's statistical error. A row without ratings gets zeros. ``reg`` must be > 0 (use
    the Cholesky half-step for λ = 0). ``weights`` (aligned with ``values``, each > 0) weighs
    each rating's squared error, for ``with_bias`` False only (see the module docstring);
    empty for unit weights.
    """
    n_rows = len(indptr) - 1
    k = fixed_factors.shape[1]
    bias_weight = np.float32(1.0 if with_bias else 0.0)
    gram32 = extra_gram.astype(np.float32)
    for row in prange(n_rows):
        count = indptr[row + 1] - indptr[row]
        if count == 0:
            out_factors[row, :] = 0.0
            out_bias[row] = 0.0
            continue
        x = np.empty(k + 1, dtype=np.float32)
        for a in range(k):
            x[a] = out_factors[row, a]
        x[k] = out_bias[row] if with_bias else 0.0
        weight = count if weighted_reg else 1
        ridge = np.full(k + 1, np.float32(reg * weight), dtype=np.float32)
        ridge[k] = np.float32(reg_bias * weight)
        rhs = np.zeros(k + 1, dtype=np.float32)
        if extra_rhs.shape[0] > 0:
            for a in range(k + 1):
                rhs[a] = extra_rhs[row, a]
        block = np.empty((count, k), dtype=np.float32)
        targets = np.empty(count, dtype=np.float32)
        gather_row(indptr, indices, values, row, fixed_factors, fixed_bias, global_mean,
                   block, targets)
        if len(weights):
            weigh_rows(weights, indptr[row], count, block, targets)
        conjugate_gradient_row(block, targets, count, bias_weight, ridge, gram32, rhs, x, steps)
        for a in range(k):
            out_factors[row, a] = x[a]
        out_bias[row] = x[k]
