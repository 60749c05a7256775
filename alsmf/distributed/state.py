"""The state of one ALS run on a Dask cluster, as the training loop drives it.

A half-step (say, items with users fixed) is, per item block ``j``: the *messages* it needs
(the rows of the routing plan ``s -> j`` from each user block ``s`` that holds users ``j``
rates, see :mod:`alsmf.distributed.blocks`), packed in one bundle per pair of workers next to
their source factors, then one *solve* task that assembles them into ``j``'s fixed factors and
solves ``j``'s rows with the in-process kernel. Only the planned rows cross the network, never
a whole factor matrix. Factors stay on the workers from one half-step to the next; the client
gathers a few floats per block and iteration (the block's share of the objective and RMSEs)
and, at the end, the factors.

Implicit-feedback ALS (:class:`~alsmf.models.implicit_als.ImplicitALS`) runs the same
half-steps with its row system (every used pair fitted to one target) and one more input per
solve: FᵀF of the whole fixed side, reduced over the fixed blocks in gram64's own slices so
that it, and hence every factor, is the in-process one bit for bit (:meth:`DaskState.gram`).

Every task is a pure function of its inputs, and the initial factors and the blocks are made by
tasks, so when a worker dies Dask recomputes what it held from the lineage and the result is
the one an undisturbed run gives (bit for bit).

The module is longer than most because it is one class, the training-loop state of a run on
the cluster, whose plan (routes, bundles, Gram reductions, re-rooting) its subclass for the
Gibbs sampler (:mod:`alsmf.distributed.gibbs`) reuses.
"""


from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import dask
import numpy as np

from alsmf.distributed import tasks
from alsmf.distributed.blocks import SIDES, group_slices, message_bytes, route
from alsmf.distributed.ingest import Dataset
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.als import ALS
from alsmf.models.implicit_als import ImplicitALS
from alsmf.models.implicit_features import (GRAM_SLICE, IMPLICIT_ITEM_FACTORS,
                                            IMPLICIT_USER_FACTORS)
from alsmf.solvers.halfstep import HalfStep
from alsmf.training.builder import build_model


@dataclass
class TrainingProgress:
    """What a callback of distributed training receives instead of the model.

    The factors stay on the workers while training runs; this holds what the client has:
    the settings, the id maps, the history so far and the routing plan's size, and
    :meth:`fetch` gathers the current factors into an :class:`MFModel` when a callback really
    needs them (it costs a transfer of both factor matrices).

    Attributes:
        params: the settings (``config.params()``).
        history: one :class:`IterationRecord` per finished iteration.
        user_ids, item_ids: sorted raw ids of the model's rows.
        global_mean: μ (0 without biases).
        n_blocks: blocks per side (users, items).
        planned_bytes: bytes of all messages of one iteration (both half-steps).
    """

    params: dict
    history: list[IterationRecord]
    user_ids: np.ndarray
    item_ids: np.ndarray
    global_mean: float
    n_blocks: tuple[int, int]
    planned_bytes: int
    _fetch: Callable[[], MFModel] = field(repr=False)

    def fetch(self) -> MFModel:
        """The model after the last finished iteration, gathered from the workers."""
        return self._fetch()


