"""Bayesian MF by Gibbs sampling: the conditional draw, determinism, calibration, the model."""

from functools import partial

import numba
import numpy as np
import pytest

from alsmf.models.bayes import BayesianMF, predict_interval
from alsmf.data.synthetic import synthetic_ratings
from alsmf.errors import ConfigError
from alsmf.model import MFModel
from alsmf.solvers.gibbs import gibbs_half_step, standard_normals, stream_key
from alsmf import TrainingInterrupted
from alsmf.models.als import ALS
from tests.helpers import random_ratings


small_ratings = partial(random_ratings, n_users=50, n_items=40)
"""50 users x 40 items, every user and item rated (this file's data)."""


def unrounded_synthetic(noise, seed=0):
    """Dense synthetic ratings, a true biased rank-1 model plus N(0, noise²) (not rounded),
    split 90/10 at random; also returns the true model's test RMSE (the noise realised)."""
    data = synthetic_ratings(n_users=400, n_items=500, n_ratings=80_000, rank=1, noise=noise,
                             seed=seed)
    return data.unrounded_split(seed)


def test_standard_normals_are_standard_and_keyed():
    draws = np.empty(200_001)
    standard_normals(np.uint64(stream_key(7, 1, 0, 3)), draws)
    assert abs(draws.mean()) < 0.01 and abs(draws.std() - 1) < 0.01
    assert abs(np.mean(draws**4) - 3) < 0.05  # Gaussian tails, not just the first moments
    other = np.empty(10)
    standard_normals(np.uint64(stream_key(7, 1, 0, 4)), other)
    assert not np.allclose(other, draws[:10])


def draw_rows(n_draws, ratings, fixed, fixed_bias, mean_rating, precision, prior_mean, alpha):
    """``n_draws`` rows with the same ratings, drawn in one half-step: independent draws."""
    n = len(ratings)
    indptr = np.arange(n_draws + 1) * n
    indices = np.tile(np.arange(n, dtype=np.int32), n_draws)
    values = np.tile(np.asarray(ratings, dtype=float), n_draws)
    k = fixed.shape[1]
    factors, bias = np.zeros((n_draws, k)), np.zeros(n_draws)
    status = np.zeros(n_draws, dtype=np.int64)
    gibbs_half_step(indptr, indices, values, fixed, fixed_bias, mean_rating, precision,
                    prior_mean, alpha, 11, 1, 0, 0, np.zeros((0, 0)), np.zeros((0, k + 1)),
                    factors, bias, status)
    assert not status.any()
    return np.column_stack([factors, bias])


def test_conditional_draw_matches_the_closed_form_gaussian():
    """Many draws of one row: mean and covariance of N(A⁻¹(α b + Λ m), A⁻¹), A = α G + Λ."""
    rng = np.random.default_rng(0)
    k, n = 2, 6
    fixed = rng.standard_normal((n, k))
    fixed_bias = rng.standard_normal(n)
    values = rng.uniform(1, 5, n)
    mean_rating = 3.0
    precision = np.array([[2.0, 0.5, 0.1], [0.5, 1.5, -0.2], [0.1, -0.2, 3.0]])
    prior_mean = np.array([0.3, -0.2, 0.1])
    alpha = 1.7
    y = np.column_stack([fixed, np.ones(n)])
    a = alpha * y.T @ y + precision
    cov = np.linalg.inv(a)
    mean = cov @ (alpha * y.T @ (values - mean_rating - fixed_bias) + precision @ prior_mean)

    draws = draw_rows(40_000, values, fixed, fixed_bias, mean_rating, precision, prior_mean,
                      alpha)
    standard_error = np.sqrt(np.diag(cov) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * standard_error)
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.05, atol=0.02 * cov.max())


def test_implicit_terms_enter_the_row_draw_as_in_als():
    """With the implicit terms added to G and b, the draw's mean is the ALS row solution."""
    rng = np.random.default_rng(1)
    k, n = 2, 5
    fixed, fixed_bias = rng.standard_normal((n, k)), rng.standard_normal(n)
    values, alpha = rng.uniform(1, 5, n), 1.3
    extra_gram = np.zeros((k + 1, k + 1))
    extra_gram[:k, :k] = [[0.6, 0.1], [0.1, 0.4]]
    extra_rhs = np.array([[0.3, -0.2, 0.0]])
    precision, prior_mean = np.eye(k + 1), np.zeros(k + 1)
    factors, bias, status = np.zeros((4000, k)), np.zeros(4000), np.zeros(4000, dtype=np.int64)
    gibbs_half_step(np.arange(4001) * n, np.tile(np.arange(n, dtype=np.int32), 4000),
                    np.tile(values, 4000), fixed, fixed_bias, 3.0, precision, prior_mean, alpha,
                    5, 1, 0, 0, extra_gram, np.repeat(extra_rhs, 4000, axis=0), factors, bias,
                    status)
    y = np.column_stack([fixed, np.ones(n)])
    a = alpha * (y.T @ y + extra_gram) + precision
    mean = np.linalg.solve(a, alpha * (y.T @ (values - 3.0 - fixed_bias) + extra_rhs[0]))
    draws = np.column_stack([factors, bias])
    standard_error = np.sqrt(np.diag(np.linalg.inv(a)) / len(draws))
    assert not status.any()
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * standard_error)


