"""Evaluation: accuracy metrics, cross-validation, nested tuning and method comparison.

    from alsmf.evaluation import cross_validate, random_folds, Tuner, LogUniform

See each module for its conventions: :mod:`~alsmf.evaluation.metrics` (what precision@k,
NDCG@k... mean here), :mod:`~alsmf.evaluation.crossval`, :mod:`~alsmf.evaluation.tuning`
(the test fold never reaches ``fit``), :mod:`~alsmf.evaluation.space` (search spaces),
:mod:`~alsmf.evaluation.settings` (settings files for ``alsmf train --settings``) and
:mod:`~alsmf.evaluation.compare`.
"""

from alsmf.evaluation.compare import MethodRun, compare
from alsmf.evaluation.crossval import CrossValidation, FoldResult, cross_validate, evaluate_model
from alsmf.evaluation.folds import Fold, movielens_folds, random_folds
from alsmf.evaluation.metrics import (RankingMetrics, mae, ranking_metrics, rating_metrics,
                                      rmse)
from alsmf.evaluation.settings import load_settings, save_settings
from alsmf.evaluation.space import IntUniform, LogUniform, Uniform, candidates
from alsmf.evaluation.tuning import FoldTuning, Tuner, TuningResult

__all__ = [
    "CrossValidation", "Fold", "FoldResult", "FoldTuning", "IntUniform", "LogUniform",
    "MethodRun", "RankingMetrics", "Tuner", "TuningResult", "Uniform", "candidates", "compare",
    "cross_validate", "evaluate_model", "load_settings", "mae", "movielens_folds",
    "random_folds", "ranking_metrics", "rating_metrics", "rmse", "save_settings",
]
