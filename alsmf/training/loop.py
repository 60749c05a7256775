"""The one training loop every method runs: iterate, time, record, call back, stop, save.

A method describes a run as a :class:`TrainingState`: how to take iteration ``n``, how to
score the result, and which arrays an iteration changes. The loop owns the rest, the same for
all: the :class:`~alsmf.history.IterationRecord` of each iteration and its timing, the
callback (which can stop training), the state's own stopping rule, the rollback of a
half-finished iteration on Ctrl-C (:class:`TrainingInterrupted` carries the model of the last
finished one), and checkpoints: every few iterations the model and the state's remaining
arrays are written atomically, and a resumed run checks that the checkpoint comes from the
same settings and data before it continues, bit for bit where the uninterrupted run would
have gone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from alsmf import store
from alsmf.errors import AlsmfError, ConfigError
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.model_checks import check_model

Score = tuple[float, float, "float | None"]
"""(objective, train RMSE, test RMSE or None) of the state as it stands."""

Callback = Callable[[IterationRecord, Any], "bool | None"]
"""Called after every iteration with its record and the state's progress view (in-process:
the model so far); return True to stop."""


class TrainingState(Protocol):
    """One training run of one method, driven by :func:`run_training`."""

    def step(self, iteration: int) -> None:
        """Run iteration ``iteration`` (1-based), updating the state in place."""

    def score(self) -> Score:
        """The objective, train RMSE and test RMSE after the last step."""

    def snapshot(self) -> Any:
        """What :meth:`roll_back` needs to undo the next step (taken before each one)."""

    def roll_back(self, snapshot: Any) -> None:
        """Undo a step interrupted halfway, back to the state of ``snapshot``."""

    def stops(self, record: IterationRecord, previous: float) -> bool:
        """Whether training ends after ``record`` (``previous``: the last objective)."""

    def progress(self, history: list[IterationRecord]) -> Any:
        """What the callback receives: in-process, the model so far (cheap, shared arrays)."""

    def model(self, history: list[IterationRecord]) -> MFModel:
        """The model as it stands, with ``history``: the result, and a checkpoint's model."""


class ResumableState(TrainingState, Protocol):
    """A training state that can be checkpointed and resumed.

    Attributes:
        settings: the method's ``params()``: matched against a checkpoint's on resume.
        resumable: settings that may differ when resuming (for example the iteration count).
    """

    settings: dict[str, Any]
    resumable: tuple[str, ...]

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        """What a checkpoint saves: a model (with ``history``) and the state's arrays that the
        model does not hold."""

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's model and arrays (already checked to match)."""


@dataclass(frozen=True)
class Checkpoints:
    """Where and how often a run writes its checkpoint, and whether it resumes from it.

    Attributes:
        path: the checkpoint file (a model file with the state's extra arrays).
        every: iterations between checkpoints (>= 1).
        resume: continue from ``path`` when that file exists.
    """

    path: Path
    every: int = 1
    resume: bool = False

    def __post_init__(self) -> None:
        check_checkpoint_every(self.every)


def check_checkpoint_every(every: object) -> None:
    """ConfigError unless ``every`` (iterations between checkpoints) is an integer >= 1."""
    if not (isinstance(every, (int, np.integer)) and not isinstance(every, bool) and every >= 1):
        raise ConfigError(f"checkpoint_every must be an integer >= 1, got {every!r}")


class TrainingInterrupted(AlsmfError):
    """Training was stopped by Ctrl-C; ``model`` holds the last finished iteration."""

    def __init__(self, model: MFModel) -> None:
        super().__init__(f"training interrupted after iteration {len(model.history)}")
        self.model = model


