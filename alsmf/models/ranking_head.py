"""The ranking head of a rating model: implicit-feedback ALS on who rated what, trained alongside.

A rating model's lists rank by the score of :mod:`alsmf.ranking`, which needs a model of
whether a user would pick an item at all. The head is that model: :class:`ImplicitALS` fitted
to the same training ratings, every rated pair counting as "used". It is trained in the same
run, one head iteration with each of the rating model's first ``rank_iterations`` iterations,
so the loop's Ctrl-C rollback, checkpoints and resume cover it as they cover the rating model;
the iteration records (objective, RMSE) stay the rating model's. The head's vectors and row
system are stored with the model.

Its settings are the rating model's ``rank_*`` fields; ``rank_factors = 0`` trains no head,
and lists then rank by predicted rating. The defaults (k 64, λ 20, α 1, 10 iterations) lie
on the flat optimum of a grid over k 48..128, λ 10..50, α 0.5..2 and 10..25 iterations, scored
on validation data carved from the ml-100k training folds (``benchmarks/ranking_score.py``):
the settings near the best all had λ 20 and α 1, whatever k and the iteration count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from alsmf.checks import is_int_in, is_number
from alsmf.data.ratings import Ratings
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.implicit_als import ImplicitALS, ImplicitALSState
from alsmf.ranking import RANKING_ITEM_FACTORS, RANKING_USER_FACTORS

RANK_FACTORS = 64
"""Default k of the ranking head (0: no head)."""
RANK_REG = 20.0
"""Default λ of the ranking head."""
RANK_ALPHA = 1.0
"""Default α of the ranking head (a rated pair's confidence is 1 + α)."""
RANK_ITERATIONS = 10
"""Default number of ranking-head iterations."""


def head_checks(config: Any) -> list[tuple[bool, str]]:
    """The checks of a settings class's ``rank_*`` fields, for :func:`check_settings`."""
    return [
        (is_int_in(config.rank_factors, 0, 1024),
         f"rank_factors must be an integer from 0 (no ranking head) to 1024, got "
         f"{config.rank_factors!r}"),
        (is_number(config.rank_reg) and 0 < config.rank_reg < math.inf,
         f"rank_reg must be a finite number > 0, got {config.rank_reg!r}"),
        (is_number(config.rank_alpha) and 0 <= config.rank_alpha < math.inf,
         f"rank_alpha must be a finite number >= 0, got {config.rank_alpha!r}"),
        (is_int_in(config.rank_iterations, 1, 100_000),
         f"rank_iterations must be an integer from 1 to 100000, got "
         f"{config.rank_iterations!r}"),
    ]


def head_settings(config: Any) -> ImplicitALS | None:
    """The implicit-feedback ALS settings of ``config``'s ranking head; None without one."""
    if config.rank_factors == 0:
        return None
    return ImplicitALS(factors=config.rank_factors, reg=config.rank_reg,
                       alpha=config.rank_alpha, iterations=config.rank_iterations,
                       seed=config.seed)


def head_bytes(config: Any, train: Ratings) -> int:
    """Memory the ranking head's training adds (0 without one)."""
    head = head_settings(config)
    return 0 if head is None else head.training_bytes(train)


def with_ranking_head(config: Any, state: Any, train: Ratings) -> Any:
    """``state`` with ``config``'s ranking head training alongside (``state`` itself when
    ``rank_factors`` is 0)."""
    head = head_settings(config)
    if head is None:
        return state
    return WithRankingHead(state, head.start(train), head.iterations)


class WithRankingHead:
    """A rating model's training state and its ranking head's, driven as one.

    Each iteration steps the rating model, then (in the first ``head_iterations``) the head;
    Ctrl-C rolls both back. Scores, the stopping rule and the settings a checkpoint is
    matched against are the rating model's (its settings include the ``rank_*`` fields);
    every model it hands out carries the head's vectors and row system.
    """

    def __init__(self, main: Any, head: ImplicitALSState, head_iterations: int) -> None:
        self.main = main
        self.head = head
        self.head_iterations = head_iterations

    @property
    def settings(self) -> dict[str, Any]:
        return self.main.settings

    @property
    def resumable(self) -> tuple[str, ...]:
        return self.main.resumable

    def step(self, iteration: int) -> None:
        self.main.step(iteration)
        if iteration <= self.head_iterations:
            self.head.step(iteration)

    def score(self) -> tuple[float, float, float | None]:
        return self.main.score()

    def snapshot(self) -> tuple[Any, Any]:
        return self.main.snapshot(), self.head.snapshot()

    def roll_back(self, snapshot: tuple[Any, Any]) -> None:
        self.main.roll_back(snapshot[0])
        self.head.roll_back(snapshot[1])

    def stops(self, record: IterationRecord, previous: float) -> bool:
        return self.main.stops(record, previous)

    def progress(self, history: list[IterationRecord]) -> MFModel:
        return self._attach(self.main.progress(history))

    def model(self, history: list[IterationRecord]) -> MFModel:
        return self._attach(self.main.model(history))

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        model, arrays = self.main.checkpoint(history)
        return self._attach(model), arrays

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        self.main.restore(saved, arrays)
        self.head.live.user_factors[...] = saved.extras[RANKING_USER_FACTORS]
        self.head.live.item_factors[...] = saved.extras[RANKING_ITEM_FACTORS]

    def _attach(self, model: MFModel) -> MFModel:
        """``model`` with the head's vectors (shared, not copied) and row system."""
        model.extras[RANKING_USER_FACTORS] = self.head.live.user_factors
        model.extras[RANKING_ITEM_FACTORS] = self.head.live.item_factors
        model.ranking_system = self.head.system
        return model
