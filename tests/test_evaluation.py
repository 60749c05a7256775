"""Evaluation: metrics on hand-computed cases, cross-validation, nested tuning, comparison."""

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.data.splits import random_split
from alsmf.data.synthetic import synthetic_ratings
from alsmf.errors import ConfigError, DataError
from alsmf.evaluation import (IntUniform, LogUniform, Tuner, Uniform, candidates, compare,
                              cross_validate, load_settings, mae, random_folds, ranking_metrics,
                              rating_metrics, rmse, save_settings)
from alsmf.evaluation.figures import plot_comparison
from alsmf.evaluation.methods import available_methods, make_trainers
from alsmf.evaluation.metrics import ranking_from_hits
from alsmf.evaluation.space import parse_setting
from alsmf.model import MFModel
from alsmf.models.als import ALS


def small_data(noise=0.3, seed=1):
    return synthetic_ratings(n_users=150, n_items=90, n_ratings=5000, min_per_user=10,
                             noise=noise, seed=seed)


def pair_keys(ratings):
    """Raw (user, item) pairs of ratings as one int64 key each."""
    return set((ratings.user_ids[ratings.users] * 1_000_003
                + ratings.item_ids[ratings.items]).tolist())


# ---------------------------------------------------------------------- metrics
def test_rmse_and_mae_of_a_hand_computed_case():
    actual, predicted = np.array([1.0, 2.0, 4.0, 5.0]), np.array([2.0, 2.0, 2.0, 5.0])
    assert rmse(actual, predicted) == pytest.approx(math.sqrt((1 + 0 + 4 + 0) / 4))
    assert mae(actual, predicted) == pytest.approx((1 + 0 + 2 + 0) / 4)
    with pytest.raises(ValueError):
        rmse(actual, predicted[:3])


def test_ranking_metrics_from_a_hand_computed_hit_matrix():
    hits = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
    n_relevant = np.array([2, 1, 3])
    metrics = ranking_from_hits(hits, n_relevant)
    l3 = 1 / math.log2(3)
    ndcg = [(1 + 0.5) / (1 + l3), 0.0, l3 / (1 + l3 + 0.5)]  # ideal DCG over min(k, #relevant)
    average_precision = [(1 + 2 / 3) / 2, 0.0, (1 / 2) / 3]
    assert metrics["precision"] == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert metrics["recall"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert metrics["ndcg"] == pytest.approx(np.mean(ndcg))
    assert metrics["map"] == pytest.approx(np.mean(average_precision))
    assert metrics["hit_rate"] == pytest.approx(2 / 3)


def bias_model():
    """Users 1, 2; items 10..13 ranked by item bias alone; user 1 rated item 10 in training."""
    return MFModel(
        user_factors=np.zeros((2, 1)), item_factors=np.zeros((4, 1)),
        user_bias=np.array([0.5, -0.5]), item_bias=np.array([0.4, 0.3, 0.2, 0.1]),
        global_mean=3.0, fallback_mean=3.0,
        user_ids=np.array([1, 2]), item_ids=np.array([10, 11, 12, 13]),
        seen_indptr=np.array([0, 1, 1]), seen_indices=np.array([0], dtype=np.int32),
        params={"reg": 0.1, "weighted_reg": False})


def test_ranking_metrics_on_a_hand_built_model():
    # user 1: relevant 11 and 13, sees the list [11, 12] (10 excluded: rated in training);
    # user 2: no relevant test item, skipped; user 99 (unknown): fallback list [10, 11],
    # relevant 12 and item 77 that the model does not know
    test = Ratings.from_arrays(np.array([1, 1, 1, 2, 99, 99]), np.array([11, 13, 12, 10, 12, 77]),
                               np.array([5.0, 4.0, 2.0, 1.0, 5.0, 4.0]))
    result = ranking_metrics(bias_model(), test, k=2, threshold=4.0)
    assert result.users == 2
    assert result.precision == pytest.approx((1 / 2 + 0) / 2)
    assert result.recall == pytest.approx((1 / 2 + 0) / 2)
    assert result.ndcg == pytest.approx((1 / (1 + 1 / math.log2(3)) + 0) / 2)
    assert result.map == pytest.approx((1 / 2 + 0) / 2)
    assert result.hit_rate == pytest.approx(1 / 2)
    assert result.coverage == pytest.approx(3 / 4)  # items 10, 11, 12 were listed
    with pytest.raises(DataError, match="lower the relevance threshold"):
        ranking_metrics(bias_model(), test, k=2, threshold=6.0)
    with pytest.raises(ConfigError, match="positive integer"):
        ranking_metrics(bias_model(), test, k=0)


def test_vectorised_ranking_metrics_match_a_loop_over_users():
    data = small_data()
    train, test = random_split(data.ratings, 0.2, seed=0)
    model = ALS(factors=4, iterations=3).fit(train)
    k, threshold = 5, 3.5
    result = ranking_metrics(model, test, k, threshold)
    frame = test.to_frame()
    relevant = frame[frame.rating >= threshold].groupby("user")["item"].apply(set)
    precision, recall, ndcg, average_precision = [], [], [], []
    for user, items in relevant.items():
        listed = model.recommend(user, k).items
        gains = [float(item in items) for item in listed] + [0.0] * (k - len(listed))
        hits = np.cumsum(gains)
        precision.append(hits[-1] / k)
        recall.append(hits[-1] / len(items))
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        ndcg.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(k, len(items)))))
        average_precision.append(sum(hits[r] / (r + 1) * gains[r] for r in range(k))
                                 / min(k, len(items)))
    assert result.users == len(relevant)
    assert result.precision == pytest.approx(np.mean(precision))
    assert result.recall == pytest.approx(np.mean(recall))
    assert result.ndcg == pytest.approx(np.mean(ndcg))
    assert result.map == pytest.approx(np.mean(average_precision))


