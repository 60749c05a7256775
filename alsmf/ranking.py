"""How a rating model ranks items for a user: its ranking score, and the rating scale.

A rating model predicts how a user would rate an item. Ranking every unseen item by that
prediction fills top-n lists with items that have one or two high ratings: nothing holds
their biases and factors back, so they are predicted above everything a user has not seen.
Whether a user would pick an item at all is a different question, and implicit-feedback ALS
(:mod:`alsmf.models.implicit_als`), fitted to who rated what, answers it far better. So a
rating model may carry a *ranking head*: an implicit-feedback model of the same users and
items, trained on the same ratings (:mod:`alsmf.models.ranking_head`), with user vectors x_u
and item vectors y_i. Items are then ranked by

    score(u, i) = max(x_u·y_i, 0) × (clip(r̂_ui) − lo) / (hi − lo),

the preference for the item times where its predicted rating lies on the model's rating scale
[lo, hi] (the training ratings' range). An item the user would not pick scores near 0 however
highly it is predicted; among items they would pick, the better-rated come first. Of the
forms tried on validation data carved from the ml-100k training folds (the head's preference
alone, preference plus a weighted rating, preference times a power of the rating share), this
product ranked best.

Predictions never leave the rating scale: :func:`clip_to_scale` is applied to every predicted
rating a rating model returns or lists.
"""

from __future__ import annotations

import numpy as np

from alsmf.errors import ConfigError

RANKING_USER_FACTORS = "ranking_user_factors"
"""The name of the ranking head's user vectors x_u in ``MFModel.extras``."""
RANKING_ITEM_FACTORS = "ranking_item_factors"
"""The name of the ranking head's item vectors y_i in ``MFModel.extras``."""

RANK_BY = ("score", "rating")
"""What lists are ranked by: the ranking score (the predicted rating for a model without a
ranking head) or the predicted rating alone."""


def clip_to_scale(values: np.ndarray, scale: tuple[float, float] | None) -> np.ndarray:
    """``values`` clipped to ``scale`` = (lo, hi), in place; unchanged without a scale.

    Infinite values (the -inf of an empty list slot) are left as they are.
    """
    if scale is None:
        return values
    finite = np.isfinite(values)
    values[finite] = np.clip(values[finite], scale[0], scale[1])
    return values


def check_rank_by(rank_by: str) -> None:
    """ConfigError unless ``rank_by`` is one of :data:`RANK_BY`."""
    if rank_by not in RANK_BY:
        raise ConfigError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