def run_training(state: TrainingState, iterations: int, *, callback: Callback | None = None,
                 checkpoints: Checkpoints | None = None) -> MFModel:
    """Run ``state`` for up to ``iterations`` iterations; return its model.

    Iterations stop early when the callback returns True or the state's :meth:`stops` says
    so. Ctrl-C rolls a half-finished iteration back and raises :class:`TrainingInterrupted`
    with the model of the last finished one (the iteration in progress, once it is scored:
    Ctrl-C while its checkpoint is written or its callback runs keeps it; the checkpoint
    file is then the previous one, or the new one whole, never a part).

    Raises:
        ConfigError: a checkpoint to resume from that comes from other settings or data, or
            holds more iterations than ``iterations``.

    With ``checkpoints``, ``state`` must be a :class:`ResumableState`.
    """
    history: list[IterationRecord] = []
    if checkpoints is not None and checkpoints.resume and checkpoints.path.exists():
        history = _resume(state, checkpoints.path, iterations)
    previous = history[-1].objective if history else math.inf
    for iteration in range(len(history) + 1, iterations + 1):
        snapshot = state.snapshot()
        try:
            started = time.perf_counter()
            state.step(iteration)
            stepped = time.perf_counter()
            objective, train_rmse, test_rmse = state.score()
        except KeyboardInterrupt:
            state.roll_back(snapshot)
            raise TrainingInterrupted(state.model(history)) from None
        record = IterationRecord(iteration, float(objective), float(train_rmse), test_rmse,
                                 time.perf_counter() - started, stepped - started)
        history.append(record)
        try:  # the iteration is finished: Ctrl-C from here on keeps it
            if checkpoints is not None and iteration % checkpoints.every == 0:
                model, arrays = state.checkpoint(history)
                store.save_dataclass(model, checkpoints.path, state=arrays)
            if callback is not None and callback(record, state.progress(history)):
                break
        except KeyboardInterrupt:
            raise TrainingInterrupted(state.model(history)) from None
        if state.stops(record, previous):
            break
        previous = objective
    return state.model(history)


def _resume(state: ResumableState, path: Path, iterations: int) -> list[IterationRecord]:
    """Restore ``state`` from the checkpoint at ``path``; its history.

    The model keeps its training ratings, so the data check is exact: same ids, same
    (user, item, rating) triples.
    """
    saved, arrays = store.load_with_state(MFModel, path)
    check_model(saved, path)
    # the saved params may add what training derived (a sampler's noise precision): only the
    # settings are compared
    changed = sorted(k for k, v in state.settings.items()
                     if k not in state.resumable and saved.params.get(k, _MISSING) != v)
    if changed:
        raise ConfigError(f"{path}: the checkpoint was trained with other settings "
                          f"({', '.join(changed)}); delete it or train without --resume")
    current = state.model([])
    same_data = (np.array_equal(saved.user_ids, current.user_ids)
                 and np.array_equal(saved.item_ids, current.item_ids)
                 and np.array_equal(saved.seen_indptr, current.seen_indptr)
                 and np.array_equal(saved.seen_indices, current.seen_indices)
                 and saved.seen_values is not None
                 and np.array_equal(saved.seen_values, current.seen_values))
    if not same_data:
        raise ConfigError(f"{path}: the checkpoint was trained on other data; delete it "
                          "or train without --resume")
    if len(saved.history) > iterations:
        raise ConfigError(f"{path}: the checkpoint has {len(saved.history)} iterations, "
                          f"more than the {iterations} asked for")
    state.restore(saved, arrays)
    return list(saved.history)


_MISSING = object()


class InPlaceArrays:
    """Snapshot and rollback for a state whose iterations rewrite a fixed set of arrays.

    A subclass lists them in :meth:`changing_arrays`; a snapshot is their copies (a few MB,
    taken before each iteration).
    """

    def changing_arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays an iteration writes, in place."""
        raise NotImplementedError

    def snapshot(self) -> tuple[np.ndarray, ...]:
        return tuple(array.copy() for array in self.changing_arrays())

    def roll_back(self, snapshot: tuple[np.ndarray, ...]) -> None:
        for target, saved in zip(self.changing_arrays(), snapshot):
            target[...] = saved


class LiveModelState(InPlaceArrays):
    """A state whose iterations update its model's own arrays in place (``live``): the model
    as it stands is that object, and a checkpoint is that model plus
    :meth:`checkpoint_extras`."""

    live: MFModel

    def progress(self, history: list[IterationRecord]) -> MFModel:
        return self.model(history)

    def model(self, history: list[IterationRecord]) -> MFModel:
        self.live.history = history
        return self.live

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        return self.model(history), self.checkpoint_extras()

    def checkpoint_extras(self) -> dict[str, np.ndarray]:
        """State that the model's arrays do not hold (none unless a subclass has some)."""
        return {}


def generator_state(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's state as four uint64 words and its cached 32-bit draw, so that a
    checkpoint of a method that draws as it goes (SGD's shuffles) resumes the same stream."""
    state = rng.bit_generator.state
    mask = (1 << 64) - 1
    words = [state["state"]["state"], state["state"]["inc"]]
    return np.array([words[0] >> 64, words[0] & mask, words[1] >> 64, words[1] & mask,
                     state["has_uint32"], state["uinteger"]], dtype=np.uint64)


def set_generator_state(rng: np.random.Generator, saved: np.ndarray) -> None:
    """Put back a state written by :func:`generator_state`."""
    words = [int(w) for w in saved]
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (words[0] << 64) | words[1], "inc": (words[2] << 64) | words[3]},
        "has_uint32": words[4], "uinteger": words[5]}