class DaskState:
    """One training run on a cluster, as the training loop drives it: the data's futures, the
    current factor futures, the routing plan.

    A lost worker's blocks are recomputed by Dask from the tasks' lineage, which reaches
    back to the last checkpoint (:meth:`reroot`) or, without checkpoints, to the start.
    """

    def __init__(self, config: ALS | ImplicitALS, client: Any, data: Dataset, key: str,
                 keep_seen: bool, scored: bool = True) -> None:
        self.config = config
        self.scored = scored  # False: never scored (a ranking head), its solves skip figures
        self.implicit = isinstance(config, ImplicitALS)
        if self.implicit:  # preferences, not ratings: no mean, no scale (as in-process)
            self.global_mean = self.fallback_mean = 0.0
            self.system = config.row_system()
        else:
            self.global_mean = data.mean if config.biases else 0.0
            self.fallback_mean = data.mean
            # the model's row system, with the rating scale its test predictions are clipped to
            self.system = replace(config.row_system(), rating_scale=data.scale)
        self.itemsize = 4 if config.solver == "cg" else 8
        self.dtype = "float32" if config.solver == "cg" else "float64"
        # implicit features (the default rating model): per side, the futures of its blocks'
        # implicit factors (user blocks: A, paired with the item factors; item blocks: Z),
        # zero until first solved, as in-process
        self.features = not self.implicit and config.implicit_weight > 0
        self.connect(client, data, key, keep_seen)
        self.factors = {side: [client.submit(tasks.initial_block, side, int(bounds[b]),
                                             int(bounds[b + 1]), self.params,
                                             key=f"{self.key}-init-{side}{b}",
                                             workers=[data.homes[side][b]],
                                             allow_other_workers=True)
                               for b in range(len(bounds) - 1)]
                        for side, bounds in data.bounds.items()}

    def connect(self, client: Any, data: Dataset, key: str, keep_seen: bool) -> None:
        """What every run on the blocks needs (``config``, ``dtype`` and ``features`` set):
        the routing plan's sizes and route futures, zero implicit factors with implicit
        features, and empty caches."""
        self.params = self.config.params()
        self.settings, self.resumable = self.params, self.config.resumable  # for checkpoints
        self.keep_seen = keep_seen
        self.tracker: TrainingProgress | None = None
        self.client = client
        self.data = data
        self.key = key  # prefix of the run's task keys
        # the Gram futures of factor (or implicit factor) blocks, by the first block's key
        self.grams: dict[str, Any] = {}
        self.implicit_rows = {
            side: [client.submit(tasks.zero_rows, int(bounds[b + 1] - bounds[b]),
                                 self.config.factors, self.dtype,
                                 key=f"{self.key}-init-{side}{b}-z",
                                 workers=[data.homes[side][b]], allow_other_workers=True)
                   for b in range(len(bounds) - 1)]
            for side, bounds in data.bounds.items()} if self.features else {}
        # per side, the messages its blocks last received and the key of the factors they
        # came from: the implicit factors solved next read the same rows again
        self.received: dict[str, tuple[str, list[list[Any]]]] = {}
        self.seen: list[tuple[np.ndarray, ...]] | None = None  # gathered by the first model()
        sizes = client.gather({side: [client.submit(tasks.plan_sizes, block,
                                                    key=f"{block.key}-sizes")
                                      for block in data.blocks[side]] for side in SIDES})
        self.sizes = sizes  # sizes[side][j][s]: rows block j of side receives from block s
        self.routes = {
            (side, j, s): client.submit(route, data.blocks[side][j], s,
                                        int(data.bounds[_other(side)][s]),
                                        key=f"{self.key}-route-{side}{j}-from{s}")
            for side in SIDES for j, row in enumerate(sizes[side]) for s, n in enumerate(row)
            if n
        }

    def release(self) -> None:
        """Forget the run's futures (a callback's progress object may outlive the run)."""
        self.factors, self.implicit_rows, self.received, self.grams, self.routes = \
            {}, {}, {}, {}, {}

    def planned_bytes(self) -> int:
        """Bytes of every message of one iteration (both half-steps)."""
        rows = sum(int(np.sum(row)) for side in SIDES for row in self.sizes[side])
        return message_bytes(rows, self.config.factors, self.itemsize, self.features)

    def homes(self) -> dict[str, list[str]]:
        """Per side, the worker holding each rating block (its first home while it is made).

        Every task of a block is pinned (loosely) there: its solve next to its ratings, its
        messages next to its factors, which the solve left there. Left to itself, Dask may
        run a message task on an idle worker and move the whole factor block instead of the
        message. The pin is loose, so a task whose worker died runs elsewhere.
        """
        held = self.client.who_has([f for side in SIDES for f in self.data.blocks[side]])
        return {side: [(held.get(f.key) or [home])[0]
                       for f, home in zip(self.data.blocks[side], self.data.homes[side])]
                for side in SIDES}

    def row_step(self, iteration: int) -> HalfStep:
        """What every row solves in ``iteration`` (ALS: with its λ warm-up)."""
        if self.implicit:
            return HalfStep(self.system, self.config.solver, self.config.cg_steps)
        return self.config.half_step(iteration)

    def gram(self, blocks: list[Any], side: str, homes: dict[str, list[str]]) -> Any:
        """The future of FᵀF (float64) of ``side``'s ``blocks`` (factor blocks or implicit
        factor blocks, one per block of ``side``), equal to in-process
        :func:`~alsmf.models.implicit_features.gram64` of the whole matrix bit for bit.

        gram64 sums the products of consecutive slices of ``GRAM_SLICE`` rows in order, and a
        slice's product depends on how its rows are cut, so the reduction keeps gram64's
        slices whatever the blocks are: the slices inside one block are multiplied next to
        that block, in one task per block (only their k x k products move), a slice that
        spans a block boundary is assembled from its blocks' rows (at most one slice's rows
        move per boundary), and one task adds the products in slice order. Tasks per Gram
        matrix: about one per block, whatever the number of rows.
        """
        label = blocks[0].key
        if label in self.grams:
            return self.grams[label]
        parts = []  # in slice order: a block's run of inner slices, or one slice
        for group in group_slices(self.data.bounds[side], GRAM_SLICE):
            if group.block is not None:  # inside one block: multiplied there, in one task
                parts.append(self.client.submit(
                    tasks.block_slice_grams, blocks[group.block],
                    [(lo, hi) for _, lo, hi in group.cuts], key=f"{label}-grams{group.block}",
                    workers=[homes[side][group.block]], allow_other_workers=True))
                continue
            pieces = [self.client.submit(tasks.factor_rows, blocks[block], lo, hi,
                                         key=f"{label}-gram{group.first}-rows{block}",
                                         workers=[homes[side][block]],
                                         allow_other_workers=True)
                      for block, lo, hi in group.cuts]
            parts.append(self.client.submit(tasks.slice_gram, *pieces,
                                            key=f"{label}-gram{group.first}",
                                            workers=[homes[side][group.cuts[0][0]]],
                                            allow_other_workers=True))
        total = self.client.submit(tasks.gram_total, self.config.factors, *parts,
                                   key=f"{label}-gram")
        self.grams = {key: gram for key, gram in self.grams.items()
                      if key in self._current_labels()} | {label: total}
        return total

    def _current_labels(self) -> set[str]:
        """The first-block keys of the current factors and implicit factors (whose Gram
        futures are still wanted)."""
        return {blocks[0].key for group in (self.factors, self.implicit_rows)
                for blocks in group.values()}

    def half_step(self, side: str, iteration: int, homes: dict[str, list[str]]) -> None:
        """Submit the solve of every block of ``side`` against the other side's factors.

        Messages go first (higher priority): a worker that started a solve before packing a
        message another worker waits for would hold that worker idle for the whole solve.
        With implicit features, the other side's implicit factors are solved first
        (:meth:`implicit_step`) and ride in the messages after the factors.
        """
        other = _other(side)
        shared = {}
        if self.implicit:
            shared = {"shared_gram": self.gram(self.factors[other], other, homes)}
        if self.features:
            self.implicit_step(other, iteration, homes)
            shared = {"implicit_gram": self.gram(self.implicit_rows[other], other, homes)}
        bundles = self.bundles(side, f"{self.key}-it{iteration}-{side}", homes)
        solved, received = [], []
        for j, block in enumerate(self.data.blocks[side]):
            mine = bundles.get(homes[side][j], [])
            received.append(mine)
            solved.append(self.client.submit(
                tasks.solve, block, self.factors[side][j], self.row_step(iteration),
                self.system, self.global_mean, self.fallback_mean, iteration, j,
                *mine, **shared, scored=self.scored,
                key=f"{self.key}-it{iteration}-{side}{j}", workers=[homes[side][j]],
                allow_other_workers=True))
        if self.features:
            self.received[side] = (self.factors[other][0].key, received)
        self.factors[side] = solved

    def bundles(self, side: str, prefix: str, homes: dict[str, list[str]],
                with_implicit: bool = True) -> dict[str, list[Any]]:
        """The messages ``side``'s blocks receive from the other side's current factors (and
        implicit factors, with implicit features, unless ``with_implicit`` is False), one
        :func:`tasks.bundle` per pair of (source worker, destination worker) that has rows to
        send: per destination worker, its bundles' futures, keyed ``prefix-toW-fromV``
        (workers by their sorted order).
        """
        other = _other(side)
        implicit = self.implicit_rows.get(other) if with_implicit else None
        order = {address: n for n, address in
                 enumerate(sorted(set(homes[side]) | set(homes[other])))}
        plans: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for j, row in enumerate(self.sizes[side]):
            for s, n in enumerate(row):
                if n:
                    plans.setdefault((homes[other][s], homes[side][j]), []).append((j, s))
        bundles: dict[str, list[Any]] = {}
        for (source, destination), entries in sorted(plans.items()):
            inputs = [value for j, s in entries
                      for value in (self.factors[other][s],
                                    None if implicit is None else implicit[s],
                                    self.routes[side, j, s])]
            plan = tuple((j, s, 3 * n) for n, (j, s) in enumerate(entries))
            bundles.setdefault(destination, []).append(self.client.submit(
                tasks.bundle, plan, *inputs,
                key=f"{prefix}-to{order[destination]}-from{order[source]}",
                workers=[source], allow_other_workers=True, priority=1))
        return bundles

    def implicit_step(self, side: str, iteration: int, homes: dict[str, list[str]]) -> None:
        """Solve the implicit factors of ``side``'s rows from the other side's current
        factors, as :meth:`ALSState.implicit_step <alsmf.models.als.ALSState.implicit_step>`
        does in-process (before the item half-step: A of the users from the item factors).

        A block's rows need the other side's rows it rates: the messages it last received
        hold them when they came from the current factors (the previous half-step's), and
        are sent again otherwise (the first iteration, after a checkpoint or rollback).
        """
        other = _other(side)
        source = self.factors[other]
        prefix = f"{self.key}-it{iteration}-implicit-{side}"
        label, received = self.received.get(side, (None, None))
        if label != source[0].key:
            bundles = self.bundles(side, prefix, homes)
            received = [bundles.get(home, []) for home in homes[side]]
        solve = self.client.submit(tasks.solve_matrix, self.gram(source, other, homes),
                                   self.config.implicit_weight, self.config.implicit_reg,
                                   key=f"{prefix}-solve")
        self.implicit_rows[side] = [
            self.client.submit(tasks.implicit_block, block, solve, self.config.factors,
                               self.dtype, b, *received[b], key=f"{prefix}{b}",
                               workers=[homes[side][b]], allow_other_workers=True)
            for b, block in enumerate(self.data.blocks[side])]
        self.received.pop(side, None)  # read: nothing else needs them

    # ------------------------------------------------------------------ the loop's protocol
    def step(self, iteration: int) -> None:
        """Both half-steps of ``iteration``, item blocks then user blocks, until all are
        solved."""
        from distributed import wait

        homes = self.homes()
        self.half_step("item", iteration, homes)
        self.half_step("user", iteration, homes)
        wait(self.factors["user"])

    def score(self) -> tuple[float, float, float | None]:
        """Gather the blocks' figures; the objective and RMSEs the in-process state reports."""
        parts = self.client.gather({
            side: [self.client.submit(tasks.figures, f, key=f"{f.key}-figures")
                   for f in self.factors[side]] for side in SIDES})
        count = sum(p["test_count"] for p in parts["user"])
        if self.implicit:
            return self.implicit_score(parts, count)
        penalty = sum(p["penalty"] for side in SIDES for p in parts[side])
        sse = sum(p["sse"] for p in parts["user"])
        objective = sse + penalty
        if self.features:  # the blocks' parts of the implicit loss, and λ_z ‖A‖² + λ_z ‖Z‖²
            homes = self.homes()
            grams = self.client.gather([self.gram(self.implicit_rows[side], side, homes)
                                        for side in SIDES])
            objective += sum(p["implicit"] for side in SIDES for p in parts[side])
            objective += self.config.implicit_reg * sum(float(np.trace(g)) for g in grams)
        train_rmse = math.sqrt(sse / self.data.n_ratings)
        test_rmse = math.sqrt(sum(p["test_sse"] for p in parts["user"]) / count) if count else None
        return objective, train_rmse, test_rmse

    def implicit_score(self, parts: dict[str, list[dict]], count: int
                       ) -> tuple[float, float, float | None]:
        """Implicit-feedback ALS's objective and RMSEs from the blocks' figures and both
        sides' Gram matrices, as :meth:`ImplicitALSState.evaluate
        <alsmf.models.implicit_als.ImplicitALSState.evaluate>` computes them."""
        config = self.config
        homes = self.homes()
        grams = self.client.gather([self.gram(self.factors[side], side, homes)
                                    for side in SIDES])
        every_square = float(np.sum(grams[0] * grams[1]))
        used_error = sum(p["used_error"] for p in parts["user"])
        used_square = sum(p["used_square"] for p in parts["user"])
        norms = sum(p["norms"] for side in SIDES for p in parts[side])
        objective = ((1.0 + config.alpha) * used_error
                     + config.unobserved_weight * (every_square - used_square)
                     + config.reg * norms)
        test_rmse = math.sqrt(sum(p["test_sse"] for p in parts["user"]) / count) if count else None
        return objective, math.sqrt(used_error / self.data.n_ratings), test_rmse

    def stops(self, record: IterationRecord, previous: float) -> bool:
        if self.implicit:  # runs every iteration, as in-process
            return False
        return self.config.converged(record.iteration, previous, record.objective)

    def snapshot(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """The current factor (and implicit factor) futures: an interrupted iteration's new
        ones are dropped."""
        return ({side: list(futures) for side, futures in self.factors.items()},
                {side: list(futures) for side, futures in self.implicit_rows.items()})

    def roll_back(self, snapshot: tuple[dict[str, list[Any]], dict[str, list[Any]]]) -> None:
        self.factors, self.implicit_rows = snapshot

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        """The model to write (gathered), which also becomes the new root of the run's
        lineage (:meth:`reroot`): a worker lost later is recomputed from here."""
        model = self.model(history)
        self.reroot(_arrays_of(model), len(history))
        return model, {}

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's model: its arrays become the blocks' factors."""
        self.reroot(_arrays_of(saved), len(saved.history))

    def reroot(self, arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
               iteration: int) -> None:
        """Make ``arrays`` (per side: factors, biases, implicit factors or None) the current
        blocks, as tasks that carry them.

        Such a task has no inputs, so Dask recomputes a block lost after this point from
        here, never from the iterations before; the price is one copy of the factors sent
        from the client to the workers (through the scheduler, which keeps it while the
        tasks are wanted).
        """
        homes = self.homes()
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1 GiB"}):
            for side, (factors, bias, implicit) in arrays.items():
                bounds = self.data.bounds[side]
                cuts = list(zip(bounds[:-1], bounds[1:]))
                self.factors[side] = [self.client.submit(
                    tasks.restored, tasks.FactorBlock(factors[lo:hi].copy(), bias[lo:hi].copy()),
                    key=f"{self.key}-it{iteration}-root-{side}{b}", workers=[homes[side][b]],
                    allow_other_workers=True) for b, (lo, hi) in enumerate(cuts)]
                if self.features:
                    self.implicit_rows[side] = [self.client.submit(
                        tasks.restored, implicit[lo:hi].copy(),
                        key=f"{self.key}-it{iteration}-root-{side}{b}-z",
                        workers=[homes[side][b]], allow_other_workers=True)
                        for b, (lo, hi) in enumerate(cuts)]
        # what was computed from the old lineage is wanted no more: kept, a lost worker's
        # copy of it would be recomputed from before the new root
        self.received, self.grams = {}, {}

    def progress(self, history: list[IterationRecord]) -> TrainingProgress:
        """What the client has (the factors stay on the workers), with ``history``."""
        if self.tracker is None:
            self.tracker = TrainingProgress(
                self.params, history, self.data.user_ids, self.data.item_ids,
                self.global_mean, (len(self.data.blocks["user"]), len(self.data.blocks["item"])),
                self.planned_bytes(), lambda: self.progress_model(self.tracker.history))
        self.tracker.history = history
        return self.tracker

    def progress_model(self, history: list[IterationRecord]) -> MFModel:
        """The model a callback's :meth:`TrainingProgress.fetch` gathers: the current one."""
        return self.model(history)

    def seen_ratings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The training ratings by user as a model keeps them (gathered once: they do not
        change), or none with ``keep_seen`` False."""
        if not self.keep_seen:
            return (np.zeros(len(self.data.user_ids) + 1, dtype=np.int64),
                    np.zeros(0, dtype=np.int32), None)
        if self.seen is None:
            self.seen = self.client.gather([
                self.client.submit(tasks.seen, b, key=f"{b.key}-seen")
                for b in self.data.blocks["user"]])
        counts = np.concatenate([s[0] for s in self.seen])
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return (indptr, np.concatenate([s[1] for s in self.seen]),
                np.concatenate([s[2] for s in self.seen]))

    def model(self, history: list[IterationRecord]) -> MFModel:
        """Gather the factors (and the training ratings) into an :class:`MFModel`."""
        blocks, implicit = self.client.gather((self.factors, self.implicit_rows))
        model = build_model(
            user_ids=self.data.user_ids.copy(), item_ids=self.data.item_ids.copy(),
            seen=self.seen_ratings(),
            user_factors=np.concatenate([b.factors for b in blocks["user"]]),
            item_factors=np.concatenate([b.factors for b in blocks["item"]]),
            user_bias=np.concatenate([b.bias for b in blocks["user"]]),
            item_bias=np.concatenate([b.bias for b in blocks["item"]]),
            global_mean=self.global_mean, fallback_mean=self.fallback_mean,
            system=self.system,
            params=self.params,
            extras={name: np.concatenate(implicit[side]) for side, name in
                    (("user", IMPLICIT_USER_FACTORS), ("item", IMPLICIT_ITEM_FACTORS))
                    if side in implicit})
        model.history = list(history)
        return model


def _arrays_of(model: MFModel) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """A model's arrays per side, as :meth:`DaskState.reroot` takes them."""
    return {"user": (model.user_factors, model.user_bias,
                     model.extras.get(IMPLICIT_USER_FACTORS)),
            "item": (model.item_factors, model.item_bias,
                     model.extras.get(IMPLICIT_ITEM_FACTORS))}


def _other(side: str) -> str:
    return "item" if side == "user" else "user"

