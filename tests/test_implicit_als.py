"""Implicit-feedback ALS: exact rows, a monotone objective, fold-in, ranking by preference,
for each kind of confidence (:mod:`tests.test_implicit_confidence` tests what the values do)."""

import numpy as np
import pytest

from alsmf import ImplicitALS
from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError
from tests.helpers import random_ratings
from tests.tolerances import EXACT

SETTINGS = dict(factors=3, reg=0.3, alpha=4.0, unobserved_weight=0.5, seed=1)

CONFIDENCES = {"constant": {"confidence": "constant"}, "linear": {"confidence": "linear"},
               "log": {"confidence": "log", "epsilon": 0.5}}
"""The settings of each kind of confidence the tests train with."""

SIGNALS = {"constant": lambda r, epsilon: np.ones_like(r),
           "linear": lambda r, epsilon: r,
           "log": lambda r, epsilon: np.log(1.0 + r / epsilon)}
"""f(r) of Hu et al.'s confidence c = 1 + α f(r), written out here for the known answers."""


def used_matrix(train: Ratings) -> np.ndarray:
    """The dense users x items 0/1 matrix of used pairs."""
    used = np.zeros((train.n_users, train.n_items))
    used[train.users, train.items] = 1.0
    return used


def pair_weights(train: Ratings, config: ImplicitALS) -> np.ndarray:
    """The dense users x items weight of every pair in the objective: a used pair's
    confidence 1 + α f(r), α₀ for the others."""
    weights = np.full((train.n_users, train.n_items), config.unobserved_weight)
    signal = SIGNALS[config.confidence](train.values.astype(float), config.epsilon)
    weights[train.users, train.items] = 1.0 + config.alpha * signal
    return weights


def dense_objective(model, train: Ratings, config: ImplicitALS) -> float:
    """The documented objective over every pair of the dense matrices."""
    p, q = model.user_factors.astype(float), model.item_factors.astype(float)
    used = used_matrix(train)
    scores = p @ q.T
    user_w = used.sum(axis=1) if config.weighted_reg else np.ones(len(p))
    item_w = used.sum(axis=0) if config.weighted_reg else np.ones(len(q))
    penalty = np.dot(user_w, np.sum(p * p, axis=1)) + np.dot(item_w, np.sum(q * q, axis=1))
    return float(np.sum(pair_weights(train, config) * (used - scores) ** 2)
                 + config.reg * penalty)


def exact_row(fixed, used_row, weights_row, reg):
    """The row's minimiser of the dense objective, by numpy: each pair with its weight (its
    confidence if used, α₀ if not) and ``reg`` the row's ridge."""
    lhs = fixed.T @ (weights_row[:, None] * fixed) + reg * np.eye(fixed.shape[1])
    return np.linalg.solve(lhs, fixed.T @ (weights_row * used_row))


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("weighted_reg", [False, True])
def test_half_steps_are_the_exact_minimisers_of_the_weighted_problem(weighted_reg, confidence):
    train = random_ratings(3, 30, 20, density=0.3)
    config = ImplicitALS(solver="cholesky", weighted_reg=weighted_reg, **SETTINGS,
                         **CONFIDENCES[confidence])
    state = config.start(train)
    used, weights = used_matrix(train), pair_weights(train, config)
    state.half_step(solve_items=True, iteration=1)
    model = state.live
    for item in (0, 5, 13):
        count = used[:, item].sum() if weighted_reg else 1.0
        expected = exact_row(model.user_factors, used[:, item], weights[:, item],
                             config.reg * count)
        np.testing.assert_allclose(model.item_factors[item], expected, **EXACT)
    state.half_step(solve_items=False, iteration=1)
    for user in (0, 7, 22):
        count = used[user].sum() if weighted_reg else 1.0
        expected = exact_row(model.item_factors, used[user], weights[user], config.reg * count)
        np.testing.assert_allclose(model.user_factors[user], expected, **EXACT)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("solver, tolerance", [("cholesky", 1e-9), ("cg", 1e-6)])
