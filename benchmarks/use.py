"""Using a model at ML-20M scale: recommendations for every user, fold-in and explain latency.

Builds an ML-20M-shaped model without training: the seen items (and their ratings) of every
user come from ``alsmf.synthetic_ratings("ml-20m")`` (138,493 users, 26,744 items, 20,000,263
ratings with MovieLens' heavy-tailed activity and popularity), the factors (k = 64) and biases
are random float32, as the default (conjugate-gradient) trainer stores them. Speed does not
depend on the factors' values, only on the shapes, the precision and how many items each user
has seen, which the synthetic data copies from the release.

Timed, each after a warm-up so that numba's compile time is excluded:

* ``recommend_all(n=10)``, rated items excluded, for every user (median of 3 runs);
* ``recommend`` for one user, ``fold_in`` of a new user with 10 ratings, ``fold_in`` of 10
  new ratings into a trained user, and ``explain`` for a typical and for the most active user
  (median of 100 calls each).

Prints a markdown table (with the machine and the date) and writes it to
``benchmarks/results/use.md``. ``--users N`` times ``recommend_all`` on a seeded sample of N
users instead, for a quick run, and extrapolates to all users.

    python benchmarks/use.py                 # every user; a few minutes on 2 cores
    python benchmarks/use.py --users 5000    # about a minute, most of it building the data
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numba
import numpy as np

from alsmf import MFModel, synthetic_ratings

FACTORS = 64
TOP_N = 10
NEW_RATINGS = 10
RESULTS = Path(__file__).resolve().parent / "results" / "use.md"


def build_model(seed: int) -> MFModel:
    """An ML-20M-shaped model: synthetic seen ratings, random factors and biases."""
    ratings = synthetic_ratings("ml-20m", seed=seed).ratings
    by_user = ratings.by_user()
    rng = np.random.default_rng(seed)
    factor_sd = (0.3 / FACTORS) ** 0.25  # p·q of variance 0.3, as in the synthetic truth
    return MFModel(
        user_factors=rng.normal(0.0, factor_sd, (ratings.n_users, FACTORS)).astype(np.float32),
        item_factors=rng.normal(0.0, factor_sd, (ratings.n_items, FACTORS)).astype(np.float32),
        user_bias=rng.normal(0.0, 0.35, ratings.n_users).astype(np.float32),
        item_bias=rng.normal(0.0, 0.4, ratings.n_items).astype(np.float32),
        global_mean=3.55,
        fallback_mean=3.55,
        user_ids=ratings.user_ids,
        item_ids=ratings.item_ids,
        seen_indptr=by_user.indptr.astype(np.int64),
        seen_indices=by_user.indices.astype(np.int32),
        seen_values=by_user.data.astype(np.float32),
        params={"factors": FACTORS, "reg": 0.12, "weighted_reg": True, "biases": True,
                "solver": "cg"},
    )


def median_seconds(call: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``call`` over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def run(users: int | None, seed: int) -> str:
    """Build the model, time everything, return the markdown report."""
    started = time.perf_counter()
    model = build_model(seed)
    build_seconds = time.perf_counter() - started
    counts = np.diff(model.seen_indptr)
    rng = np.random.default_rng(seed + 1)
    print(f"model built in {build_seconds:.1f} s: {model}", file=sys.stderr)

    model.recommend_all(model.user_ids[:1000], n=TOP_N)  # compile outside the timings
    if users is None:
        sample, what = None, f"all {model.n_users:,} users"
    else:
        sample = np.sort(rng.choice(model.user_ids, size=min(users, model.n_users),
                                    replace=False))
        what = f"{len(sample):,} sampled users"
    load = os.getloadavg()[0]
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    all_seconds = median_seconds(lambda: model.recommend_all(sample, n=TOP_N), 3, warmup=0)
    busy = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
    timed_users = model.n_users if sample is None else len(sample)
    per_user = all_seconds / timed_users
    total = (f"{all_seconds:.1f} s" if sample is None
             else f"{all_seconds:.2f} s (all users: {per_user * model.n_users:.0f} s, "
                  "extrapolated)")
    total += f"; {per_user * 1e3:.3f} ms per user; {busy:.1f} cores busy on average"
    print(f"recommend_all: {total}", file=sys.stderr)

    popularity = np.bincount(model.seen_indices, minlength=model.n_items).astype(np.float64)
    new_items = model.item_ids[rng.choice(model.n_items, size=NEW_RATINGS, replace=False,
                                          p=popularity / popularity.sum())]
    new_values = rng.integers(1, 11, NEW_RATINGS) / 2.0
    typical = int(model.user_ids[np.argsort(counts, kind="stable")[model.n_users // 2]])
    heaviest = int(model.user_ids[np.argmax(counts)])
    typical_count = int(counts[np.searchsorted(model.user_ids, typical)])
    heaviest_count = int(counts.max())
    folded = model.fold_in(new_items, new_values)
    # explain the item each user would be recommended first
    folded_item = int(model.recommend(folded, n=1).items[0])
    typical_item = int(model.recommend(typical, n=1).items[0])
    heaviest_item = int(model.recommend(heaviest, n=1).items[0])

    rows = [
        ("recommend_all, n=10, rated items excluded", what, "median of 3", total),
        ("recommend, n=10, one trained user", f"user {typical} ({typical_count} ratings)",
         "median of 100", milliseconds(median_seconds(lambda: model.recommend(typical), 100))),
        ("fold_in, new user", f"{NEW_RATINGS} ratings", "median of 100",
         milliseconds(median_seconds(lambda: model.fold_in(new_items, new_values), 100))),
        ("fold_in + recommend, new user (what `alsmf rate` does)", f"{NEW_RATINGS} ratings",
         "median of 100",
         milliseconds(median_seconds(
             lambda: model.recommend(model.fold_in(new_items, new_values)), 100))),
        ("fold_in, update a trained user", f"user {typical}: {typical_count} + {NEW_RATINGS} "
         "ratings", "median of 100",
         milliseconds(median_seconds(
             lambda: model.fold_in(new_items, new_values, user=typical), 100))),
        ("explain, n=5, new user", f"{NEW_RATINGS} ratings", "median of 100",
         milliseconds(median_seconds(lambda: model.explain(folded, folded_item), 100))),
        ("explain, n=5, trained user", f"user {typical} ({typical_count} ratings)",
         "median of 100",
         milliseconds(median_seconds(lambda: model.explain(typical, typical_item), 100))),
        ("explain, n=5, most active user", f"user {heaviest} ({heaviest_count} ratings)",
         "median of 100",
         milliseconds(median_seconds(lambda: model.explain(heaviest, heaviest_item), 100))),
    ]
    today = datetime.date.today().isoformat()
    lines = [
        "# Using an ML-20M-shaped model",
        "",
        f"Measured {today} with `python benchmarks/use.py"
        + ("" if users is None else f" --users {users}") + "` on "
        f"{platform.platform()} ({cpu_name()}, {os.cpu_count()} cores, numba threads "
        f"{numba.get_num_threads()}), Python {platform.python_version()}, numpy "
        f"{np.__version__}, numba {numba.__version__}. One-minute load average before the "
        f"`recommend_all` runs: {load:.2f} (this process's model building included); "
        "\"cores busy\" is this process's CPU time over wall time during them, below the "
        "core count when other processes share the cores.",
        "",
        f"Model: {model.n_users:,} users x {model.n_items:,} items, k = {FACTORS}, "
        f"{len(model.seen_indices):,} seen ratings (synthetic ml-20m, seed {seed}; median "
        f"{int(np.median(counts))} and at most {heaviest_count:,} per user), random float32 "
        "factors as the default conjugate-gradient trainer stores them. "
        "Warm-up runs exclude numba's compile time; `explain` explains the user's first "
        "recommendation.",
        "",
        "| operation | workload | statistic | time |",
        "|---|---|---|---|",
        *(f"| {operation} | {workload} | {statistic} | {timing} |"
          for operation, workload, statistic, timing in rows),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=None,
                        help="time recommend_all on a seeded sample of this many users")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and factors")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    if args.users is not None and args.users < 1:
        parser.error("--users must be at least 1")
    report = run(args.users, args.seed)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
