"""The task plan of distributed ALS (Dask) against the number of blocks: tasks, scheduler CPU
and seconds per iteration.

    python benchmarks/dask_tasks.py                       # 2M ratings, blocks 2..32 (~2 min)
    python benchmarks/dask_tasks.py --blocks 4,64 --ratings 5m
    python benchmarks/dask_tasks.py --model bayes         # the Gibbs sampler's sweeps

Plain ALS (no implicit features, no ranking head) is trained with ``train_distributed`` on
``local_cluster(--workers)`` for each number of blocks per side in ``--blocks``, on synthetic
data of ML-20M's shape scaled down to ``--ratings`` ratings (users and items scaled by the same
factor, so each keeps about its number of ratings; ``synthetic_ratings(like="ml-20m")``).
Per block count, the median over iterations 2..n of:

- tasks per iteration: tasks whose result reached the scheduler (processing -> memory),
  counted by a scheduler plugin and assigned to an iteration by their key (``-itN-``, see
  ``alsmf/distributed/state.py``), beside the plain model's plan 2·W² + 4·B (per half-step
  one bundle of messages per pair of the W workers, B solves and B figures);
- scheduler CPU seconds per iteration: CPU time of the scheduler's event-loop thread (the
  scheduler of a ``LocalCluster`` runs in this process; the client connects by address, so it
  has its own loop thread and its work is not counted), read on the scheduler after every
  iteration with ``client.run_on_scheduler``; and per task;
- seconds per iteration (``IterationRecord.seconds``: both half-steps and the figures).

``--model defaults`` trains ALS's defaults (implicit features, ranking head), ``--model bayes``
BayesianMF's (an iteration is a sweep; half the sweeps burn-in, every later draw kept).
Whether every model equals the in-process ``fit``'s bit for bit is checked too. The table is
printed and written to ``benchmarks/results/dask-tasks.md`` (``dask-tasks-MODEL.md``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PLAIN, RESULTS, machine  # noqa: E402  (the peer benchmark's helpers)

ML20M = (138_493, 26_744, 20_000_263)
"""ML-20M's users, items and ratings (alsmf.data.synthetic.SHAPES)."""

ITERATION = re.compile(r"-it(\d+)-")


def parse_count(text: str) -> int:
    """'5M' -> 5_000_000, '500k' -> 500_000, '1234' -> 1234."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def parse_blocks(text: str) -> list[int]:
    blocks = [int(part) for part in text.split(",") if part.strip()]
    if not blocks or min(blocks) < 1:
        raise argparse.ArgumentTypeError(f"blocks must be integers >= 1, got {text!r}")
    return blocks


def _counter_plugin():
    """A scheduler plugin counting tasks that finished (processing -> memory) per key."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class FinishedTasks(SchedulerPlugin):
        name = "alsmf-bench-finished-tasks"

        def __init__(self) -> None:
            self.finished: Counter = Counter()

        def transition(self, key, start, finish, *args, **kwargs) -> None:
            if start == "processing" and finish == "memory":
                match = ITERATION.search(str(key))
                if match:
                    self.finished[int(match[1])] += 1

    return FinishedTasks()


def _take_counts(dask_scheduler) -> dict[int, int]:
    plugin = dask_scheduler.plugins["alsmf-bench-finished-tasks"]
    counts = dict(plugin.finished)
    plugin.finished.clear()
    return counts


def _loop_cpu(dask_scheduler) -> tuple[float, int]:
    """CPU seconds of the thread this runs on: the scheduler's event loop."""
    return time.thread_time(), threading.get_native_id()


def tasks_per_iteration(n_blocks: int, n_workers: int) -> int:
    """The plain model's tasks of one iteration at most: per half-step one bundle of
    messages per pair of workers (W²), B solves and B figures."""
    return 2 * n_workers * n_workers + 4 * n_blocks


def run(client, config, train, n_blocks: int, reference, plain: bool) -> dict:
    """One distributed fit with ``n_blocks`` blocks per side; its per-iteration figures."""
    from alsmf.distributed import train_distributed

    stamps = [client.run_on_scheduler(_loop_cpu)]

    def stamp(record, progress):
        stamps.append(client.run_on_scheduler(_loop_cpu))

    client.run_on_scheduler(_take_counts)  # empty the counter
    wall = time.perf_counter()
    model = train_distributed(config, train, client=client, n_blocks=n_blocks, callback=stamp)
    wall = time.perf_counter() - wall
    counts = client.run_on_scheduler(_take_counts)
    assert len({thread for _, thread in stamps}) == 1, "run_on_scheduler moved threads"
    cpu = np.diff([seconds for seconds, _ in stamps])  # cpu[i]: iteration i + 1
    later = range(2, len(model.history) + 1)  # iterations after the first
    tasks = statistics.median(counts.get(i, 0) for i in later)
    scheduler = statistics.median(cpu[i - 1] for i in later)
    same = all(np.array_equal(getattr(model, name), getattr(reference, name))
               for name in ("user_factors", "item_factors", "user_bias", "item_bias"))
    plan = tasks_per_iteration(n_blocks, len(client.nthreads())) if plain else "-"
    return {"blocks": n_blocks, "tasks": tasks, "plan": plan,
            "cpu": scheduler, "per_task_us": scheduler / tasks * 1e6 if tasks else float("nan"),
            "seconds": statistics.median(r.seconds for r in model.history[1:]),
            "wall": wall, "same": same}


