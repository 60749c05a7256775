"""Implicit features and the separate bias λ: exact steps, monotone objective, fold-in, files."""

from functools import partial

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.models.implicit_features import (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS,
                                            implicit_loss)
from alsmf.model import MFModel
from alsmf.models.als import ALS
from tests import helpers
from tests.tolerances import EXACT, EXACT_APPROX, EXACT_ATOL


random_ratings = partial(helpers.random_ratings, n_users=40, n_items=25)
"""40 users x 25 items, every user and item rated (this file's data)."""


def binary_matrix(train: Ratings) -> np.ndarray:
    x = np.zeros((train.n_users, train.n_items))
    x[train.users, train.items] = 1.0
    return x


def dense_objective(model: MFModel, train: Ratings, config: ALS) -> float:
    """The documented objective computed naively over the dense matrices."""
    p, q = model.user_factors.astype(float), model.item_factors.astype(float)
    bu, bi = model.user_bias.astype(float), model.item_bias.astype(float)
    predicted = model.global_mean + bu[train.users] + bi[train.items] + np.sum(
        p[train.users] * q[train.items], axis=1)
    total = np.sum((train.values - predicted) ** 2)
    reg_bias = config.reg if config.reg_bias is None else config.reg_bias
    wu = train.user_counts() if config.weighted_reg else np.ones(train.n_users)
    wi = train.item_counts() if config.weighted_reg else np.ones(train.n_items)
    total += config.reg * (wu @ np.sum(p * p, 1) + wi @ np.sum(q * q, 1))
    total += reg_bias * (wu @ bu ** 2 + wi @ bi ** 2)
    if IMPLICIT_ITEM_FACTORS in model.extras:
        z = model.extras[IMPLICIT_ITEM_FACTORS].astype(float)
        a = model.extras[IMPLICIT_USER_FACTORS].astype(float)
        x = binary_matrix(train)
        total += config.implicit_weight * (np.sum((x - p @ z.T) ** 2) + np.sum((x - a @ q.T) ** 2))
        total += config.implicit_reg * (np.sum(z * z) + np.sum(a * a))
    return float(total)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
@pytest.mark.parametrize("weighted_reg", [True, False])
def test_objective_matches_the_dense_formula_and_never_increases(solver, weighted_reg):
    train = random_ratings()
    config = ALS(factors=4, reg=0.05, reg_bias=0.01, weighted_reg=weighted_reg, solver=solver,
                 implicit_weight=0.3, implicit_reg=0.5, seed=2, reg_warmup=0,
                 rank_factors=0)
    state = config.start(train)
    objectives = [state.evaluate()[0]]
    for iteration in range(1, 7):
        for solve_items in (True, False):
            state.implicit_step(for_items=solve_items)
            objectives.append(state.evaluate()[0])
            state.half_step(solve_items=solve_items, iteration=iteration)
            objectives.append(state.evaluate()[0])
        assert objectives[-1] == pytest.approx(dense_objective(state.live, train, config),
                                               rel=1e-5)
    steps = np.diff(objectives)
    tolerance = 1e-9 if solver == "cholesky" else 1e-6
    assert np.all(steps <= tolerance * np.abs(objectives[:-1])), steps


def exact_row(fixed, fixed_bias, implicit, x_row, rated, values, mu, ridge, weight):
    """One row's minimiser of the dense problem: ratings, ridge and w Σ_all (x - f·c)²."""
    k = fixed.shape[1]
    y = np.hstack([fixed[rated], np.ones((len(rated), 1))])
    lhs = y.T @ y + np.diag(ridge)
    lhs[:k, :k] += weight * implicit.T @ implicit
    rhs = y.T @ (values - mu - fixed_bias[rated])
    rhs[:k] += weight * implicit.T @ x_row
    return np.linalg.solve(lhs, rhs)


