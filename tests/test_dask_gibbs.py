"""The Gibbs sampler (BayesianMF) on a Dask cluster: the in-process draws and model, bit for bit."""

import numpy as np
import pytest

from alsmf.data.splits import random_split
from alsmf.data.synthetic import synthetic_ratings
from alsmf.errors import ConfigError
from alsmf.models.bayes import BayesianMF
from alsmf.models.gibbs_sampler import draw_prior, row_statistics, sweep_rng
from alsmf.solvers.gibbs import STATISTICS_SLICE, add_in_order, slice_sums

distributed = pytest.importorskip("distributed")

from alsmf.distributed import local_cluster, train_distributed  # noqa: E402
from alsmf.distributed import gibbs_tasks  # noqa: E402
from alsmf.distributed.tasks import FactorBlock  # noqa: E402

from tests.dask_helpers import (assert_same_extras, assert_same_model,  # noqa: E402
                                train_killing_a_worker)

PLAIN = {"implicit_weight": 0.0, "rank_factors": 0}


@pytest.fixture(scope="module")
def client():
    with local_cluster(2, threads_per_worker=1) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def split():
    ratings = synthetic_ratings(n_users=300, n_items=200, n_ratings=6000, seed=1).ratings
    return random_split(ratings, test_fraction=0.1, seed=0)


@pytest.fixture(scope="module")
def many_users():
    """More users than two statistics slices: blocks hold whole slices and cut others."""
    ratings = synthetic_ratings(n_users=2 * STATISTICS_SLICE + 900, n_items=60,
                                n_ratings=30000, min_per_user=2, seed=3).ratings
    return random_split(ratings, test_fraction=0.1, seed=1)


def assert_same_sampler_model(model, reference):
    assert_same_model(model, reference)
    assert_same_extras(model, reference)
    assert model.system == reference.system
    assert [r.objective for r in model.history] == [r.objective for r in reference.history]


@pytest.mark.parametrize("settings", [
    PLAIN,
    {"rank_factors": 0},  # implicit features
    {"rank_factors": 3, "rank_iterations": 2, "hyperprior": "gamma"},  # the ranking head too
])
def test_sampler_is_the_in_process_one_for_any_number_of_blocks(client, split, settings):
    config = BayesianMF(factors=4, sweeps=6, burn_in=2, samples=3, **settings)
    reference = config.fit(split[0], split[1])
    for n_blocks in (None, 3):
        assert_same_sampler_model(train_distributed(config, split[0], split[1], client=client,
                                                    n_blocks=n_blocks), reference)


def test_slices_inside_and_across_blocks_give_the_in_process_draws(client, many_users):
    """With 3 blocks of ~3,000 users, some statistics slices lie inside a block and the rest
    span two; the priors, and so every draw, still equal in-process."""
    config = BayesianMF(factors=3, sweeps=3, burn_in=1, samples=2, rank_factors=0)
    reference = config.fit(*many_users)
    assert_same_sampler_model(train_distributed(config, *many_users, client=client,
                                                n_blocks=3), reference)


def test_side_statistics_from_blocks_are_the_whole_sides():
    rng = np.random.default_rng(4)
    factors, bias = rng.standard_normal((3 * STATISTICS_SLICE + 17, 3)), rng.standard_normal(
        3 * STATISTICS_SLICE + 17)
    n, mean, scatter = row_statistics(factors, bias)
    whole = FactorBlock(factors, bias)
    # one block's inner slices, then a slice assembled across a boundary, then the rest
    cut = STATISTICS_SLICE + 100
    pieces = [gibbs_tasks.draw_rows(whole, STATISTICS_SLICE, cut),
              gibbs_tasks.draw_rows(whole, cut, 2 * STATISTICS_SLICE)]
    parts = [(whole, 0, STATISTICS_SLICE), (gibbs_tasks.joined_rows(*pieces), 0,
                                            STATISTICS_SLICE),
             (whole, 2 * STATISTICS_SLICE, len(bias))]
    sums = [gibbs_tasks.rows_sums(block, lo, hi) for block, lo, hi in parts]
    assert np.array_equal(gibbs_tasks.side_mean(n, *sums), mean)
    assert np.array_equal(add_in_order(slice_sums(factors, bias)) / n, mean)
    scatters = [gibbs_tasks.rows_scatters(block, lo, hi, mean) for block, lo, hi in parts]
    drawn = gibbs_tasks.side_prior("wishart", 5, 2, 0, n, mean, *scatters)
    expected = draw_prior("wishart", sweep_rng(5, 2, 0), n, mean, scatter)
    assert all(np.array_equal(a, b) for a, b in zip(drawn, expected))
    assert np.allclose(scatter, (np.column_stack([factors, bias]) - mean).T
                       @ (np.column_stack([factors, bias]) - mean))


