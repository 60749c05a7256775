"""Figures for Bayesian MF (Gibbs sampling): accuracy, calibration, choice of defaults, speed.

    python benchmarks/bayes.py folds                    # ml-100k u1..u5 test RMSE, defaults
    python benchmarks/bayes.py validate                 # defaults chosen on training folds
    python benchmarks/bayes.py validate --grid-factors 20,32 --grid-burn-in 20 \
        --grid-samples 100 --grid-hyperprior wishart    # does a larger k help?
    python benchmarks/bayes.py validate --grid-burn-in 20 --grid-samples 100 \
        --grid-hyperprior wishart --grid-implicit-weight 0,1,2,3 \
        --grid-implicit-reg 1,3,10,100                  # the implicit features' w and λ_z
    python benchmarks/bayes.py synthetic                # RMSE vs noise σ, 90% interval coverage
    python benchmarks/bayes.py speed --shape ml-1m      # s/sweep vs exact ALS s/iteration
    python benchmarks/bayes.py speed --shape ml-20m     # the same at ML-20M shape (~5 GB)

``speed`` adds a myFM row (and the myFM / BayesianMF ratio) when run in the peer environment
(``benchmarks/requirements-peers.txt``), where myfm is installed.

``validate`` never looks at u1..u5.test: it carves a random 10% validation part out of each
u*.base and scores settings on it. ``speed`` times both trainers in the same process on the
same synthetic data (the median over the sweeps/iterations after the first), so machine load
affects both alike. Prints markdown tables with the machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from alsmf.models.bayes import BayesianMF, predict_interval
from alsmf.data.movielens import canonical_folds
from alsmf.data.splits import random_split
from alsmf.data.synthetic import synthetic_ratings
from alsmf.models.als import ALS

DEFAULT_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


def folds_table(path: Path, threads: int | None) -> str:
    """Test RMSE of the default BayesianMF on each canonical fold, and their mean."""
    config = BayesianMF()
    scores = [config.fit(train, test, threads=threads).history[-1].test_rmse
              for train, test in canonical_folds(path)]
    label = (f"BayesianMF defaults (k={config.factors}, {config.sweeps} sweeps, burn-in "
             f"{config.burn_in}, {config.samples} kept, {config.hyperprior}, implicit w "
             f"{config.implicit_weight:g}, λ_z {config.implicit_reg:g})")
    cells = " | ".join(f"{s:.4f}" for s in scores)
    return ("| settings | u1 | u2 | u3 | u4 | u5 | mean |\n|---|---|---|---|---|---|---|\n"
            f"| {label} | {cells} | **{statistics.mean(scores):.4f}** |")


GRID = {"factors": (10,), "burn_in": (10, 20, 40), "samples": (32, 100),
        "hyperprior": ("wishart", "gamma"), "implicit_weight": (2.0,), "implicit_reg": (3.0,)}
"""Settings tried by ``validate`` (200 sweeps each); ``--grid-factors`` etc. replace a row."""


def validate_table(path: Path, threads: int | None, grid: dict[str, tuple]) -> str:
    """Mean validation RMSE (10% carved from each u*.base) of every setting in ``grid``."""
    splits = [random_split(train, test_fraction=0.1, seed=0)
              for train, _ in canonical_folds(path)]
    rows = ["| k | burn-in | kept | hyperprior | implicit w | implicit λ_z "
            "| validation RMSE (mean of 5) |", "|---|---|---|---|---|---|---|"]
    results = []
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values))
        scores = [BayesianMF(sweeps=200, **settings).fit(fit, held, threads=threads)
                  .history[-1].test_rmse for fit, held in splits]
        results.append((statistics.mean(scores), settings))
        print(f"  {settings}: {statistics.mean(scores):.4f}", flush=True)
    for score, s in sorted(results, key=lambda pair: pair[0]):
        rows.append(f"| {s['factors']} | {s['burn_in']} | {s['samples']} | {s['hyperprior']} "
                    f"| {s['implicit_weight']:g} | {s['implicit_reg']:g} | {score:.4f} |")
    return "\n".join(rows)


DENSE = {"n_users": 400, "n_items": 500, "n_ratings": 80_000, "rank": 1}
"""The dense synthetic set of tests/test_bayes.py (160-250 ratings per row, true rank 1)."""


def synthetic_table(threads: int | None, factors: int) -> str:
    """Posterior-mean RMSE / σ and 90% interval coverage on synthetic data (true rank 8, and
    the tests' dense rank-1 set)."""
    rows = ["| data | values | k | noise σ | true model's test RMSE | test RMSE | RMSE / σ | "
            "90% interval coverage |", "|---|---|---|---|---|---|---|---|"]
    noise = 0.8
    config = BayesianMF(factors=factors)
    train, test, oracle = synthetic_ratings(**DENSE, noise=noise, seed=0).unrounded_split(0)
    model = config.fit(train, test, threads=threads)
    pairs = (test.user_ids[test.users], test.item_ids[test.items])
    _, lower, upper = predict_interval(model, *pairs, level=0.9)
    rmse = model.history[-1].test_rmse
    rows.append(f"| dense 400 x 500, 80k ratings, true rank 1 (the tests' set) | unrounded | "
                f"{factors} | {noise:g} | {oracle:.4f} | {rmse:.4f} | {rmse / noise:.3f} | "
                f"{np.mean((test.values >= lower) & (test.values <= upper)):.3f} |")
    for like in ("ml-100k", "ml-1m"):
        train, test, oracle = synthetic_ratings(like, noise=noise, seed=0).unrounded_split(0)
        model = config.fit(train, test, threads=threads)
        pairs = (test.user_ids[test.users], test.item_ids[test.items])
        _, lower, upper = predict_interval(model, *pairs, level=0.9)
        coverage = np.mean((test.values >= lower) & (test.values <= upper))
        rmse = model.history[-1].test_rmse
        rows.append(f"| synthetic {like} | unrounded | {factors} | {noise:g} | {oracle:.4f} | "
                    f"{rmse:.4f} | {rmse / noise:.3f} | {coverage:.3f} |")
        data = synthetic_ratings(like, noise=noise, seed=0)
        train, test = random_split(data.ratings, test_fraction=0.1, seed=0)
        rmse = config.fit(train, test, threads=threads).history[-1].test_rmse
        rows.append(f"| synthetic {like} | half stars (as README's ALS table) | {factors} | "
                    f"{noise:g} | {data.oracle_rmse:.4f} | {rmse:.4f} | {rmse / noise:.3f} | "
                    "- |")
    return "\n".join(rows)


def speed_table(shape: str, factors: int, threads: int, rounds: int) -> str:
    """Seconds per Gibbs sweep against seconds per exact-ALS iteration, same data and run.

    Wall time is the history's ``seconds``; CPU time (all threads) is read between callbacks,
    so it is not inflated when other processes share the cores. Both include the evaluation.
    """
    load_before = os.getloadavg()[0]
    ratings = synthetic_ratings(shape, seed=0).ratings
    warm = ratings.subset(np.arange(len(ratings)) < 20_000)
    trainers = {
        "BayesianMF sweep": BayesianMF(factors=factors, sweeps=rounds, burn_in=rounds - 1,
                                       samples=1),
        'ALS(solver="cholesky") iteration': ALS(factors=factors, iterations=rounds,
                                                solver="cholesky"),
    }
    timings = {}
    for name, trainer in trainers.items():
        trainer.fit(warm, threads=threads)  # compile outside the timing
        marks = [time.process_time()]
        history = trainer.fit(ratings, threads=threads,
                              callback=lambda record, model: marks.append(time.process_time())
                              ).history
        timings[name] = (statistics.median(r.seconds for r in history[1:]),
                         statistics.median(np.diff(marks[1:])))
    myfm_timing = myfm_sweep_seconds(ratings, factors, rounds)
    if myfm_timing is not None:
        timings[f"myFM {myfm_timing[2]} sweep (MyFMRegressor, 1 thread)"] = myfm_timing[:2]
    als_wall, als_cpu = timings['ALS(solver="cholesky") iteration']
    rows = [f"{shape} shape ({len(ratings):,} ratings), k = {factors}, {threads} threads, "
            f"median of rounds 2..{rounds}; 1-minute load average before: {load_before:.1f}", "",
            "| step | wall seconds | CPU seconds | ratio to ALS (wall) | ratio to ALS (CPU) |",
            "|---|---|---|---|---|"]
    for name, (wall, cpu) in timings.items():
        rows.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / als_wall:.2f} | "
                    f"{cpu / als_cpu:.2f} |")
    if myfm_timing is not None:
        sweep_wall = timings["BayesianMF sweep"][0]
        rows += ["", f"myFM / BayesianMF seconds per sweep (wall): "
                     f"**{myfm_timing[0] / sweep_wall:.1f}x**"]
    return "\n".join(rows)


