"""alsmf: matrix factorization recommender trained by Alternating Least Squares.

The main entry points::

    from alsmf import ALS, ImplicitALS, MFModel, Ratings, load_ratings, synthetic_ratings
"""

from alsmf.data.movielens import load_ratings
from alsmf.data.ratings import Ratings
from alsmf.data.synthetic import synthetic_ratings
from alsmf.errors import AlsmfError, ConfigError, DataError, NumericalError
from alsmf.model import (Explanation, FoldedItem, FoldedUser, Groups, IterationRecord, MFModel,
                         Recommendations)
from alsmf.models.als import ALS
from alsmf.models.implicit_als import ImplicitALS
from alsmf.training.loop import TrainingInterrupted

__version__ = "0.1.0"

__all__ = [
    "ALS", "AlsmfError", "ConfigError", "DataError", "Explanation", "FoldedItem", "FoldedUser",
    "Groups", "ImplicitALS", "IterationRecord", "MFModel", "NumericalError", "Ratings",
    "Recommendations", "TrainingInterrupted", "load_ratings", "synthetic_ratings",
]
