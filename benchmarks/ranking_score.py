"""How the rating models' ranking score and its head's defaults were chosen, on validation only.

    python benchmarks/ranking_score.py             # ~5 min on 2 cores
    python benchmarks/ranking_score.py --folds u1  # one fold

For each ml-100k canonical fold, 10% of each user's training ratings are carved out as
validation (the protocol of ``benchmarks/ranking.py``: relevant = held-out rating >= 4,
candidates = the remaining training items the user did not rate, NDCG@10 with binary gains).
On the rest it fits ``ALS()`` (the rating model, with its default settings) and
implicit-feedback ALS heads over a grid of settings, and scores, on validation only:

- forms of the score, at the head ``k 64, λ 20, α 1, 10 iterations``: the predicted rating
  alone, the head's preference p = x·y alone, p + β·s for a few β, and max(p, 0)·s^γ for a
  few γ, where s = (clip(r̂) − lo) / (hi − lo) is the predicted rating's place on the scale;
- the head's settings (k, λ, α, iterations) under the product form max(p, 0)·s.

The test folds are never read. The table (mean validation NDCG@10 over the folds) is printed
and written to ``benchmarks/results/ranking-score-ml-100k.md``; the chosen form and settings
are the defaults of :mod:`alsmf.models.ranking_head`.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# first: the ranking benchmark sets BLAS single-threaded before numpy is imported
from ranking import FOLDS, dense_recommender, load_folds, machine, score_lists  # noqa: E402

import numpy as np  # noqa: E402

from alsmf import ALS  # noqa: E402
from alsmf.models.implicit_als import ImplicitALS  # noqa: E402

REFERENCE_HEAD = {"factors": 64, "reg": 20.0, "alpha": 1.0, "iterations": 10}
HEAD_GRID = {"factors": (48, 64, 96, 128), "reg": (10.0, 20.0, 50.0), "alpha": (0.5, 1.0, 2.0),
             "iterations": (10, 15, 25)}
BETAS = (0.2, 0.4, 0.8)
GAMMAS = (0.5, 1.0, 2.0)


def validation_ndcg(fold, scores: np.ndarray) -> float:
    """Validation NDCG@10 of ranking the fold's fitting part by dense (users x items) scores."""
    recommend = dense_recommender(fold.fit_part, lambda rows: scores[rows])
    return score_lists(recommend(fold.validation.users), fold.validation,
                       fold.fit_part.n_items)["ndcg"]


def preferences(train, threads: int, **head) -> np.ndarray:
    """The head's x_u·y_i for every pair of a fitted :class:`ImplicitALS`."""
    model = ImplicitALS(**head).fit(train, threads=threads)
    return model.user_factors.astype(np.float64) @ model.item_factors.astype(np.float64).T


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml100k", type=Path, default=HERE.parent.parent / "shared" / "data"
                        / "ml-100k")
    parser.add_argument("--folds", default=",".join(FOLDS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="ranking-score-ml-100k")
    a = parser.parse_args(argv)
    started = time.perf_counter()
    folds = load_folds(a.ml100k, a.folds.split(","))
    forms: dict[str, list[float]] = {}
    heads: dict[str, list[float]] = {}
    grid = [dict(zip(HEAD_GRID, values)) for values in itertools.product(*HEAD_GRID.values())]
    for fold in folds:
        rating_model = ALS().fit(fold.fit_part, threads=a.threads)
        rating = rating_model.full_matrix()  # clipped to the scale
        low, high = rating_model.rating_scale
        share = (rating - low) / (high - low)
        forms.setdefault("predicted rating", []).append(validation_ndcg(fold, rating))
        reference = preferences(fold.fit_part, a.threads, **REFERENCE_HEAD)
        forms.setdefault("preference p", []).append(validation_ndcg(fold, reference))
        for beta in BETAS:
            forms.setdefault(f"p + {beta:g}·s", []).append(
                validation_ndcg(fold, reference + beta * share))
        for gamma in GAMMAS:
            forms.setdefault(f"max(p, 0)·s^{gamma:g}", []).append(
                validation_ndcg(fold, np.maximum(reference, 0) * share ** gamma))
        for head in grid:
            p = preferences(fold.fit_part, a.threads, **head)
            heads.setdefault(_label(head), []).append(
                validation_ndcg(fold, np.maximum(p, 0) * share))
        print(f"{fold.name} done ({time.perf_counter() - started:.0f} s)", flush=True)
    text = _report(a, forms, heads, time.perf_counter() - started)
    print(text)
    (HERE / "results" / f"{a.out}.md").write_text(text)
    return 0


def _label(head: dict) -> str:
    return (f"k {head['factors']}, λ {head['reg']:g}, α {head['alpha']:g}, "
            f"{head['iterations']} it.")


def _report(a, forms: dict[str, list[float]], heads: dict[str, list[float]],
            seconds: float) -> str:
    lines = [
        "# The rating models' ranking score, chosen on validation (ml-100k)", "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        f"Machine: {machine()}  ",
        f"Command: `python benchmarks/ranking_score.py --folds {a.folds}` ({seconds / 60:.1f} "
        "min); validation NDCG@10 (10% of each user's training ratings, seed 0), mean over "
        "the folds; the test folds are never read.", "",
        f"## Forms of the score (head {_label(REFERENCE_HEAD)}; s: the predicted rating's "
        "place on the scale)", "",
        "| score | validation NDCG@10 |", "|---|---|",
    ]
    for name, values in sorted(forms.items(), key=lambda kv: -statistics.fmean(kv[1])):
        lines.append(f"| {name} | {statistics.fmean(values):.4f} |")
    lines += ["", "## Head settings under max(p, 0)·s (best 15)", "",
              "| head | validation NDCG@10 |", "|---|---|"]
    ranked = sorted(heads.items(), key=lambda kv: -statistics.fmean(kv[1]))
    for name, values in ranked[:15]:
        lines.append(f"| {name} | {statistics.fmean(values):.4f} |")
    lines += ["", f"{len(heads)} head settings in all: every combination of "
              + "; ".join(f"{name} {'/'.join(map(str, values))}"
                          for name, values in HEAD_GRID.items()) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
