"""Distributed ALS on a real 2-process Dask cluster: same model as in-process, worker loss,
bytes sent per half-step equal to the routing plan."""

import re
import time

import numpy as np
import pandas as pd
import pytest

from alsmf import ALS, synthetic_ratings
from alsmf.data.splits import random_split
from alsmf.distributed.blocks import (balanced_bounds, block_of, gram_slices, group_slices,
                                      initial_normal_rows)
from alsmf.errors import ConfigError, DataError
from alsmf.models.implicit_als import ImplicitALS
from alsmf.models.implicit_features import gram64

distributed = pytest.importorskip("distributed")

from alsmf.distributed import local_cluster, train_distributed  # noqa: E402
from alsmf.distributed.cluster import worker_addresses  # noqa: E402

from tests.dask_helpers import (assert_same_extras, assert_same_model,  # noqa: E402
                                train_killing_a_worker)

# the plain rating model: no implicit features, no ranking head
PLAIN = {"implicit_weight": 0.0, "rank_factors": 0}


@pytest.fixture(scope="module")
def client():
    with local_cluster(2, threads_per_worker=1) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def split():
    ratings = synthetic_ratings(n_users=300, n_items=200, n_ratings=6000, seed=1).ratings
    return random_split(ratings, test_fraction=0.1, seed=0)


@pytest.mark.parametrize("solver, reg_bias", [("cg", None), ("cholesky", None), ("cg", 0.02)])
def test_same_model_as_in_process_for_any_number_of_blocks(client, split, solver, reg_bias):
    config = ALS(**PLAIN, factors=8, iterations=4, solver=solver, reg_bias=reg_bias)
    reference = config.fit(split[0], split[1])
    for n_blocks in (None, 3):  # None: one block per worker
        assert_same_model(train_distributed(config, split[0], split[1], client=client,
                                            n_blocks=n_blocks), reference)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_implicit_als_is_the_in_process_model_for_any_number_of_blocks(client, split, solver):
    config = ImplicitALS(factors=6, iterations=3, solver=solver, weighted_reg=solver == "cg")
    reference = config.fit(split[0], split[1])
    for n_blocks in (None, 3):
        model = train_distributed(config, split[0], split[1], client=client, n_blocks=n_blocks)
        assert_same_model(model, reference)
        assert model.system == reference.system and model.fallback_mean == 0.0


def test_implicit_gram_slices_spanning_blocks_keep_the_in_process_sum(client, split,
                                                                      monkeypatch):
    """With slices of 64 rows, every block boundary falls inside a slice of the Gram sum."""
    from alsmf.distributed import state
    from alsmf.models import implicit_features

    monkeypatch.setattr(implicit_features, "GRAM_SLICE", 64)
    monkeypatch.setattr(state, "GRAM_SLICE", 64)
    config = ImplicitALS(factors=5, iterations=2, solver="cholesky")
    assert_same_model(train_distributed(config, split[0], split[1], client=client, n_blocks=3),
                      config.fit(split[0], split[1]))


def test_gram_from_slices_of_blocks_is_gram64_bit_for_bit():
    from alsmf.distributed import tasks

    factors = np.random.default_rng(2).standard_normal((1000, 7)).astype(np.float32)
    bounds = np.array([0, 130, 131, 560, 1000])
    blocks = [tasks.FactorBlock(factors[lo:hi], np.zeros(hi - lo, np.float32))
              for lo, hi in zip(bounds[:-1], bounds[1:])]
    plan = gram_slices(bounds, 256)
    assert [len(parts) for parts in plan] == [3, 1, 2, 1]
    # as the trainer submits them: the inner slices of block 2 in one task, the others alone
    slices = [tasks.slice_gram(*(tasks.factor_rows(blocks[b], lo, hi) for b, lo, hi in plan[0])),
              tasks.block_slice_grams(blocks[2], [plan[1][0][1:]]),
              tasks.slice_gram(*(tasks.factor_rows(blocks[b], lo, hi) for b, lo, hi in plan[2])),
              tasks.block_slice_grams(blocks[3], [plan[3][0][1:]])]
    from alsmf.models import implicit_features

    saved = implicit_features.GRAM_SLICE
    implicit_features.GRAM_SLICE = 256
    try:
        assert np.array_equal(tasks.gram_total(7, *slices), gram64(factors))
    finally:
        implicit_features.GRAM_SLICE = saved


