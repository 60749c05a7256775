"""Nested tuning figures: synthetic data of known noise, and ml-100k's canonical folds.

    python benchmarks/tuning.py                      # both parts (~20 min on 2 cores)
    python benchmarks/tuning.py --part synthetic     # noise-floor check only
    python benchmarks/tuning.py --part ml100k --ml100k PATH

Both parts tune the plain model (one λ for factors and biases, no implicit features; the
synthetic part adds the implicit-feature weight to its search). Every figure is a *nested*
estimate (:mod:`alsmf.evaluation.tuning`): the settings are chosen on validation data carved
from each training fold and the test fold only scores the chosen settings. For synthetic data
the floor is the RMSE of the true model that generated the ratings, computed on each test
fold's own pairs (clipped to the scale like the ratings), and a second bound is the RMSE of the
best user estimates when the items are known exactly (:func:`items_known_rmse`). For ml-100k
the bound is the best single setting of a wider grid chosen on the test folds themselves
(:func:`best_on_test`), what a perfect tuner on that grid would reach. Prints
markdown tables with the machine and date and writes them, with the raw results as JSON, to
``benchmarks/results/tuning.md`` / ``tuning.json``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from alsmf.data.synthetic import synthetic_ratings
from alsmf.evaluation import Tuner, movielens_folds, random_folds
from alsmf.evaluation.space import describe
from alsmf.solvers.predict import predict_pairs
from alsmf.models.als import ALS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PLAIN  # noqa: E402  (the plain model: one λ, no implicit features)

DEFAULT_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
RESULTS = Path(__file__).resolve().parent / "results"

SYNTHETIC_SETS = {  # name -> synthetic_ratings arguments; the true model has rank 8
    # enough ratings per user (>= 150, median ~300) for estimation error to fall below 3%
    "dense (2,000 x 1,000, 600k ratings)": dict(n_users=2000, n_items=1000, n_ratings=600_000,
                                                min_per_user=150),
    # the ML-1M shape: many users with 20-50 ratings, whose factors stay noisy
    "ml-1m shape": dict(like="ml-1m"),
}
SYNTHETIC_SPACE = {"factors": [4, 8, 16, 32], "reg": [0.01, 0.02, 0.05, 0.1],
                   "implicit_weight": [0.0, 3.0], "iterations": [5, 10, 15, 25]}
"""Searched from the plain model (one λ), with and without implicit features."""
ML100K_SPACE = {"factors": [64, 128, 256], "reg": [0.1, 0.12, 0.14], "reg_bias": [None, 0.05],
                "iterations": [4, 5, 6, 8, 10, 15]}
NOISE = 0.8


def oracle_rmse(data, test) -> float:
    """RMSE on ``test`` of the true model's clipped prediction (the noise floor of that fold)."""
    mean = predict_pairs(test.users, test.items, data.user_factors, data.item_factors,
                         data.user_bias, data.item_bias, data.global_mean)
    low, high = data.ratings.scale
    return float(np.sqrt(np.mean(np.square(np.clip(mean, low, high) - test.values))))


def items_known_rmse(data, train, test) -> float:
    """Test RMSE of the best estimate of every user when the items are known exactly.

    Each user's [p_u, b_u] is its posterior mean given its training ratings, the true item
    factors, biases and μ, and the true model's Gaussian prior (the spread of the true user
    vectors) with the noise of the ratings (σ² plus the half-star rounding, 1/48): the
    mean-squared-error-optimal user estimate, and one no method can beat without knowing the
    items better than exactly. Its RMSE over the noise floor is what estimating the users
    alone must cost; on data whose users have few ratings it exceeds 3% by itself.
    """
    rank = data.user_factors.shape[1]
    prior = np.diag(np.r_[np.full(rank, 1 / np.var(data.user_factors)),
                          1 / np.var(data.user_bias)])
    noise_variance = data.noise ** 2 + 1 / 48
    order = np.argsort(train.users, kind="stable")
    users = train.users[order]
    starts = np.searchsorted(users, np.arange(train.n_users + 1))
    design = np.hstack([data.item_factors, np.ones((len(data.item_factors), 1))])
    estimates = np.zeros((train.n_users, rank + 1))
    for user in range(train.n_users):
        rows = order[starts[user]:starts[user + 1]]
        x = design[train.items[rows]]
        y = train.values[rows] - data.global_mean - data.item_bias[train.items[rows]]
        estimates[user] = np.linalg.solve(x.T @ x / noise_variance + prior,
                                          x.T @ y / noise_variance)
    predicted = (data.global_mean + data.item_bias[test.items]
                 + np.einsum("ij,ij->i", design[test.items], estimates[test.users]))
    low, high = data.ratings.scale
    return float(np.sqrt(np.mean(np.square(np.clip(predicted, low, high) - test.values))))