def test_a_row_without_ratings_is_drawn_from_the_prior():
    precision = np.array([[4.0, 1.0], [1.0, 2.0]])
    prior_mean = np.array([0.5, -1.0])
    draws = draw_rows(40_000, [], np.zeros((3, 1)), np.zeros(3), 0.0, precision, prior_mean,
                      2.0)
    np.testing.assert_allclose(draws.mean(axis=0), prior_mean, atol=0.02)
    np.testing.assert_allclose(np.cov(draws.T), np.linalg.inv(precision), rtol=0.05)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("hyperprior, implicit_weight", [("wishart", 0.0), ("gamma", 0.0),
                                                        ("wishart", 1.0)])
def test_same_seed_gives_identical_draws_with_one_or_two_threads(hyperprior, implicit_weight):
    train, test = small_ratings(1), small_ratings(2)
    config = BayesianMF(factors=4, sweeps=12, burn_in=4, samples=5, hyperprior=hyperprior,
                        seed=3, implicit_weight=implicit_weight)
    one = config.fit(train, test, threads=1)
    two = config.fit(train, test, threads=2)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    for name in one.extras:
        assert np.array_equal(one.extras[name], two.extras[name]), name
    assert [(r.objective, r.train_rmse, r.test_rmse) for r in one.history] == \
        [(r.objective, r.train_rmse, r.test_rmse) for r in two.history]
    other_seed = BayesianMF(factors=4, sweeps=12, burn_in=4, samples=5, hyperprior=hyperprior,
                            seed=4, implicit_weight=implicit_weight).fit(train, test, threads=1)
    assert not np.array_equal(one.user_factors, other_seed.user_factors)


def test_model_predicts_the_mean_of_the_kept_draws_and_history_matches_it():
    train, test = small_ratings(3), small_ratings(4)
    config = BayesianMF(factors=3, sweeps=15, burn_in=5, samples=4, seed=1)
    pairs = (test.user_ids[test.users], test.item_ids[test.items])
    draws = {}

    def record(rec, current):
        assert current.factors == 3  # the callback sees the current draw
        draws[rec.iteration] = unclipped_predictions(current, *pairs)

    model = config.fit(train, test, callback=record)
    kept = config.kept_sweeps()
    assert list(kept) == [8, 10, 13, 15]
    assert model.factors == 3 * len(kept) and model.params["kept_samples"] == 4
    expected = np.clip(np.mean([draws[s] for s in kept], axis=0), *model.rating_scale)
    np.testing.assert_allclose(model.predict(*pairs), expected, rtol=0, atol=1e-10)
    assert [r.iteration for r in model.history] == list(range(1, 16))
    assert model.history[-1].test_rmse == pytest.approx(model.rmse(test), abs=1e-12)
    assert model.params["method"] == "bayes"


def test_callback_can_stop_and_the_model_averages_the_draws_kept_so_far():
    train = small_ratings(5)
    config = BayesianMF(factors=2, sweeps=30, burn_in=2, samples=28, seed=0)
    model = config.fit(train, callback=lambda rec, current: rec.iteration == 6)
    assert len(model.history) == 6
    assert model.params["kept_samples"] == 4 and model.factors == 8


def test_ctrl_c_keeps_the_draws_kept_so_far(monkeypatch):
    from alsmf.models import gibbs_sampler

    original = gibbs_sampler.GibbsState.sweep

    def sweep(self, number):
        if number == 7:
            raise KeyboardInterrupt
        original(self, number)

    monkeypatch.setattr(gibbs_sampler.GibbsState, "sweep", sweep)
    config = BayesianMF(factors=2, sweeps=20, burn_in=2, samples=18, seed=0)
    with pytest.raises(TrainingInterrupted) as caught:
        config.fit(small_ratings(9))
    assert len(caught.value.model.history) == 6
    assert caught.value.model.params["kept_samples"] == 4