def test_slices_are_grouped_into_block_runs_and_slices_across_blocks():
    groups = group_slices(np.array([0, 130, 131, 560, 1000]), 256)
    assert [(g.first, g.block, g.cuts) for g in groups] == [
        (0, None, [(0, 0, 130), (1, 0, 1), (2, 0, 125)]),  # rows 0..256 cross blocks 0-2
        (1, 2, [(2, 125, 381)]),  # inside block 2
        (2, None, [(2, 381, 429), (3, 0, 208)]),
        (3, 3, [(3, 208, 440)])]
    runs = group_slices(np.array([0, 1000]), 256)  # one block: its 4 slices in one group
    assert [(g.block, len(g.cuts)) for g in runs] == [(0, 4)]


def test_value_dependent_confidence_is_refused_on_dask(client, split):
    with pytest.raises(ConfigError, match="constant confidence only.*'log'"):
        train_distributed(ImplicitALS(confidence="log"), split[0], client=client)


def test_workers_are_asked_of_the_scheduler_not_the_clients_record(client, split, monkeypatch):
    # the client refreshes scheduler_info() on a timer without per-worker detail; a refresh
    # landing mid-call made it list no workers (a ZeroDivisionError in placing the blocks)
    monkeypatch.setattr(client, "scheduler_info", lambda *args, **kwargs: {"workers": {}})
    assert len(worker_addresses(client)) == 2
    config = ALS(**PLAIN, factors=4, iterations=2)
    assert_same_model(train_distributed(config, split[0], split[1], client=client),
                      config.fit(split[0], split[1]))


def test_parquet_folder_is_read_by_the_workers(client, split, tmp_path):
    frame = split[0].to_frame()[["user", "item", "rating"]]
    folder = tmp_path / "train"
    folder.mkdir()
    half = len(frame) // 2
    frame.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    config = ALS(**PLAIN, factors=6, iterations=3, biases=False)
    model = train_distributed(config, folder, split[1], client=client, n_blocks=2)
    assert_same_model(model, config.fit(split[0], split[1]))


def test_callback_stops_and_sees_progress(client, split):
    seen = []

    def stop_after_two(record, progress):
        seen.append((record.iteration, len(progress.history), progress.planned_bytes))
        return record.iteration == 2

    config = ALS(**PLAIN, factors=4, iterations=5, solver="cholesky")
    model = train_distributed(config, split[0], client=client, callback=stop_after_two)
    assert [s[:2] for s in seen] == [(1, 1), (2, 2)]
    assert seen[0][2] > 0
    assert len(model.history) == 2 and model.history[-1].test_rmse is None


def test_killed_worker_mid_training_gives_the_same_model(client, split):
    config = ALS(**PLAIN, factors=8, iterations=6)
    reference = config.fit(split[0], split[1])
    assert_same_model(train_killing_a_worker(client, config, split[0], split[1]), reference)


def test_local_cluster_does_not_steal_pinned_block_tasks(client):
    """Work stealing would move a block's solve, with its ratings, off the worker that holds
    them whenever that worker is briefly busy; alsmf's own cluster runs without it."""
    assert not client.run_on_scheduler(lambda dask_scheduler: "stealing" in
                                       dask_scheduler.extensions)


def test_bytes_sent_per_half_step_are_the_routing_plan(client):
    """Only the bundles of messages move during the iterations, one per pair of workers,
    each the size of the planned rows from the one worker's blocks to the other's, and a
    half-step moves less than sending the whole fixed matrix to every block."""
    ratings = synthetic_ratings(n_users=2000, n_items=2000, n_ratings=10000,
                                min_per_user=2, seed=3).ratings
    k, n_blocks = 8, 4
    client.run(_clear_transfer_log)
    model = train_distributed(ALS(**PLAIN, factors=k, iterations=2), ratings,
                              client=client, n_blocks=n_blocks)
    moved = {}
    for log in client.run(_transfer_log).values():
        for entry in log:
            moved.update(entry["keys"])
    moved_in_iterations = {key: n for key, n in moved.items() if re.search(r"-it\d+-", str(key))}
    assert moved_in_iterations, "nothing crossed between the workers"

    rows = _planned_rows(ratings, n_blocks)  # counted here from the data, not by the trainer
    home = [b % 2 for b in range(n_blocks)]  # ingest's placement: block b on worker b mod 2
    for key, nbytes in moved_in_iterations.items():
        match = re.search(r"-it\d+-(user|item)-to(\d)-from(\d)$", str(key))
        assert match, f"{key} moved: only bundles of messages should"
        side, to, source = match[1], int(match[2]), int(match[3])
        planned = sum(rows[side][j][s] for j in range(n_blocks) for s in range(n_blocks)
                      if home[j] == to and home[s] == source) * (k + 1) * 4
        assert to != source and planned <= nbytes <= planned + 1024, key
    for iteration in (1, 2):
        for side, n_fixed in (("item", model.n_users), ("user", model.n_items)):
            sent = sum(n for key, n in moved_in_iterations.items()
                       if f"-it{iteration}-{side}" in str(key))
            planned = sum(map(sum, rows[side])) * (k + 1) * 4
            broadcast = n_blocks * n_fixed * (k + 1) * 4
            assert 0 < sent <= planned < broadcast


