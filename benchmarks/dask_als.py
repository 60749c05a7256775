"""Distributed ALS (Dask) against the in-process trainer: time, bytes moved, a projection.

    python benchmarks/dask_als.py                  # ML-20M shape, 2 workers (~5 GB, minutes)
    python benchmarks/dask_als.py --shape ml-1m    # quick check
    python benchmarks/dask_als.py --model defaults # the default model (implicit features, head)
    python benchmarks/dask_als.py --model bayes    # BayesianMF's defaults, --iterations sweeps

The data are the peer benchmark's synthetic set (``benchmarks/peers.py`` caches it as Parquet in
``benchmarks/cache/``; 90/10 split, seed 0). The in-process trainer (``ALS.fit``, all cores)
runs first, then ``train_distributed`` on a ``LocalCluster`` of ``--workers`` processes sharing
the same cores, reading the training Parquet file on the workers. Reported:

- seconds per iteration (median over iterations 2..n of ``IterationRecord.seconds``, which for
  both includes the objective and RMSEs; then the median over ``--repeats`` interleaved
  repeats) and the ratio distributed / in-process, plus CPU seconds per iteration (this
  process for in-process; the worker processes for distributed);
- whether the distributed factors equal the in-process ones bit for bit;
- bytes per iteration: the routing plan (every message, including those between blocks on the
  same worker), what actually crossed between worker processes (the workers' transfer logs,
  message keys only), and the naive broadcast (each block receives the whole fixed matrix);
- the communication model (below) checked against the plan here, then projected to
  ``--project-ratings`` ratings on ``--project-workers`` workers.

Communication model. A row with d ratings is sent in a half-step to every block of the other
side that holds one of its ratings. With B blocks balanced by ratings, a rating lands in a given
block with probability 1/B; taking the ratings' blocks as independent, the row is sent to B·(1 -
(1 - 1/B)^d) blocks on average, so a half-step sends Σ_rows B·(1 - (1 - 1/B)^d_r) rows of k + 1
values (2k + 1 with implicit features, whose rows ride along). The projection scales the data's
user and item counts by the same factor (each user and item keeps its number of ratings), uses B
= workers, counts a fraction 1 - 1/W of the messages as crossing the network (the rest stay on
their worker), spreads it evenly over the workers' links at ``--bandwidth-gbit``, and adds the
compute time (this machine's in-process CPU seconds per rating, spread over
``--cores-per-worker`` cores of each worker) and the Dask scheduler's time for the 2·W² + 4·B
tasks of an iteration (per half-step one bundle of messages per pair of workers, B solves, B
figures) at ``--task-ms`` each, one after another (the scheduler CPU per task that
``benchmarks/dask_tasks.py`` measures). It also reports the largest number of workers whose
scheduler time stays below the network and compute time.

The table is printed and written to ``benchmarks/results/distributed-SHAPE.md`` (the plain
model) or ``distributed-SHAPE-MODEL.md`` (``--model defaults``: ``ALS``'s defaults, with
implicit features and the ranking head; ``--model bayes``: the Gibbs sampler's defaults with
``--iterations`` sweeps, half of them burn-in, every later draw kept). The communication model
and the projection are the ALS plan's, so ``--model bayes`` reports the measured part only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PLAIN, RESULTS, machine, prepare_data  # noqa: E402  (the peer benchmark's helpers)


def expected_rows(degrees: np.ndarray, n_blocks: int) -> float:
    """Rows a half-step sends by the model: Σ B·(1 - (1 - 1/B)^d) over the rows' degrees."""
    degrees = degrees[degrees > 0].astype(np.float64)
    return float(np.sum(n_blocks * -np.expm1(degrees * np.log1p(-1.0 / n_blocks)))) \
        if n_blocks > 1 else float(len(degrees))


def _clear_log(dask_worker) -> None:
    dask_worker.transfer_incoming_log.clear()


def _message_bytes(dask_worker) -> dict:
    """Bytes of the bundles of messages this worker received, per iteration."""
    per_iteration: dict[int, int] = {}
    for entry in dask_worker.transfer_incoming_log:
        for key, nbytes in entry["keys"].items():
            match = re.search(r"-it(\d+)-.*-to\d+-from\d+$", str(key))  # bundles
            if match:
                per_iteration[int(match[1])] = per_iteration.get(int(match[1]), 0) + nbytes
    return per_iteration


def _cpu(dask_worker=None) -> float:
    return time.process_time()


def _median_steps(stamps: list[float]) -> float:
    """Median of the differences between consecutive stamps, skipping the first iteration."""
    return statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:]))


