"""The baselines: known answers, the seed notebooks' examples, the SVD lesson, the model
interface (save/load, fold-in, callback) and their settings checks."""

import numpy as np
import pytest

from alsmf import ALS, ConfigError, DataError, MFModel, Ratings, synthetic_ratings
from alsmf.baselines import (BASELINES, SGD, BiasOnly, GlobalMean, GradientDescent,
                             TruncatedSVD, matrix_factorization)
from alsmf.baselines.sgd import sgd_epoch
from alsmf.data.movielens import load_fold
from alsmf.data.splits import random_split


def dense_ratings(matrix: np.ndarray) -> Ratings:
    """Ratings of the positive entries of a dense matrix (0 = missing, as in the notebooks);
    raw ids are the row and column numbers."""
    users, items = np.nonzero(matrix > 0)
    return Ratings.from_arrays(users, items, matrix[users, items])


@pytest.fixture(scope="module")
def split():
    data = synthetic_ratings(n_users=300, n_items=200, n_ratings=12_000, rank=4, noise=0.5,
                             seed=1)
    return random_split(data.ratings, 0.2, seed=0)


# ---------------------------------------------------------------------- mean and biases
def test_global_mean_predicts_the_training_mean_everywhere(split):
    train, test = split
    model = GlobalMean().fit(train, test)
    mean = float(np.mean(train.values, dtype=np.float64))
    assert model.predict([train.user_ids[0], 10**9], [train.item_ids[0], 10**9]) == \
        pytest.approx([mean, mean])
    [record] = model.history
    assert record.test_rmse == pytest.approx(np.sqrt(np.mean((test.values - mean) ** 2)))
    assert record.objective == pytest.approx(np.sum((train.values - mean) ** 2.0), rel=1e-9)
    with pytest.raises(DataError, match="singular"):
        model.fold_in([train.item_ids[0]], [4.0])


def test_bias_only_first_epoch_matches_the_hand_computation():
    # μ = 4. Items first (user biases 0): b_x = (1 + 0) / (1 + 2) = 1/3, b_y = -1 / (1 + 1);
    # then users: b_a = ((5-4-1/3) + (3-4+1/2)) / (1 + 2) = 1/18, b_b = (4-4-1/3) / (1 + 1).
    ratings = Ratings.from_arrays([1, 1, 2], [10, 20, 10], [5.0, 3.0, 4.0])
    model = BiasOnly(reg_u=1.0, reg_i=1.0, epochs=1).fit(ratings)
    assert model.global_mean == 4.0
    np.testing.assert_allclose(model.item_bias, [1 / 3, -1 / 2], atol=1e-12)
    np.testing.assert_allclose(model.user_bias, [1 / 18, -1 / 6], atol=1e-12)
    assert model.predict_one(1, 10) == pytest.approx(4 + 1 / 18 + 1 / 3)


def test_bias_only_converges_to_the_regularised_least_squares_solution(split):
    train, _ = split
    model = BiasOnly(reg_u=3.0, reg_i=2.0, epochs=150).fit(train, threads=1)
    # Σ (r − μ − b_u − b_i)² + 3 Σ b_u² + 2 Σ b_i², solved directly: its normal equations
    # over x = [b_u; b_i] are [[N_u + 3I, C], [Cᵀ, N_i + 2I]] x = [Σ_i t_ui; Σ_u t_ui] with
    # t = r − μ and C the 0/1 matrix of rated pairs.
    n_u, n_i = train.n_users, train.n_items
    target = train.values.astype(np.float64) - model.global_mean
    system = np.zeros((n_u + n_i, n_u + n_i))
    system[train.users, n_u + train.items] = 1.0
    system[n_u + train.items, train.users] = 1.0
    system[np.arange(n_u), np.arange(n_u)] = train.user_counts() + 3.0
    system[n_u + np.arange(n_i), n_u + np.arange(n_i)] = train.item_counts() + 2.0
    rhs = np.concatenate([np.bincount(train.users, target, n_u),
                          np.bincount(train.items, target, n_i)])
    exact = np.linalg.solve(system, rhs)
    np.testing.assert_allclose(model.user_bias, exact[:n_u], atol=1e-6)
    np.testing.assert_allclose(model.item_bias, exact[n_u:], atol=1e-6)
    objectives = [record.objective for record in model.history]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(objectives, objectives[1:]))


def test_bias_only_fold_in_gives_the_bias_of_its_own_user_update(split):
    train, _ = split
    model = BiasOnly().fit(train)
    items, ratings = train.item_ids[:3], np.array([5.0, 4.0, 1.0])
    folded = model.fold_in(items, ratings)
    expected = np.sum(ratings - model.global_mean - model.item_bias[:3]) / (3 + 15.0)
    assert folded.bias == pytest.approx(expected)
    assert np.all(folded.factors == 0)


