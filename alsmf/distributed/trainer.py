"""Training on a Dask cluster: the same model as ``fit``, computed on the workers.

:func:`train_distributed` loads the ratings into blocks on the workers
(:mod:`alsmf.distributed.ingest`) and drives a run's state through the one training loop:
:class:`~alsmf.distributed.state.DaskState` for ALS and implicit-feedback ALS,
:class:`~alsmf.distributed.gibbs.DaskGibbsState` for the Gibbs sampler, each with its ranking
head beside it as in-process.
"""


from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import dask
import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.distributed.cluster import steals_work, worker_addresses
from alsmf.distributed.gibbs import DaskGibbsState
from alsmf.distributed.ingest import load
from alsmf.distributed.state import DaskState, TrainingProgress
from alsmf.errors import ConfigError
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.als import ALS
from alsmf.models.bayes import BayesianMF
from alsmf.models.implicit_als import ImplicitALS
from alsmf.models.ranking_head import WithRankingHead, head_settings
from alsmf.ranking import RANKING_ITEM_FACTORS, RANKING_USER_FACTORS
from alsmf.training.loop import Checkpoints, check_checkpoint_every, run_training


DistributedCallback = Callable[[IterationRecord, TrainingProgress], "bool | None"]
"""Called after every iteration with its record; return True to stop."""


def train_distributed(
    config: ALS | ImplicitALS | BayesianMF,
    train: Ratings | str | Path,
    test: Ratings | None = None,
    *,
    client: Any,
    n_blocks: int | None = None,
    callback: DistributedCallback | None = None,
    keep_seen: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
) -> MFModel:
    """Train ``config`` on a Dask cluster; the model equals ``config.fit(train, test)``'s.

    ``config`` is a rating model's ``ALS`` settings (with its implicit features and ranking
    head, as by default), ``BayesianMF`` settings (the Gibbs sampler,
    :mod:`alsmf.distributed.gibbs`) or implicit-feedback ``ImplicitALS`` settings (constant
    confidence). A rating model's ranking head is a second run on the same rating blocks,
    stepped beside it as in-process (:class:`~alsmf.models.ranking_head.WithRankingHead`).

    The factors equal the in-process trainer's bit for bit, for any number of workers or blocks; the
    objective and RMSEs in ``history`` are summed per block, so they agree to rounding (the
    sampler's squared error and training RMSE are exact). ``solve_seconds`` of a record runs until
    the last block of the user half-step is solved, which includes the block's figures (computed
    inside those tasks); ``seconds`` adds gathering them. Ctrl-C raises ``TrainingInterrupted`` with
    the model of the last finished iteration, as in-process.

    Args:
        config: the settings, as for ``ALS.fit``, ``BayesianMF.fit`` or ``ImplicitALS.fit``.
        train: ratings in memory, or a Parquet file or folder with columns user, item, rating
            that the workers read (the ratings then never pass through the client; ratings
            are stored as float32, and repeated (user, item) pairs are refused).
        test: optional held-out ratings; the test RMSE is computed on the workers.
        client: a ``distributed.Client`` connected to the cluster.
        n_blocks: blocks per side (default: the number of workers); any number gives the
            same model, more blocks balance the load better but send more messages.
        callback: called after each iteration with the record and a
            :class:`TrainingProgress`; returning True stops training.
        keep_seen: gather each user's training ratings into the model at the end (needed to
            skip seen items when recommending, and by fold-in with ``user=``); False leaves
            the model without them, for data larger than the client's memory.
        checkpoint, checkpoint_every, resume: as for ``fit``: the model (the sampler's whole state)
            is gathered and written every ``checkpoint_every`` iterations, and a resumed run
            continues bit for bit. Each checkpoint is also the new root of the tasks' lineage, so a
            worker lost later is recomputed from it, never from iteration 1 (without checkpoints,
            Dask recomputes a lost block from the start).

    Raises:
        ConfigError: a bad ``n_blocks``, an empty cluster, or settings Dask does not train
            yet (named).
        DataError: unreadable or invalid training data (raised from the workers).
        NumericalError: a row could not be solved, naming the row and iteration.
    """
    workers = worker_addresses(client)
    if not workers:
        raise ConfigError("the Dask cluster has no workers; start some or use --workers N")
    if n_blocks is None:
        n_blocks = len(workers)
    if not (isinstance(n_blocks, (int, np.integer)) and not isinstance(n_blocks, bool)
            and n_blocks >= 1):
        raise ConfigError(f"n_blocks must be an integer >= 1, got {n_blocks!r}")
    if isinstance(config, ImplicitALS) and config.confidence != "constant":
        raise ConfigError(f"distributed training supports implicit-feedback ALS with constant "
                          f"confidence only, not confidence={config.confidence!r} (its per-pair "
                          "weights are not sent to the workers yet): train in-process")
    check_checkpoint_every(checkpoint_every)
    if checkpoint is not None and not keep_seen:
        raise ConfigError("checkpoints keep the training ratings, to check on resume that the "
                          "data are the same: use keep_seen=True or train without checkpoints")
    if steals_work(client):
        warnings.warn("the Dask scheduler has work stealing on: a thief fetches a block's "
                      "ratings and factors to run its tasks elsewhere, which costs time and "
                      "memory (the model is the same); start the scheduler with "
                      "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING=False", stacklevel=2)
    key = f"alsmf-{uuid.uuid4().hex[:8]}"
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1 GiB"}):
        data = load(client, train, test, int(n_blocks), key)  # in-memory data ride in the graph
    state: Any = (DaskGibbsState(config, client, data, key, keep_seen, test)
                  if isinstance(config, BayesianMF)
                  else DaskState(config, client, data, key, keep_seen))
    head = head_settings(config) if isinstance(config, (ALS, BayesianMF)) else None
    if head is not None:
        state = DaskWithRankingHead(state, DaskState(head, client, data, f"{key}-head",
                                                     keep_seen=False, scored=False),
                                    head.iterations)
    checkpoints = (None if checkpoint is None
                   else Checkpoints(Path(checkpoint), checkpoint_every, resume))
    try:
        return run_training(state, config.rounds, callback=callback,
                            checkpoints=checkpoints)
    finally:  # the workers drop the run's blocks now, not when the client's objects are freed
        data.blocks = {}
        state.release()