def _planned_rows(ratings, n_blocks):
    """rows[side][j][s]: fixed rows of block s that block j of ``side`` needs."""
    bounds = {"user": balanced_bounds(ratings.user_counts(), n_blocks),
              "item": balanced_bounds(ratings.item_counts(), n_blocks)}
    rows = {}
    for side, own, other in (("user", ratings.users, ratings.items),
                             ("item", ratings.items, ratings.users)):
        other_side = "item" if side == "user" else "user"
        pairs = np.unique(np.stack([block_of(own, bounds[side]), other]), axis=1)
        source = block_of(pairs[1], bounds[other_side])
        rows[side] = [[int(np.sum((pairs[0] == j) & (source == s)))
                       for s in range(len(bounds[other_side]) - 1)]
                      for j in range(len(bounds[side]) - 1)]
    return rows


def _clear_transfer_log(dask_worker):
    dask_worker.transfer_incoming_log.clear()


def _transfer_log(dask_worker):
    return list(dask_worker.transfer_incoming_log)


def test_repeated_pairs_in_parquet_are_refused(client, tmp_path):
    frame = pd.DataFrame({"user": [1, 1, 2, 2], "item": [5, 5, 5, 6],
                          "rating": [4.0, 3.0, 2.0, 5.0]})
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    with pytest.raises(DataError, match="pair is rated twice"):
        train_distributed(ALS(**PLAIN, factors=2, iterations=1),
                          tmp_path / "r.parquet", client=client)


def test_parquet_without_the_columns_is_refused(client, tmp_path):
    pd.DataFrame({"user": [1], "movie": [2], "rating": [3.0]}).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataError, match="missing column.*'item'"):
        train_distributed(ALS(**PLAIN), tmp_path / "r.parquet", client=client)


def test_bad_block_count_is_refused(client, split):
    with pytest.raises(ConfigError, match="n_blocks"):
        train_distributed(ALS(**PLAIN), split[0], client=client, n_blocks=0)


def test_initial_factors_drawn_in_chunks_are_the_in_process_draw():
    full = 0.1 * np.random.default_rng(7).standard_normal((1000, 5), dtype=np.float32)
    part = initial_normal_rows(7, 0.1, 5, np.float32, 300, 950, chunk_rows=64)
    assert np.array_equal(part, full[300:950])


def test_balanced_bounds_split_ratings_evenly():
    counts = np.array([5, 1, 1, 1, 1, 1, 5, 1, 1, 1, 1, 1])
    bounds = balanced_bounds(counts, 2)
    assert bounds.tolist() == [0, 6, 12]
    assert balanced_bounds(np.ones(2, dtype=int), 5).tolist() == [0, 1, 2]


def trained_here_and_there(cli, client, tmp_path, common):
    """The models ``alsmf`` COMMON trains in-process and on the running scheduler."""
    from alsmf.model import MFModel

    here = cli(*common, "-o", tmp_path / "here")
    there = cli(*common, "--scheduler", client.scheduler.address, "-o", tmp_path / "there")
    assert here.exit_code == 0 and there.exit_code == 0, there.output
    return (MFModel.load(tmp_path / "here" / "model.npz"),
            MFModel.load(tmp_path / "there" / "model.npz"))


def test_command_line_trains_on_a_running_scheduler_with_the_same_model(client, tmp_path, cli):
    common = ["train", "-k", "4", "-n", "3", "--synthetic", "ml-100k", "--implicit-weight", "0",
              "--set", "rank_factors=0"]
    reference, model = trained_here_and_there(cli, client, tmp_path, common)
    assert np.array_equal(model.user_factors, reference.user_factors)
    assert np.array_equal(model.item_bias, reference.item_bias)
    both = cli(*common, "--scheduler", client.scheduler.address, "--workers", 2,
               "-o", tmp_path / "both")
    assert both.exit_code == 2 and "not both" in both.output


