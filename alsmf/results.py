"""What the model's queries return: folded-in users and items, explanations, groups, lists.

Plain frozen records, apart from the model so that code which only reads results (the
command line, a service) need not know how they are computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FoldedUser:
    """A user vector computed from ratings by one ALS half-step, without retraining.

    Attributes:
        factors: p_u (length k).
        bias: b_u (0 for a model without biases).
        items: model indices of the rated items, ascending (skipped when recommending).
        ratings: the rating of each of ``items``, the data the vector was solved from (kept
            so that :meth:`MFModel.explain` can split a prediction into their contributions).
        preference: the user's ranking-head vector x_u, solved from the same items (None for
            a model without a ranking head).
        item_ids: the raw ids of ``items`` (what a person reading the result wants; ``items``
            are the model's row numbers, which the model's own calls take).
    """

    factors: np.ndarray
    bias: float
    items: np.ndarray
    ratings: np.ndarray
    preference: np.ndarray | None = None
    item_ids: np.ndarray | None = None


@dataclass(frozen=True)
class FoldedItem:
    """An item vector computed from ratings by one ALS half-step against fixed user factors.

    A user's predicted rating of it is μ + b_u + ``bias`` + p_u·``factors``.

    Attributes:
        factors: q_i (length k).
        bias: b_i (0 for a model without biases).
        users: model indices of the users whose ratings it was solved from, ascending.
        ratings: the rating of each of ``users``.
        user_ids: the raw ids of ``users``.
    """

    factors: np.ndarray
    bias: float
    users: np.ndarray
    ratings: np.ndarray
    user_ids: np.ndarray | None = None


@dataclass(frozen=True)
class Explanation:
    """Which of a user's ratings made a prediction what it is.

    The prediction splits as ``prediction = baseline + Σ_j contribution_j + unexplained`` over
    all the items j the user rated (the user's part b_u + p_u·q_i is a linear function of their
    ratings, see :meth:`MFModel.explain`); ``items`` lists the n largest contributions.

    Attributes:
        item: raw id of the item whose prediction is explained.
        prediction: the predicted rating μ + b_u + b_i + p_u·q_i.
        baseline: μ + b_i, what every user is predicted before their own ratings count.
        items: raw ids of the rated items with the largest contributions, largest first.
        contributions: rating points each of ``items`` adds to the prediction (negative: it
            lowers it).
        ratings: the user's rating of each of ``items``.
        unexplained: the part of the prediction the ratings do not account for: zero up to
            rounding when the user's vector is the exact solution of its half-step (a fold-in,
            or training with ``solver="cholesky"``); with the default conjugate-gradient
            solver, the small gap between its few steps and that solution (typically below
            0.001 rating points after 15 iterations on ml-100k).
    """

    item: int
    prediction: float
    baseline: float
    items: np.ndarray
    contributions: np.ndarray
    ratings: np.ndarray
    unexplained: float


@dataclass(frozen=True)
class Groups:
    """A partition of users or items into groups of similar taste (k-means on directions).

    Attributes:
        ids: raw ids, in the model's order.
        labels: group of each id, 0..n_groups-1; group 0 is the largest.
        centers: (n_groups, k) mean of each group's L2-normalised factors.
    """

    ids: np.ndarray
    labels: np.ndarray
    centers: np.ndarray

    def members(self, group: int) -> np.ndarray:
        """Raw ids in ``group``, ascending."""
        return self.ids[self.labels == group]


@dataclass(frozen=True)
class Recommendations:
    """Items ranked for one user (or like one item), best first.

    Attributes:
        items: raw item ids.
        scores: what the list is ranked by: the ranking score, the predicted rating, or for
            similar items the cosine similarity.
        ratings: the predicted rating of each item (within the model's rating scale), or None
            where it does not apply (similar items, a model of implicit feedback).
    """

    items: np.ndarray
    scores: np.ndarray
    ratings: np.ndarray | None = None