def test_rating_metrics_score_unknown_users_and_items_with_the_fallback():
    test = Ratings.from_arrays(np.array([1, 99, 1, 99]), np.array([10, 11, 55, 55]),
                               np.array([4.0, 3.0, 2.0, 5.0]))
    predicted = np.array([3.0 + 0.5 + 0.4, 3.0 + 0.3, 3.0 + 0.5, 3.0])
    metrics = rating_metrics(bias_model(), test)
    assert metrics["rmse"] == pytest.approx(rmse(test.values, predicted))
    assert metrics["mae"] == pytest.approx(mae(test.values, predicted))


# ---------------------------------------------------------------------- cross-validation
@dataclass(frozen=True)
class SpyALS(ALS):
    """ALS that logs the (train, test) pair keys of every fit in ``CALLS``."""

    def fit(self, train, test=None, **options):
        CALLS.append((pair_keys(train), set() if test is None else pair_keys(test)))
        return super().fit(train, test, **options)


CALLS: list = []


def test_kfold_cross_validation_keeps_every_fold_and_tests_each_rating_once():
    ratings = small_data().ratings
    CALLS.clear()
    result = cross_validate(SpyALS(factors=4, iterations=3), random_folds(ratings, 4, seed=2),
                            k=5, threshold=4.0)
    assert [f.fold for f in result.folds] == ["fold 1", "fold 2", "fold 3", "fold 4"]
    tested = [test for _, test in CALLS]
    assert sum(len(t) for t in tested) == len(ratings) == len(set().union(*tested))
    for train, test in CALLS:
        assert not train & test
    rmses = [f.metrics["rmse"] for f in result.folds]
    assert result.mean()["rmse"] == pytest.approx(np.mean(rmses))
    assert result.std()["rmse"] == pytest.approx(np.std(rmses, ddof=1))
    assert all(len(f.test_rmse_history) == 3 == f.iterations for f in result.folds)
    assert result.folds[0].test_rmse_history[-1] == pytest.approx(rmses[0])
    report = json.loads(json.dumps(result.to_dict()))
    assert set(report["mean"]) == {"rmse", "mae", "precision", "recall", "ndcg", "map",
                                   "hit_rate", "coverage"}


# ---------------------------------------------------------------------- tuning
def test_the_tuner_never_gives_fit_a_test_fold_rating():
    ratings = small_data().ratings
    tuner = Tuner(SpyALS(factors=4), {"reg": [0.05, 0.5], "iterations": [1, 3]})
    for fold in random_folds(ratings, 3, seed=0):
        CALLS.clear()
        result = tuner.run([fold])
        assert len(CALLS) == tuner.fits(1) == 3
        held_out = pair_keys(fold.test)
        for train, test in CALLS:
            assert not (train | test) & held_out
        assert CALLS[-1][1] == set()  # the chosen settings are refitted without test data
        assert math.isfinite(result.folds[0].test_rmse)