def test_command_line_with_workers_trains_the_default_model_bit_for_bit(tmp_path, cli):
    """``alsmf train --workers 2`` with every default (implicit features, ranking head) and
    ``--feedback implicit``, each against the same command in-process."""
    from alsmf.model import MFModel

    csv = tmp_path / "plays.csv"
    plays = synthetic_ratings(n_users=80, n_items=50, n_ratings=1600, seed=2).ratings
    pd.DataFrame({"user": plays.user_ids[plays.users], "item": plays.item_ids[plays.items]}
                 ).to_csv(csv, index=False)
    for n, common in enumerate((["train", "-n", "2", "--synthetic", "ml-100k"],
                               ["train", "-n", "2", "--train", csv, "--feedback", "implicit"])):
        folder = tmp_path / str(n)
        here = cli(*common, "-o", folder / "here")
        there = cli(*common, "--workers", 2, "--checkpoint-every", 1, "-o", folder / "there")
        assert here.exit_code == 0 and there.exit_code == 0, there.output
        reference = MFModel.load(folder / "here" / "model.npz")
        model = MFModel.load(folder / "there" / "model.npz")
        for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
            assert np.array_equal(getattr(model, name), getattr(reference, name)), name
        assert_same_extras(model, reference)


def test_command_line_trains_implicit_als_on_a_running_scheduler(client, tmp_path, cli):
    common = ["train", "--method", "ials", "-k", "4", "-n", "2", "--synthetic", "ml-100k"]
    reference, model = trained_here_and_there(cli, client, tmp_path, common)
    assert np.array_equal(model.user_factors, reference.user_factors)
    assert np.array_equal(model.item_factors, reference.item_factors)


@pytest.mark.parametrize("settings", [
    {"rank_factors": 0, "iterations": 4},  # implicit features alone
    {"rank_factors": 0, "iterations": 3, "solver": "cholesky", "weighted_reg": False},
    {"iterations": 3},  # the defaults: implicit features and ranking head
])
def test_implicit_features_are_the_in_process_ones_bit_for_bit(client, split, settings):
    config = ALS(factors=6, **settings)
    assert config.implicit_weight > 0
    reference = config.fit(split[0], split[1])
    for n_blocks in (1, None, 3):
        model = train_distributed(config, split[0], split[1], client=client, n_blocks=n_blocks)
        assert_same_model(model, reference)
        assert_same_extras(model, reference)


def test_implicit_factor_slices_spanning_blocks_keep_the_in_process_sums(client, monkeypatch):
    """Gram slices of 7 rows cut across blocks of the implicit factors too."""
    import alsmf.distributed.state as state
    import alsmf.models.implicit_features as features

    monkeypatch.setattr(features, "GRAM_SLICE", 7)
    monkeypatch.setattr(state, "GRAM_SLICE", 7)
    ratings = synthetic_ratings(n_users=60, n_items=40, n_ratings=1200, seed=3).ratings
    config = ALS(factors=3, iterations=2, rank_factors=0)
    reference = config.fit(ratings)
    model = train_distributed(config, ratings, client=client, n_blocks=3)
    assert_same_model(model, reference)
    assert_same_extras(model, reference)


@pytest.mark.parametrize("settings", [{}, {"rank_factors": 0, "implicit_weight": 0.0}])
def test_checkpoint_resumes_to_the_uninterrupted_model(client, split, tmp_path, settings):
    config = ALS(factors=5, iterations=4, **settings)
    reference = config.fit(split[0], split[1])
    path = tmp_path / "checkpoint.npz"
    first = train_distributed(ALS(factors=5, iterations=2, **settings), split[0], split[1],
                              client=client, checkpoint=path)
    assert len(first.history) == 2 and path.exists()
    model = train_distributed(config, split[0], split[1], client=client, checkpoint=path,
                              checkpoint_every=1, resume=True, n_blocks=3)
    assert [r.iteration for r in model.history] == [1, 2, 3, 4]
    assert_same_model(model, reference)
    assert_same_extras(model, reference)


def test_checkpoint_of_other_settings_is_refused(client, split, tmp_path):
    path = tmp_path / "checkpoint.npz"
    train_distributed(ALS(factors=4, iterations=1), split[0], client=client, checkpoint=path)
    with pytest.raises(ConfigError, match="other settings"):
        train_distributed(ALS(factors=5, iterations=2), split[0], client=client,
                          checkpoint=path, resume=True)
    with pytest.raises(ConfigError, match="keep_seen"):
        train_distributed(ALS(factors=4), split[0], client=client, checkpoint=path,
                          keep_seen=False)