def run_in_process(config, train, test) -> dict:
    """Fit in this process; CPU seconds per iteration from process_time at each callback."""
    stamps = [time.process_time()]
    wall = time.perf_counter()
    model = config.fit(train, test, callback=lambda r, m: stamps.append(time.process_time()))
    return {"model": model, "wall": time.perf_counter() - wall, "cpu_it": _median_steps(stamps),
            "per_it": statistics.median(r.seconds for r in model.history[1:])}


def run_distributed(client, config, train_path: Path, test, n_blocks: int | None) -> dict:
    """Fit on the cluster; CPU per iteration summed over the worker processes."""
    from alsmf.distributed import train_distributed

    stamps, progress = [], {}

    def keep(record, p):
        progress["p"] = p
        stamps.append(sum(client.run(_cpu).values()))

    client.run(_clear_log)
    stamps.append(sum(client.run(_cpu).values()))
    wall = time.perf_counter()
    model = train_distributed(config, train_path, test, client=client, n_blocks=n_blocks,
                              callback=keep)
    wall = time.perf_counter() - wall
    crossed: dict[int, int] = {}
    for per_iteration in client.run(_message_bytes).values():
        for iteration, nbytes in per_iteration.items():
            crossed[iteration] = crossed.get(iteration, 0) + nbytes
    p = progress["p"]
    return {"model": model, "wall": wall, "cpu_it": _median_steps(stamps),
            "per_it": statistics.median(r.seconds for r in model.history[1:]),
            "planned": p.planned_bytes, "blocks": p.n_blocks,
            "crossed": statistics.median(crossed.values()) if crossed else 0}


def tasks_per_iteration(n_blocks: int, n_workers: int) -> int:
    """The plain model's tasks of one iteration with B blocks per side on W workers: per
    half-step a bundle of messages per pair of workers, B solves and B figures."""
    return 2 * n_workers * n_workers + 4 * n_blocks


def message_row_bytes(a) -> int:
    """Bytes of one row of a message: k factors and a bias, and with implicit features (the
    defaults, the sampler's too) the row's k implicit factors; float32 for ALS's CG solver,
    float64 for the sampler."""
    values = a.factors + 1 + (0 if a.model == "plain" else a.factors)
    return values * (8 if a.model == "bayes" else 4)


def projection(a, user_degrees, item_degrees, cpu_per_rating: float,
               workers: int | None = None) -> dict:
    """Bytes and seconds per iteration for a.project_ratings ratings on ``workers``
    (default a.project_workers)."""
    scale = a.project_ratings / float(np.sum(user_degrees))
    w = workers or a.project_workers
    row_bytes = message_row_bytes(a)
    rows = scale * (expected_rows(user_degrees, w) + expected_rows(item_degrees, w))
    plan = rows * row_bytes
    network = plan * (1 - 1 / w)
    broadcast = w * scale * (len(user_degrees) + len(item_degrees)) * row_bytes
    bandwidth = a.bandwidth_gbit * 1e9 / 8
    tasks = tasks_per_iteration(w, w)
    return {
        "users": scale * len(user_degrees), "items": scale * len(item_degrees),
        "plan": plan, "network": network, "broadcast": broadcast,
        "network_s": network / w / bandwidth,
        "broadcast_s": broadcast * (1 - 1 / w) / w / bandwidth,
        "compute_s": cpu_per_rating * a.project_ratings / w / a.cores_per_worker,
        "tasks": tasks, "scheduler_s": tasks * a.task_ms / 1000,
    }


def scheduler_keeps_up(projected: dict) -> bool:
    """Whether a projected iteration's scheduler time is at most its network and compute."""
    return projected["scheduler_s"] <= projected["network_s"] + projected["compute_s"]


