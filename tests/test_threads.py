"""compute_threads: numba's thread count for the block, BLAS on one thread, both restored."""

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from alsmf.errors import ConfigError
from alsmf.threads import compute_threads


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_runs_on_one_thread_inside_and_everything_is_restored_after():
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS is loaded
    numba_before, blas_before = numba.get_num_threads(), blas_threads()
    with compute_threads(1):
        assert numba.get_num_threads() == 1
        assert blas_threads() and set(blas_threads()) == {1}
    assert numba.get_num_threads() == numba_before and blas_threads() == blas_before


def test_blas_can_be_left_alone():
    before = blas_threads()
    with compute_threads(None, blas_threads=None):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
        assert blas_threads() == before


@pytest.mark.parametrize("threads", [0, -1, 10**6, 1.5, True, "2"])
def test_a_bad_thread_count_is_refused(threads):
    with pytest.raises(ConfigError, match="threads must be from 1"):
        with compute_threads(threads):
            pass