def test_checkpoint_is_the_root_of_the_lineage(client, split, tmp_path):
    """After the checkpoint of iteration 2, the user blocks come from tasks without inputs."""
    seen = {}

    def look(record, progress):
        if record.iteration == 2:
            deadline = time.monotonic() + 10  # until the scheduler has the new tasks
            while len(seen) < 2 and time.monotonic() < deadline:
                seen.update({key: deps for key, deps in
                             client.run_on_scheduler(_dependencies_of_user_blocks).items()
                             if "-it2-root-" in key})

    config = ALS(factors=4, iterations=3, rank_factors=0)
    train_distributed(config, split[0], client=client, checkpoint=tmp_path / "c.npz",
                      callback=look)
    assert len(seen) == 2 and all(not deps for deps in seen.values())


def _dependencies_of_user_blocks(dask_scheduler):
    return {key: [d.key for d in task.dependencies]
            for key, task in dask_scheduler.tasks.items()
            if isinstance(key, str) and re.search(r"-it\d+-root-user\d+$", key)}


@pytest.mark.parametrize("settings", [
    {"iterations": 3},  # the default head: 10 head iterations, so one with each of the 3
    {"iterations": 4, "rank_iterations": 2, "rank_factors": 5, "solver": "cholesky"},
])
def test_ranking_head_is_the_in_process_one_bit_for_bit(client, split, settings):
    config = ALS(implicit_weight=0.0, factors=6, **settings)
    reference = config.fit(split[0], split[1])
    for n_blocks in (None, 3):
        model = train_distributed(config, split[0], split[1], client=client, n_blocks=n_blocks)
        assert_same_model(model, reference)
        assert_same_extras(model, reference)
        assert model.ranking_system == reference.ranking_system and model.has_ranking_head


def test_callback_fetches_the_model_with_its_ranking_head(client, split):
    fetched = []
    config = ALS(implicit_weight=0.0, factors=4, iterations=2, rank_factors=3)
    model = train_distributed(config, split[0], client=client,
                              callback=lambda record, progress: fetched.append(progress.fetch()))
    assert np.array_equal(fetched[-1].extras["ranking_user_factors"],
                          model.extras["ranking_user_factors"])


def test_a_scheduler_that_steals_work_is_named():
    with (distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None)
          as cluster, distributed.Client(cluster) as own):
        with pytest.warns(UserWarning, match="work stealing on"):
            train_distributed(ALS(**PLAIN, factors=2, iterations=1),
                              synthetic_ratings(n_users=30, n_items=20, n_ratings=600,
                                                seed=0).ratings, client=own)


def test_the_workers_drop_the_run_when_it_ends_even_with_a_callback(client, split):
    progress = []
    before = {key.split("-")[1] for key in client.run_on_scheduler(_run_tasks)}  # other runs
    train_distributed(ALS(factors=3, iterations=2), split[0], client=client,
                      callback=lambda record, p: progress.append(p))

    def left():
        return [key for key in client.run_on_scheduler(_run_tasks)
                if key.split("-")[1] not in before]

    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert progress and not left(), left()[:10]


def _run_tasks(dask_scheduler):
    return [str(key) for key in dask_scheduler.tasks if str(key).startswith("alsmf-")]


def test_ctrl_c_rolls_the_defaults_back_to_the_last_finished_iteration(client, split,
                                                                       monkeypatch):
    """Ctrl-C after iteration 3's step leaves the default model (implicit features, head) of
    2 iterations: the in-process model of a fit its callback stopped after iteration 2."""
    from alsmf import TrainingInterrupted
    from alsmf.distributed.state import DaskState

    config = ALS(factors=4, iterations=5, rank_iterations=4)
    reference = config.fit(split[0], split[1], callback=lambda record, model:
                           record.iteration == 2)
    step = DaskState.step

    def step_with_ctrl_c(self, iteration):
        step(self, iteration)
        if iteration == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(DaskState, "step", step_with_ctrl_c)
    with pytest.raises(TrainingInterrupted) as caught:
        train_distributed(config, split[0], split[1], client=client)
    assert_same_model(caught.value.model, reference)
    assert_same_extras(caught.value.model, reference)