# ---------------------------------------------------------------------- SGD
def test_one_sgd_update_matches_koren_rule():
    p, q = np.array([[0.5, -0.2]]), np.array([[0.3, 0.4]])
    bu, bi = np.array([0.1]), np.array([-0.2])
    lr, reg, reg_bias, mu, r = 0.1, 0.05, 0.02, 3.0, 4.0
    error = r - (mu + 0.1 - 0.2 + 0.5 * 0.3 - 0.2 * 0.4)
    expected_p = p + lr * (error * q - reg * p)
    expected_q = q + lr * (error * p - reg * q)
    sgd_epoch(np.array([0]), np.array([0]), np.array([0]), np.array([r]), mu, p, q, bu, bi,
              lr, reg, reg_bias, True)
    np.testing.assert_allclose(p, expected_p)
    np.testing.assert_allclose(q, expected_q)
    assert bu[0] == pytest.approx(0.1 + lr * (error - reg_bias * 0.1))
    assert bi[0] == pytest.approx(-0.2 + lr * (error + reg_bias * 0.2))


def test_sgd_lowers_the_objective_and_is_deterministic_per_seed(split):
    train, test = split
    config = SGD(factors=8, epochs=15, lr=0.01, reg=0.05)
    model = config.fit(train, test, threads=1)
    objectives = [record.objective for record in model.history]
    assert len(objectives) == 15
    assert all(b < a for a, b in zip(objectives, objectives[1:])), objectives
    assert model.history[-1].test_rmse < GlobalMean().fit(train, test).history[0].test_rmse
    again = config.fit(train, test, threads=1)
    np.testing.assert_array_equal(again.user_factors, model.user_factors)
    np.testing.assert_array_equal(again.item_bias, model.item_bias)
    other = SGD(factors=8, epochs=15, lr=0.01, reg=0.05, seed=1).fit(train, test, threads=1)
    assert not np.array_equal(other.user_factors, model.user_factors)


# ---------------------------------------------------------------------- the notebooks' GD
# Seed 002, example 1 (K = 2, 10000 steps, α = 0.0002, β = 0.02): the factors it printed
# after step 0 and at the end.
EXAMPLE_1 = dict(
    R=[[0, 4.5, 2.0, 0], [4, 0, 3.5, 0], [0, 5, 0, 2], [0, 3.5, 4.0, 1.0]],
    P0=[[0.39310061, 0.69497862], [0.59397096, 0.01182352], [0.71345326, 0.19118658],
        [0.88613529, 0.01033975]],
    Q0=[[0.64713453, 0.63947046, 0.6291103, 0.22647141],
        [0.89366632, 0.5463088, 0.47919199, 0.52211778]],
    P=[[0.90087817, 1.63648273], [1.67079152, 1.01416077], [1.70108839, 1.14879918],
       [1.96825481, 0.04057504]],
    Q=[[1.59148481, 1.73444421, 2.01739213, 0.50157515],
       [1.31217598, 1.78109958, 0.11677711, 0.97029747]],
)
# Seed 002, example 2 (same settings).
EXAMPLE_2 = dict(
    R=[[2, 5, 1, 3], [4, 0, 0, 1], [0, 4, 2, 0], [2, 4, 3, 1], [1, 3, 2, 0]],
    P0=[[0.99198854, 0.88831737], [0.81363637, 0.61108737], [0.05142716, 0.85979177],
        [0.3406619, 0.87282688], [0.77565106, 0.85588049]],
    Q0=[[0.20829321, 0.67048932, 0.36129879, 0.91457951],
        [0.30890679, 0.10567742, 0.6064554, 0.72023161]],
    P=[[2.12647362, 0.31724894], [1.1193198, 2.80230141], [1.08050846, 0.92048377],
       [0.7557432, 1.35219464], [0.53793855, 0.91789777]],
    Q=[[0.75734161, 2.06443617, 0.18406842, 1.43539407],
       [1.07393161, 1.87614579, 2.01845594, -0.18755339]],
)


@pytest.mark.parametrize("example", [EXAMPLE_1, EXAMPLE_2], ids=["example1", "example2"])
def test_gradient_descent_reproduces_seed_002_from_its_printed_start(example):
    # The notebook printed P and Q after step 0; 9999 more steps from there must give its
    # final P and Q. Its per-entry sweeps and our full-batch steps differ by O(α²) per step.
    P, Q = matrix_factorization(np.array(example["R"]), np.array(example["P0"]),
                                np.array(example["Q0"]), steps=9999)
    np.testing.assert_allclose(P, example["P"], atol=1e-3)
    np.testing.assert_allclose(Q, example["Q"], atol=1e-3)


