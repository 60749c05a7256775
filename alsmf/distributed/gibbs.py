"""The Gibbs sampler of :class:`~alsmf.models.bayes.BayesianMF` on a Dask cluster.

A sweep runs the blocked ALS plan of :class:`~alsmf.distributed.state.DaskState` with the
sampler's steps in between, all as tasks, so the client only waits once per sweep:

1. each side's prior (m, Λ) from its current rows: the rows' sums slice by slice (per block,
   one task for the slices inside it; a slice that spans blocks is assembled from its rows),
   their mean, the scatter matrices about it in the same slices, and one draw (submitted by
   the sweep before, so that they are computed while that sweep's draw is scored);
2. the user blocks' draws against the item factors routed to them (with implicit features,
   the items' implicit factors Z solved first and riding in the messages, as for ALS), then
   the item blocks' against the new user factors;
3. the item factors routed to the user blocks once more, where each block scores the draw
   (each row's squared error, each test pair's prediction), and α drawn from the errors.

Every step computes what the in-process sampler computes for the same rows in the same order
(:mod:`alsmf.distributed.gibbs_tasks`), so the draws, the kept draws and the model equal
``BayesianMF.fit``'s bit for bit for any number of workers or blocks. The kept draws stay on
the workers (as many as the in-process sampler keeps) until the model is gathered; a
checkpoint gathers the sampler's whole state into the in-process sampler's arrays
(:class:`~alsmf.models.gibbs_sampler.SamplerArrays`) and re-roots the lineage there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from alsmf.data.ratings import Ratings
from alsmf.distributed import gibbs_tasks as work
from alsmf.distributed import tasks
from alsmf.distributed.blocks import SIDES, group_slices
from alsmf.distributed.ingest import Dataset, order_of_test_pairs
from alsmf.distributed.state import DaskState, _other
from alsmf.history import IterationRecord
from alsmf.model import MFModel
from alsmf.models.bayes import BayesianMF
from alsmf.models.gibbs_sampler import side_code
from alsmf.models.sampler_arrays import SamplerArrays, ridge_weights
from alsmf.solvers.gibbs import STATISTICS_SLICE
from alsmf.training.scoring import rmse_from_sse

_SIDE_ARRAYS = {"user": ("user_factors", "user_bias", "implicit_items", "user_samples",
                         "user_bias_samples", "implicit_samples_1"),
                "item": ("item_factors", "item_bias", "implicit_users", "item_samples",
                         "item_bias_samples", "implicit_samples_0")}
"""Per side of the blocks, the names of its arrays in the sampler's state
(:meth:`SamplerArrays.state_arrays`): draw, bias, implicit factors of its rows, kept draws."""


class DaskGibbsState(DaskState):
    """One Gibbs run on a cluster, as the training loop drives it.

    The client holds the sweep's scalars (α, both priors, the kept draws' α and ridge
    weights); the workers hold the blocks' current draw, implicit factors, kept draws and
    sums of kept test predictions.
    """

    def __init__(self, config: BayesianMF, client: Any, data: Dataset, key: str,
                 keep_seen: bool, test: Ratings | None) -> None:
        self.config = config
        self.global_mean = data.mean
        self.itemsize, self.dtype = 8, "float64"
        self.features = config.implicit_weight > 0
        self.connect(client, data, key, keep_seen)
        k, n_users = config.factors, len(data.user_ids)
        self.factors = {side: [client.submit(work.initial_draw, side, int(bounds[b]),
                                             int(bounds[b + 1]), config.seed,
                                             config.init_scale, k, n_users,
                                             key=f"{key}-init-{side}{b}",
                                             workers=[data.homes[side][b]],
                                             allow_other_workers=True)
                               for b in range(len(bounds) - 1)]
                        for side, bounds in data.bounds.items()}
        self.alpha = 1.0 / max(data.variance, 1e-6)
        self.priors = {side: (np.zeros(k + 1), np.eye(k + 1)) for side in SIDES}
        self.kept_sweeps = config.kept_sweeps()
        self.n_kept = 0
        self.alpha_samples = np.zeros(len(self.kept_sweeps))
        self.reg_samples = np.zeros((len(self.kept_sweeps), 2))
        self.kept: dict[str, list[list[Any]]] = {side: [[] for _ in blocks]
                                                 for side, blocks in self.factors.items()}
        self.sse = math.nan
        self.scores: list[Any] = []  # the user blocks' DrawScores of the current draw
        # (sweep, prior futures per side) submitted ahead by the sweep before, or None
        self.next_priors: tuple[int, dict[str, Any]] | None = None
        # the score messages per user block, and the key of the item factors they came from
        self.score_bundles: tuple[str, list[list[Any]]] | None = None
        has_test = test is not None and len(test) > 0
        # where the blocks' test pairs lie in the test set, and how many each block has
        self.test_order, self.test_counts = (
            order_of_test_pairs(test, data.user_ids, data.bounds["user"]) if has_test
            else (None, None))
        self.test_sums = [client.submit(work.zero_test_sum, block, key=f"{key}-test-sum{b}",
                                        workers=[data.homes["user"][b]],
                                        allow_other_workers=True)
                          for b, block in enumerate(data.blocks["user"])] if has_test else []

    def release(self) -> None:
        super().release()
        self.kept, self.scores, self.test_sums = {}, [], []
        self.score_bundles = self.next_priors = None

    # ------------------------------------------------------------------ one sweep
    def step(self, iteration: int) -> None:
        """Sweep ``iteration``: both priors, every user block, every item block, the scores
        and α; then keep the draw when this sweep is one of the kept ones."""
        homes = self.homes()
        sweep, priors = self.next_priors or (None, None)
        if sweep != iteration:
            priors = {side: self.prior(side, iteration, homes) for side in SIDES}
        self.draw_side("user", iteration, homes, priors["user"])
        self.draw_side("item", iteration, homes, priors["item"])
        alpha = self.score_draw(iteration, homes)
        # the next sweep's priors depend on this sweep's draws alone: submitted now, they are
        # computed while the draw is scored
        self.next_priors = None
        if iteration < self.config.sweeps:
            self.next_priors = (iteration + 1, {side: self.prior(side, iteration + 1, homes)
                                                for side in SIDES})
        (self.alpha, self.sse), *drawn = self.client.gather([alpha, priors["user"],
                                                             priors["item"]])
        self.priors = dict(zip(SIDES, drawn))
        if self.n_kept < len(self.kept_sweeps) and iteration == self.kept_sweeps[self.n_kept]:
            self.keep(iteration)

    def prior(self, side: str, sweep: int, homes: dict[str, list[str]]) -> Any:
        """The future of ``side``'s prior drawn from its current rows' statistics."""
        label = f"{self.key}-it{sweep}-prior-{side}"
        n = int(self.data.bounds[side][-1])
        parts = self.statistics_parts(side, label, homes)
        sums = [self.client.submit(work.rows_sums, block, lo, hi, key=f"{label}-sums{p}",
                                   workers=[home], allow_other_workers=True)
                for p, (block, lo, hi, home) in enumerate(parts)]
        mean = self.client.submit(work.side_mean, n, *sums, key=f"{label}-mean")
        scatters = [self.client.submit(work.rows_scatters, block, lo, hi, mean,
                                       key=f"{label}-scatters{p}", workers=[home],
                                       allow_other_workers=True)
                    for p, (block, lo, hi, home) in enumerate(parts)]
        return self.client.submit(work.side_prior, self.config.hyperprior, self.config.seed,
                                  sweep, side_code(side), n, mean, *scatters, key=label)

    def statistics_parts(self, side: str, label: str, homes: dict[str, list[str]]
                         ) -> list[tuple[Any, int, int, str]]:
        """The rows of ``side``'s slices, in slice order, as (draw future, lo, hi, worker):
        a block's run of inner slices, or a slice that spans blocks assembled from its
        rows (moving at most one slice's rows per block boundary)."""
        blocks = self.factors[side]
        parts: list[tuple[Any, int, int, str]] = []
        for group in group_slices(self.data.bounds[side], STATISTICS_SLICE):
            if group.block is not None:  # the block's own rows, from its first slice's start
                parts.append((blocks[group.block], group.cuts[0][1], group.cuts[-1][2],
                              homes[side][group.block]))
                continue
            cut, n = group.cuts, group.first
            pieces = [self.client.submit(work.draw_rows, blocks[block], lo, hi,
                                         key=f"{label}-slice{n}-rows{block}",
                                         workers=[homes[side][block]],
                                         allow_other_workers=True)
                      for block, lo, hi in cut]
            joined = self.client.submit(work.joined_rows, *pieces, key=f"{label}-slice{n}",
                                        workers=[homes[side][cut[0][0]]],
                                        allow_other_workers=True)
            rows = sum(hi - lo for _, lo, hi in cut)
            parts.append((joined, 0, rows, homes[side][cut[0][0]]))
        return parts

    def draw_side(self, side: str, sweep: int, homes: dict[str, list[str]], prior: Any) -> None:
        """Submit the draw of every block of ``side`` against the other side's factors."""
        other = _other(side)
        shared = {}
        if self.features:
            self.implicit_step(other, sweep, homes)
            shared = {"implicit_gram": self.gram(self.implicit_rows[other], other, homes)}
        reused = self.score_bundles
        if (not self.features and side == "user" and reused is not None
                and reused[0] == self.factors[other][0].key):
            received = reused[1]  # the scores' messages: the same item factors
        else:
            bundles = self.bundles(side, f"{self.key}-it{sweep}-{side}", homes)
            received = [bundles.get(homes[side][j], []) for j in range(len(homes[side]))]
        self.score_bundles = None
        drawn = []
        for j, block in enumerate(self.data.blocks[side]):
            mine = received[j]
            drawn.append(self.client.submit(
                work.draw_block, block, self.factors[side][j], prior, self.alpha,
                self.global_mean, self.config.seed, sweep, self.config.implicit_weight, j,
                *mine, **shared, key=f"{self.key}-it{sweep}-{side}{j}",
                workers=[homes[side][j]], allow_other_workers=True))
        if self.features:
            self.received[side] = (self.factors[other][0].key, received)
        self.factors[side] = drawn

    def score_draw(self, sweep: int, homes: dict[str, list[str]]) -> Any:
        """Route the new item factors to the user blocks, score the draw there, and return
        the future of (α, SSE)."""
        prefix = f"{self.key}-it{sweep}-score"
        bundles = self.bundles("user", prefix, homes, with_implicit=False)
        received = [bundles.get(home, []) for home in homes["user"]]  # per user block
        self.score_bundles = (self.factors["item"][0].key, received)
        self.scores = [self.client.submit(
            work.draw_scores, block, self.factors["user"][j], self.global_mean, j,
            *received[j], key=f"{prefix}-user{j}", workers=[homes["user"][j]],
            allow_other_workers=True)
            for j, block in enumerate(self.data.blocks["user"])]
        return self.client.submit(work.sweep_alpha, self.config.seed, sweep,
                                  self.data.n_ratings, *self.scores, key=f"{prefix}-alpha")

    def keep(self, sweep: int) -> None:
        """Keep the current draw as kept draw number ``n_kept`` (on the workers), with its α
        and ridge weights (here), and add its test predictions to the blocks' sums."""
        s = self.n_kept
        for side in SIDES:
            implicit = self.implicit_rows.get(side)
            for b, draw in enumerate(self.factors[side]):
                self.kept[side][b].append(self.client.submit(
                    work.kept_draw, draw, None if implicit is None else implicit[b],
                    key=f"{self.key}-it{sweep}-kept-{side}{b}"))
        self.alpha_samples[s] = self.alpha
        self.reg_samples[s] = ridge_weights(self.priors["user"][1], self.alpha)
        self.n_kept += 1
        self.test_sums = [self.client.submit(work.add_test, total, scores,
                                             key=f"{self.key}-it{sweep}-test-sum{b}")
                          for b, (total, scores) in enumerate(zip(self.test_sums,
                                                                  self.scores))]

    # ------------------------------------------------------------------ the loop's protocol
    def score(self) -> tuple[float, float, float | None]:
        """The draw's SSE and RMSE (as in-process, bit for bit) and the test RMSE of the mean
        of the kept draws (summed per block: it agrees to rounding)."""
        test_rmse = None
        if self.test_sums:
            homes = self.homes()["user"]
            parts = self.client.gather([
                self.client.submit(work.block_test_error, block, scores, total, self.n_kept,
                                   self.data.scale, key=f"{scores.key}-test",
                                   workers=[home], allow_other_workers=True)
                for block, scores, total, home in zip(self.data.blocks["user"], self.scores,
                                                      self.test_sums, homes)])
            count = sum(n for _, n in parts)
            test_rmse = math.sqrt(sum(e for e, _ in parts) / count) if count else None
        return self.sse, rmse_from_sse(self.sse, self.data.n_ratings), test_rmse

    def stops(self, record: IterationRecord, previous: float) -> bool:
        return False  # a sampler runs its sweeps

    def snapshot(self) -> dict[str, Any]:
        """What a sweep changes (futures and the client's scalars): an interrupted sweep's
        new ones are dropped."""
        return {"factors": {side: list(f) for side, f in self.factors.items()},
                "implicit_rows": {side: list(f) for side, f in self.implicit_rows.items()},
                "kept": {side: [list(k) for k in blocks] for side, blocks in self.kept.items()},
                "test_sums": list(self.test_sums), "scores": list(self.scores),
                "score_bundles": self.score_bundles, "next_priors": self.next_priors,
                "alpha": self.alpha, "sse": self.sse,
                "priors": dict(self.priors), "n_kept": self.n_kept,
                "alpha_samples": self.alpha_samples.copy(),
                "reg_samples": self.reg_samples.copy()}

    def roll_back(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            setattr(self, name, value)

    def progress_model(self, history: list[IterationRecord]) -> MFModel:
        """The current draw, as the in-process sampler hands a callback."""
        return self.gathered(with_kept=False).current_model(history)

    def model(self, history: list[IterationRecord]) -> MFModel:
        """The posterior mean of the kept draws, or the current draw before the first."""
        arrays = self.gathered()
        return arrays.posterior_model(history) if self.n_kept else arrays.current_model(history)

    def checkpoint(self, history: list[IterationRecord]
                   ) -> tuple[MFModel, dict[str, np.ndarray]]:
        """The current draw as the model and the whole state as the in-process sampler's
        arrays, gathered; the state becomes the new root of the run's lineage."""
        arrays = self.gathered()
        state = arrays.state_arrays()
        model = arrays.current_model(history)
        self.reroot_state(state, len(history))
        return model, state

    def restore(self, saved: MFModel, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's arrays (the in-process sampler's, or a Dask run's)."""
        self.reroot_state(arrays, len(saved.history))

    # ------------------------------------------------------------------ state as arrays
    def gathered(self, with_kept: bool = True) -> SamplerArrays:
        """The sampler's state gathered from the workers into the in-process arrays (without
        ``with_kept``, the kept draws are left out: empty, for the current draw alone)."""
        k, data = self.config.factors, self.data
        state = SamplerArrays()
        state.config, state.settings = self.config, self.params
        state.user_ids, state.item_ids = data.user_ids.copy(), data.item_ids.copy()
        state.seen, state.mean, state.scale = self.seen_ratings(), data.mean, data.scale
        n = {side: int(data.bounds[side][-1]) for side in SIDES}
        state.kept_sweeps = self.kept_sweeps
        draws, implicit, kept, test_sums = self.client.gather(
            (self.factors, self.implicit_rows, self.kept if with_kept else {}, self.test_sums))
        columns = len(self.kept_sweeps) if with_kept else 0
        arrays = {}
        for side, (draw, bias, rows, samples, bias_samples, implicit_samples) in \
                _SIDE_ARRAYS.items():
            arrays[draw] = np.concatenate([b.factors for b in draws[side]])
            arrays[bias] = np.concatenate([b.bias for b in draws[side]])
            arrays[rows] = (np.concatenate(implicit[side]) if self.features
                            else np.zeros((n[side], k)))
            arrays[samples] = np.zeros((n[side], columns * k))
            arrays[bias_samples] = np.zeros((n[side], columns))
            arrays[implicit_samples] = np.zeros((n[side], columns * k if self.features else 0))
            if self.n_kept and with_kept:
                s = self.n_kept
                arrays[samples][:, :s * k] = np.concatenate(
                    [np.hstack([d.factors for d in entries]) for entries in kept[side]])
                arrays[bias_samples][:, :s] = np.concatenate(
                    [np.hstack([d.bias for d in entries]) for entries in kept[side]])
                if self.features:
                    arrays[implicit_samples][:, :s * k] = np.concatenate(
                        [np.hstack([d.implicit for d in entries]) for entries in kept[side]])
        test_sum = np.zeros(0 if self.test_order is None else len(self.test_order))
        if self.test_order is not None:
            test_sum[self.test_order] = np.concatenate(test_sums)
        state.adopt(arrays | self._scalars() | {"test_sum": test_sum})
        return state

    def _scalars(self) -> dict[str, np.ndarray]:
        """The client's part of the state, as the sampler's arrays name it."""
        return {"alpha": np.array([self.alpha]), "n_kept": np.array([self.n_kept]),
                "user_prior_mean": self.priors["user"][0],
                "user_prior_precision": self.priors["user"][1],
                "item_prior_mean": self.priors["item"][0],
                "item_prior_precision": self.priors["item"][1],
                "alpha_samples": self.alpha_samples, "reg_samples": self.reg_samples}

    def reroot_state(self, arrays: dict[str, np.ndarray], iteration: int) -> None:
        """Make the sampler's state ``arrays`` the current blocks, as tasks that carry them
        (the root of the lineage from here, as :meth:`DaskState.reroot` makes it)."""
        k = self.config.factors
        self.alpha = float(arrays["alpha"][0])
        self.n_kept = s = int(arrays["n_kept"][0])
        self.priors = {side: (arrays[f"{side}_prior_mean"].copy(),
                              arrays[f"{side}_prior_precision"].copy()) for side in SIDES}
        self.alpha_samples = arrays["alpha_samples"].copy()
        self.reg_samples = arrays["reg_samples"].copy()
        homes = self.homes()
        root = f"{self.key}-it{iteration}-root"
        self.reroot({side: (arrays[names[0]], arrays[names[1]], arrays[names[2]])
                     for side, names in _SIDE_ARRAYS.items()}, iteration)
        for side, names in _SIDE_ARRAYS.items():
            samples, bias_samples, implicit_samples = (arrays[name] for name in names[3:])
            bounds = self.data.bounds[side]
            self.kept[side] = [[self.client.submit(
                tasks.restored, work.KeptDraws(
                    samples[lo:hi, :s * k].copy(), bias_samples[lo:hi, :s].copy(),
                    implicit_samples[lo:hi, :s * k].copy() if self.features else None),
                key=f"{root}-kept-{side}{b}", workers=[homes[side][b]],
                allow_other_workers=True)] if s else []
                for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
        if self.test_order is not None:
            in_blocks = arrays["test_sum"][self.test_order]
            counts = np.concatenate([[0], np.cumsum(self.test_counts)])
            self.test_sums = [self.client.submit(
                tasks.restored, in_blocks[lo:hi].copy(), key=f"{root}-test-sum{b}",
                workers=[homes["user"][b]], allow_other_workers=True)
                for b, (lo, hi) in enumerate(zip(counts[:-1], counts[1:]))]
        self.scores, self.score_bundles, self.next_priors = [], None, None

