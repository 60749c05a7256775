"""Top-n items per user by predicted rating, for many users at once, in parallel.

Arrays in, arrays out. Each user's scores over all items are computed in one pass and the n
best kept by insertion into a small sorted buffer, so no (users x items) score matrix is ever
held in memory; users run in parallel and each writes only its own output row.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _insert(best_items: np.ndarray, best_scores: np.ndarray, item: int, score: float) -> None:
    """Insert (item, score) into buffers sorted by descending score (ties: lower item first)."""
    n = len(best_scores)
    if score <= best_scores[n - 1]:
        return
    position = n - 1
    while position > 0 and best_scores[position - 1] < score:
        best_scores[position] = best_scores[position - 1]
        best_items[position] = best_items[position - 1]
        position -= 1
    best_scores[position] = score
    best_items[position] = item


@njit(cache=True, parallel=True, fastmath=True)
def top_n_items(
    query_factors: np.ndarray,
    query_bias: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
    excluded_indptr: np.ndarray,
    excluded_indices: np.ndarray,
    allowed: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The n best items for each query row by μ + b + b_i + p·q_i.

    Args:
        query_factors, query_bias: one row (and bias) per query user.
        item_factors, item_bias: the model's items.
        global_mean: μ.
        excluded_indptr, excluded_indices: CSR of item indices to skip per query row (the
            items a user already rated); an empty CSR excludes nothing.
        allowed: boolean mask of candidate items.
        n: list length; slots without a candidate hold item -1 and score -inf.

    Returns:
        (items, scores): int64 and float64 arrays of shape (queries, n), best first.
    """
    n_queries, k = query_factors.shape
    n_items = item_factors.shape[0]
    items_out = np.full((n_queries, n), -1, dtype=np.int64)
    scores_out = np.full((n_queries, n), -np.inf)
    for q in prange(n_queries):
        skip = np.zeros(n_items, dtype=np.bool_)
        if len(excluded_indptr) > q + 1:
            for t in range(excluded_indptr[q], excluded_indptr[q + 1]):
                skip[excluded_indices[t]] = True
        offset = global_mean + query_bias[q]
        for i in range(n_items):
            if skip[i] or not allowed[i]:
                continue
            dot = query_factors[q, 0] * item_factors[i, 0]  # typed like the factors
            for a in range(1, k):  # fastmath lets the compiler vectorise this sum
                dot += query_factors[q, a] * item_factors[i, a]
            score = offset + item_bias[i] + dot
            _insert(items_out[q], scores_out[q], i, score)
    return items_out, scores_out