# Seed 003: K = 3, 5000 steps from np.random.rand, no printed start; it printed this R̂.
SEED_003_R = np.array([[5, 3, 0, 1], [4, 0, 0, 1], [1, 1, 0, 5], [1, 0, 0, 4], [0, 1, 5, 4],
                       [2, 1, 3, 0]], dtype=float)
SEED_003_PRINTED = np.array([
    [4.986618, 2.954675, 4.661664, 0.998074], [3.973915, 2.034567, 3.839877, 0.996421],
    [1.031285, 0.924926, 4.519118, 4.962544], [0.990396, 0.27516, 3.705367, 3.973872],
    [2.498498, 1.126595, 4.92541, 4.024416], [1.975146, 0.943908, 3.037781, 2.023139]])


def test_gradient_descent_fills_seed_003_like_the_notebook():
    observed = SEED_003_R > 0
    printed_rmse = np.sqrt(np.mean((SEED_003_PRINTED - SEED_003_R)[observed] ** 2))
    assert printed_rmse < 0.05
    for seed in range(5):  # the notebook's start is random: several starts, same property
        model = GradientDescent(factors=3, steps=5000, seed=seed).fit(dense_ratings(SEED_003_R))
        filled = model.full_matrix()
        assert model.history[-1].train_rmse < 0.15
        assert filled.shape == (6, 4) and np.all(filled > -0.5)
        unclipped = (model.user_factors @ model.item_factors.T + model.global_mean
                     + model.user_bias[:, None] + model.item_bias[None, :])
        assert np.sqrt(np.mean((unclipped - SEED_003_R)[observed] ** 2)) == \
            pytest.approx(model.history[-1].train_rmse)
        low, high = model.rating_scale  # the filled matrix is clipped to the ratings' range
        np.testing.assert_array_equal(filled, np.clip(unclipped, low, high))


def test_gradient_descent_fit_follows_the_dense_function():
    ratings = dense_ratings(np.array(EXAMPLE_1["R"], dtype=float))
    model = GradientDescent(steps=300, seed=7).fit(ratings)
    rng = np.random.default_rng(7)
    P0, Q0 = rng.random((4, 2)), rng.random((4, 2))
    P, Q = matrix_factorization(np.array(EXAMPLE_1["R"]), P0, Q0.T, steps=300)
    np.testing.assert_allclose(model.user_factors, P, rtol=1e-12)
    np.testing.assert_allclose(model.item_factors, Q.T, rtol=1e-12)
    objectives = [record.objective for record in model.history]
    assert len(objectives) == 300 and objectives[-1] < objectives[0] / 2
    assert model.system.reg == 0.01 and model.system.weighted_reg is True


def test_gradient_descent_stops_below_min_objective_and_names_divergence(split):
    ratings = dense_ratings(np.array([[1.0, 1.0], [1.0, 1.0]]))
    model = GradientDescent(factors=1, steps=100_000, alpha=0.01, beta=0.0,
                            min_objective=1e-6).fit(ratings)
    assert model.history[-1].objective < 1e-6 and len(model.history) < 100_000
    with pytest.raises(ConfigError, match="diverged .* use a smaller alpha"):
        GradientDescent(alpha=0.5).fit(split[0])


# ---------------------------------------------------------------------- truncated SVD
@pytest.mark.parametrize("center, k", [("none", 4), ("mean", 4), ("baseline", 5)])
def test_svd_reconstructs_a_complete_low_rank_matrix_exactly(center, k):
    # Rank 3 plus a constant: rank <= 4, also after removing μ; after removing μ + b_u + b_i
    # (a rank <= 2 matrix) at most 5.
    rng = np.random.default_rng(0)
    matrix = rng.random((30, 3)) @ rng.random((3, 20)) + 1.0
    users, items = np.indices(matrix.shape).reshape(2, -1)
    ratings = Ratings.from_arrays(users, items, matrix.reshape(-1).astype(np.float32))
    model = TruncatedSVD(factors=k, center=center).fit(ratings)
    np.testing.assert_allclose(model.full_matrix(), matrix, atol=1e-5)
    assert model.history[0].objective == pytest.approx(0.0, abs=1e-6)