def gb(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="ml-20m", help="ml-1m (quick) or ml-20m (default)")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--model", choices=("plain", "defaults", "bayes"), default="plain",
                   help="plain biased ALS (as the peers fit), ALS's defaults, or BayesianMF's")
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3,
                   help="in-process and distributed fits, interleaved (medians are reported)")
    p.add_argument("--blocks", type=int, default=None, help="blocks per side (default: workers)")
    p.add_argument("--project-ratings", type=float, default=1e9)
    p.add_argument("--project-workers", type=int, default=100)
    p.add_argument("--bandwidth-gbit", type=float, default=10.0,
                   help="network bandwidth per worker, Gbit/s, each direction")
    p.add_argument("--cores-per-worker", type=int, default=16)
    p.add_argument("--task-ms", type=float, default=0.8,
                   help="scheduler time per task in the projection, ms (benchmarks/dask_tasks.py "
                        "measures 0.6-1.0 ms of scheduler CPU per task on this machine)")
    a = p.parse_args(argv)
    if a.iterations < 3 or a.repeats < 1:
        p.error("--iterations must be at least 3 (the median skips iteration 1), --repeats >= 1")

    from distributed import Client

    from alsmf import ALS
    from alsmf.data.readers import read_table
    from alsmf.models.bayes import BayesianMF
    from alsmf.distributed import local_cluster

    started = datetime.datetime.now().astimezone()
    train_path, test_path, info = prepare_data(a.shape)
    train, test = read_table(train_path), read_table(test_path)
    bayes = a.model == "bayes"
    if bayes:
        burn_in = a.iterations // 2
        config = BayesianMF(factors=a.factors, sweeps=a.iterations, burn_in=burn_in,
                            samples=a.iterations - burn_in)
    else:
        config = ALS(**(PLAIN if a.model == "plain" else {}), factors=a.factors,
                     iterations=a.iterations)
    print(f"data: {info}", flush=True)
    locals_, dists = [], []
    with local_cluster(a.workers) as cluster, Client(cluster) as client:
        for repeat in range(a.repeats):  # interleaved, so both see the same load
            locals_.append(run_in_process(config, train, test))
            dists.append(run_distributed(client, config, train_path, test, a.blocks))
            print(f"repeat {repeat + 1}: in-process {locals_[-1]['per_it']:.3f} s/it, "
                  f"distributed {dists[-1]['per_it']:.3f} s/it", flush=True)
    local, dist = locals_[-1], dists[-1]
    local_it = statistics.median(r["per_it"] for r in locals_)
    dist_it = statistics.median(r["per_it"] for r in dists)
    local_cpu = statistics.median(r["cpu_it"] for r in locals_)
    dist_cpu = statistics.median(r["cpu_it"] for r in dists)
    same = all(np.array_equal(getattr(d["model"], n), getattr(loc["model"], n))
               for d, loc in zip(dists, locals_)
               for n in ("user_factors", "item_factors", "user_bias", "item_bias"))

    compact = train.compact()
    user_degrees, item_degrees = compact.user_counts(), compact.item_counts()
    n_users, n_items = compact.n_users, compact.n_items
    b_users, b_items = dist["blocks"]
    row_bytes = message_row_bytes(a)
    broadcast = (b_items * n_users + b_users * n_items) * row_bytes
    modelled = (expected_rows(user_degrees, b_items) + expected_rows(item_degrees, b_users)) \
        * row_bytes
    n = len(compact)
    cpu_per_rating = local_cpu / n
    proj = projection(a, user_degrees, item_degrees, cpu_per_rating)
    balanced = max((w for w in range(2, 2001) if scheduler_keeps_up(
        projection(a, user_degrees, item_degrees, cpu_per_rating, w))), default=1)

    lines = [
        f"# Distributed ALS (Dask) against in-process, {a.shape} shape",
        "",
        f"Date: {started:%Y-%m-%d %H:%M %Z}; command: `python benchmarks/dask_als.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Machine: {machine()}  ",
        f"Data: `synthetic_ratings(like={a.shape!r})` 90/10 split (benchmarks/peers.py cache): "
        f"{n:,} training ratings, {n_users:,} users, {n_items:,} items, "
        f"{info['test']:,} test ratings.  ",
        (f"Settings: `BayesianMF(factors={a.factors}, sweeps={a.iterations}, "
            f"burn_in={config.burn_in}, samples={config.samples})`, the sampler's defaults "
            "otherwise (implicit features, ranking head; float64); " if bayes else
            f"Settings: `ALS(factors={a.factors}, iterations={a.iterations})`, "
            + ("plain model (no implicit features, no ranking head, one λ; CG, float32); "
               if a.model == "plain" else "the defaults (implicit features, ranking head; CG, "
               "float32); ")) +
        f"in-process with {os.cpu_count()} threads; distributed on "
        f"`local_cluster({a.workers})` ({a.workers} worker processes, "
        f"{max(1, (os.cpu_count() or 1) // a.workers)} thread(s) each), {b_users} user and "
        f"{b_items} item blocks, training data read from Parquet by the workers.",
        "",
        "| | in-process | distributed | ratio |",
        "|---|---|---|---|",
        f"| s / iteration | {local_it:.3f} | {dist_it:.3f} | **{dist_it / local_it:.2f}** |",
        f"| CPU s / iteration (distributed: all workers) | {local_cpu:.3f} | {dist_cpu:.3f} | "
        f"{dist_cpu / local_cpu:.2f} |",
        f"| whole fit, wall s (incl. loading, blocks, final gather; last repeat) | "
        f"{local['wall']:.1f} | {dist['wall']:.1f} | {dist['wall'] / local['wall']:.2f} |",
        f"| final test RMSE | {local['model'].history[-1].test_rmse:.4f} | "
        f"{dist['model'].history[-1].test_rmse:.4f} | |",
        "",
        f"Per iteration: the median over iterations 2..{a.iterations} of each fit, then the "
        f"median over {a.repeats} repeats (in-process and distributed fits interleaved, one "
        "cluster for all). Per-repeat s / iteration ratios: "
        + ", ".join(f"{d['per_it'] / loc['per_it']:.2f}" for d, loc in zip(dists, locals_))
        + f"; load average (1 min) at the end: {os.getloadavg()[0]:.1f} on this 2-core VM, "
        "which other jobs share.",
        "",
        f"Factors and biases bit-identical to in-process in every repeat: "
        f"**{'yes' if same else 'NO'}**.",
        "",
        "Bytes per iteration (both half-steps"
        + ("; the sampler also routes the item factors to the user blocks once more per "
           "sweep to score the draw, which the measured row includes and the plan does not):"
           if bayes else "):"),
        "",
        "| | bytes | vs naive broadcast |",
        "|---|---|---|",
        f"| naive broadcast (every block gets the whole fixed matrix) | {gb(broadcast)} | 1.00 |",
        f"| routing plan (all messages) | {gb(dist['planned'])} | "
        f"{dist['planned'] / broadcast:.2f} |",
        f"| communication model's estimate of the plan | {gb(modelled)} | "
        f"{modelled / broadcast:.2f} |",
        f"| measured between worker processes (median over iterations) | "
        f"{gb(dist['crossed'])} | {dist['crossed'] / broadcast:.2f} |",
        "",
        f"Whole run: {(datetime.datetime.now().astimezone() - started).total_seconds() / 60:.1f}"
        " min.",
        "",
    ]
    if not bayes:  # the projection models the ALS plan
        lines[-3:-3] = [
            f"## Projection: {a.project_ratings:.3g} ratings on {a.project_workers} workers",
            "",
            f"Assumptions: the {a.shape} degree distributions scaled up (users and items x"
            f"{a.project_ratings / n:.0f}: {proj['users']:,.0f} users, {proj['items']:,.0f} items, "
            f"each keeping its number of ratings); k = {a.factors}, float32 (CG solver), "
        f"{message_row_bytes(a)} bytes per row of a message; "
            f"B = {a.project_workers} blocks per side, one per worker; ratings of a row fall in "
            "blocks independently (blocks balanced by ratings); "
            f"{a.bandwidth_gbit:g} Gbit/s per worker each way, traffic spread evenly, no "
            f"switch contention; compute at this machine's in-process {cpu_per_rating * 1e9:.0f} "
            f"CPU ns per rating and iteration on {a.cores_per_worker} cores per worker, perfectly "
            f"parallel; {a.task_ms:g} ms of scheduler time per task (`benchmarks/dask_tasks.py` "
            "measures the scheduler's CPU per task here), tasks not overlapping.",
            "",
            "| per iteration | routing plan | naive broadcast |",
            "|---|---|---|",
            f"| bytes over the network (all workers) | {gb(proj['network'])} | "
            f"{gb(proj['broadcast'] * (1 - 1 / a.project_workers))} |",
            f"| bytes received per worker | {gb(proj['network'] / a.project_workers)} | "
            f"{gb(proj['broadcast'] * (1 - 1 / a.project_workers) / a.project_workers)} |",
            f"| network seconds | {proj['network_s']:.2f} | {proj['broadcast_s']:.2f} |",
            f"| compute seconds | {proj['compute_s']:.2f} | {proj['compute_s']:.2f} |",
            f"| scheduler seconds ({proj['tasks']:,} tasks; broadcast: "
            f"{4 * a.project_workers} tasks) | {proj['scheduler_s']:.1f} | "
            f"{4 * a.project_workers * 0.001 * a.task_ms:.1f} |",
            "",
            f"Largest cluster whose scheduler time per iteration stays below its network and "
            f"compute time, by the same model: **{balanced} workers** (one block per side each; "
            "beyond it the 2·W² bundles of messages make the scheduler the bottleneck).",
            "",
        ]
    text = "\n".join(lines)
    print()
    print(text)
    out = RESULTS / f"distributed-{a.shape}{'' if a.model == 'plain' else '-' + a.model}.md"
    out.write_text(text)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