def table(rows: list[dict]) -> list[str]:
    lines = ["| blocks per side | tasks / iteration | plan 2W²+4B | scheduler CPU s / iteration "
             "| scheduler CPU µs / task | s / iteration | whole fit s | = in-process |",
             "|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        lines.append(f"| {r['blocks']} | {r['tasks']:.0f} | {r['plan']} | {r['cpu']:.3f} | "
                     f"{r['per_task_us']:.0f} | {r['seconds']:.3f} | {r['wall']:.1f} | "
                     f"{'yes' if r['same'] else '**NO**'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=parse_blocks, default=parse_blocks("2,4,8,16,32"),
                   help="blocks per side, comma-separated (default 2,4,8,16,32)")
    p.add_argument("--ratings", type=parse_count, default=parse_count("2m"),
                   help="ratings of the scaled-down ML-20M shape (default 2m)")
    p.add_argument("--factors", type=int, default=16)
    p.add_argument("--iterations", type=int, default=5,
                   help="iterations per fit (>= 2; the first is left out of the medians)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", choices=("plain", "defaults", "bayes"), default="plain",
                   help="plain biased ALS, ALS's defaults (implicit features, ranking head), "
                        "or BayesianMF's")
    p.add_argument("--out", type=Path, default=None,
                   help="default: benchmarks/results/dask-tasks.md (-MODEL.md for the others)")
    a = p.parse_args(argv)
    if a.out is None:
        a.out = RESULTS / f"dask-tasks{'' if a.model == 'plain' else '-' + a.model}.md"
    if a.iterations < 2:
        p.error("--iterations must be at least 2")

    from distributed import Client

    from alsmf import ALS, synthetic_ratings
    from alsmf.distributed import local_cluster
    from alsmf.models.bayes import BayesianMF

    started = datetime.datetime.now().astimezone()
    fraction = a.ratings / ML20M[2]
    n_users, n_items = (max(20, round(n * fraction)) for n in ML20M[:2])
    train = synthetic_ratings("ml-20m", n_users=n_users, n_items=n_items, n_ratings=a.ratings,
                              seed=a.seed).ratings
    if a.model == "bayes":
        config = BayesianMF(factors=a.factors, sweeps=a.iterations,
                            burn_in=a.iterations // 2, samples=a.iterations - a.iterations // 2)
        settings = (f"`BayesianMF(factors={a.factors}, sweeps={a.iterations}, burn_in="
                    f"{config.burn_in}, samples={config.samples})`, the sampler's defaults "
                    "otherwise (implicit features, ranking head), on ")
    else:
        config = ALS(**(PLAIN if a.model == "plain" else {}), factors=a.factors,
                     iterations=a.iterations, tol=0.0)
        settings = (f"`ALS(factors={a.factors}, iterations={a.iterations})`, "
                    + ("plain model (no implicit features, no ranking head, one λ; CG, "
                       "float32), on " if a.model == "plain"
                       else "the defaults (implicit features, ranking head), on "))
    print(f"data: {len(train):,} ratings, {n_users:,} users, {n_items:,} items; "
          f"in-process reference fit ...", flush=True)
    reference = config.fit(train)
    rows = []
    with local_cluster(a.workers) as cluster, Client(cluster.scheduler_address) as client:
        client.register_plugin(_counter_plugin())
        threads = "/".join(map(str, sorted(set(client.nthreads().values()))))
        for n_blocks in a.blocks:
            rows.append(run(client, config, train, n_blocks, reference, a.model == "plain"))
            r = rows[-1]
            print(f"blocks {n_blocks}: {r['tasks']:.0f} tasks/iteration, scheduler "
                  f"{r['cpu']:.3f} CPU s/iteration, {r['seconds']:.3f} s/iteration", flush=True)

    lines = [
        f"# Distributed {'Gibbs sampling' if a.model == 'bayes' else 'ALS'}: the task plan "
        "against the number of blocks",
        "",
        f"Date: {started:%Y-%m-%d %H:%M %Z}; command: `"
        + " ".join(["python benchmarks/dask_tasks.py", *(argv if argv is not None
                                                          else sys.argv[1:])]) + "`  ",
        f"Machine: {machine()}  ",
        f"Data: `synthetic_ratings(like='ml-20m')` scaled to {len(train):,} ratings "
        f"({fraction:.3g} of ML-20M): {n_users:,} users, {n_items:,} items, no test set.  ",
        f"Settings: {settings}"
        f"`local_cluster({a.workers})` ({a.workers} worker processes with {threads} thread(s) "
        "each; the scheduler in the benchmark's process, the client connected by address).",
        "",
        *table(rows),
        "",
        f"Medians over iterations 2..{a.iterations} of each fit. Tasks: those that finished "
        "(processing -> memory on the scheduler) with the iteration in their key; the plan "
        "(plain model) counts one bundle of messages per pair of workers (W = workers; none "
        "where the blocks of two workers share no rating), B solves and B figures per "
        "half-step. Scheduler CPU: the "
        "scheduler's event-loop thread (`time.thread_time()` run there after every iteration), "
        "which is most of the scheduler's work but not its offload threads. Whole fit: wall "
        "seconds of `train_distributed` (loading the blocks, the routing plan, the iterations, "
        "gathering the model). = in-process: factors and biases equal to the in-process "
        f"`fit`'s bit for bit. Load average (1 min) at the end: {os.getloadavg()[0]:.1f} on "
        f"{len(os.sched_getaffinity(0))} cores, which other jobs may share.",
    ]
    text = "\n".join(lines) + "\n"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)
    print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
