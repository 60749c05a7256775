"""Scoring (user, item) index pairs with a biased factor model, in parallel.

Arrays in, arrays out: used for predictions, train/test RMSE and the training objective.
An index of -1 stands for a user or item the model does not know: its factors and bias count
as zero, so the score falls back to μ plus whatever bias is known.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def predict_pairs(
    users: np.ndarray,
    items: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
) -> np.ndarray:
    """μ + b_u + b_i + p_u·q_i for each pair of indices (-1 = unknown, contributes zero)."""
    n = len(users)
    k = user_factors.shape[1]
    out = np.empty(n)
    for t in prange(n):
        u = users[t]
        i = items[t]
        score = global_mean
        if u >= 0:
            score += user_bias[u]
        if i >= 0:
            score += item_bias[i]
        if u >= 0 and i >= 0:
            for a in range(k):
                score += user_factors[u, a] * item_factors[i, a]
        out[t] = score
    return out


def squared_error(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
) -> float:
    """Sum of squared residuals over the given ratings.

    The sum is numpy's pairwise sum after the parallel scoring (not a threaded reduction or
    BLAS dot), so its value does not depend on the number of threads.
    """
    scores = predict_pairs(users, items, user_factors, item_factors, user_bias, item_bias,
                           global_mean)
    residuals = values - scores
    return float(np.sum(np.square(residuals)))