def test_the_tuner_picks_the_known_best_setting():
    data = small_data(noise=0.2)  # true rank 8: one factor and a huge λ both underfit
    tuner = Tuner(ALS(iterations=6, implicit_weight=0.0),
                  {"factors": [1, 8], "reg": [0.05, 20.0]})
    result = tuner.run(random_folds(data.ratings, 3, seed=0))
    assert result.best == {"factors": 8, "reg": 0.05}
    assert all(f.chosen == {"factors": 8, "reg": 0.05} for f in result.folds)
    assert len(result.trials) == 4 and all(len(t["validation_rmse"]) == 3 for t in result.trials)
    mean, std = result.test_rmse()
    assert mean == pytest.approx(np.mean([f.test_rmse for f in result.folds]))
    underfit = ALS(factors=1, reg=20.0, reg_bias=None, implicit_weight=0.0).fit(data.ratings)
    assert mean < 0.8 * rating_metrics(underfit, data.ratings)["rmse"]


def test_tuned_iterations_are_read_off_one_fit_per_setting():
    ratings = small_data().ratings
    fold = random_folds(ratings, 3, seed=0)[0]
    tuner = Tuner(ALS(factors=4), {"iterations": [2, 5]}, validation_fraction=0.2, seed=3)
    result = tuner.run([fold])
    inner, validation = random_split(fold.train, 0.2, seed=3)
    for trial in result.trials:
        separate = ALS(factors=4, **trial["settings"]).fit(inner)
        assert trial["validation_rmse"][0] == pytest.approx(separate.rmse(validation), rel=1e-6)


def test_tuning_by_a_ranking_metric_maximises_it_on_validation_data():
    """Chosen by NDCG: every trial's validation score is the NDCG of the model after that many
    iterations (scored as it trains, one fit per setting), and each fold picks the highest."""
    from alsmf import ImplicitALS
    from alsmf.evaluation.metrics import ranking_metrics

    ratings = small_data().ratings
    folds = random_folds(ratings, 2, seed=0)
    tuner = Tuner(ImplicitALS(), {"factors": [2, 8], "iterations": [1, 3]}, metric="ndcg",
                  validation_fraction=0.2, seed=4)
    result = tuner.run(folds)
    inner, validation = random_split(folds[0].train, 0.2, seed=4)
    for trial in result.trials:
        separate = ImplicitALS(**trial["settings"]).fit(inner)
        assert trial["validation_ndcg"][0] == pytest.approx(
            ranking_metrics(separate, validation).ndcg, rel=1e-9)
    for n, fold in enumerate(result.folds):
        assert fold.validation == max(t["validation_ndcg"][n] for t in result.trials)
        assert set(fold.test) == {"ndcg"}  # a model of preferences: no rating errors
    report = result.to_dict()
    assert report["metric"] == "ndcg" and "test_ndcg" in report and "test_rmse" not in report
    best = max(result.trials, key=lambda t: np.mean(t["validation_ndcg"]))
    assert result.best == best["settings"]


def test_search_space_errors_name_the_problem():
    base = ALS()
    with pytest.raises(ConfigError, match="unknown setting 'lambda'.*valid settings: factors, "
                                          "reg, iterations"):
        candidates(base, {"lambda": [0.1]})
    with pytest.raises(ConfigError, match="non-empty list"):
        candidates(base, {"reg": []})
    with pytest.raises(ConfigError, match="grid search needs lists"):
        candidates(base, {"reg": LogUniform(0.01, 1)})
    with pytest.raises(ConfigError, match="iterations are read off"):
        candidates(base, {"iterations": IntUniform(1, 10)}, "random")
    with pytest.raises(ConfigError, match="positive integers"):
        candidates(base, {"iterations": [0, 5]})
    with pytest.raises(ConfigError, match="factors must be an integer"):
        candidates(base, {"factors": [8, 0]})  # refused before any fit
    with pytest.raises(ConfigError, match="unknown search method"):
        candidates(base, {"reg": [0.1]}, "bayes")
    with pytest.raises(ConfigError, match="empty"):
        candidates(base, {})
    with pytest.raises(ConfigError, match="validation fraction"):
        Tuner(base, {"reg": [0.1]}, validation_fraction=1.0)
    with pytest.raises(ConfigError, match="0 < low"):
        LogUniform(0, 1)


def test_a_new_trainer_field_is_searchable_without_code_changes():
    grid = candidates(ALS(), {"weighted_reg": [True, False], "reg_bias": [None, 0.01]})
    assert grid == [{"weighted_reg": True, "reg_bias": None},
                    {"weighted_reg": True, "reg_bias": 0.01},
                    {"weighted_reg": False, "reg_bias": None},
                    {"weighted_reg": False, "reg_bias": 0.01}]