def synthetic_part(folds_k: int, seed: int, threads: int | None) -> tuple[str, dict]:
    rows = ["| data | folds | chosen settings (per fold) | nested test RMSE | noise floor "
            "(true model) | ratio | items known exactly: RMSE / floor | minutes |",
            "|---|---|---|---|---|---|---|---|"]
    raw = {}
    for name, shape in SYNTHETIC_SETS.items():
        data = synthetic_ratings(**shape, noise=NOISE, seed=seed)
        folds = random_folds(data.ratings, folds_k, seed)
        started = time.perf_counter()
        result = Tuner(ALS(**PLAIN), SYNTHETIC_SPACE, seed=seed).run(folds, threads=threads)
        minutes = (time.perf_counter() - started) / 60
        floors = [oracle_rmse(data, fold.test) for fold in folds]
        ratios = [f.test_rmse / floor for f, floor in zip(result.folds, floors)]
        known = [items_known_rmse(data, fold.train, fold.test) / floor
                 for fold, floor in zip(folds, floors)]
        chosen = "; ".join(describe(f.chosen) for f in result.folds)
        mean, std = result.test_rmse()
        rows.append(f"| {name}, σ = {NOISE} | {folds_k} random | {chosen} | {mean:.4f} ± "
                    f"{std:.4f} | {statistics.fmean(floors):.4f} | "
                    f"**{statistics.fmean(ratios):.3f}** (max {max(ratios):.3f}) | "
                    f"{statistics.fmean(known):.3f} | {minutes:.1f} |")
        raw[name] = result.to_dict() | {"floors": floors, "ratios": ratios,
                                        "items_known_ratios": known}
        print(rows[-1], flush=True)
    return "\n".join(rows), raw


BOUND_SPACE = {"factors": [64, 128, 256], "reg": [0.08, 0.1, 0.12, 0.14, 0.16],
               "reg_bias": [None, 0.02, 0.05, 0.1]}
"""A wider grid than the tuner's for :func:`best_on_test`; every iteration count 1..25 counts."""


def best_on_test(folds, threads: int | None) -> tuple[float, str]:
    """The lowest mean *test* RMSE of any one setting of :data:`BOUND_SPACE`, chosen on the
    test folds themselves: no nested tuner searching that grid can do better (optimistic)."""
    best = (np.inf, "")
    for factors, reg, reg_bias in itertools.product(*BOUND_SPACE.values()):
        config = ALS(**(PLAIN | dict(factors=factors, reg=reg, reg_bias=reg_bias,
                                     iterations=25)))
        curves = [[record.test_rmse for record in
                   config.fit(fold.train, fold.test, threads=threads).history]
                  for fold in folds]
        means = np.mean(curves, axis=0)
        iterations = int(np.argmin(means)) + 1
        if means[iterations - 1] < best[0]:
            best = (float(means[iterations - 1]),
                    f"factors={factors}, reg={reg}, reg_bias={reg_bias}, iterations={iterations}")
    return best


def ml100k_part(path: Path, seed: int, threads: int | None) -> tuple[str, dict]:
    folds = movielens_folds(path)
    started = time.perf_counter()
    result = Tuner(ALS(**PLAIN), ML100K_SPACE, seed=seed).run(folds, threads=threads)
    minutes = (time.perf_counter() - started) / 60
    rows = ["| fold | chosen on validation | validation RMSE | test RMSE |", "|---|---|---|---|"]
    for fold in result.folds:
        rows.append(f"| {fold.fold} | {describe(fold.chosen)} | {fold.validation_rmse:.4f} | "
                    f"{fold.test_rmse:.4f} |")
    mean, std = result.test_rmse()
    rows.append(f"| **mean ± std** | | | **{mean:.4f}** ± {std:.4f} |")
    rows.append("")
    settings = len(Tuner(ALS(**PLAIN), ML100K_SPACE).settings)
    rows.append(f"Grid: {json.dumps(ML100K_SPACE)} ({settings} fits per fold + 1 refit), "
                f"validation = 10% of each training fold; "
                f"{minutes:.1f} minutes. Settings of lowest mean validation RMSE over the folds: "
                f"{describe(result.best)}.")
    started = time.perf_counter()
    bound, bound_setting = best_on_test(folds, threads)
    rows.append("")
    rows.append(f"Bound: the best single setting of the wider grid {json.dumps(BOUND_SPACE)} "
                f"(every iteration count 1..25), chosen on the test folds themselves, has mean "
                f"test RMSE **{bound:.4f}** ({bound_setting}); no nested tuner searching that "
                f"grid can do better. {(time.perf_counter() - started) / 60:.1f} minutes.")
    text = "\n".join(rows)
    print(text, flush=True)
    return text, result.to_dict() | {"bound": bound, "bound_setting": bound_setting}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "synthetic", "ml100k"), default="all")
    parser.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--folds", type=int, default=5, help="random folds of synthetic data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    header = (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
              f"{datetime.date.today()}; `python benchmarks/tuning.py --part {args.part}`")
    sections, raw = [header], {}
    if args.part in ("all", "synthetic"):
        table, raw["synthetic"] = synthetic_part(args.folds, args.seed, args.threads)
        sections += ["## Synthetic data of known noise (nested grid search)", table,
                     f"Grid: {json.dumps(SYNTHETIC_SPACE)}."]
    if args.part in ("all", "ml100k"):
        table, raw["ml100k"] = ml100k_part(args.ml100k, args.seed, args.threads)
        sections += ["## ml-100k u1..u5 (nested grid search)", table]
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.part == "all" else f"-{args.part}"
    (RESULTS / f"tuning{suffix}.md").write_text("\n\n".join(sections) + "\n")
    (RESULTS / f"tuning{suffix}.json").write_text(json.dumps(raw, indent=2) + "\n")


if __name__ == "__main__":
    main()
