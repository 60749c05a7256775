"""Load test of ``alsmf serve`` on loopback: N concurrent clients for T seconds per scenario.

The model is ML-20M-shaped without training: 138,493 users x 26,744 items, k = 64, the seen
items and ratings of every user from ``alsmf.synthetic_ratings("ml-20m")`` (20M ratings with
MovieLens' heavy-tailed activity and popularity), random float32 factors and biases, random
implicit-feature factors and ranking-head vectors of the shapes the default ``ALS()`` trains,
and the row systems of a default model (so fold-in and ranking do what a trained model's do),
with titles "Movie <id> (<year>)". Throughput depends on the shapes, the precision and how
many items each user has seen, not on the factors' values, so random factors stand in for a
fit that would take many minutes here. The model file is cached in ``benchmarks/cache/``.

The server runs in a subprocess (uvicorn, one worker, as ``alsmf serve`` runs it) on
127.0.0.1; the load generator (aiohttp, one keep-alive connection per client) runs in this
process. **Both share the machine's cores**: on a 2-core machine the client's own CPU is taken
from the server's, so these are lower bounds of what the server does alone. Scenarios:

* ``recommend``: ``GET /api/recommend?user=U&n=10`` for random trained users;
* ``rate``: ``POST /api/rate`` with 10 ratings by title (the popular items' titles, random
  half-star ratings) and ``n`` 10;
* ``mix``: 50% recommend, 20% rate, 10% recommend with ``explain=1``, 10% similar, 5% search,
  5% predict, drawn per request from a seeded generator;

each after a warm-up, for ``--seconds`` (default 20) with ``--clients`` (default 16). Every
response is checked: a status other than 200, or a transport error, counts as an error.
Reports requests/s, p50/p99/max latency and error counts with the machine and date, and writes
``benchmarks/results/serve-ml-20m.md``.

    python benchmarks/serve.py                    # about 3 minutes (the model's first build)
    python benchmarks/serve.py --offload          # model calls in the thread pool instead
    python benchmarks/serve.py --seconds 5 --scenarios recommend     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from use import cpu_name  # the use benchmark's processor name, beside this script

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS = HERE / "results" / "serve-ml-20m.md"
FACTORS = 64
NEW_RATINGS = 10
TARGETS = {"recommend": (1000, 25.0), "rate": (500, 50.0)}
"""Scenario -> (requests/s at least, p99 ms below) the service is built to reach."""


def build_model(path: Path, seed: int = 0) -> None:
    """Write the ML-20M-shaped model described in the module docstring to ``path``."""
    from alsmf import ALS, MFModel, synthetic_ratings
    from alsmf.models.implicit_features import IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS
    from alsmf.ranking import RANKING_ITEM_FACTORS, RANKING_USER_FACTORS

    # the row systems (what fold-in solves) of a default model, from a quick small fit
    template = ALS(iterations=1, rank_iterations=1).fit(synthetic_ratings("ml-100k").ratings)
    ratings = synthetic_ratings("ml-20m", seed=seed).ratings
    by_user = ratings.by_user()
    rng = np.random.default_rng(seed)
    sd = (0.3 / FACTORS) ** 0.25  # p·q of variance 0.3, as in the synthetic truth

    def draw(rows: int, scale: float = sd) -> np.ndarray:
        return rng.normal(0.0, scale, (rows, FACTORS)).astype(np.float32)

    n_users, n_items = ratings.n_users, ratings.n_items
    model = MFModel(
        user_factors=draw(n_users), item_factors=draw(n_items),
        user_bias=rng.normal(0.0, 0.35, n_users).astype(np.float32),
        item_bias=rng.normal(0.0, 0.4, n_items).astype(np.float32),
        global_mean=3.55, fallback_mean=3.55, user_ids=ratings.user_ids,
        item_ids=ratings.item_ids, seen_indptr=by_user.indptr.astype(np.int64),
        seen_indices=by_user.indices.astype(np.int32),
        seen_values=by_user.data.astype(np.float32), params=dict(template.params),
        extras={IMPLICIT_ITEM_FACTORS: draw(n_items, 0.01),
                IMPLICIT_USER_FACTORS: draw(n_users, 0.01),
                RANKING_USER_FACTORS: np.abs(draw(n_users)),
                RANKING_ITEM_FACTORS: np.abs(draw(n_items))},
        system=template.system, ranking_system=template.ranking_system)
    years = rng.integers(1920, 2016, n_items)
    genres = np.array(["Drama", "Comedy|Romance", "Action|Sci-Fi", "Thriller", "Animation"])
    model.attach_titles(model.item_ids,
                        np.array([f"Movie {i} ({y})" for i, y in zip(model.item_ids, years)]),
                        genres[rng.integers(0, len(genres), n_items)])
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)


# ---------------------------------------------------------------------- the server
def run_server(model: Path, port: int, offload: bool) -> None:
    """The server process: the app of ``alsmf serve``, optionally with offloaded calls."""
    from alsmf.serve.app import create_app
    from alsmf.serve.model_holder import ModelHolder
    from alsmf.serve.runner import run

    run(create_app(ModelHolder(model), offload=offload), "127.0.0.1", port,
        log_level="warning")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, offload: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, __file__, "--run-server", str(model), "--port", str(port)]
    process = subprocess.Popen(command + (["--offload"] if offload else []))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, base
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}")
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


# ---------------------------------------------------------------------- the load
@dataclass
class Tally:
    """What one scenario measured."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, status: str, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "200")


