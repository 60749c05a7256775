"""Scaling benchmark: alsmf's time per iteration against the number of ratings and against k.

    python benchmarks/scaling.py                      # CG solver, <= 9-10 minutes on 2 cores
    python benchmarks/scaling.py --solver cholesky    # the exact solver (much longer at k=256)
    python benchmarks/scaling.py --factors-ratings 20M

One script (the sweeps, the timing, the tables and the figures together) so that one command
reproduces the README's figures. Two sweeps, alsmf only, ``--threads`` threads (default 2):

(a) ratings: 1M, 5M, 10M and 20M ratings at k = 64;
(b) factors: k = 16, 32, 64, 128, 256 at a fixed size (5M ratings; ``--factors-ratings 20M``).

Data: one ML-20M-shaped set from ``alsmf.synthetic_ratings(like="ml-20m")`` (seed 0; read from
the peer benchmark's cache ``benchmarks/cache/ml-20m.parquet`` when present, else generated and
cached there). Smaller sizes are **random subsets of users with all their ratings**: the users
are shuffled once (seed 0) and the shortest prefix holding at least the target number of
ratings is kept, so the sets are nested and the ratings-per-user distribution is the one of the
full set at every size (same minimum 20, same heavy tail); each item keeps the same share of
the ratings in expectation (its popularity curve is the full set's, thinned), and items left
with no rating drop out. Each subset is split 90/10 at random (seed 0) and trained on the 90%.

Time per iteration is the median of ``IterationRecord.solve_seconds`` (both half-steps, the part
that scales with the work) over iterations 2..n. Other jobs share this machine, so every point
is fitted ``--repeats`` times (default 3) in interleaved rounds over all points, the CPU that
other processes use during each iteration is measured (``/proc/stat`` busy time minus this
process's, read in the training callback), and a point's time is the median over its *clean*
iterations (others below 0.3 cores) of all its fits; points with fewer than 3 clean iterations
get extra fits while the whole run stays within ``--budget`` seconds (default 540), and are
marked † if they still have too few. The per-iteration evaluation (objective, train RMSE, test
RMSE) is ``seconds - solve_seconds`` and reported separately, as is the one-off set-up inside
``fit`` (re-indexing, CSR by user and by item). Iteration 1 is left out (warm-up; a small fit
before the timed ones compiles). Writes ``benchmarks/results/scaling.md`` (tables,
machine, date, load average), ``scaling.json`` and the figures ``scaling-ratings.png`` (log-log,
with a slope-1 reference) and ``scaling-factors.png`` (with curves ∝ k and ∝ k², and ∝ k³ for
the Cholesky solver, through the k = 64 point). ``--out-prefix`` changes the ``scaling`` stem.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from peers import PLAIN, busy_seconds, machine  # noqa: E402  (the peer benchmark's helpers)

RATINGS_SWEEP = (1_000_000, 5_000_000, 10_000_000, 20_000_000)
CLEAN = 0.3  # an iteration is "clean" when other processes used less than this many cores
MIN_CLEAN = 3  # clean iterations a point needs for its time to be their median
FACTORS_SWEEP = (16, 32, 64, 128, 256)


def parse_count(text: str) -> int:
    """'5M' -> 5_000_000, '500k' -> 500_000, '1234' -> 1234."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def label(count: int) -> str:
    return f"{count / 1e6:g}M" if count >= 1_000_000 else f"{count / 1e3:g}k"


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def own_seconds() -> float:
    """CPU seconds used by this process (all its threads)."""
    t = os.times()
    return t.user + t.system


class OthersMeter:
    """CPU used by other processes while a block runs, in cores (0 = the machine was ours)."""

    def __enter__(self):
        self.wall, self.busy, self.own = time.perf_counter(), busy_seconds(), own_seconds()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.wall
        others = (busy_seconds() - self.busy) - (own_seconds() - self.own)
        self.cores = max(others, 0.0) / wall if wall > 0 else float("nan")


def wait_for_quiet(limit_s: float, threshold: float = 0.3) -> float:
    """Wait (up to ``limit_s``) until other processes use less than ``threshold`` cores over a
    one-second probe; returns the other processes' use in the last probe."""
    deadline = time.perf_counter() + limit_s
    while True:
        with OthersMeter() as meter:
            time.sleep(1.0)
        if meter.cores < threshold or time.perf_counter() >= deadline:
            return meter.cores


