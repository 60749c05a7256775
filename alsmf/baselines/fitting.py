"""What every baseline's training shares: the state the training loop drives, made from a step.

A baseline fits an ordinary :class:`~alsmf.model.MFModel`, so prediction, RMSE,
recommendation, fold-in, saving and plots work on it unchanged. Its ``start`` builds the model
(:func:`~alsmf.training.builder.model_over`) and a :class:`BaselineState` from its update
step and its objective; the loop (:mod:`alsmf.training.loop`) then records one
:class:`~alsmf.history.IterationRecord` per epoch or iteration and calls the callback after
each, as for ALS, so ``alsmf compare`` can draw every method's test RMSE per iteration and
per second, and checkpoints and Ctrl-C work alike for every method.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.training.loop import LiveModelState, generator_state, set_generator_state
from alsmf.training.scoring import TestPairs, rmse_from_sse, score_test, training_sse


class BaselineState(LiveModelState):
    """A baseline's run: its model, updated in place by ``update``, and how it is scored.

    Args:
        config: the baseline's settings (its ``params()`` and ``resumable`` are recorded).
        train: the (compacted) training ratings the model was built over.
        test: held-out ratings to score after each iteration, or None.
        model: the model being fitted.
        update: runs iteration ``n`` (1-based) on the model, in place.
        objective: the objective after an iteration, from its training squared error.
        stop: ends training after an iteration when it returns True (None: never early).
        rng: a generator the iterations draw from as they go; its state is checkpointed.
        sse: the training squared error after an iteration, when ``update`` already has it
            (None: summed over the training ratings).
    """

    def __init__(self, config: Any, train: Ratings, test: Ratings | None, model: MFModel,
                 update: Callable[[int], None], objective: Callable[[float], float], *,
                 stop: Callable[[IterationRecord], bool] | None = None,
                 rng: np.random.Generator | None = None,
                 sse: Callable[[], float] | None = None) -> None:
        self.settings = config.params()
        self.resumable = config.resumable
        self.live = model
        self.update = update
        self.objective = objective
        self.stop = stop
        self.rng = rng
        self.sse = sse
        self.by_user = train.by_user()
        self.test_pairs = TestPairs.of(test, train)

    def step(self, iteration: int) -> None:
        self.update(iteration)

    def score(self) -> tuple[float, float, float | None]:
        sse = training_sse(self.by_user, self.live) if self.sse is None else self.sse()
        return (self.objective(sse), rmse_from_sse(sse, self.by_user.nnz),
                score_test(self.test_pairs, self.live))

    def stops(self, record: IterationRecord, previous: float) -> bool:
        return self.stop is not None and self.stop(record)

    def changing_arrays(self) -> tuple[np.ndarray, ...]:
        model = self.live
        return model.user_factors, model.item_factors, model.user_bias, model.item_bias

    def snapshot(self) -> tuple[tuple[np.ndarray, ...], float]:
        return super().snapshot(), self.live.global_mean  # the SVD sets μ as it centres

    def roll_back(self, snapshot: tuple[tuple[np.ndarray, ...], float]) -> None:
        arrays, self.live.global_mean = snapshot
        super().roll_back(arrays)

    def checkpoint_extras(self) -> dict[str, np.ndarray]:
        return {} if self.rng is None else {"generator": generator_state(self.rng)}

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        for target, source in zip(self.changing_arrays(),
                                  (saved.user_factors, saved.item_factors, saved.user_bias,
                                   saved.item_bias)):
            target[...] = source
        self.live.global_mean = saved.global_mean
        if self.rng is not None:
            set_generator_state(self.rng, arrays["generator"])


def weighted_norms(train: Ratings, model: MFModel) -> tuple[float, float]:
    """(Σ_u n_u ‖p_u‖² + Σ_i n_i ‖q_i‖², Σ_u n_u b_u² + Σ_i n_i b_i²): the penalties of a
    per-rating regulariser, where each rating shrinks its user's and its item's parameters."""
    users, items = train.user_counts(), train.item_counts()
    factors = (np.dot(users, np.einsum("ij,ij->i", model.user_factors, model.user_factors))
               + np.dot(items, np.einsum("ij,ij->i", model.item_factors, model.item_factors)))
    biases = (np.dot(users, np.square(model.user_bias))
              + np.dot(items, np.square(model.item_bias)))
    return float(factors), float(biases)
