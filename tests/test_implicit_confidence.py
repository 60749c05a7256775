"""Value-dependent confidence in implicit-feedback ALS: what a used pair's value changes.

The exact rows, the objective and fold-in of a trained user are tested for every kind of
confidence in :mod:`tests.test_implicit_als`; these are the known answers that tie the kinds
to each other and to the constant model, and the values each refuses.
"""

import numpy as np
import pytest

from alsmf import ImplicitALS, MFModel
from alsmf.data.ratings import Ratings
from alsmf.errors import DataError
from tests.helpers import random_ratings
from tests.test_implicit_als import CONFIDENCES, SETTINGS, SIGNALS, exact_row
from tests.tolerances import EXACT


def with_values(train: Ratings, values: np.ndarray) -> Ratings:
    """The same used pairs with other values."""
    return Ratings.from_arrays(train.user_ids[train.users], train.item_ids[train.items],
                               values)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_linear_confidence_of_values_one_is_the_constant_model_bit_for_bit(solver):
    """f(1) = 1: every pair's weight is exactly 1 and its target the constant one, so the
    weighted kernels compute what the unweighted ones do (the objective sums Σ c e² instead
    of c Σ e², equal up to rounding)."""
    train = random_ratings(11, 30, 20)
    ones = with_values(train, np.ones(len(train)))
    constant = ImplicitALS(solver=solver, iterations=4, **SETTINGS).fit(ones)
    linear = ImplicitALS(solver=solver, iterations=4, confidence="linear", **SETTINGS).fit(ones)
    np.testing.assert_array_equal(linear.user_factors, constant.user_factors)
    np.testing.assert_array_equal(linear.item_factors, constant.item_factors)
    assert [r.objective for r in linear.history] == pytest.approx(
        [r.objective for r in constant.history], rel=1e-12)


def test_the_values_set_the_confidence():
    """Only c = 1 + α f(r) counts: linear with α and values r is linear with α/2 and values 2r,
    and log(1 + r/ε) is linear in the values log(1 + r/ε); the values of a constant-confidence
    model play no part, and with value-dependent confidence they do."""
    train = random_ratings(12, 30, 20)
    settings = dict(SETTINGS, solver="cholesky", iterations=5)
    linear = ImplicitALS(confidence="linear", **settings).fit(train)
    halved = ImplicitALS(**dict(settings, alpha=settings["alpha"] / 2),
                         confidence="linear").fit(with_values(train, 2 * train.values))
    np.testing.assert_allclose(halved.user_factors, linear.user_factors, rtol=1e-5, atol=1e-6)
    log = ImplicitALS(confidence="log", epsilon=0.5, **settings).fit(train)
    as_linear = ImplicitALS(confidence="linear", **settings).fit(
        with_values(train, np.log1p(train.values / 0.5)))
    np.testing.assert_allclose(as_linear.user_factors, log.user_factors, rtol=1e-5, atol=1e-6)
    constant = ImplicitALS(**settings).fit(train)
    assert np.abs(linear.user_factors - constant.user_factors).max() > 0.01
    assert np.abs(log.user_factors - linear.user_factors).max() > 0.01


@pytest.mark.parametrize("confidence", ["linear", "log"])
def test_fold_in_weighs_the_new_values_by_their_confidence(confidence):
    """A new user's vector is the exact minimiser of its row of the dense objective, each used
    item weighted by the confidence of the value given at fold-in."""
    train = random_ratings(13, 30, 20)
    config = ImplicitALS(solver="cholesky", iterations=4, **SETTINGS, **CONFIDENCES[confidence])
    model = config.fit(train)
    items, values = np.array([2, 5, 11, 17]), np.array([1.0, 4.0, 0.5, 9.0])
    folded = model.fold_in(train.item_ids[items], values)
    used = np.zeros(train.n_items)
    used[items] = 1.0
    weights = np.full(train.n_items, config.unobserved_weight)
    weights[items] = 1.0 + config.alpha * SIGNALS[confidence](values, config.epsilon)
    expected = exact_row(model.item_factors, used, weights, config.reg)
    np.testing.assert_allclose(folded.factors, expected, **EXACT)


def test_a_saved_weighted_model_folds_in_and_explains_alike(tmp_path):
    """The row system carries the confidence, so a loaded model rebuilds the same weights;
    an explanation's contributions, weighted alike, add up to the trained user's preference."""
    train = random_ratings(14, 30, 20)
    model = ImplicitALS(solver="cholesky", iterations=4, **SETTINGS,
                        **CONFIDENCES["log"]).fit(train)
    loaded = MFModel.load(model.save(tmp_path / "model.npz"))
    assert loaded.system == model.system and loaded.system.confidence == "log"
    items, values = train.item_ids[[1, 4, 9]], [3.0, 1.0, 2.0]
    np.testing.assert_array_equal(loaded.fold_in(items, values).factors,
                                  model.fold_in(items, values).factors)
    explanation = loaded.explain(train.user_ids[3], train.item_ids[6], n=train.n_items)
    assert explanation.contributions.sum() == pytest.approx(
        explanation.prediction - explanation.baseline, rel=1e-5)
    assert abs(explanation.unexplained) < 1e-5 * abs(explanation.prediction)


@pytest.mark.parametrize("values, settings, message", [
    ([-1.0], {"confidence": "linear"}, "value -1 is not a finite number >= 0"),
    ([0.0], {"confidence": "log", "alpha": 1.0, "unobserved_weight": 1.0},
     "value 0 gives its pair a weight of 0 .*confidence must be above the unobserved weight"),
])
def test_values_a_confidence_cannot_take_are_refused(values, settings, message):
    train = random_ratings(15, 10, 8)
    bad = train.values.astype(float)
    bad[3] = values[0]
    config = ImplicitALS(**dict(SETTINGS, **settings))
    with pytest.raises(DataError, match=message):
        config.fit(with_values(train, bad))
    model = config.fit(train)
    with pytest.raises(DataError, match=message):
        model.fold_in(train.item_ids[:2], [2.0, values[0]])
