"""Implicit features: which items a user rated, co-factorized with the ratings.

That a user rated an item at all says something about the user beyond the rating (Koren's
SVD++ and asymmetric models). In ALS form (as cmfrec's ``add_implicit_features``), the binary
matrix X of the training data (x_ui = 1 where u rated i, 0 elsewhere, over *all* pairs) is
factorized with the same user factors p_u and its own item factors z_i, adding

    w Σ_u Σ_i (x_ui - p_u·z_i)² + λ_z Σ_i ‖z_i‖²

to the ALS objective (w = ``implicit_weight``, λ_z = ``implicit_reg``). The sum runs over
every pair, yet it stays cheap: Σ_i (x_ui - p_u·z_i)² = n_u - 2 p_u·s_u + p_uᵀ (ZᵀZ) p_u with
s_u = Σ_{i rated by u} z_i. So

- the user half-step solves the ALS rows with two extra terms, w ZᵀZ added to every user's
  Gram and w s_u to their right-hand side (the ``extra_gram``/``extra_rhs`` of the kernels);
- the z step has one shared system: z_i = (w PᵀP + λ_z I)⁻¹ w Σ_{u rated i} p_u;
- a new user's fold-in uses the same two terms, from the items they rated.

Predictions stay μ + b_u + b_i + p_u·q_i: the binary matrix only shapes p_u.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

IMPLICIT_FACTORS = "implicit_item_factors"
"""The name of Z in ``MFModel.extras``."""


@njit(cache=True, parallel=True)
def sum_rows_of_csr(indptr: np.ndarray, indices: np.ndarray, factors: np.ndarray,
                    out: np.ndarray) -> None:
    """``out[r] = Σ_{j in row r} factors[j]`` for every CSR row, in float64, in parallel."""
    k = factors.shape[1]
    for row in prange(len(indptr) - 1):
        total = np.zeros(k)
        for position in range(indptr[row], indptr[row + 1]):
            j = indices[position]
            for a in range(k):
                total[a] += factors[j, a]
        for a in range(k):
            out[row, a] = total[a]


def solve_implicit_item_factors(by_item_indptr: np.ndarray, by_item_indices: np.ndarray,
                                user_factors: np.ndarray, weight: float, reg: float) -> np.ndarray:
    """The z step: every z_i minimising w Σ_u (x_ui - p_u·z_i)² + λ_z ‖z_i‖², exactly.

    Returns Z in the user factors' dtype.
    """
    p = user_factors.astype(np.float64)
    k = p.shape[1]
    sums = np.empty((len(by_item_indptr) - 1, k))
    sum_rows_of_csr(by_item_indptr, by_item_indices, p, sums)
    system = weight * (p.T @ p) + reg * np.eye(k)
    return np.linalg.solve(system, weight * sums.T).T.astype(user_factors.dtype)


def user_terms(by_user_indptr: np.ndarray, by_user_indices: np.ndarray, z: np.ndarray,
               weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The user half-step's extra terms: ``(E, e)`` with E = w ZᵀZ and e_u = w s_u.

    Both have a last zero column for the bias (the binary matrix does not involve b_u):
    E is (k+1) x (k+1), e is (n_users, k+1).
    """
    z64 = z.astype(np.float64)
    k = z.shape[1]
    gram = np.zeros((k + 1, k + 1))
    gram[:k, :k] = weight * (z64.T @ z64)
    rhs = np.zeros((len(by_user_indptr) - 1, k + 1))
    sum_rows_of_csr(by_user_indptr, by_user_indices, z64, rhs[:, :k])
    rhs[:, :k] *= weight
    return gram, rhs


def implicit_loss(by_user_indptr: np.ndarray, by_user_indices: np.ndarray,
                  user_factors: np.ndarray, z: np.ndarray, weight: float, reg: float) -> float:
    """w Σ_u Σ_i (x_ui - p_u·z_i)² + λ_z ‖Z‖², without touching the zero entries of X."""
    p = user_factors.astype(np.float64)
    z64 = z.astype(np.float64)
    sums = np.empty((len(by_user_indptr) - 1, z.shape[1]))
    sum_rows_of_csr(by_user_indptr, by_user_indices, z64, sums)
    counts = np.diff(by_user_indptr)
    quadratic = np.einsum("ij,jk,ik->", p, z64.T @ z64, p)
    squared = float(counts.sum()) - 2.0 * float(np.einsum("ij,ij->", p, sums)) + quadratic
    return weight * squared + reg * float(np.einsum("ij,ij->", z64, z64))