def load_full(seed: int = 0):
    """The ML-20M-shaped ratings (seed 0), from the peer benchmark's cache when it is there."""
    from alsmf.data.readers import read_table
    from alsmf.data.synthetic import synthetic_ratings

    path = CACHE / "ml-20m.parquet"
    started = time.perf_counter()
    if seed == 0 and path.exists():
        ratings, how = read_table(path), f"read from {path.relative_to(HERE.parent)}"
    else:
        ratings = synthetic_ratings(like="ml-20m", seed=seed).ratings
        how = "generated"
        if seed == 0:
            CACHE.mkdir(parents=True, exist_ok=True)
            ratings.to_frame().to_parquet(path, index=False)
            how += f", cached in {path.relative_to(HERE.parent)}"
    return ratings, f"{how} in {time.perf_counter() - started:.1f} s"


class Subsets:
    """Nested user subsets of one ratings set: a random user order, cut at a rating count."""

    def __init__(self, ratings, seed: int = 0) -> None:
        self.ratings = ratings
        counts = ratings.user_counts()
        self.order = np.random.default_rng(seed).permutation(ratings.n_users)
        self.cumulative = np.cumsum(counts[self.order])

    def take(self, target: int):
        """All ratings of the shortest prefix of users holding at least ``target`` ratings."""
        n_users = int(np.searchsorted(self.cumulative, target, side="left")) + 1
        n_users = min(n_users, len(self.order))
        keep = np.zeros(self.ratings.n_users, dtype=bool)
        keep[self.order[:n_users]] = True
        return self.ratings.subset(keep[self.ratings.users]).compact()


def split(ratings, seed: int = 0):
    from alsmf.data.splits import random_split
    return random_split(ratings, test_fraction=0.1, seed=seed)


def time_fit(train, test, factors: int, solver: str, iterations: int, threads: int,
             quiet_wait: float = 0.0) -> dict:
    """Fit once; the medians of iterations 2..n of solve and evaluation time, and the set-up."""
    from alsmf import ALS

    model = ALS(**PLAIN, factors=factors, iterations=iterations, solver=solver)
    others_before = wait_for_quiet(quiet_wait) if quiet_wait > 0 else float("nan")
    load_before = loadavg()
    marks = []  # (time, machine busy s, own CPU s) at the start and after every iteration

    def mark(*_) -> None:
        marks.append((time.perf_counter(), busy_seconds(), own_seconds()))

    with OthersMeter() as meter:
        started = time.perf_counter()
        mark()
        fitted = model.fit(train, test, threads=threads, callback=mark)
        wall = time.perf_counter() - started
    history = fitted.history
    # other processes' CPU during each iteration (from the previous callback to this one)
    others_it = [max((b1 - b0) - (o1 - o0), 0.0) / (t1 - t0)
                 for (t0, b0, o0), (t1, b1, o1) in zip(marks, marks[1:])]
    solve = [r.solve_seconds for r in history[1:]]
    evaluation = [r.seconds - r.solve_seconds for r in history[1:]]
    return {
        "factors": factors, "solver": solver, "iterations": len(history),
        "train_ratings": len(train), "users": int(len(np.unique(train.users))),
        "items": int(len(np.unique(train.items))),
        "solve_s": statistics.median(solve), "solve_min_s": min(solve),
        "solve_all_s": [r.solve_seconds for r in history],
        "eval_all_s": [r.seconds - r.solve_seconds for r in history],
        "others_all": others_it,
        "eval_s": statistics.median(evaluation),
        "setup_s": wall - sum(r.seconds for r in history),
        "first_iteration_s": history[0].seconds,
        "fit_s": wall, "test_rmse": history[-1].test_rmse,
        "load_start": load_before, "load_end": loadavg(),
        "others_before": others_before, "others": meter.cores,
    }


def clean_iterations(fits: list[dict]) -> list[tuple[float, float]]:
    """(solve, evaluation) seconds of the iterations 2..n, over all fits, during which other
    processes used less than :data:`CLEAN` cores."""
    return [(s, e) for f in fits
            for s, e, o in zip(f["solve_all_s"][1:], f["eval_all_s"][1:], f["others_all"][1:])
            if o < CLEAN]