def test_objective_matches_the_dense_formula_and_never_increases(solver, tolerance, confidence):
    train = random_ratings(4, 40, 25, density=0.25)
    config = ImplicitALS(solver=solver, weighted_reg=True, **SETTINGS, **CONFIDENCES[confidence])
    state = config.start(train)
    objectives = []
    for iteration in range(1, 8):
        for solve_items in (True, False):
            state.half_step(solve_items=solve_items, iteration=iteration)
            objectives.append(state.evaluate()[0])
        assert objectives[-1] == pytest.approx(dense_objective(state.live, train, config),
                                               rel=1e-5)
    steps = np.diff(objectives)
    assert np.all(steps <= tolerance * np.abs(objectives[:-1])), steps
    assert objectives[-1] < objectives[0]


def test_the_ratings_values_play_no_part():
    train = random_ratings(5, 30, 20)
    other_values = Ratings.from_arrays(train.user_ids[train.users], train.item_ids[train.items],
                                       np.full(len(train), 1.0))
    a = ImplicitALS(**SETTINGS, iterations=3).fit(train)
    b = ImplicitALS(**SETTINGS, iterations=3).fit(other_values)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_fold_in_of_a_trained_user_reproduces_its_vector(confidence):
    """Training ends with the user half-step, which fold-in solves again (exactly, with the
    Cholesky solver), with the shared unobserved term from the model's item factors and the
    weights the row system derives from the user's values."""
    train = random_ratings(6, 30, 20)
    model = ImplicitALS(solver="cholesky", iterations=6, **SETTINGS,
                        **CONFIDENCES[confidence]).fit(train)
    for user in (0, 9, 17):
        mine = train.users == user
        folded = model.fold_in(train.item_ids[train.items[mine]], train.values[mine])
        np.testing.assert_allclose(folded.factors, model.user_factors[user], rtol=1e-9,
                                   atol=1e-12)
        assert folded.bias == 0.0


def test_recommendations_rank_unused_items_by_preference():
    train = random_ratings(7, 30, 20)
    model = ImplicitALS(iterations=5, **SETTINGS).fit(train)
    used = set(train.item_ids[train.items[train.users == 2]].tolist())
    result = model.recommend(train.user_ids[2], n=5)
    assert not used & set(result.items.tolist())
    expected = model.item_factors[np.searchsorted(model.item_ids, result.items)] \
        @ model.user_factors[2]
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5)
    assert np.all(np.diff(result.scores) <= 0)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_two_groups_of_users_get_their_own_groups_items(solver):
    """Users 0-19 use items 0-14 only, users 20-39 items 15-29: with two factors, room for the
    groups and nothing more, every user is recommended items of its own group (the ones they
    have not used yet)."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(40):
        pool = np.arange(15) if user < 20 else np.arange(15, 30)
        chosen = rng.choice(pool, size=8, replace=False)
        users += [user] * len(chosen)
        items += chosen.tolist()
    train = Ratings.from_arrays(np.array(users), np.array(items), np.ones(len(users)))
    model = ImplicitALS(factors=2, reg=0.1, iterations=10, solver=solver).fit(train)
    for user in range(40):
        listed = model.recommend(user, n=5).items
        assert np.all((listed < 15) == (user < 20)), (user, listed)


@pytest.mark.parametrize("settings, message", [
    (dict(unobserved_weight=2.0), "unobserved_weight must be above 0 and below 1 \\+ alpha"),
    (dict(unobserved_weight=0.0), "unobserved_weight must be above 0"),
    (dict(reg=0.0), "reg \\(λ\\) must be a finite number > 0"),
    (dict(alpha=-1.0), "alpha must be a finite number >= 0"),
    (dict(solver="lu"), "solver must be one of cg, cholesky"),
    (dict(weighted_reg=1), "weighted_reg must be True or False"),
    (dict(confidence="sqrt"), "confidence must be one of constant, linear, log, got 'sqrt'"),
    (dict(confidence="log", epsilon=0.0), "epsilon must be a finite number > 0"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        ImplicitALS(**settings)