class DaskWithRankingHead(WithRankingHead):
    """A rating model's :class:`DaskState` and its ranking head's, driven as one, as
    :class:`WithRankingHead` drives them in-process; the head's vectors are gathered from the
    workers into every model handed out."""

    def release(self) -> None:
        self.main.release()
        self.head.release()

    def progress(self, history: list[IterationRecord]) -> TrainingProgress:
        progress = self.main.progress(history)
        progress._fetch = lambda: self._attach(self.main.progress_model(progress.history))
        return progress

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        model, arrays = self.main.checkpoint(history)
        head, _ = self.head.checkpoint(history)  # history: the iteration names its keys
        return self._with_head(model, head), arrays

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        self.main.restore(saved, arrays)
        user, item = saved.extras[RANKING_USER_FACTORS], saved.extras[RANKING_ITEM_FACTORS]
        self.head.reroot({"user": (user, np.zeros(len(user), user.dtype), None),
                          "item": (item, np.zeros(len(item), item.dtype), None)},
                         len(saved.history))

    def _attach(self, model: MFModel) -> MFModel:
        return self._with_head(model, self.head.model([]))

    def _with_head(self, model: MFModel, head: MFModel) -> MFModel:
        model.extras[RANKING_USER_FACTORS] = head.user_factors
        model.extras[RANKING_ITEM_FACTORS] = head.item_factors
        model.ranking_system = self.head.system
        return model


