"""Running the service: uvicorn, one worker process, BLAS and numba on one thread.

Every request's numerics are small: a vector times the item matrix, a k x k solve. Spread over
threads they only wait for each other, and under load those threads take the cores from the
event loop and from the other requests; OpenBLAS's threads in particular spin between calls
and multiplied the tail latency of ``POST /api/rate`` under load (the README gives the
figures of ``benchmarks/serve.py``). So the service computes on the event loop's thread alone,
and concurrency comes from many requests.
"""

from __future__ import annotations

import numba
import uvicorn
from starlette.types import ASGIApp
from threadpoolctl import threadpool_limits


def run(app: ASGIApp, host: str, port: int, *, access_log: bool = False,
        log_level: str = "info") -> None:
    """Serve ``app`` on ``host``:``port`` until interrupted, computing on one thread."""
    numba.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level,
                    server_header=False)
