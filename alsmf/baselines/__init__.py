"""Baselines behind the ALS interface: each is a frozen settings object whose
``fit(train, test=None, *, callback=None, threads=None)`` returns an ordinary
:class:`~alsmf.model.MFModel` with a per-iteration history.

========  ==========================  ==================================================
method    class                       what it fits
========  ==========================  ==================================================
mean      :class:`GlobalMean`         μ, the training mean
bias      :class:`BiasOnly`           μ + b_u + b_i by ALS (Surprise's BaselineOnly)
sgd       :class:`SGD`                biased MF by SGD over shuffled ratings (Funk/Koren)
gd        :class:`GradientDescent`    P·Qᵀ by the seed notebooks' gradient descent
svd       :class:`TruncatedSVD`       truncated SVD of the centred, imputed matrix
========  ==========================  ==================================================

Every model's ``params["method"]`` names its row; :data:`BASELINES` maps the names to the
classes.
"""

from alsmf.baselines.gradient_descent import GradientDescent, matrix_factorization
from alsmf.baselines.means import BiasOnly, GlobalMean
from alsmf.baselines.sgd import SGD
from alsmf.baselines.svd import TruncatedSVD

BASELINES = {"mean": GlobalMean, "bias": BiasOnly, "sgd": SGD, "gd": GradientDescent,
             "svd": TruncatedSVD}
"""Settings class of each baseline, by its ``params()["method"]``."""

__all__ = ["BASELINES", "BiasOnly", "GlobalMean", "GradientDescent", "SGD", "TruncatedSVD",
           "matrix_factorization"]