def test_implicit_steps_and_half_steps_are_the_exact_minimisers():
    """Each is compared with a numpy solve of the dense problem, every pair of X included."""
    train = random_ratings(1)
    config = ALS(factors=3, reg=0.1, reg_bias=0.02, weighted_reg=False, solver="cholesky",
                 implicit_weight=0.5, implicit_reg=0.7, reg_warmup=0, rank_factors=0)
    state = config.start(train)
    model, x = state.live, binary_matrix(train)
    ridge = [0.1, 0.1, 0.1, 0.02]
    state.half_step(solve_items=True, iteration=1)  # some item factors to start from
    state.implicit_step(for_items=True)
    q = model.item_factors
    a_expected = np.linalg.solve(0.5 * q.T @ q + 0.7 * np.eye(3), 0.5 * q.T @ x.T).T
    np.testing.assert_allclose(model.extras[IMPLICIT_USER_FACTORS], a_expected, rtol=1e-9,
                               atol=1e-12)
    state.half_step(solve_items=True, iteration=1)
    for item in (0, 4, 11):
        raters = train.users[train.items == item]
        values = train.values[train.items == item].astype(np.float64)
        expected = exact_row(model.user_factors, model.user_bias, a_expected, x[:, item], raters,
                             values, model.global_mean, ridge, 0.5)
        np.testing.assert_allclose(model.item_factors[item], expected[:3], **EXACT)
    state.implicit_step(for_items=False)
    p = model.user_factors
    z_expected = np.linalg.solve(0.5 * p.T @ p + 0.7 * np.eye(3), 0.5 * p.T @ x).T
    np.testing.assert_allclose(model.extras[IMPLICIT_ITEM_FACTORS], z_expected, rtol=1e-9,
                               atol=1e-12)
    state.half_step(solve_items=False, iteration=1)
    for user in (0, 7, 20):
        rated = train.items[train.users == user]
        values = train.values[train.users == user].astype(np.float64)
        expected = exact_row(model.item_factors, model.item_bias, z_expected, x[user], rated,
                             values, model.global_mean, ridge, 0.5)
        np.testing.assert_allclose(model.user_factors[user], expected[:3], **EXACT)
        assert model.user_bias[user] == pytest.approx(expected[3], **EXACT_APPROX)


def test_fold_in_uses_the_implicit_terms_and_the_file_keeps_them(tmp_path):
    train = random_ratings(2)
    model = ALS(factors=3, iterations=4, solver="cholesky", implicit_weight=0.4,
                reg_bias=0.03).fit(train)
    model.seen_values = train.by_user().data.astype(np.float32)
    user = model.user_ids[5]
    row = train.by_user()[5]
    refit = model.fold_in(model.item_ids[row.indices], row.data)
    # training ends with the exact user half-step, so a fold-in of the same ratings is the same
    np.testing.assert_allclose(refit.factors, model.user_factors[5], **EXACT)
    assert refit.bias == pytest.approx(model.user_bias[5], **EXACT_APPROX)
    loaded = MFModel.load(model.save(tmp_path / "m.npz"))
    for name in (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS):
        np.testing.assert_array_equal(loaded.extras[name], model.extras[name])
    again = loaded.fold_in(model.item_ids[row.indices], row.data)
    np.testing.assert_allclose(again.factors, refit.factors, rtol=0, atol=1e-12)
    explanation = loaded.explain(user, model.item_ids[0])
    assert abs(explanation.unexplained) < EXACT_ATOL  # contributions, incl. w·z_j terms, add up


def test_a_new_item_folds_in_with_the_implicit_user_factors():
    train = random_ratings(4)
    model = ALS(factors=3, iterations=3, solver="cholesky", implicit_weight=0.4, reg=0.1,
                weighted_reg=False).fit(train)
    users, ratings = model.user_ids[[1, 5, 9]], np.array([5.0, 1.0, 4.0])
    folded = model.fold_in_item(users, ratings)
    x_column = np.zeros(model.n_users)
    x_column[[1, 5, 9]] = 1.0
    expected = exact_row(model.user_factors, model.user_bias, model.extras[IMPLICIT_USER_FACTORS],
                         x_column, np.array([1, 5, 9]), ratings, model.global_mean,
                         [0.1, 0.1, 0.1, 0.02], 0.4)  # the default bias λ
    np.testing.assert_allclose(folded.factors, expected[:3], **EXACT)


def test_implicit_loss_counts_the_zero_entries():
    train = random_ratings(3)
    rng = np.random.default_rng(0)
    p, z = rng.normal(size=(train.n_users, 2)), rng.normal(size=(train.n_items, 2))
    matrix = train.by_user()
    expected = 0.3 * np.sum((binary_matrix(train) - p @ z.T) ** 2) + 0.2 * np.sum(z * z)
    assert implicit_loss(matrix.indptr, matrix.indices, p, z, 0.3, 0.2) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"reg_bias": -1.0}, "reg_bias must be None or a finite number >= 0"),
    ({"implicit_weight": float("nan")}, "implicit_weight must be a finite number >= 0"),
    ({"implicit_reg": 0.0}, "implicit_reg must be a finite number > 0"),
])
def test_bad_settings_are_refused(kwargs, fragment):
    from alsmf.errors import ConfigError

    with pytest.raises(ConfigError, match=fragment):
        ALS(**kwargs)
