"""The ``fit`` that every method's settings class inherits.

A settings class (``ALS``, ``BayesianMF``, each baseline) is a frozen dataclass that says how
to start a run (:meth:`Trainer.start`, returning a
:class:`~alsmf.training.loop.TrainingState`) and how many iterations it has
(:attr:`Trainer.rounds`); :meth:`Trainer.fit` does the rest the same way for all of them:
threads, the memory check, the loop with its callback, Ctrl-C handling and checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from alsmf.data.ratings import Ratings
from alsmf.model import MFModel
from alsmf.threads import compute_threads
from alsmf.training.loop import (Callback, Checkpoints, TrainingState,
                                 check_checkpoint_every, run_training)


class Trainer:
    """The shared part of every method's settings class (a mixin of frozen dataclasses).

    Attributes:
        resumable: settings that may change between a checkpoint and the run resuming it.
        threads_options: how ``fit`` sets threads when none are given
            (:func:`~alsmf.threads.compute_threads`'s ``default`` and ``blas_threads``).
    """

    resumable: ClassVar[tuple[str, ...]] = ()
    threads_options: ClassVar[dict[str, Any]] = {}

    @property
    def rounds(self) -> int:
        """How many iterations a fit runs at most."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict, with the method's name as ``"method"``."""
        raise NotImplementedError

    def start(self, train: Ratings, test: Ratings | None = None) -> TrainingState:
        """The state of a new run on ``train`` (compacted), scored on ``test`` if given."""
        raise NotImplementedError

    def check_resources(self, train: Ratings) -> None:
        """Refuse a run that cannot fit in memory, before anything is allocated."""

    def fit(self, train: Ratings, test: Ratings | None = None, *,
            callback: Callback | None = None, threads: int | None = None,
            checkpoint: str | Path | None = None, checkpoint_every: int = 1,
            resume: bool = False) -> MFModel:
        """Train on ``train``; report test RMSE per iteration when ``test`` is given.

        The model knows the users and items that have training ratings; test ratings of other
        ids are scored with the model's fallback, as they would be in use.

        Args:
            train: training ratings.
            test: optional held-out ratings (any id space; matched by raw id).
            callback: called after each iteration with its record and the model so far;
                returning True stops training.
            threads: number of threads for the parallel steps (default: all cores).
            checkpoint: file written (atomically) every ``checkpoint_every`` iterations, so
                a killed run can be resumed; it loads as a model.
            checkpoint_every: iterations between checkpoints (>= 1).
            resume: continue from ``checkpoint`` when that file exists. An iteration depends
                only on the state the previous one left, which the file holds exactly, so
                the result is bit-identical to an uninterrupted run. The file must come from
                the same settings (those in ``resumable`` may differ) and the same data.

        Raises:
            NumericalError: a row's system could not be solved; the message names the row
                and iteration.
            TrainingInterrupted: Ctrl-C; its ``model`` is the model after the last finished
                iteration (the iteration in progress is rolled back).
            ConfigError: bad ``threads`` or ``checkpoint_every``, a run too large for the
                memory, or a checkpoint that does not match these settings or data.
        """
        check_checkpoint_every(checkpoint_every)
        checkpoints = (None if checkpoint is None
                       else Checkpoints(Path(checkpoint), checkpoint_every, resume))
        with compute_threads(threads, **self.threads_options):
            train = train.compact()
            self.check_resources(train)
            state = self.start(train, test)
            return run_training(state, self.rounds, callback=callback, checkpoints=checkpoints)
