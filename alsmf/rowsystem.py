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

from alsmf.errors import DataError

CONFIDENCE_KINDS = ("constant", "linear", "log")
"""How implicit feedback's confidence in a used pair grows with the pair's value r: f(r) = 1
(the value plays no part), f(r) = r, or f(r) = log(1 + r/ε) (:func:`confidence_signal`)."""


@dataclass(frozen=True)
class RowSystem:
    """One row's system: minimise over x = [p, b]

        Σ_j ω_j (t_j − μ − b_j − b − p·q_j)² + w (λ‖p‖² + λ_b b²) + g Σ_all columns (p·q)²
            + (implicit terms)

    over the row's ratings of columns j with factors q_j and biases b_j, where the target
    t_j is the rating r_j, or one constant ``target`` T for implicit feedback (where a rated
    column means "used", whatever the value), and every weight ω_j is 1. The term over all
    columns, weighted by ``gram_weight`` g, is implicit-feedback ALS's unobserved part: it
    adds g QᵀQ to every row's Gram matrix.

    Implicit feedback may also trust a used column more the larger its value r_j (Hu et al.'s
    confidence c = 1 + α f(r)): with ``confidence`` other than ``"constant"``, column j
    weighs ω_j = 1 + β (f(r_j) − 1) and its target t_j is such that
    ω_j t_j = T + β (f(r_j) − 1), β = ``confidence_slope``. A column with f = 1 weighs 1 with
    target T, as every column does with constant confidence, and each unit of f adds β to its
    weight and to its right-hand side alike, as c enters both (see
    :mod:`alsmf.models.implicit_als`).

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
        confidence: f, a name in :data:`CONFIDENCE_KINDS`; ``"constant"`` (ω = 1) unless
            ``target`` is set.
        confidence_slope: β, the weight one unit of f adds (0 with constant confidence).
        epsilon: ε of ``"log"`` (1 for the other kinds).
    """

    reg: float
    reg_bias: float
    weighted_reg: bool
    biases: bool
    implicit_weight: float = 0.0
    rating_scale: tuple[float, float] | None = None
    gram_weight: float = 0.0
    target: float | None = None
    confidence: str = "constant"
    confidence_slope: float = 0.0
    epsilon: float = 1.0

    def ridge(self, count: int, factors: int) -> np.ndarray:
        """The diagonal a row with ``count`` ratings adds to its k (+1 with biases) unknowns."""
        weight = count if self.weighted_reg else 1
        ridge = np.r_[np.full(factors, self.reg), [self.reg_bias]] * weight
        return ridge if self.biases else ridge[:factors]

    def targets(self, values: np.ndarray) -> np.ndarray:
        """What a row's rated columns are fitted to, float64: ``values``, ``target`` for each
        of them, or with value-dependent confidence each column's t_j (the class docstring).
        """
        values = np.asarray(values, dtype=np.float64)
        if self.target is None:
            return values
        if self.confidence == "constant":
            return np.full(values.shape, self.target)
        shift = self._weight_shift(values)
        return (self.target + shift) / (1.0 + shift)

    def weights(self, values: np.ndarray) -> np.ndarray | None:
        """Each rated column's weight ω_j (float64) for the row's ``values``, or None when
        every column weighs 1 (every rating model, constant confidence), which the half-step
        kernels then run without.

        Raises:
            DataError: a value is outside what the confidence takes (not a finite number >= 0)
                or gives its column a weight of 0 or less (its confidence is not above the
                unobserved pairs' weight).
        """
        if self.confidence == "constant":
            return None
        return 1.0 + self._weight_shift(values)

    def _weight_shift(self, values: np.ndarray) -> np.ndarray:
        """β (f(r) − 1) of each value: what it adds to its column's weight and its ω·t;
        ``DataError`` where the weight would not be positive (see :meth:`weights`)."""
        shift = self.confidence_slope * (confidence_signal(self.confidence, values,
                                                           self.epsilon) - 1.0)
        if not np.all(shift > -1.0):
            bad = int(np.argmin(shift))
            raise DataError(
                f"value {np.asarray(values)[bad]:g} gives its pair a weight of "
                f"{1.0 + shift[bad]:.3g} (confidence {self.confidence!r}): a used pair's "
                "confidence must be above the unobserved weight; raise alpha or lower "
                "unobserved_weight")
        return shift

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
        for name in ("reg", "reg_bias", "implicit_weight", "gram_weight", "target",
                     "confidence_slope", "epsilon"):
            value = fields[name]
            if name == "target" and value is None:
                continue
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and value >= 0):
                raise ValueError(f"the row system's {name} is {value!r}, not a number >= 0")
        for name in ("weighted_reg", "biases"):
            if not isinstance(fields[name], bool):
                raise ValueError(f"the row system's {name} is {fields[name]!r}, not true/false")
        if fields["confidence"] not in CONFIDENCE_KINDS:
            raise ValueError(f"the row system's confidence is {fields['confidence']!r}, not "
                             f"one of {', '.join(CONFIDENCE_KINDS)}")
        if fields["confidence"] != "constant" and fields["target"] is None:
            raise ValueError("the row system weighs its ratings by confidence but has no "
                             "target")
        if fields["epsilon"] == 0:
            raise ValueError("the row system's epsilon is 0, not a number > 0")
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
                   target=None if target is None else float(target),
                   confidence=fields["confidence"],
                   confidence_slope=float(fields["confidence_slope"]),
                   epsilon=float(fields["epsilon"]))


def confidence_signal(kind: str, values: np.ndarray, epsilon: float) -> np.ndarray:
    """f(r) of each value r (float64), by which a used pair's confidence 1 + α f(r) grows:
    1 (``"constant"``), r (``"linear"``) or log(1 + r/ε) (``"log"``, Hu et al.'s damped
    form for counts that span orders of magnitude).

    Raises:
        DataError: for ``"linear"`` or ``"log"``, a value is not a finite number >= 0 (a
            count, or a rating used as a signal).
    """
    values = np.asarray(values, dtype=np.float64)
    if kind == "constant":
        return np.ones(values.shape)
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        raise DataError(f"value {values[bad][0]:g} is not a finite number >= 0, which "
                        f"confidence {kind!r} takes (a count, or a rating used as a signal)")
    return values if kind == "linear" else np.log1p(values / epsilon)


def rating_scale(values: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) of the training ratings, or None when there are none."""
    if not len(values):
        return None
    return float(np.min(values)), float(np.max(values))
