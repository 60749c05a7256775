"""Implicit features: who rated what, co-factorized with the ratings.

That a user rated an item at all says something beyond the rating (Koren's SVD++ and
asymmetric models). In ALS form (as cmfrec's ``add_implicit_features``), the binary matrix X of
the training data (x_ui = 1 where u rated i, 0 on *every* other pair) is factorized twice: with
the user factors p_u and implicit item factors z_i, and with implicit user factors a_u and the
item factors q_i, adding

    w Σ_u Σ_i [(x_ui - p_u·z_i)² + (x_ui - a_u·q_i)²] + λ_z (‖Z‖² + ‖A‖²)

to the ALS objective (w = ``implicit_weight``, λ_z = ``implicit_reg``). The sums run over
every pair, yet stay cheap: Σ_i (x_ui - p_u·z_i)² = n_u - 2 p_u·s_u + p_uᵀ (ZᵀZ) p_u with
s_u = Σ_{i rated by u} z_i. So

- the user half-step solves the ALS rows with two extra terms, w ZᵀZ added to every user's
  Gram and w s_u to their right-hand side (the ``extra_gram``/``extra_rhs`` of the kernels),
  and the item half-step the same with A;
- Z has one shared system, z_i = (w PᵀP + λ_z I)⁻¹ w Σ_{u rated i} p_u, and A likewise;
- a new user's (item's) fold-in uses the same two terms, from the items (users) rated.

Predictions stay μ + b_u + b_i + p_u·q_i: the binary matrix only shapes p_u and q_i. The
functions below are written for "rows" of a CSR orientation and the implicit factors of its
columns, so one set serves both sides.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

IMPLICIT_ITEM_FACTORS = "implicit_item_factors"
"""The name of Z (one row per item, paired with the user factors) in ``MFModel.extras``."""
IMPLICIT_USER_FACTORS = "implicit_user_factors"
"""The name of A (one row per user, paired with the item factors) in ``MFModel.extras``."""


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


_CHUNK = 16384
"""Rows per slice of the float64 products below: they never copy a whole factor matrix."""
GRAM_SLICE = _CHUNK
"""Rows per slice of :func:`gram64`, which a distributed Gram matrix must cut alike to equal it
(:meth:`alsmf.distributed.state.DaskState.gram`)."""


def gram64(factors: np.ndarray) -> np.ndarray:
    """FᵀF accumulated in float64, slice by slice (no float64 copy of F)."""
    k = factors.shape[1]
    gram = np.zeros((k, k))
    for start in range(0, len(factors), GRAM_SLICE):
        part = factors[start:start + GRAM_SLICE].astype(np.float64)
        gram += part.T @ part
    return gram


def solve_implicit_factors(indptr: np.ndarray, indices: np.ndarray, factors: np.ndarray,
                           weight: float, reg: float) -> np.ndarray:
    """The implicit factors of the CSR's rows, exactly, with the columns' ``factors`` fixed.

    For the by-item CSR and the user factors P this is Z: every z_i minimising
    w Σ_u (x_ui - p_u·z_i)² + λ_z ‖z_i‖², i.e. (w PᵀP + λ_z I)⁻¹ w Σ_{u rated i} p_u.
    Returns the result in ``factors``' dtype.
    """
    return implicit_rows(indptr, indices, factors,
                         implicit_solve_matrix(gram64(factors), weight, reg))


def implicit_solve_matrix(columns_gram: np.ndarray, weight: float, reg: float) -> np.ndarray:
    """w (w FᵀF + λ_z I)⁻¹ from FᵀF (:func:`gram64`): what every row's Σ f_j is multiplied by
    in :func:`solve_implicit_factors` (symmetric, so z = w S⁻¹ s = s · (w S⁻¹))."""
    k = len(columns_gram)
    return weight * np.linalg.inv(weight * columns_gram + reg * np.eye(k))


def implicit_rows(indptr: np.ndarray, indices: np.ndarray, factors: np.ndarray,
                  solve: np.ndarray) -> np.ndarray:
    """Every CSR row's (Σ_{j in row} factors[j]) · ``solve``, in ``factors``' dtype.

    Each row is computed alone, in a fixed order (:func:`_implicit_rows`), so a row's result
    does not depend on which other rows are computed with it: a block of rows on a Dask
    worker gets the in-process numbers bit for bit.
    """
    result = np.empty((len(indptr) - 1, factors.shape[1]), dtype=factors.dtype)
    _implicit_rows(indptr, indices, factors, np.ascontiguousarray(solve, dtype=np.float64),
                   result)
    return result


@njit(cache=True, parallel=True)
def _implicit_rows(indptr: np.ndarray, indices: np.ndarray, factors: np.ndarray,
                   solve: np.ndarray, out: np.ndarray) -> None:
    """``out[r] = (Σ_{j in row r} factors[j]) @ solve``, summed and multiplied in float64.

    The product adds the terms of each output column in the order of ``solve``'s rows (the
    loop over columns is innermost, so it vectorises without reordering any sum).
    """
    k = factors.shape[1]
    for row in prange(len(indptr) - 1):
        total = np.zeros(k)
        for position in range(indptr[row], indptr[row + 1]):
            j = indices[position]
            for a in range(k):
                total[a] += factors[j, a]
        value = np.zeros(k)
        for b in range(k):
            weight = total[b]
            for a in range(k):
                value[a] += weight * solve[b, a]
        for a in range(k):
            out[row, a] = value[a]


def row_terms(indptr: np.ndarray, indices: np.ndarray, implicit: np.ndarray,
              weight: float, columns_gram: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """A half-step's extra terms for the CSR's rows: ``(E, e)``, E = w·CᵀC, e_r = w·Σ c_j.

    ``implicit`` (C) holds the implicit factors of the columns (Z for the by-user CSR). Both
    have a last zero column for the bias (the binary matrix does not involve biases): E is
    (k+1) x (k+1) in float64, e is (rows, k+1) in ``implicit``'s dtype. ``columns_gram``:
    CᵀC (:func:`gram64` of ``implicit``) when the caller keeps it, since for a few rows it
    costs far more than the rows' sums.
    """
    k = implicit.shape[1]
    gram = np.zeros((k + 1, k + 1))
    gram[:k, :k] = weight * (gram64(implicit) if columns_gram is None else columns_gram)
    rhs = np.zeros((len(indptr) - 1, k + 1), dtype=implicit.dtype)
    sum_rows_of_csr(indptr, indices, implicit, rhs[:, :k])
    rhs[:, :k] *= weight
    return gram, rhs


def implicit_loss(indptr: np.ndarray, indices: np.ndarray, factors: np.ndarray,
                  implicit: np.ndarray, weight: float, reg: float,
                  sums: np.ndarray | None = None,
                  columns_gram: np.ndarray | None = None) -> float:
    """w Σ_rows Σ_columns (x - f_r·c_j)² + λ_z ‖C‖², without visiting the zeros of X.

    ``factors`` are the rows' factors (P for the by-user CSR), ``implicit`` the columns' (Z).
    ``sums`` (rows x k: each row's Σ c_j, or any multiple s·Σ c_j given as ``(array, s)``,
    for example the right-hand side of :func:`row_terms` with its weight) saves recomputing
    them. ``columns_gram``: CᵀC of *all* columns when ``implicit`` holds only some of them
    (the rows a block of rows uses, on a Dask worker); the sum over every column needs it.
    """
    k = implicit.shape[1]
    scale = 1.0
    if sums is None:
        sums = np.empty((len(indptr) - 1, k), dtype=implicit.dtype)
        sum_rows_of_csr(indptr, indices, implicit, sums)
    elif isinstance(sums, tuple):
        sums, scale = sums
    if columns_gram is None:
        columns_gram = gram64(implicit)
    quadratic = cross = 0.0
    for start in range(0, len(factors), _CHUNK):
        rows = factors[start:start + _CHUNK].astype(np.float64)
        quadratic += float(np.einsum("ij,ij->", rows @ columns_gram, rows))  # BLAS
        cross += float(np.einsum("ij,ij->", rows, sums[start:start + _CHUNK, :k]))
    squared = float(indptr[-1] - indptr[0]) - 2.0 * cross / scale + quadratic
    return weight * squared + reg * float(np.trace(columns_gram))
