"""The row system as model files record it, and the weights and targets it derives."""

import json

import numpy as np
import pytest

from alsmf import ImplicitALS
from alsmf.rowsystem import RowSystem

WEIGHTED = ImplicitALS(alpha=3.0, unobserved_weight=0.5, confidence="log",
                       epsilon=0.25).row_system()


@pytest.mark.parametrize("system", [
    RowSystem(reg=0.1, reg_bias=0.02, weighted_reg=True, biases=True, implicit_weight=3.0,
              rating_scale=(1.0, 5.0)),
    ImplicitALS().row_system(),
    WEIGHTED,
])
def test_the_row_system_round_trips_through_json(system):
    assert RowSystem.from_dict(json.loads(json.dumps(system.to_dict()))) == system


def test_a_row_system_written_before_a_field_existed_takes_its_default():
    """Files from before value-dependent confidence (and from before implicit feedback's
    target and shared Gram term) leave those fields out."""
    fields = ImplicitALS(alpha=2.0).row_system().to_dict()
    for name in ("confidence", "confidence_slope", "epsilon"):
        del fields[name]
    assert RowSystem.from_dict(fields) == ImplicitALS(alpha=2.0).row_system()
    rating_model = {"reg": 0.1, "reg_bias": 0.02, "weighted_reg": False, "biases": True,
                    "implicit_weight": 3.0, "rating_scale": [1, 5]}
    assert RowSystem.from_dict(rating_model) == RowSystem(
        reg=0.1, reg_bias=0.02, weighted_reg=False, biases=True, implicit_weight=3.0,
        rating_scale=(1.0, 5.0))


@pytest.mark.parametrize("change, message", [
    ({"shape": "round"}, "the row system has fields .*expected"),
    ({"reg": None}, "the row system's reg is None, not a number >= 0"),
    ({"confidence": "sqrt"}, "the row system's confidence is 'sqrt', not one of constant, "
                             "linear, log"),
    ({"confidence_slope": -1.0}, "the row system's confidence_slope is -1.0"),
    ({"epsilon": 0.0}, "the row system's epsilon is 0, not a number > 0"),
    ({"target": None}, "weighs its ratings by confidence but has no target"),
])
def test_a_bad_row_system_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        RowSystem.from_dict(WEIGHTED.to_dict() | change)
    fields = WEIGHTED.to_dict()
    del fields["biases"]
    with pytest.raises(ValueError, match="the row system has fields"):
        RowSystem.from_dict(fields)


def test_weights_and_targets_are_the_confidence_divided_by_the_shared_scale():
    """For α 3, α₀ 0.5 a used pair of value r has c = 1 + 3 log(1 + 4r); divided by
    c̄ − α₀ = 3.5 (c̄ = 1 + α) its weight is (c − α₀)/3.5 and its target c/(c − α₀)."""
    values = np.array([0.0, 0.25, 1.0, 40.0])
    c = 1.0 + 3.0 * np.log1p(values / 0.25)
    np.testing.assert_allclose(WEIGHTED.weights(values), (c - 0.5) / 3.5, rtol=1e-14)
    np.testing.assert_allclose(WEIGHTED.targets(values), c / (c - 0.5), rtol=1e-14)
    assert ImplicitALS().row_system().weights(values) is None
    np.testing.assert_array_equal(ImplicitALS().row_system().targets(values), np.full(4, 2.0))