def test_checkpoint_resumes_bit_for_bit_on_dask_and_in_process(client, split, tmp_path):
    """A Dask checkpoint holds the in-process sampler's state: either can resume it."""
    config = BayesianMF(factors=4, sweeps=6, burn_in=1, samples=4, rank_factors=3,
                        rank_iterations=4)
    reference = config.fit(split[0], split[1])
    first = tmp_path / "dask.npz"

    def stop_at_3(record, progress):
        return record.iteration == 3

    train_distributed(config, split[0], split[1], client=client, checkpoint=first,
                      callback=stop_at_3)
    resumed = train_distributed(config, split[0], split[1], client=client, checkpoint=first,
                                resume=True, n_blocks=3)
    assert [r.iteration for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert_same_sampler_model(resumed, reference)
    second = tmp_path / "in-process.npz"
    train_distributed(config, split[0], split[1], client=client, checkpoint=second,
                      callback=stop_at_3)
    assert_same_sampler_model(config.fit(split[0], split[1], checkpoint=second, resume=True),
                              reference)
    third = tmp_path / "to-dask.npz"
    config.fit(split[0], split[1], checkpoint=third, callback=lambda r, m: r.iteration == 4)
    assert_same_sampler_model(train_distributed(config, split[0], split[1], client=client,
                                                checkpoint=third, resume=True), reference)


def test_callback_fetches_the_current_draw_as_in_process(client, split):
    config = BayesianMF(factors=3, sweeps=3, burn_in=1, samples=2, **PLAIN)
    ours, theirs = [], []
    train_distributed(config, split[0], client=client,
                      callback=lambda record, progress: ours.append(progress.fetch()))
    config.fit(split[0], callback=lambda record, model: theirs.append(model.user_factors.copy()))
    assert len(ours) == len(theirs) == 3
    assert all(np.array_equal(a.user_factors, b) for a, b in zip(ours, theirs))


def test_checkpoint_of_als_settings_is_refused_by_the_sampler(client, split, tmp_path):
    from alsmf.models.als import ALS

    path = tmp_path / "checkpoint.npz"
    train_distributed(ALS(factors=4, iterations=1, **PLAIN), split[0], client=client,
                      checkpoint=path)
    with pytest.raises(ConfigError, match="other settings"):
        train_distributed(BayesianMF(factors=4, sweeps=2, burn_in=1, **PLAIN), split[0],
                          client=client, checkpoint=path, resume=True)


def test_command_line_trains_the_sampler_on_workers_bit_for_bit(tmp_path, cli):
    from alsmf.model import MFModel

    options = ["train", "--synthetic", "ml-100k", "--method", "bayes", "--sweeps", 4,
               "--burn-in", 1, "--samples", 2, "--factors", 3, "--set", "rank_factors=2",
               "--set", "rank_iterations=2"]
    local, dask = tmp_path / "local", tmp_path / "dask"
    here = cli(*options, "-o", local)
    there = cli(*options, "--workers", 2, "--checkpoint-every", 2, "-o", dask)
    assert here.exit_code == 0 and there.exit_code == 0, there.output
    ours, theirs = (MFModel.load(folder / "model.npz") for folder in (dask, local))
    assert_same_model(ours, theirs)
    assert_same_extras(ours, theirs)


def test_parquet_read_by_the_workers_gives_the_in_process_sampler(client, split, tmp_path):
    """One Parquet file: the mean and the variance (α's start) from the workers' sums are the
    in-process ones, so the draws are too; two files give the variance to rounding."""
    from alsmf.distributed.ingest import load
    from alsmf.training.builder import rating_variance

    frame = split[0].to_frame()[["user", "item", "rating"]]
    file = tmp_path / "train.parquet"
    frame.to_parquet(file, index=False)
    config = BayesianMF(factors=3, sweeps=3, burn_in=1, samples=2, rank_factors=0)
    assert_same_sampler_model(train_distributed(config, file, split[1], client=client),
                              config.fit(split[0], split[1]))
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:1000].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[1000:].to_parquet(folder / "part-1.parquet", index=False)
    data = load(client, folder, None, 2, "variance-check")
    assert data.variance == pytest.approx(rating_variance(split[0].values), rel=1e-12)
    data.blocks = {}


def test_killed_worker_mid_sweep_gives_the_same_model(client, split):
    """SIGKILL the worker holding the first result of sweep 3: Dask recomputes its blocks,
    draws and kept draws from the lineage, and the model is the in-process one."""
    config = BayesianMF(factors=4, sweeps=6, burn_in=1, samples=4, rank_factors=0)
    reference = config.fit(split[0], split[1])
    assert_same_sampler_model(train_killing_a_worker(client, config, split[0], split[1]),
                              reference)


@pytest.mark.parametrize("when", ["before", "after"])
def test_ctrl_c_rolls_the_sampler_back_to_the_last_finished_sweep(client, split, monkeypatch,
                                                                  when):
    """Ctrl-C in sweep 3, before its step runs or after, leaves the model of 2 sweeps: the
    in-process model of a fit its callback stopped after sweep 2."""
    from alsmf import TrainingInterrupted
    from alsmf.distributed.gibbs import DaskGibbsState

    config = BayesianMF(factors=3, sweeps=5, burn_in=1, samples=4, rank_factors=2)
    reference = config.fit(split[0], split[1], callback=lambda record, model:
                           record.iteration == 2)
    step = DaskGibbsState.step

    def step_with_ctrl_c(self, iteration):
        if iteration == 3 and when == "before":
            raise KeyboardInterrupt
        step(self, iteration)
        if iteration == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(DaskGibbsState, "step", step_with_ctrl_c)
    with pytest.raises(TrainingInterrupted) as caught:
        train_distributed(config, split[0], split[1], client=client)
    assert_same_sampler_model(caught.value.model, reference)
