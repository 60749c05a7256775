"""Time to accuracy on the ml-100k folds u1..u5: alsmf's ALS against Surprise's tuned SVD.

    python benchmarks/time_to_accuracy.py          # about 2 minutes on 2 cores

Run it with the peer environment's python (``benchmarks/.venv-peers``, where Surprise is
installed). For each fold it records the test RMSE against the training time so far:

- alsmf ``ALS()`` defaults: every iteration, from the history (wall seconds of the iteration,
  its test evaluation included, so alsmf is charged for work Surprise does not do) and the
  process CPU time between callbacks; ``--threads`` threads, compiled once before the folds;
- Surprise ``SVD`` with the tuned settings of ``benchmarks/folds.py`` (50 factors, lr 0.01,
  reg 0.1, random_state 0) fitted for 5, 10, ..., 100 epochs: with the same seed an n-epoch
  fit is the first n epochs of the 100-epoch one, so this is its learning curve; one thread
  (Surprise has none).

Two measures per fold, then the median over the folds and the ratio Surprise / alsmf:
``to own best``: seconds until the test RMSE is within 0.5% of the model's own final RMSE
(the definition of ``benchmarks/peers.py``); ``to Surprise's final``: seconds until the test RMSE
is at most Surprise's 100-epoch RMSE on that fold. Prints a markdown table with the machine and
date and writes it to ``benchmarks/results/time-to-accuracy-ml-100k.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from folds import DEFAULT_ML100K, FOLDS, SURPRISE_TUNED  # noqa: E402
from peers import loadavg, machine  # noqa: E402

EPOCHS = tuple(range(5, SURPRISE_TUNED["n_epochs"] + 1, 5))
WITHIN = 0.005
"""``to own best`` counts from the first point within this fraction of the final RMSE."""


def first_time(curve: list[tuple[float, float, float]], target: float) -> tuple[float, float]:
    """(wall, CPU) seconds of the first point of ``curve`` whose RMSE is at most ``target``.

    ``curve`` is (wall seconds, CPU seconds, test RMSE) with the times cumulative; NaN when
    the curve never gets there.
    """
    for wall, cpu, rmse in curve:
        if rmse <= target:
            return wall, cpu
    return float("nan"), float("nan")


def alsmf_curve(train, test, threads: int) -> list[tuple[float, float, float]]:
    """alsmf ALS defaults: (cumulative wall s, cumulative CPU s, test RMSE) per iteration."""
    from alsmf import ALS

    marks = [time.process_time()]
    history = ALS().fit(train, test, threads=threads,
                        callback=lambda record, model: marks.append(time.process_time())
                        ).history
    wall = np.cumsum([record.seconds for record in history])
    cpu = np.cumsum(np.diff(marks))
    return [(float(w), float(c), record.test_rmse)
            for w, c, record in zip(wall, cpu, history)]


def surprise_curve(train, test) -> list[tuple[float, float, float]]:
    """Surprise tuned SVD: (fit wall s, fit CPU s, test RMSE) after 5, 10, ... epochs."""
    from surprise import SVD, Dataset, Reader, accuracy

    trainset = Dataset.load_from_df(train[["user", "item", "rating"]],
                                    Reader(rating_scale=(1, 5))).build_full_trainset()
    pairs = list(zip(test["user"], test["item"], test["rating"]))
    curve = []
    for epochs in EPOCHS:
        model = SVD(random_state=0, **(SURPRISE_TUNED | {"n_epochs": epochs}))
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(trainset)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        curve.append((wall, cpu, accuracy.rmse(model.test(pairs), verbose=False)))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import pandas as pd

    from alsmf import ALS
    from alsmf.data.movielens import canonical_folds

    load_before = loadavg()
    frames = {}
    for fold in FOLDS:
        for part in ("base", "test"):
            frames[fold, part] = pd.read_csv(args.ml100k / f"{fold}.{part}", sep="\t",
                                             names=["user", "item", "rating", "timestamp"])
    folds = list(canonical_folds(args.ml100k))
    ALS(iterations=1).fit(folds[0][0], threads=args.threads)  # compile outside the timing
    rows, measures = [], {"alsmf": [], "surprise": []}
    for fold, (train, test) in zip(FOLDS, folds):
        ours = alsmf_curve(train, test, args.threads)
        theirs = surprise_curve(frames[fold, "base"], frames[fold, "test"])
        target = theirs[-1][2]
        for name, curve in (("alsmf", ours), ("surprise", theirs)):
            final = curve[-1][2]
            measures[name].append((*first_time(curve, final * (1 + WITHIN)),
                                   *first_time(curve, target), final, curve[-1][0]))
        rows.append(f"| {fold} | {ours[-1][2]:.4f} | {theirs[-1][2]:.4f} | "
                    + " | ".join(f"{m[0]:.2f} / {m[2]:.2f}" for m in
                                 (measures["alsmf"][-1], measures["surprise"][-1])) + " |")
        print(rows[-1], flush=True)

    def median(name: str, column: int) -> float:
        return statistics.median(m[column] for m in measures[name])

    lines = [
        "# Time to accuracy, ml-100k u1..u5: alsmf ALS defaults against Surprise SVD tuned", "",
        f"Measured {machine()} with `python benchmarks/time_to_accuracy.py --threads "
        f"{args.threads}`; 1-minute load average before: {load_before}. Wall seconds (alsmf "
        f"{args.threads} threads, its test evaluation included; Surprise one thread, fit only).",
        "",
        "| fold | alsmf final RMSE | Surprise final RMSE | alsmf s to own best / to Surprise's "
        "final | Surprise s to own best / to its final |", "|---|---|---|---|---|", *rows, "",
        "| measure (median of the folds) | alsmf | Surprise SVD tuned | Surprise / alsmf |",
        "|---|---|---|---|"]
    for label, column in (("wall s to within 0.5% of own final RMSE", 0),
                          ("CPU s to within 0.5% of own final RMSE", 1),
                          ("wall s to Surprise's final RMSE", 2),
                          ("CPU s to Surprise's final RMSE", 3),
                          ("wall s of the whole fit", 5)):
        ours, theirs = median("alsmf", column), median("surprise", column)
        lines.append(f"| {label} | {ours:.3f} | {theirs:.3f} | **{theirs / ours:.1f}x** |")
    lines.append(f"| final test RMSE (mean of the folds) | "
                 f"{statistics.mean(m[4] for m in measures['alsmf']):.4f} | "
                 f"{statistics.mean(m[4] for m in measures['surprise']):.4f} | |")
    text = "\n".join(lines)
    print(text)
    (HERE / "results" / "time-to-accuracy-ml-100k.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
