"""Accuracy figures for the README: ml-100k canonical folds and synthetic data of known noise.

    python benchmarks/accuracy.py                  # defaults on u1..u5 + synthetic check
    python benchmarks/accuracy.py --grid           # also a k x λ grid on u1..u5

The ml-100k folds are read from ``../shared/data/ml-100k`` (or ``--ml100k PATH``); they are
never copied into the repository. Prints markdown tables with the machine and date.

Note on the grid: it picks k and λ by their mean test RMSE on u1..u5 itself, so its best
figure is optimistic; the default settings were fixed before and are the honest number.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from alsmf.data.movielens import canonical_folds
from alsmf.data.source import DataSource
from alsmf.models.als import ALS

DEFAULT_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
PLAIN = {"reg_bias": None, "implicit_weight": 0.0, "rank_factors": 0, "iterations": 15}
"""The plain biased ALS of the k x λ grid: one λ, no implicit features (the earlier defaults)."""


def fold_rmse(folds, **params) -> list[float]:
    """Final test RMSE of ALS with ``params`` on each (train, test) fold."""
    return [ALS(**params).fit(train, test).history[-1].test_rmse for train, test in folds]


def ml100k_table(folds, grid: bool) -> str:
    rows = ["| settings | u1 | u2 | u3 | u4 | u5 | mean |", "|---|---|---|---|---|---|---|"]
    defaults = ALS()
    runs = [("defaults (k=%d, λ=%g, %d it.)" % (defaults.factors, defaults.reg,
                                                 defaults.iterations), {})]
    if grid:
        runs += [(f"plain, k={k}, λ={reg}", {"factors": k, "reg": reg, **PLAIN})
                 for k in (32, 64, 128) for reg in (0.1, 0.12, 0.14)]
    for label, params in runs:
        scores = fold_rmse(folds, **params)
        cells = " | ".join(f"{s:.4f}" for s in scores)
        rows.append(f"| {label} | {cells} | **{statistics.mean(scores):.4f}** |")
    return "\n".join(rows)


SYNTHETIC_RUNS = [  # (label, ALS parameters); the true rank of the synthetic model is 8
    ("defaults", {}),
    ("plain, k=64, λ=0.12, 15 it.", PLAIN),
    ("plain, k=8 (the true rank), λ=0.05, 15 it.", {"factors": 8, "reg": 0.05, **PLAIN}),
]


def synthetic_table(seeds: int) -> str:
    rows = ["| data | settings | noise σ | best achievable (true model) | alsmf test RMSE "
            f"(median of {seeds} seeds) | ratio to σ |", "|---|---|---|---|---|---|"]
    for like in ("ml-100k", "ml-1m"):
        splits = [DataSource(synthetic=like, test_fraction=0.1, seed=seed).train_test()
                  for seed in range(seeds)]
        oracle = statistics.median(s.notes["oracle_rmse"] for s in splits)
        noise = splits[0].notes["noise"]
        for label, params in SYNTHETIC_RUNS:
            median = statistics.median(
                ALS(seed=seed, **params).fit(s.train, s.test).history[-1].test_rmse
                for seed, s in enumerate(splits))
            rows.append(f"| synthetic {like} | {label} | {noise:g} | {oracle:.4f} | "
                        f"{median:.4f} | {median / noise:.3f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--grid", action="store_true", help="also tune k and λ on the folds")
    parser.add_argument("--seeds", type=int, default=3, help="synthetic repetitions")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; date {datetime.date.today()}\n")
    started = time.perf_counter()
    if args.ml100k.is_dir():
        print("ml-100k canonical folds, final test RMSE\n")
        print(ml100k_table(canonical_folds(args.ml100k), args.grid), "\n")
    else:
        print(f"(ml-100k not found at {args.ml100k}: skipped)\n")
    print("Synthetic data with known noise, 90/10 random split\n")
    print(synthetic_table(args.seeds))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
