"""Distributed ALS on a cluster of separate OS processes, started with the ``dask scheduler``
and ``dask worker`` command-line tools as a user starts them: a worker SIGKILLed while it runs
iteration 8 of 10 really loses its memory, the scheduler goes on with the other worker, and the
model is still the in-process one bit for bit. A scheduler plugin records every task that ran,
which shows how far back the recomputation of the lost results reached.

The worker is killed by itself, deterministically: a worker plugin (registered on every worker,
armed on one) sends SIGKILL to its own process when that worker starts its first task of
iteration 8's user half-step. Workers run without a nanny, so nothing restarts the process and
its memory is gone; a replacement worker is started after the run, for the next test.

Everything listens on 127.0.0.1 only; the processes are killed by a fixture finaliser.
"""

import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from alsmf import ALS, synthetic_ratings
from alsmf.data.splits import random_split

distributed = pytest.importorskip("distributed")

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin  # noqa: E402

from alsmf.distributed import train_distributed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIG = {"factors": 8, "iterations": 10, "implicit_weight": 0.0, "rank_factors": 0, "seed": 3}
KILL_ITERATION = 8
N_BLOCKS = 4
ITERATION = re.compile(r"^alsmf-[0-9a-f]{8}(?:-head)?-it(\d+)-")
"""A training task's key (``alsmf/distributed/state.py``): ``alsmf-RUN-itN-SIDEj`` (a solve),
``...-toW-fromV`` (a bundle of messages), ``...-figures`` (its figures), ``...-itN-implicit-...``
(implicit factors), ``...-itN-root-...`` (a checkpoint's blocks), the same after ``-head`` for the
ranking head; the data's and the plan's keys have no ``-itN-``."""



class TaskLog(SchedulerPlugin):
    """On the scheduler: every key sent to a worker to run (``started``) and every key whose
    result came back (``finished``), in order."""

    name = "alsmf-test-task-log"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "processing":
            self.started.append(str(key))
        elif start == "processing" and finish == "memory":
            self.finished.append(str(key))


class KillAt(WorkerPlugin):
    """On the worker at ``target``: SIGKILL this process as it starts running its first task
    of ``iteration``'s user half-step (a message to a user block or a user block's solve).
    Other workers, and a replacement started later (another address), never kill."""

    name = "alsmf-test-kill"

    def __init__(self, target: str, iteration: int) -> None:
        self.target = target
        self.pattern = re.compile(rf"-it{iteration}-user\d+")
        self.worker = None

    def setup(self, worker) -> None:
        self.worker = worker

    def transition(self, key, start, finish, **kwargs) -> None:
        if (finish == "executing" and self.worker is not None
                and self.worker.address == self.target and self.pattern.search(str(key))):
            os.kill(os.getpid(), signal.SIGKILL)