def test_svd_on_incomplete_ratings_is_worse_than_als(split):
    # The lesson's point: SVD must invent the missing entries, ALS fits the observed ones.
    train, test = split
    als = ALS(factors=8, iterations=10).fit(train, test).history[-1].test_rmse
    for k in (4, 8):
        svd = TruncatedSVD(factors=k).fit(train, test)
        assert svd.history[-1].test_rmse > als + 0.03
        assert len(svd.history) == 1


def test_svd_needs_fewer_factors_than_rows_and_columns():
    ratings = Ratings.from_arrays([0, 1, 2], [0, 1, 0], [1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match=r"below the number of users \(3\) and of items \(2\)"):
        TruncatedSVD(factors=2).fit(ratings)


# ---------------------------------------------------------------------- the model interface
CONFIGS = [GlobalMean(), BiasOnly(), SGD(factors=4, epochs=3), GradientDescent(steps=50),
           TruncatedSVD(factors=3)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.params()["method"])
def test_baseline_models_save_load_and_predict_identically(config, split, tmp_path):
    train, test = split
    model = config.fit(train, test)
    assert BASELINES[model.params["method"]] is type(config)
    assert model.history[-1].test_rmse == pytest.approx(model.rmse(test))
    by_user = train.compact().by_user()
    np.testing.assert_array_equal(model.seen_indptr, by_user.indptr)
    np.testing.assert_array_equal(model.seen_indices, by_user.indices)
    np.testing.assert_array_equal(model.seen_values, by_user.data)
    loaded = MFModel.load(model.save(tmp_path / "model"))
    users, items = test.user_ids[test.users], test.item_ids[test.items]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    assert loaded.params == model.params and loaded.history == model.history
    top = model.recommend(train.user_ids[0], n=5)
    assert len(top.items) == 5
    if config.params()["method"] != "mean":
        folded = loaded.fold_in(train.item_ids[:5], [5.0, 4.0, 3.0, 2.0, 1.0])
        assert np.isfinite(folded.factors).all() and np.isfinite(folded.bias)


@pytest.mark.parametrize("config", CONFIGS[1:4], ids=lambda c: c.params()["method"])
def test_callback_sees_each_record_and_stops_the_fit(config, split):
    seen = []

    def callback(record, model):
        seen.append((record.iteration, len(model.history)))
        return record.iteration == 2

    model = config.fit(*split, callback=callback)
    assert seen == [(1, 1), (2, 2)] and len(model.history) == 2


@pytest.mark.parametrize("config, message", [
    (lambda: BiasOnly(reg_u=-1), "reg_u must be a finite number >= 0"),
    (lambda: BiasOnly(epochs=0), "epochs must be an integer from 1 to 10000"),
    (lambda: SGD(factors=0), "factors must be an integer from 1 to 1024"),
    (lambda: SGD(lr=0), r"lr \(learning rate\) must be a number in \(0, 1\)"),
    (lambda: SGD(reg=float("nan")), r"reg \(λ\) must be a finite number >= 0"),
    (lambda: SGD(reg_bias=-0.1), "reg_bias must be None or a finite number >= 0"),
    (lambda: SGD(epochs=True), "epochs must be an integer"),
    (lambda: SGD(seed=-1), "seed must be a non-negative integer"),
    (lambda: GradientDescent(alpha=2.0), r"alpha \(step size\) must be a number in \(0, 1\)"),
    (lambda: GradientDescent(steps=0), "steps must be an integer from 1 to 1000000"),
    (lambda: GradientDescent(beta=-1), "beta"),
    (lambda: TruncatedSVD(center="median"), "center must be one of baseline, mean, none"),
    (lambda: TruncatedSVD(factors=1.5), "factors must be an integer"),
])
def test_bad_settings_are_config_errors(config, message):
    with pytest.raises(ConfigError, match=message):
        config()


def test_bad_threads_is_a_config_error(split):
    with pytest.raises(ConfigError, match="threads must be from 1 to"):
        BiasOnly().fit(split[0], threads=0)


# ---------------------------------------------------------------------- real data
def test_baselines_rank_as_expected_on_ml100k_u1(ml100k_dir):
    train, test = load_fold(ml100k_dir, "u1")
    rmse = {name: config.fit(train, test).history[-1].test_rmse for name, config in
            [("mean", GlobalMean()), ("bias", BiasOnly()), ("sgd", SGD()),
             ("svd", TruncatedSVD()), ("als", ALS())]}
    assert rmse["mean"] > 1.1
    assert rmse["bias"] < 0.97
    assert rmse["sgd"] < rmse["bias"] and rmse["svd"] < rmse["bias"]
    assert rmse["als"] < min(rmse["sgd"], rmse["svd"]) - 0.01, rmse
