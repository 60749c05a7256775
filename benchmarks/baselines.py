"""The baselines against ALS on the ml-100k canonical folds u1..u5: test RMSE and fit time.

    python benchmarks/baselines.py                  # prints a markdown table (~3 min on 2 cores)
    python benchmarks/baselines.py --out baselines-ml-100k   # also writes results/STEM.md

Every method runs with its defaults, plus SGD with the settings that were tuned for Surprise's
SVD on these folds (NOTES.md: 50 factors, 100 epochs, lr 0.01, λ 0.1), so the SGD rows can be
set beside Surprise's figures (defaults 0.9380, tuned 0.9153). The folds are read from
``../shared/data/ml-100k`` (or ``--ml100k PATH``); they are never copied into the repository.

Times per fold: ``fit CPU s`` is the process CPU time of ``fit`` (all threads; it includes
the scoring after every iteration), ``update s`` the wall time of the updates alone (the sum
of the history's ``solve_seconds``), ``wall s`` the wall time of ``fit``. Each is the median
over the five folds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from alsmf.baselines import SGD, BiasOnly, GlobalMean, GradientDescent, TruncatedSVD
from alsmf.data.movielens import canonical_folds
from alsmf.models.als import ALS

DEFAULT_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
RESULTS = Path(__file__).resolve().parent / "results"

RUNS = [
    ("mean: global mean", GlobalMean()),
    ("bias: μ + b_u + b_i, ALS (reg_u 15, reg_i 10, 10 epochs)", BiasOnly()),
    ("sgd: defaults (k 100, 20 epochs, lr 0.005, λ 0.02)", SGD()),
    ("sgd: Surprise-tuned (k 50, 100 epochs, lr 0.01, λ 0.1)",
     SGD(factors=50, epochs=100, lr=0.01, reg=0.1)),
    ("gd: the notebooks' GD (K 2, 5000 steps, α 0.0002, β 0.02)", GradientDescent()),
    ("svd: truncated SVD, baseline-centred (k 10)", TruncatedSVD()),
    ("svd: truncated SVD, uncentred, zeros for missing (k 10)", TruncatedSVD(center="none")),
    ("als: alsmf ALS defaults (k 64, λ 0.12, 15 it.), for reference", ALS()),
]


def run(config, folds) -> tuple[list[float], float, float, float, int]:
    """Per-fold test RMSE and the median fit CPU, update and wall seconds, and iterations."""
    scores, cpu, update, wall = [], [], [], []
    for train, test in folds:
        started_cpu, started = time.process_time(), time.perf_counter()
        model = config.fit(train, test)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        update.append(sum(record.solve_seconds for record in model.history))
        scores.append(model.history[-1].test_rmse)
    return (scores, statistics.median(cpu), statistics.median(update), statistics.median(wall),
            len(model.history))


def table(folds) -> str:
    rows = ["| method | u1 | u2 | u3 | u4 | u5 | mean RMSE | iterations | fit CPU s | "
            "update s | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    GradientDescent(steps=2).fit(*folds[0])  # compile the kernels outside the timings
    SGD(epochs=1).fit(*folds[0])
    for label, config in RUNS:
        scores, cpu, update, wall, iterations = run(config, folds)
        cells = " | ".join(f"{s:.4f}" for s in scores)
        rows.append(f"| {label} | {cells} | **{statistics.mean(scores):.4f}** | {iterations} | "
                    f"{cpu:.2f} | {update:.2f} | {wall:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--out", help="also write results/OUT.md")
    args = parser.parse_args()
    if not args.ml100k.is_dir():
        raise SystemExit(f"ml-100k not found at {args.ml100k}")
    started = time.perf_counter()
    header = (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}; date {datetime.date.today()}\n\n"
              "ml-100k canonical folds, final test RMSE; times are medians over the folds\n")
    body = table(list(canonical_folds(args.ml100k)))
    text = f"{header}\n{body}\n\n({time.perf_counter() - started:.0f} s)\n"
    print(text)
    if args.out:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.out}.md").write_text(text)


if __name__ == "__main__":
    main()
