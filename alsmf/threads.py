"""How many threads training uses: numba's parallel loops on the cores, BLAS on one thread.

The half-steps parallelise over rows with numba; the few BLAS calls between them (the implicit
features' k x k products, the loss) are small. Left to itself OpenBLAS runs those on every core
too, and its worker threads keep spinning for a while after each call, taking the cores from
numba's threads that start right after: on ml-100k with 2 cores a default ALS fit took 1.49 s
instead of 0.56 s (`benchmarks/time_to_accuracy.py` before and after; median over u1..u5).
So training holds BLAS to one thread (threadpoolctl) while numba uses ``threads``.
"""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral
from typing import Iterator

import numba
from threadpoolctl import threadpool_limits

from alsmf.errors import ConfigError


@contextmanager
def compute_threads(threads: int | None, default: int | None = None, *,
                    blas_threads: int | None = 1) -> Iterator[None]:
    """Run numba's parallel kernels on ``threads`` threads and BLAS on ``blas_threads``.

    Args:
        threads: numba threads; ``None`` means ``default``, or all cores when that is None.
        default: the count used when ``threads`` is None.
        blas_threads: BLAS threads inside the block; ``None`` leaves BLAS alone (for work that
            is BLAS itself, such as a sparse SVD).

    Raises:
        ConfigError: ``threads`` is not an integer from 1 to the number of cores numba has.
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if threads is not None and not (isinstance(threads, Integral) and not isinstance(threads, bool)
                                    and 1 <= threads <= limit):
        raise ConfigError(f"threads must be from 1 to {limit}, got {threads}")
    before = numba.get_num_threads()
    numba.set_num_threads(threads or default or limit)
    try:
        if blas_threads is None:
            yield
        else:
            with threadpool_limits(limits=blas_threads, user_api="blas"):
                yield
    finally:
        numba.set_num_threads(before)