def test_random_search_draws_log_uniform_reg_reproducibly():
    space = {"reg": LogUniform(0.001, 10.0), "factors": IntUniform(4, 8),
             "init_scale": Uniform(0.05, 0.2), "solver": ["cg", "cholesky"]}
    drawn = candidates(ALS(), space, "random", trials=400, seed=5)
    assert drawn == candidates(ALS(), space, "random", trials=400, seed=5)
    regs = np.array([d["reg"] for d in drawn])
    assert regs.min() >= 0.001 and regs.max() <= 10.0
    assert 0.4 < np.mean(regs < 0.1) < 0.6  # 0.1 is the geometric middle of [0.001, 10]
    assert {d["factors"] for d in drawn} == {4, 5, 6, 7, 8}
    assert {d["solver"] for d in drawn} == {"cg", "cholesky"}


def test_parse_setting_reads_lists_and_distributions():
    assert parse_setting("reg=0.05,0.1") == ("reg", [0.05, 0.1])
    assert parse_setting("weighted-reg=true,false") == ("weighted_reg", [True, False])
    assert parse_setting("reg_bias=none,0.01") == ("reg_bias", [None, 0.01])
    assert parse_setting("reg=log:0.01:1") == ("reg", LogUniform(0.01, 1))
    assert parse_setting("factors=int:8:64") == ("factors", IntUniform(8, 64))
    with pytest.raises(ConfigError, match="NAME=V1,V2"):
        parse_setting("reg")
    with pytest.raises(ConfigError, match="two numbers"):
        parse_setting("reg=log:0.01")


# ---------------------------------------------------------------------- settings files
def test_settings_files_round_trip_and_refuse_bad_content(tmp_path):
    path = save_settings(tmp_path / "best.json", ALS(factors=16, reg=0.07).params(),
                         {"nested_test_rmse": 0.9})
    settings = load_settings(path)
    assert ALS(**settings) == ALS(factors=16, reg=0.07)
    (tmp_path / "flat.json").write_text('{"factors": 8, "weighted_reg": false}')
    assert load_settings(tmp_path / "flat.json") == {"factors": 8, "weighted_reg": False}
    (tmp_path / "bad.json").write_text('{"factors": 8, "lambda": 1}')
    with pytest.raises(ConfigError, match="unknown setting.*lambda.*valid settings: factors"):
        load_settings(tmp_path / "bad.json")
    (tmp_path / "range.json").write_text('{"factors": 0}')
    with pytest.raises(ConfigError, match="range.json: factors must be"):
        load_settings(tmp_path / "range.json")
    (tmp_path / "broken.json").write_text("{factors")
    with pytest.raises(ConfigError, match="not a JSON settings file"):
        load_settings(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(tmp_path / "missing.json")


# ---------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class GlobalMeanTrainer:
    """A closed-form trainer without iterations: every prediction is the training mean."""

    def params(self):
        return {"method": "global-mean"}

    def fit(self, train, test=None, *, callback=None, threads=None):
        model = ALS(factors=1, iterations=1).fit(train)
        model.user_factors[:] = 0
        model.item_factors[:] = 0
        model.user_bias[:] = 0
        model.item_bias[:] = 0
        model.history = []
        return model


def test_compare_follows_each_method_and_draws_the_figure(tmp_path):
    train, test = random_split(small_data().ratings, 0.2, seed=0)
    runs = compare({"als": ALS(factors=4, iterations=4), "mean": GlobalMeanTrainer()},
                   train, test)
    als, mean = runs
    assert len(als.test_rmse) == 4 and len(als.seconds) == 4
    assert als.seconds == sorted(als.seconds) and als.seconds[-1] <= als.fit_seconds
    assert als.test_rmse[-1] == pytest.approx(als.final_rmse)
    expected = rmse(test.values, np.full(len(test), float(np.mean(train.values))))
    assert mean.test_rmse == [pytest.approx(expected)] and mean.final_rmse < 2
    assert als.final_rmse < mean.final_rmse
    figure = plot_comparison(runs, tmp_path / "compare.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_methods_by_name():
    assert available_methods()["als"] is ALS
    bayes = make_trainers(["bayes"], factors=6, settings={"bayes": {"sweeps": 30}})["bayes"]
    assert (bayes.params()["method"], bayes.factors, bayes.sweeps) == ("bayes", 6, 30)
    trainers = make_trainers(["als"], factors=8, settings={"als": {"reg": 0.2}})
    assert trainers["als"] == ALS(factors=8, reg=0.2)
    with pytest.raises(ConfigError, match="unknown method.*available: als"):
        make_trainers(["als", "magic"])
    with pytest.raises(ConfigError, match="not among the methods"):
        make_trainers(["als"], settings={"sgd": {"epochs": 3}})
    with pytest.raises(ConfigError, match="als: unknown setting"):
        make_trainers(["als"], settings={"als": {"epochs": 3}})

