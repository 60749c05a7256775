"""Grouping users or items of similar taste: k-means on the directions of their factors.

Normalising first makes the groups follow the cosine that ``similar_items`` ranks by
(direction, not popularity or strength).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.vq import kmeans2

from alsmf.errors import ConfigError
from alsmf.results import Groups


def cluster_rows(factors: np.ndarray, ids: np.ndarray, n_groups: int, seed: int,
                 restarts: int) -> Groups:
    """k-means on the L2-normalised rows, best of ``restarts`` k-means++ runs; groups renumbered
    by size, largest first."""
    if not (isinstance(n_groups, (int, np.integer)) and 1 <= n_groups <= len(ids)):
        raise ConfigError(f"n_groups must be an integer from 1 to {len(ids)}, got {n_groups!r}")
    if not (isinstance(restarts, (int, np.integer)) and restarts >= 1):
        raise ConfigError(f"restarts must be an integer >= 1, got {restarts!r}")
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.where(norms > 0, norms, 1.0)
    rng = np.random.default_rng(seed)
    best = (np.inf, None, None)
    for _ in range(restarts):  # one k-means run can settle with two centres in one group
        with warnings.catch_warnings():  # a run that empties a group just loses to the others
            warnings.filterwarnings("ignore", "One of the clusters is empty")
            centers, labels = kmeans2(unit, int(n_groups), iter=30, minit="++", seed=rng)
        spread = float(np.sum(np.square(unit - centers[labels])))
        if spread < best[0]:
            best = (spread, centers, labels)
    _, centers, labels = best
    by_size = np.argsort(-np.bincount(labels, minlength=n_groups), kind="stable")
    rank = np.empty(n_groups, dtype=np.int64)
    rank[by_size] = np.arange(n_groups)
    return Groups(ids.copy(), rank[labels], centers[by_size])