class Requests:
    """The request mix: draws (method, path, body) from a seeded generator."""

    def __init__(self, info: dict, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.users = np.asarray(info["users"])
        self.titles = info["titles"]
        self.items = np.asarray(info["items"])

    def recommend(self, explain: bool = False) -> tuple[str, str, bytes | None]:
        user = int(self.rng.choice(self.users))
        return "GET", f"/api/recommend?user={user}&n=10" + ("&explain=1" if explain else ""), None

    def rate(self) -> tuple[str, str, bytes | None]:
        chosen = self.rng.choice(len(self.titles), NEW_RATINGS, replace=False)
        values = self.rng.integers(1, 11, NEW_RATINGS) / 2.0
        body = {"ratings": [{"item": self.titles[c], "rating": float(v)}
                            for c, v in zip(chosen, values)], "n": 10}
        return "POST", "/api/rate", json.dumps(body).encode()

    def mixed(self) -> tuple[str, str, bytes | None]:
        draw = self.rng.random()
        if draw < 0.5:
            return self.recommend()
        if draw < 0.7:
            return self.rate()
        if draw < 0.8:
            return self.recommend(explain=True)
        if draw < 0.9:
            return "GET", f"/api/similar?item={int(self.rng.choice(self.items))}&n=10", None
        if draw < 0.95:
            return "GET", f"/api/search?q=Movie%20{int(self.rng.integers(1, 100))}&n=10", None
        user, item = int(self.rng.choice(self.users)), int(self.rng.choice(self.items))
        return "GET", f"/api/predict?user={user}&item={item}", None


async def load(base: str, scenario: str, clients: int, seconds: float, info: dict,
               seed: int) -> Tally:
    """``clients`` concurrent loops sending ``scenario``'s requests for ``seconds``."""
    import aiohttp

    requests = Requests(info, seed)
    make = {"recommend": requests.recommend, "rate": requests.rate, "mix": requests.mixed}[scenario]
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:
        stop = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < stop:
                method, path, body = make()
                started = time.perf_counter()
                try:
                    async with session.request(method, path, data=body) as response:
                        await response.read()
                        status = str(response.status)
                except aiohttp.ClientError as error:
                    status = type(error).__name__
                tally.add(status, time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        tally.seconds = time.perf_counter() - started
    return tally


def mix_info(model_path: Path, seed: int) -> dict:
    """The ids and titles the requests draw from: trained users, the 2,000 most rated items."""
    from alsmf import MFModel

    model = MFModel.load(model_path)
    rng = np.random.default_rng(seed)
    popular = np.argsort(-np.bincount(model.seen_indices, minlength=model.n_items))[:2000]
    return {"users": rng.choice(model.user_ids, 5000, replace=False).tolist(),
            "items": model.item_ids[popular].tolist(),
            "titles": model.item_titles[popular].tolist(),
            "shape": (model.n_users, model.n_items, model.factors, len(model.seen_indices))}


def report(rows: list[tuple[str, Tally, tuple[float, float]]], args: argparse.Namespace,
           info: dict) -> str:
    users, items, k, seen = info["shape"]
    command = "python benchmarks/serve.py" + "".join(
        f" {flag}" for flag in (["--offload"] if args.offload else []))
    if args.seconds != 20 or args.clients != 16:
        command += f" --seconds {args.seconds:g} --clients {args.clients}"
    lines = [
        "# `alsmf serve` under load, ML-20M-shaped model",
        "",
        f"Measured {datetime.date.today().isoformat()} with `{command}` on {platform.platform()} "
        f"({cpu_name()}, {os.cpu_count()} cores), Python {platform.python_version()}. The "
        "server (uvicorn, one worker process, model calls "
        + ("in the thread pool" if args.offload else "on the event loop")
        + ") and the load generator (aiohttp, one keep-alive connection per client) ran on the "
        "same machine over 127.0.0.1 and shared its cores; the load average is the "
        "1-minute one before each scenario (other jobs on the machine add to it), and both "
        f"ran at niceness {os.nice(0)}.",
        "",
        f"Model: {users:,} users x {items:,} items, k = {k}, {seen:,} seen ratings (synthetic "
        "ml-20m), random factors, implicit features and ranking head of the default shapes "
        "(see the script's docstring). Each scenario ran for "
        f"{args.seconds:g} s with {args.clients} concurrent clients after a "
        f"{args.warmup:g} s warm-up.",
        "",
        "| scenario | requests | requests/s | p50 ms | p99 ms | max ms | errors | "
        "load avg | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, tally, (load_before, _) in rows:
        ms = np.asarray(tally.latencies) * 1e3
        rate = len(ms) / tally.seconds
        target = TARGETS.get(name)
        verdict = ""
        if target:
            met = rate >= target[0] and np.percentile(ms, 99) < target[1]
            verdict = f">= {target[0]:,}/s, p99 < {target[1]:g} ms: {'met' if met else 'missed'}"
        statuses = ", ".join(f"{s}: {c:,}" for s, c in sorted(tally.statuses.items()) if s != "200")
        lines.append(
            f"| {name} | {len(ms):,} | {rate:,.0f} | {np.percentile(ms, 50):.2f} | "
            f"{np.percentile(ms, 99):.2f} | {ms.max():.1f} | {tally.errors}"
            f"{' (' + statuses + ')' if statuses else ''} | {load_before:.2f} | {verdict} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up per scenario")
    parser.add_argument("--scenarios", default="recommend,rate,mix")
    parser.add_argument("--offload", action="store_true",
                        help="run the model calls in the thread pool, not on the event loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--run-server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_server:
        run_server(args.run_server, args.port, args.offload)
        return
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    model_path = CACHE / f"serve-ml-20m-seed{args.seed}.npz"
    if not model_path.exists():
        print(f"building {model_path} ...", file=sys.stderr)
        build_model(model_path, args.seed)
    info = mix_info(model_path, args.seed)
    process, base = start_server(model_path, args.offload)
    rows = []
    try:
        for position, name in enumerate(args.scenarios.split(",")):
            asyncio.run(load(base, name, args.clients, args.warmup, info, args.seed + 100))
            before = os.getloadavg()[0]
            tally = asyncio.run(load(base, name, args.clients, args.seconds, info,
                                     args.seed + position))
            rows.append((name, tally, (before, os.getloadavg()[0])))
            ms = np.asarray(tally.latencies) * 1e3
            print(f"{name}: {len(ms) / tally.seconds:,.0f} requests/s, p50 "
                  f"{np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, "
                  f"errors {tally.errors} {tally.statuses}", file=sys.stderr)
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = report(rows, args, info)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