def combine(fits: list[dict], size: int) -> dict:
    """One point from its repeated fits: the median over the clean iterations 2..n of all fits
    (other processes used less than :data:`CLEAN` cores meanwhile) when there are at least
    :data:`MIN_CLEAN`, else the median of the fits' medians over all iterations (marked)."""
    clean = clean_iterations(fits)
    point = dict(fits[0])
    point["size"] = size
    point["clean_iterations"] = len(clean)
    point["all_iterations"] = sum(len(f["solve_all_s"]) - 1 for f in fits)
    if len(clean) >= MIN_CLEAN:
        point["solve_s"] = statistics.median(s for s, _ in clean)
        point["eval_s"] = statistics.median(e for _, e in clean)
    else:
        point["solve_s"] = statistics.median(f["solve_s"] for f in fits)
        point["eval_s"] = statistics.median(f["eval_s"] for f in fits)
    for key in ("setup_s", "first_iteration_s", "fit_s"):
        point[key] = statistics.median(f[key] for f in fits)
    point["rounds_solve_s"] = [f["solve_s"] for f in fits]
    point["solve_min_s"] = min(f["solve_min_s"] for f in fits)
    point["solve_all_s"] = [f["solve_all_s"] for f in fits]
    point["others_all"] = [f["others_all"] for f in fits]
    point["load_start"] = min(f["load_start"] for f in fits)
    point["load_end"] = max(f["load_end"] for f in fits)
    point["loads"] = [[f["load_start"], f["load_end"]] for f in fits]
    point["others_rounds"] = [f["others"] for f in fits]
    return point


def solve_cell(point: dict) -> str:
    """The point's solve time, bold; marked † when too few of its iterations were clean."""
    return (f"**{point['solve_s']:.3f}**"
            + ("" if point["clean_iterations"] >= MIN_CLEAN else " †"))


def ns_per_unit(point: dict) -> float:
    """Solve time per rating and per factor, in nanoseconds."""
    return point["solve_s"] / (point["train_ratings"] * point["factors"]) * 1e9


