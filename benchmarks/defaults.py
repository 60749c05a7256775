"""How ALS's default settings were chosen, without looking at any test fold.

For each ml-100k canonical fold u1..u5 the training file is split once more, 90/10 at random,
into fit and validation parts. Every setting of a small grid is trained on the fit part and
scored on the validation part after every iteration (the history records it). The grid point
with the lowest mean validation RMSE over the five folds is the candidate default; only then
is it trained on each full training file and scored on its test file, and that is the figure
the README quotes. Prints the ranking and writes benchmarks/results/defaults-ml-100k.md.

    python benchmarks/defaults.py                   # ~15 minutes on 2 cores
    python benchmarks/defaults.py --quick           # a 2 x 2 grid, for a smoke run
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from alsmf.data.movielens import canonical_folds
from alsmf.data.splits import random_split
from alsmf.train import ALS

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
RESULTS = Path(__file__).resolve().parent / "results"

GRID = {
    "reg": [0.1, 0.12],
    "reg_bias": [0.02],
    "implicit_weight": [0.0, 0.03, 0.1, 0.3],
}
QUICK_GRID = {"factors": [64], "reg": [0.08, 0.12], "implicit_weight": [0.0, 0.3]}
ITERATIONS = 20


def validation_curves(folds, grid: dict[str, list]) -> dict[tuple, np.ndarray]:
    """Mean validation RMSE after each iteration, per grid point (fit/validation from train)."""
    inner = [random_split(train, test_fraction=0.1, seed=fold) for fold, (train, _) in
             enumerate(folds)]
    curves = {}
    names = list(grid)
    for values in itertools.product(*grid.values()):
        settings = dict(zip(names, values))
        config = ALS(iterations=ITERATIONS, **settings)
        per_fold = [[r.test_rmse for r in config.fit(fit, validation).history]
                    for fit, validation in inner]
        curves[tuple(settings.items())] = np.mean(per_fold, axis=0)
        best = int(np.argmin(curves[tuple(settings.items())]))
        print(f"{settings} -> validation {curves[tuple(settings.items())][best]:.4f} "
              f"at {best + 1} iterations", flush=True)
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2 x 2 grid")
    args = parser.parse_args()
    folds = canonical_folds(ML100K)
    grid = QUICK_GRID if args.quick else GRID
    started = time.perf_counter()
    curves = validation_curves(folds, grid)
    ranking = sorted(curves, key=lambda key: curves[key].min())
    chosen = dict(ranking[0])
    iterations = int(np.argmin(curves[ranking[0]])) + 1
    config = ALS(iterations=iterations, **chosen)
    test = [config.fit(train, test).history[-1].test_rmse for train, test in folds]
    plain = ALS()
    default_test = [plain.fit(train, test).history[-1].test_rmse for train, test in folds]
    lines = [
        f"# Choosing ALS defaults on ml-100k by nested validation ({date.today()}, "
        f"{platform.machine()}, {len(grid)} parameters, {len(curves)} grid points, "
        f"{time.perf_counter() - started:.0f} s)",
        "",
        "Validation = 10% of each training fold u1..u5; the test folds are used only for the "
        "last two rows.",
        "",
        "| rank | settings | best mean validation RMSE | at iteration |",
        "|---|---|---|---|",
    ]
    for rank, key in enumerate(ranking[:10], 1):
        lines.append(f"| {rank} | {dict(key)} | {curves[key].min():.4f} | "
                     f"{int(np.argmin(curves[key])) + 1} |")
    lines += [
        "",
        f"Chosen: {chosen}, iterations {iterations}.",
        f"Test RMSE u1..u5 of the chosen settings: {np.mean(test):.4f} "
        f"(folds {' '.join(f'{v:.4f}' for v in test)}).",
        f"Test RMSE u1..u5 of the current `ALS()` defaults {plain.params()}: "
        f"{np.mean(default_test):.4f} (folds {' '.join(f'{v:.4f}' for v in default_test)}).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "defaults-ml-100k.md").write_text(text)


if __name__ == "__main__":
    main()
