"""Dask clusters: one of worker processes on this machine (``alsmf train --workers N``), and
the workers of any cluster, asked of its scheduler."""

from __future__ import annotations

import os
from typing import Any

from alsmf.errors import ConfigError


def local_cluster(n_workers: int, threads_per_worker: int | None = None, *,
                  memory_limit: str | int | None = "auto", **kwargs: Any) -> Any:
    """Start a ``LocalCluster`` of ``n_workers`` processes (each with its own address).

    Each worker runs one block solve at a time with ``threads_per_worker`` threads (default:
    this machine's cores shared evenly), so the workers together use the cores once. Close it
    (``with local_cluster(2) as cluster:``) to stop the processes.

    Work stealing is off: every block's tasks are placed on the worker holding its ratings
    (the routing plan's premise), and a thief would fetch those ratings and factors just
    because the home worker was busy for a moment (loading its kernels, say). Placement may
    still fall to another worker when the home one is lost, which is how a dead worker's
    blocks are recomputed.

    Args:
        n_workers: number of worker processes (>= 1).
        threads_per_worker: threads of each worker (>= 1).
        memory_limit: per-worker memory limit, as ``LocalCluster`` takes it.
        kwargs: passed on to ``LocalCluster`` (``dashboard_address``, ``host``, ...).

    Raises:
        ConfigError: ``n_workers`` or ``threads_per_worker`` below 1.
    """
    import dask
    from distributed import LocalCluster

    if not (isinstance(n_workers, int) and n_workers >= 1):
        raise ConfigError(f"the number of workers must be an integer >= 1, got {n_workers!r}")
    if threads_per_worker is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads_per_worker = max(1, (cores or 1) // n_workers)
    if not (isinstance(threads_per_worker, int) and threads_per_worker >= 1):
        raise ConfigError(f"threads per worker must be an integer >= 1, got {threads_per_worker!r}")
    kwargs.setdefault("host", "127.0.0.1")
    kwargs.setdefault("dashboard_address", None)
    environ = {key: value for key, value in
               dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if key != _TRIM}
    os.environ.pop(_TRIM, None)  # put there by an earlier nanny of this process
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "distributed.scheduler.work-stealing": False}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                            processes=True, memory_limit=memory_limit, **kwargs)


_TRIM = "MALLOC_TRIM_THRESHOLD_"
"""Dask starts workers with glibc's trim threshold at 64 KiB, which also fixes the mmap
threshold at 128 KiB: every larger allocation is then a fresh mmap, and the half-step kernels,
which allocate a scratch block per row, run several times slower. The workers started here keep
glibc's adaptive defaults."""


def worker_addresses(client: Any) -> list[str]:
    """The addresses of the cluster's workers, sorted, asked of the scheduler now.

    Not ``client.scheduler_info()["workers"]``: the client refreshes that record on a timer
    with no per-worker detail, and a refresh landing between the query and the read leaves
    it listing no workers at all.
    """
    return sorted(client.nthreads())


def steals_work(client: Any) -> bool:
    """Whether the cluster's scheduler has Dask's work stealing on (asked of it now)."""
    return bool(client.run_on_scheduler(_has_stealing))


def _has_stealing(dask_scheduler: Any) -> bool:
    return "stealing" in dask_scheduler.extensions