NO_DASHBOARD = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")
"""Without a dashboard every process still serves HTTP (health, metrics), on 0.0.0.0 unless
told otherwise: on 127.0.0.1 here, at a free port."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessCluster:
    """A ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, each its own process
    (no nanny: the worker process is the one that holds the data)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.processes: list[subprocess.Popen] = []
        self.environ = dict(os.environ)  # the workers unpickle alsmf's tasks: the worktree's
        self.environ["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        # as local_cluster: every block's tasks stay on the worker holding its ratings
        self.environ["DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING"] = "False"

    def _start(self, *args: str, log: str) -> subprocess.Popen:
        with open(self.folder / log, "ab") as out:
            process = subprocess.Popen([str(BIN / "dask"), *args], env=self.environ,
                                       stdout=out, stderr=subprocess.STDOUT, cwd=self.folder)
        self.processes.append(process)
        return process

    def start_scheduler(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        # --idle-timeout: it ends itself if this process dies before the finaliser runs
        self._start("scheduler", "--host", "127.0.0.1", "--port", port, *NO_DASHBOARD,
                    "--idle-timeout", "120", log="scheduler.log")

    def start_worker(self) -> subprocess.Popen:
        n = len(self.processes)
        return self._start("worker", self.address, "--host", "127.0.0.1", *NO_DASHBOARD,
                           "--nworkers", "1", "--nthreads", "1", "--no-nanny",
                           "--memory-limit", "0", "--death-timeout", "30",
                           "--local-directory", str(self.folder / f"worker-{n}"),
                           log=f"worker-{n}.log")

    def workers(self, client) -> dict[str, int]:
        """Live workers: address -> pid."""
        return client.run(os.getpid)

    def ensure_workers(self, client, n: int) -> dict[str, int]:
        """Start workers until ``n`` are connected; their address -> pid."""
        for _ in range(n - len(client.nthreads())):
            self.start_worker()
        client.wait_for_workers(n, timeout=60)
        return self.workers(client)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    """A scheduler and two worker processes; yields (cluster, client)."""
    cluster = ProcessCluster(tmp_path_factory.mktemp("dask-processes"))
    request.addfinalizer(cluster.close)  # before anything starts: it runs even if starting fails
    cluster.start_scheduler()
    cluster.start_worker()
    cluster.start_worker()
    try:
        client = distributed.Client(cluster.address, timeout=30)
    except OSError as error:
        pytest.fail(f"no scheduler at {cluster.address}: {error}\n{cluster.logs()}")
    request.addfinalizer(client.close)
    try:
        client.wait_for_workers(2, timeout=60)
    except TimeoutError:
        pytest.fail(f"the scheduler did not report 2 workers\n{cluster.logs()}")
    client.register_plugin(TaskLog())
    yield cluster, client


@pytest.fixture(scope="module")
def split():
    ratings = synthetic_ratings(n_users=300, n_items=200, n_ratings=6000, seed=1).ratings
    return random_split(ratings, test_fraction=0.1, seed=0)


@pytest.fixture(scope="module")
def reference(split):
    config = ALS(**CONFIG)
    return config, config.fit(split[0], split[1])


def _task_log(dask_scheduler):
    plugin = dask_scheduler.plugins[TaskLog.name]
    log = {"started": list(plugin.started), "finished": list(plugin.finished)}
    plugin.started.clear()
    plugin.finished.clear()
    return log


def _iteration(key: str) -> int | None:
    match = ITERATION.match(key)
    return int(match[1]) if match else None


def train_with_a_kill(cluster, client, split, config, **options):
    """Train ``config`` with the worker holding user block 0's ratings armed to die in
    iteration ``KILL_ITERATION``; (model, killed address, the keys that ran more than once)."""
    pids = cluster.ensure_workers(client, 2)
    client.run_on_scheduler(_task_log)  # empty it
    target = sorted(pids)[0]  # ingest.load's home of user block 0 (workers sorted)
    client.register_plugin(KillAt(target, KILL_ITERATION))
    try:
        model = train_distributed(config, split[0], split[1], client=client, n_blocks=N_BLOCKS,
                                  **options)
    finally:
        client.unregister_worker_plugin(KillAt.name)
    log = client.run_on_scheduler(_task_log)
    alive = cluster.workers(client)
    assert target not in alive and len(alive) == 1, f"worker {target} was not killed: {alive}"
    process = next(p for p in cluster.processes if p.pid == pids[target])
    assert process.wait(timeout=10) == -signal.SIGKILL  # the process itself, memory and all
    started = Counter(log["started"])
    assert max(started.values()) >= 2, "nothing ran twice: the kill lost nothing"
    assert all(Counter(log["finished"])[key] <= started[key] for key in started)
    rerun = {key: n for key, n in started.items() if n > 1}
    return model, target, rerun


def assert_same_factors(model, reference):
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids",
                 "item_ids"):
        assert np.array_equal(getattr(model, name), getattr(reference, name)), name
    assert [r.iteration for r in model.history] == list(range(1, CONFIG["iterations"] + 1))


def test_worker_killed_in_iteration_8_gives_the_in_process_model(cluster, split, reference):
    """Without checkpoints the lost results are recomputed from the lineage (today back to
    iteration 1: every solve depends on the previous iteration's); the model is the same."""
    config, expected = reference
    model, _, rerun = train_with_a_kill(*cluster, split, config)
    assert_same_factors(model, expected)
    iterations = sorted({i for i in map(_iteration, rerun) if i is not None})
    print(f"\nrecomputed after the kill: iterations {iterations}, {len(rerun)} keys")
    assert iterations and iterations[-1] == KILL_ITERATION


def test_worker_killed_in_iteration_8_recomputes_from_the_last_checkpoint(cluster, split,
                                                                          tmp_path):
    """The default model (implicit features, ranking head) with a checkpoint after every
    iteration: the last one (after iteration 7) is the root of the lineage, so nothing of an
    iteration before 7 runs again, and the model is the in-process one."""
    config = ALS(**{name: CONFIG[name] for name in ("factors", "iterations", "seed")})
    assert config.implicit_weight > 0 and config.rank_factors > 0
    expected = config.fit(split[0], split[1])
    checkpoint = tmp_path / "ck.npz"
    model, _, rerun = train_with_a_kill(*cluster, split, config,
                                        checkpoint=checkpoint, checkpoint_every=1)
    assert_same_factors(model, expected)
    for name, array in expected.extras.items():
        assert np.array_equal(model.extras[name], array), name
    assert checkpoint.exists()
    iterations = {i for i in map(_iteration, rerun) if i is not None}
    print(f"\nrecomputed after the kill: iterations {sorted(iterations)}, {len(rerun)} keys")
    assert iterations and min(iterations) >= KILL_ITERATION - 1, sorted(iterations)