def myfm_sweep_seconds(ratings, factors: int, rounds: int) -> tuple[float, float, str] | None:
    """myFM's median (wall, CPU) seconds per sweep on the same ratings, and its version.

    ``None`` when myfm is not installed (it is in the peer environment,
    ``benchmarks/requirements-peers.txt``). The model is the one ``benchmarks/folds.py`` fits:
    ``MyFMRegressor`` on the user and item one-hot, rank ``factors``; one draw is kept so its
    memory stays that of the sampler. Sweeps are timed between its callbacks.
    """
    try:
        import myfm
    except ImportError:
        return None
    from importlib.metadata import version

    import scipy.sparse as sp

    n = len(ratings)
    rows = np.arange(n)
    one_hot = sp.hstack([sp.csr_matrix((np.ones(n), (rows, codes)), shape=(n, width))
                         for codes, width in ((ratings.users, ratings.n_users),
                                              (ratings.items, ratings.n_items))], format="csr")
    marks = [(time.perf_counter(), time.process_time())]

    def mark(*_) -> tuple[bool, None]:
        marks.append((time.perf_counter(), time.process_time()))
        return False, None

    myfm.MyFMRegressor(rank=factors, random_seed=0).fit(
        one_hot, ratings.values.astype(np.float64), n_iter=rounds, n_kept_samples=1,
        callback=mark)
    steps = np.diff(np.array(marks[1:]), axis=0)  # sweeps 2..rounds
    return (float(np.median(steps[:, 0])), float(np.median(steps[:, 1])),
            version("myfm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("folds", "validate", "synthetic", "speed"))
    parser.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--shape", default="ml-1m", help="speed: synthetic shape")
    parser.add_argument("--factors", type=int, default=None,
                        help="speed: k (default 64); synthetic: k (default 10)")
    parser.add_argument("--rounds", type=int, default=4, help="speed: sweeps/iterations")
    for name, values in GRID.items():
        parser.add_argument(f"--grid-{name.replace('_', '-')}", dest=f"grid_{name}",
                            help=f"validate: comma-separated {name} values (default "
                                 f"{','.join(map(str, values))})")
    args = parser.parse_args()
    grid = {name: values if getattr(args, f"grid_{name}") is None else tuple(
        type(values[0])(v) for v in getattr(args, f"grid_{name}").split(","))
        for name, values in GRID.items()}
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), "
          f"{datetime.date.today().isoformat()}\n")
    if args.what == "folds":
        print(folds_table(args.ml100k, args.threads))
    elif args.what == "validate":
        print(validate_table(args.ml100k, args.threads, grid))
    elif args.what == "synthetic":
        print(synthetic_table(args.threads, args.factors or 10))
    else:
        print(speed_table(args.shape, args.factors or 64, args.threads or 2, args.rounds))


if __name__ == "__main__":
    main()