def test_posterior_mean_is_near_the_noise_intervals_are_calibrated_and_fold_in_agrees():
    """Unrounded synthetic data: RMSE within 2% of the noise, 90% intervals hold 88-92%."""
    noise = 1.0
    train, test, oracle = unrounded_synthetic(noise)
    model = BayesianMF(factors=2, sweeps=100, burn_in=20, seed=0).fit(train, test)
    assert model.history[-1].test_rmse <= 1.02 * oracle
    assert model.params["noise_precision"] ** -0.5 == pytest.approx(noise, rel=0.03)
    pairs = (test.user_ids[test.users], test.item_ids[test.items])
    mean, lower, upper = predict_interval(model, *pairs, level=0.9)
    np.testing.assert_allclose(mean, model.predict(*pairs))
    assert np.all(lower < mean) and np.all(mean < upper)
    coverage = np.mean((test.values >= lower) & (test.values <= upper))
    assert 0.88 <= coverage <= 0.92, coverage
    # Folding a trained user's ratings back in gives a vector that predicts like theirs.
    rated = train.users == 0
    folded = model.fold_in(train.item_ids[train.items[rated]], train.values[rated])
    refolded = model.item_factors @ folded.factors + folded.bias + model.item_bias
    trained = model.predict(np.full(model.n_items, train.user_ids[0]), model.item_ids)
    assert np.corrcoef(refolded, trained)[0, 1] > 0.98


def test_saved_model_predicts_and_bounds_identically(tmp_path):
    train, test = small_ratings(6), small_ratings(7)
    model = BayesianMF(factors=3, sweeps=10, burn_in=2, samples=4, seed=2).fit(train)
    loaded = MFModel.load(model.save(tmp_path / "bayes.npz"))
    pairs = (test.user_ids[test.users], test.item_ids[test.items])
    assert np.array_equal(model.predict(*pairs), loaded.predict(*pairs))
    for before, after in zip(predict_interval(model, *pairs), predict_interval(loaded, *pairs)):
        assert np.array_equal(before, after)
    assert loaded.params == model.params and loaded.history == model.history
    assert np.array_equal(loaded.recommend(train.user_ids[0]).items,
                          model.recommend(train.user_ids[0]).items)


def test_intervals_widen_with_the_level_and_need_a_bayesian_model():
    train = small_ratings(8)
    model = BayesianMF(factors=2, sweeps=8, burn_in=2, seed=0).fit(train)
    users, items = train.user_ids[train.users[:50]], train.item_ids[train.items[:50]]
    _, low50, high50 = predict_interval(model, users, items, level=0.5)
    _, low95, high95 = predict_interval(model, users, items, level=0.95)
    assert np.all(low95 < low50) and np.all(high50 < high95)
    with pytest.raises(ConfigError, match="level"):
        predict_interval(model, users, items, level=1.0)
    als = ALS(factors=2, iterations=2).fit(train)
    with pytest.raises(ConfigError, match="Bayesian"):
        predict_interval(als, users, items)


@pytest.mark.parametrize("settings, message", [
    ({"factors": 0}, "factors"),
    ({"factors": 2.5}, "factors"),
    ({"sweeps": 0}, "sweeps"),
    ({"burn_in": -1}, "burn_in"),
    ({"sweeps": 10, "burn_in": 10}, "smaller than sweeps"),
    ({"samples": 0}, "samples"),
    ({"hyperprior": "laplace"}, "hyperprior"),
    ({"init_scale": 0.0}, "init_scale"),
    ({"seed": -1}, "seed"),
    ({"sweeps": True}, "sweeps"),
    ({"implicit_weight": -1.0}, "implicit_weight"),
    ({"implicit_reg": 0.0}, "implicit_reg"),
])
def test_bad_settings_raise_config_error(settings, message):
    with pytest.raises(ConfigError, match=message):
        BayesianMF(**settings)


def test_bad_threads_raise_config_error():
    with pytest.raises(ConfigError, match="threads"):
        BayesianMF(sweeps=2, burn_in=1).fit(small_ratings(), threads=0)


def test_params_are_json_ready_and_name_the_method():
    params = BayesianMF(factors=np.int64(5)).params()
    assert params["method"] == "bayes" and params["factors"] == 5
    assert type(params["factors"]) is int


def unclipped_predictions(model, users, items):
    """μ + b_u + b_i + p_u·q_i of raw ids, before the model clips it to its rating scale."""
    from alsmf.data.ratings import lookup_ids
    from alsmf.solvers.predict import predict_pairs
    return predict_pairs(lookup_ids(model.user_ids, users).astype(np.int64),
                         lookup_ids(model.item_ids, items).astype(np.int64),
                         model.user_factors, model.item_factors, model.user_bias,
                         model.item_bias, model.global_mean)