def loglog_slope(x: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def rounds(point: dict) -> str:
    """Each round's solve time with the other processes' CPU use (cores) during that fit."""
    return ", ".join(f"{v:.3f} ({o:.1f})"
                     for v, o in zip(point["rounds_solve_s"], point["others_rounds"]))


def ratings_table(points: list[dict]) -> str:
    base = points[0]
    rows = ["| ratings (train) | users | items | solve s / it. | min | ratio to "
            f"{label(base['size'])} | ratings ratio | ns / (rating·factor) | eval s / it. | "
            "set-up s | test RMSE | clean it. | per-fit solve s (others' cores) | "
            "load avg (min-max) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        rows.append(
            f"| {label(p['size'])} ({p['train_ratings']:,}) | {p['users']:,} | {p['items']:,} | "
            f"{solve_cell(p)} | {p['solve_min_s']:.3f} | "
            f"{p['solve_s'] / base['solve_s']:.2f} | "
            f"{p['train_ratings'] / base['train_ratings']:.2f} | {ns_per_unit(p):.3f} | "
            f"{p['eval_s']:.3f} | {p['setup_s']:.1f} | {p['test_rmse']:.4f} | "
            f"{p['clean_iterations']}/{p['all_iterations']} | "
            f"{rounds(p)} | {p['load_start']:.2f}-{p['load_end']:.2f} |")
    return "\n".join(rows)


def factors_table(points: list[dict]) -> str:
    base = next((p for p in points if p["factors"] == 64), points[0])
    rows = ["| k | solve s / it. | min | ratio to k=64 | k ratio | (k ratio)² | "
            "ns / (rating·factor) | eval s / it. | set-up s | test RMSE | "
            "clean it. | per-fit solve s (others' cores) | load avg (min-max) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        kr = p["factors"] / base["factors"]
        rows.append(
            f"| {p['factors']} | {solve_cell(p)} | {p['solve_min_s']:.3f} | "
            f"{p['solve_s'] / base['solve_s']:.2f} | {kr:g} | {kr * kr:g} | "
            f"{ns_per_unit(p):.3f} | {p['eval_s']:.3f} | {p['setup_s']:.1f} | "
            f"{p['test_rmse']:.4f} | {p['clean_iterations']}/{p['all_iterations']} | "
            f"{rounds(p)} | {p['load_start']:.2f}-{p['load_end']:.2f} |")
    return "\n".join(rows)


def plot_ratings(points: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([p["train_ratings"] for p in points], dtype=float)
    solve = np.array([p["solve_s"] for p in points])
    total = solve + np.array([p["eval_s"] for p in points])
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    ax.loglog(x, solve, "o-", color="C0",
              label=f"solve (2 half-steps), fitted slope {loglog_slope(x, solve):.2f}")
    fastest = np.array([p["solve_min_s"] for p in points])
    ax.loglog(x, fastest, "v", color="C0", alpha=0.45, ms=5,
              label=f"solve, fastest iteration, fitted slope {loglog_slope(x, fastest):.2f}")
    ax.loglog(x, total, "s--", color="C1", alpha=0.8,
              label=f"solve + evaluation, fitted slope {loglog_slope(x, total):.2f}")
    # slope-1 line with the least-squares intercept (geometric mean of t / n)
    c = math.exp(float(np.mean(np.log(solve / x))))
    grid = np.geomspace(x.min() * 0.8, x.max() * 1.25, 50)
    ax.loglog(grid, c * grid, ":", color="gray", label="∝ ratings (slope 1)")
    for xi, yi, p in zip(x, solve, points):
        ax.annotate(label(p["size"]), (xi, yi), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
    ax.set_xlabel("training ratings")
    ax.set_ylabel("seconds per iteration (median of it. 2..n)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_factors(points: list[dict], path: Path, title: str, solver: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.array([p["factors"] for p in points], dtype=float)
    solve = np.array([p["solve_s"] for p in points])
    base = next((p for p in points if p["factors"] == 64), points[0])
    k0, t0 = float(base["factors"]), base["solve_s"]
    grid = np.geomspace(k.min() * 0.85, k.max() * 1.15, 50)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    fastest = np.array([p["solve_min_s"] for p in points])
    ax.loglog(k, solve, "o-", color="C0", lw=2,
              label=f"measured (solve), fitted slope {loglog_slope(k, solve):.2f}")
    ax.loglog(k, fastest, "v", color="C0", alpha=0.45, ms=5,
              label=f"fastest iteration, fitted slope {loglog_slope(k, fastest):.2f}")
    ax.loglog(grid, t0 * grid / k0, ":", color="gray", label="∝ k (through k = 64)")
    ax.loglog(grid, t0 * (grid / k0) ** 2, "--", color="gray", label="∝ k² (through k = 64)")
    if solver == "cholesky":
        ax.loglog(grid, t0 * (grid / k0) ** 3, "-.", color="gray", label="∝ k³ (through k = 64)")
    ax.set_xticks(k)
    ax.set_xticklabels([f"{int(v)}" for v in k])
    ax.minorticks_off()
    ax.set_xlabel("factors k")
    ax.set_ylabel("seconds per iteration (median of it. 2..n)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--solver", default="cg", choices=("cg", "cholesky"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=6,
                   help="iterations per fit (>= 4); the median is over iterations 2..n")
    p.add_argument("--repeats", type=int, default=3,
                   help="rounds over all points (interleaved); a point's time is the median of "
                        "its per-fit medians")
    p.add_argument("--quiet-wait", type=float, default=5.0,
                   help="before each fit, wait up to this many seconds for other processes to "
                        "use less than 0.3 cores (0: do not wait)")
    p.add_argument("--budget", type=float, default=540.0,
                   help="after the rounds, refit points with no clean fit (other processes "
                        f"under {CLEAN} cores) while the whole run stays under this many "
                        "seconds")
    p.add_argument("--ratings", default=",".join(label(n) for n in RATINGS_SWEEP),
                   help="sizes of sweep (a), comma-separated (1M, 500k, ...)")
    p.add_argument("--factors", default=",".join(map(str, FACTORS_SWEEP)),
                   help="k of sweep (b), comma-separated")
    p.add_argument("--ratings-factors", type=int, default=64, help="k of sweep (a)")
    p.add_argument("--factors-ratings", default="5M", help="size of sweep (b) (e.g. 20M)")
    p.add_argument("--skip", choices=("ratings", "factors"), help="leave one sweep out")
    p.add_argument("--out-prefix", default=None,
                   help="stem of the output files in benchmarks/results (default 'scaling', "
                        "or 'scaling-cholesky' with --solver cholesky)")
    a = p.parse_args(argv)
    if a.iterations < 4:
        p.error("--iterations must be at least 4")
    prefix = a.out_prefix or ("scaling" if a.solver == "cg" else f"scaling-{a.solver}")

    import numba
    if not 1 <= a.threads <= numba.config.NUMBA_NUM_THREADS:
        p.error(f"--threads must be from 1 to {numba.config.NUMBA_NUM_THREADS}")

    run_started = time.perf_counter()
    start_stamp = datetime.datetime.now().astimezone()
    full, how = load_full()
    print(f"data: {len(full):,} ratings, {full.n_users:,} users, {full.n_items:,} items ({how})",
          flush=True)
    subsets = Subsets(full)
    ratings_sizes = [parse_count(t) for t in a.ratings.split(",")]
    factor_list = [int(t) for t in a.factors.split(",")]
    factors_size = parse_count(a.factors_ratings)

    cache: dict[int, tuple] = {}

    def data(size: int):
        if size not in cache:
            cache[size] = split(subsets.take(size))
        return cache[size]

    # warm-up: compile the kernels on a small subset so no timed fit pays for it
    train, test = split(subsets.take(200_000))
    time_fit(train, test, 16, a.solver, 2, a.threads)
    del train, test

    plan = []
    if a.skip != "ratings":
        plan += [("ratings", size, a.ratings_factors) for size in ratings_sizes]
    if a.skip != "factors":
        plan += [("factors", factors_size, k) for k in factor_list]
    fits: dict[tuple, list[dict]] = {key: [] for key in plan}
    for round_ in range(1, a.repeats + 1):
        for key in plan:
            sweep, size, k = key
            train, test = data(size)
            point = time_fit(train, test, k, a.solver, a.iterations, a.threads, a.quiet_wait)
            fits[key].append(point)
            print(f"round {round_}/{a.repeats} {sweep}: {label(size)} ({len(train):,} train), "
                  f"k={k}: solve {point['solve_s']:.3f} s/it (min {point['solve_min_s']:.3f}), "
                  f"eval {point['eval_s']:.3f}, set-up {point['setup_s']:.1f} s, "
                  f"others {point['others_before']:.1f} before / {point['others']:.1f} cores "
                  f"during (per it.: {', '.join(f'{o:.1f}' for o in point['others_all'])}), "
                  f"load {point['load_start']:.2f}/{point['load_end']:.2f}", flush=True)
    # extra fits, within the time budget, for points with too few clean iterations
    while True:
        dirty = [key for key in plan if len(clean_iterations(fits[key])) < MIN_CLEAN]
        elapsed = time.perf_counter() - run_started
        affordable = [key for key in dirty
                      if elapsed + 2 * max(f["fit_s"] for f in fits[key]) + a.quiet_wait
                      < a.budget]
        if not affordable:
            break
        key = affordable[0]
        sweep, size, k = key
        train, test = data(size)
        point = time_fit(train, test, k, a.solver, a.iterations, a.threads, a.quiet_wait)
        fits[key].append(point)
        print(f"extra {sweep}: {label(size)}, k={k}: solve {point['solve_s']:.3f} s/it, others "
              f"{point['others']:.1f} cores during; clean iterations now "
              f"{len(clean_iterations(fits[key]))}", flush=True)
    sweeps: dict[str, list[dict]] = {"ratings": [], "factors": []}
    for key in plan:
        sweeps[key[0]].append(combine(fits[key], key[1]))
    total_s = time.perf_counter() - run_started

    RESULTS.mkdir(parents=True, exist_ok=True)
    solver_text = ("default solver (CG, 3 steps per row, float32)" if a.solver == "cg"
                   else "Cholesky solver (exact, float64)")
    import alsmf
    lines = [
        f"# alsmf scaling, {solver_text}",
        "",
        f"Date: {start_stamp.strftime('%Y-%m-%d %H:%M %Z')}; whole run {total_s / 60:.1f} min  ",
        f"Machine: {machine()}; alsmf {alsmf.__version__}, numba {numba.__version__}  ",
        f"Settings: {a.threads} threads, `ALS(factors=k, solver={a.solver!r})`, plain model "
        "(no implicit features, one λ), defaults otherwise "
        f"(reg 0.12 weighted, biases), {a.iterations} iterations per fit; {a.repeats} "
        "rounds over all points, interleaved (one fit per point per round).  ",
        "Data: ML-20M-shaped synthetic set (`synthetic_ratings(like='ml-20m')`, seed 0: "
        f"{len(full):,} ratings, {full.n_users:,} users, {full.n_items:,} items); smaller sizes "
        "are random subsets of users with all their ratings (nested; same ratings-per-user "
        "distribution), each split 90/10 at random, trained on the 90%.  ",
        "solve s / it.: the median of `IterationRecord.solve_seconds` (both half-steps) over "
        f"iterations 2..{a.iterations} of all the point's fits, keeping only the clean "
        f"iterations (other processes used < {CLEAN} cores between the callbacks around the "
        f"iteration; 'clean it.' = clean / all); with fewer than {MIN_CLEAN} clean iterations, "
        "the median over the fits of each fit's median over all its iterations, marked †. "
        "'per-fit solve s': each fit's own median over iterations 2..n with the other "
        "processes' CPU during the whole fit (the rounds first, then extra fits made within "
        "the time budget for points short of clean iterations); 'min': the fastest single "
        "iteration of all fits. "
        "eval s / it.: median of `seconds - solve_seconds` (objective, train and test RMSE "
        "after each iteration) over the same iterations, not in the solve time. set-up: "
        "`fit` wall time minus its iterations (re-indexing, CSR by user and by item, test "
        "lookup). ns / (rating·factor): solve time / (training ratings × k), constant if the "
        "cost is linear in both. Ratios and slopes use the table's solve times. Others' "
        "cores: CPU time used by other processes (/proc/stat busy time minus this "
        "process's), per second: 0 means the machine was "
        f"ours, 1 means another job took a whole core of the {os.cpu_count()}; before each fit "
        f"the run waits up to {a.quiet_wait:g} s for it to fall below 0.3. Load average: "
        "1-minute, /proc/loadavg, lowest and highest seen around the point's fits (our own "
        "2 threads count in it).",
        "",
    ]
    figures = {}
    if sweeps["ratings"]:
        pts = sweeps["ratings"]
        x = [q["train_ratings"] for q in pts]
        slope = loglog_slope(x, [q["solve_s"] for q in pts])
        name = f"{prefix}-ratings.png"
        plot_ratings(pts, RESULTS / name,
                     f"alsmf {a.solver}, k = {a.ratings_factors}, {a.threads} threads, "
                     f"ML-20M-shaped user subsets")
        figures["ratings"] = name
        lines += [f"## (a) Time per iteration against the number of ratings "
                  f"(k = {a.ratings_factors})", "",
                  ratings_table(pts), "",
                  f"Fitted log-log slope of solve time against training ratings: "
                  f"**{slope:.2f}** (1 = linear). Figure: `{name}`.", "",
                  f"![time per iteration against ratings]({name})", ""]
    if sweeps["factors"]:
        pts = sweeps["factors"]
        slope = loglog_slope([q["factors"] for q in pts], [q["solve_s"] for q in pts])
        name = f"{prefix}-factors.png"
        plot_factors(pts, RESULTS / name,
                     f"alsmf {a.solver}, {label(factors_size)} ratings "
                     f"({pts[0]['train_ratings']:,} train), {a.threads} threads", a.solver)
        figures["factors"] = name
        lines += [f"## (b) Time per iteration against k ({label(factors_size)} ratings, "
                  f"{pts[0]['train_ratings']:,} train, {pts[0]['users']:,} users, "
                  f"{pts[0]['items']:,} items)", "",
                  factors_table(pts), "",
                  f"Fitted log-log slope of solve time against k: **{slope:.2f}**. "
                  f"Figure: `{name}`.", "",
                  f"![time per iteration against k]({name})", ""]
    text = "\n".join(lines)
    (RESULTS / f"{prefix}.md").write_text(text)
    (RESULTS / f"{prefix}.json").write_text(json.dumps(
        {"args": vars(a), "machine": machine(), "date": start_stamp.isoformat(),
         "run_s": total_s, "figures": figures, **sweeps}, indent=1))
    print()
    print(text)
    print(f"written {RESULTS / f'{prefix}.md'} ({total_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
