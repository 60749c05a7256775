"""The row system as model files record it."""

import json

import pytest

from alsmf import ImplicitALS
from alsmf.rowsystem import RowSystem


@pytest.mark.parametrize("system", [
    RowSystem(reg=0.1, reg_bias=0.02, weighted_reg=True, biases=True, implicit_weight=3.0,
              rating_scale=(1.0, 5.0)),
    ImplicitALS().row_system(),
])
def test_the_row_system_round_trips_through_json(system):
    assert RowSystem.from_dict(json.loads(json.dumps(system.to_dict()))) == system


def test_a_row_system_written_before_a_field_existed_takes_its_default():
    """Files from before implicit feedback's target and shared Gram term leave them out."""
    rating_model = {"reg": 0.1, "reg_bias": 0.02, "weighted_reg": False, "biases": True,
                    "implicit_weight": 3.0, "rating_scale": [1, 5]}
    assert RowSystem.from_dict(rating_model) == RowSystem(
        reg=0.1, reg_bias=0.02, weighted_reg=False, biases=True, implicit_weight=3.0,
        rating_scale=(1.0, 5.0))


@pytest.mark.parametrize("change, message", [
    ({"shape": "round"}, "the row system has fields .*expected"),
    ({"reg": None}, "the row system's reg is None, not a number >= 0"),
])
def test_a_bad_row_system_is_refused_naming_the_field(change, message):
    fields = ImplicitALS().row_system().to_dict()
    with pytest.raises(ValueError, match=message):
        RowSystem.from_dict(fields | change)
    del fields["biases"]
    with pytest.raises(ValueError, match="the row system has fields"):
        RowSystem.from_dict(fields)
