"""What one training iteration achieved: the record a model's history keeps.

Its own module so that the model, the file format and the training loop can all use it
without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class IterationRecord:
    """What one training iteration achieved.

    Attributes:
        iteration: 1-based iteration number.
        objective: the training loss (squared error plus the L2 penalty) after the iteration.
        train_rmse: RMSE on the training ratings of the fit the objective measures (before
            predictions are clipped to the rating scale).
        test_rmse: RMSE on the test ratings, or ``None`` without a test set.
        seconds: wall time of the iteration (both half-steps and the evaluation).
        solve_seconds: wall time of the two half-steps alone (what other ALS libraries report
            as their time per iteration, since they do not evaluate the loss as they go).
    """

    iteration: int
    objective: float
    train_rmse: float
    test_rmse: float | None
    seconds: float
    solve_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``test_rmse`` is ``None`` when there was no test set)."""
        return asdict(self)
