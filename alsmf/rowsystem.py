"""What a trained model's rows solve: the typed description fold-in and explanations read.

Every model family fits an :class:`~alsmf.model.MFModel` whose user (item) vectors are, or
stand in for, the solutions of one regularised least-squares system per row against the other
side's fixed factors. Fold-in of a new user, updating a trained one and explaining a
prediction all solve that same system, so the model carries it as a :class:`RowSystem`
(saved with it), not as the settings of whatever trained it.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RowSystem:
    """One row's system: minimise over x = [p, b]

        Σ_j (t_j − μ − b_j − b − p·q_j)² + w (λ‖p‖² + λ_b b²) + g Σ_all columns (p·q)²
            + (implicit terms)

    over the row's ratings of columns j with factors q_j and biases b_j, where the target
    t_j is the rating r_j, or one constant ``target`` for implicit feedback (where a rated
    column means "used", whatever the value). The term over all columns, weighted by
    ``gram_weight`` g, is implicit-feedback ALS's unobserved part: it adds g QᵀQ to every
    row's Gram matrix.

    Attributes:
        reg: λ, the L2 weight on the row's factors.
        reg_bias: λ_b, the L2 weight on the row's bias.
        weighted_reg: w is the row's number of ratings (ALS-WR); else w = 1.
        biases: the model has μ, b_u, b_i (else the row solves for p alone).
        implicit_weight: weight of the implicit-feature terms (who rated what) in this
            system's units; 0 when the model has none (:mod:`alsmf.models.implicit_features`).
        rating_scale: (lowest, highest) rating of the training data, or None when unknown
            (models saved before alsmf recorded it, implicit-feedback models).
        gram_weight: g, the weight of the other side's whole Gram matrix (0: none).
        target: the target of every rated column (None: the ratings themselves).
    """

    reg: float
    reg_bias: float
    weighted_reg: bool
    biases: bool
    implicit_weight: float = 0.0
    rating_scale: tuple[float, float] | None = None
    gram_weight: float = 0.0
    target: float | None = None

    def ridge(self, count: int, factors: int) -> np.ndarray:
        """The diagonal a row with ``count`` ratings adds to its k (+1 with biases) unknowns."""
        weight = count if self.weighted_reg else 1
        ridge = np.r_[np.full(factors, self.reg), [self.reg_bias]] * weight
        return ridge if self.biases else ridge[:factors]

    def targets(self, values: np.ndarray) -> np.ndarray:
        """What a row's rated columns are fitted to: ``values`` (float64), or ``target`` for
        each of them."""
        values = np.asarray(values, dtype=np.float64)
        return values if self.target is None else np.full(values.shape, self.target)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the scale as a two-element list or None)."""
        fields = asdict(self)
        fields["rating_scale"] = None if self.rating_scale is None else list(self.rating_scale)
        return fields

    @classmethod
    def from_dict(cls, fields: Any) -> RowSystem:
        """The system :meth:`to_dict` wrote, by this or an older alsmf; ``ValueError`` naming
        the first bad field."""
        if not isinstance(fields, dict):
            raise ValueError(f"the row system is {type(fields).__name__}, not an object")
        # a file written before a field existed leaves it out: it takes its default
        defaults = {field.name: field.default for field in dataclass_fields(cls)
                    if field.default is not MISSING}
        required = {field.name for field in dataclass_fields(cls)} - set(defaults)
        if not required <= set(fields) <= required | set(defaults):
            raise ValueError(f"the row system has fields {sorted(fields)}, expected "
                             f"{sorted(required)} and any of {sorted(defaults)}")
        fields = defaults | fields
        for name in ("reg", "reg_bias", "implicit_weight", "gram_weight", "target"):
            value = fields[name]
            if name == "target" and value is None:
                continue
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and value >= 0):
                raise ValueError(f"the row system's {name} is {value!r}, not a number >= 0")
        for name in ("weighted_reg", "biases"):
            if not isinstance(fields[name], bool):
                raise ValueError(f"the row system's {name} is {fields[name]!r}, not true/false")
        scale = fields["rating_scale"]
        if scale is not None:
            if not (isinstance(scale, list) and len(scale) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                            and math.isfinite(v) for v in scale) and scale[0] <= scale[1]):
                raise ValueError(f"the row system's rating_scale is {scale!r}, not [low, high]")
            scale = (float(scale[0]), float(scale[1]))
        target = fields["target"]
        return cls(reg=float(fields["reg"]), reg_bias=float(fields["reg_bias"]),
                   weighted_reg=fields["weighted_reg"], biases=fields["biases"],
                   implicit_weight=float(fields["implicit_weight"]), rating_scale=scale,
                   gram_weight=float(fields["gram_weight"]),
                   target=None if target is None else float(target))


def rating_scale(values: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) of the training ratings, or None when there are none."""
    if not len(values):
        return None
    return float(np.min(values)), float(np.max(values))
