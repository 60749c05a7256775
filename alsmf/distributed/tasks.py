"""What the Dask workers run: initial factors, messages, block solves with their figures.

Every function is pure (inputs are never modified, results are new arrays), so Dask may run a
task again after a worker is lost and the result is the same: nothing is lost or applied twice.
A block's solve also computes the figures the client needs (the block's part of the penalty,
of the squared error and of the test error), so the client only ever receives a few floats per
block and iteration, never factors.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass, field

import numba
import numpy as np
from dask.sizeof import sizeof

from alsmf.distributed.blocks import (Piece, RatingBlock, TestPairs, initial_user_factors, pack,
                                      unpack)
from alsmf.ranking import clip_to_scale
from alsmf.rowsystem import RowSystem
from alsmf.solvers.gather import UNIT_WEIGHTS
from alsmf.solvers.halfstep import HalfStep, check_solved
from alsmf.solvers.predict import predict_pairs, row_squared_errors

_KERNEL_LOCK = threading.Lock()
"""One kernel at a time per worker process: a kernel already uses the worker's threads."""

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_malloc_relaxed = False


@dataclass(frozen=True)
class FactorBlock:
    """The factors and biases of one block's rows, and the figures of the solve that made them.

    ``figures`` holds ``penalty`` (Σ w_r (λ‖x_r‖² + λ_b b_r²) over the block's rows) and, for user
    blocks, ``sse`` (training squared error of the block's ratings), ``test_sse`` and
    ``test_count``.
    """

    factors: np.ndarray
    bias: np.ndarray
    figures: dict = field(default_factory=dict)


def initial_block(side: str, start: int, stop: int, params: dict) -> FactorBlock:
    """The in-process trainer's starting point for one block: random users, zero items."""
    dtype = np.float32 if params["solver"] == "cg" else np.float64
    k = params["factors"]
    if side == "user":
        factors = initial_user_factors(params["seed"], params["init_scale"], k, dtype,
                                       start, stop)
    else:
        factors = np.zeros((stop - start, k), dtype=dtype)
    return FactorBlock(factors, np.zeros(stop - start, dtype=dtype))


def send(block: FactorBlock, rows: np.ndarray) -> np.ndarray:
    """The message of a routing-plan entry: the planned rows of ``block``, bias attached."""
    return pack(block.factors, block.bias, rows)


def figures(block: FactorBlock) -> dict:
    """The block's figures alone (what the client gathers each iteration)."""
    return block.figures


def solve(ratings: RatingBlock, previous: FactorBlock, step: HalfStep, system: RowSystem,
          global_mean: float, fallback_mean: float, iteration: int,
          *messages: np.ndarray, shared_gram: np.ndarray | None = None,
          scored: bool = True) -> FactorBlock:
    """Solve one block's rows by ``step`` against the fixed rows received in ``messages``.

    ``previous`` is the warm start (copied, never changed). Rows are solved by the in-process
    kernel (:class:`HalfStep`) and checked with :func:`check_solved`, so a failure names the
    row and iteration as in-process training does. ``system`` is the model's row system at
    its full λ, which the objective's penalty is measured with.

    Implicit feedback (a system with a ``target``): every used pair is fitted to that target,
    whatever its value, and ``shared_gram`` (FᵀF of the whole fixed side, :func:`gram_total`)
    times the system's ``gram_weight`` is added to every row's Gram matrix, as
    :meth:`ImplicitALSState.half_step <alsmf.models.implicit_als.ImplicitALSState.half_step>`
    adds it in-process. ``scored=False`` (a ranking head, never scored) skips the figures.
    """
    k = previous.factors.shape[1]
    fixed, fixed_bias = unpack(list(messages), k, previous.factors.dtype)
    out = previous.factors.copy()
    out_bias = previous.bias.copy()
    values, extra = ratings.values, {}
    if step.system.target is not None:
        values = np.full(len(ratings.values), step.system.target, dtype=np.float32)
        gram = np.zeros((k + 1, k + 1))
        gram[:k, :k] = step.system.gram_weight * shared_gram
        extra = {"extra_gram": gram,
                 "extra_rhs": np.zeros((ratings.n_rows, k + 1), previous.factors.dtype)}
    with _KERNEL_LOCK:
        _relax_malloc()
        threads_before = numba.get_num_threads()
        numba.set_num_threads(_worker_threads())
        try:
            status = step.run(ratings.indptr, ratings.indices, values, fixed,
                              fixed_bias, global_mean, out, out_bias, **extra)
            check_solved(status, out, out_bias, ratings.indptr, ratings.ids, ratings.side,
                         f"iteration {iteration}", step.reg)
            score = _figures if system.target is None else _implicit_figures
            result = FactorBlock(out, out_bias, score(ratings, out, out_bias, fixed,
                                                      fixed_bias, system, global_mean,
                                                      fallback_mean) if scored else {})
        finally:
            numba.set_num_threads(threads_before)
    return result


def _figures(ratings: RatingBlock, out: np.ndarray, out_bias: np.ndarray, fixed: np.ndarray,
             fixed_bias: np.ndarray, system: RowSystem, global_mean: float,
             fallback_mean: float) -> dict:
    """The block's share of the objective and RMSEs, summed as the in-process ALS state
    (:meth:`alsmf.models.als.ALSState.evaluate`) sums them over all rows."""
    weight = np.diff(ratings.indptr) if system.weighted_reg else np.ones(ratings.n_rows)
    norms = (system.reg * np.einsum("ij,ij->i", out, out)
             + system.reg_bias * out_bias * out_bias)
    result = {"penalty": float(np.dot(weight, norms))}
    if ratings.side == "user":  # after the user half-step: the iteration's final factors
        result["sse"] = float(np.sum(row_squared_errors(
            ratings.indptr, ratings.indices, ratings.values, UNIT_WEIGHTS, out, fixed,
            out_bias, fixed_bias, global_mean)))
        scores = predict_pairs(ratings.test_rows, ratings.test_cols, out, fixed, out_bias,
                               fixed_bias, global_mean)
        if not system.biases:  # nothing known about one side: the training mean
            scores[(ratings.test_rows < 0) | (ratings.test_cols < 0)] = fallback_mean
        clip_to_scale(scores, system.rating_scale)  # as the model predicts
        result["test_sse"] = float(np.sum(np.square(ratings.test_values - scores)))
        result["test_count"] = len(scores)
    return result


def _implicit_figures(ratings: RatingBlock, out: np.ndarray, out_bias: np.ndarray,
                      fixed: np.ndarray, fixed_bias: np.ndarray, system: RowSystem,
                      global_mean: float, fallback_mean: float) -> dict:
    """The block's share of implicit-feedback ALS's objective and RMSEs, summed as
    :meth:`alsmf.models.implicit_als.ImplicitALSState.evaluate` sums them over all rows:
    ``norms`` (Σ w ‖x‖², float64) and, for user blocks, ``used_error`` (Σ (1 − p·q)² over the
    used pairs), ``used_square`` (Σ (p·q)² over them), ``test_sse`` and ``test_count``. The
    term over every pair needs both sides' whole Gram matrices, which the client combines."""
    weight = np.diff(ratings.indptr) if system.weighted_reg else np.ones(ratings.n_rows)
    result = {"norms": float(np.dot(weight, np.einsum("ij,ij->i", out, out,
                                                      dtype=np.float64)))}
    if ratings.side == "user":
        nnz = len(ratings.indices)
        for name, target in (("used_error", 1.0), ("used_square", 0.0)):
            result[name] = float(np.sum(row_squared_errors(
                ratings.indptr, ratings.indices, np.full(nnz, target, dtype=np.float32),
                UNIT_WEIGHTS, out, fixed, out_bias, fixed_bias, 0.0)))
        scores = predict_pairs(ratings.test_rows, ratings.test_cols, out, fixed, out_bias,
                               fixed_bias, 0.0)
        scores[(ratings.test_rows < 0) | (ratings.test_cols < 0)] = fallback_mean
        result["test_sse"] = float(np.sum(np.square(1.0 - scores)))
        result["test_count"] = len(scores)
    return result


def factor_rows(block: FactorBlock, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` of a factor block: its part of a Gram slice that spans two blocks."""
    return block.factors[lo:hi].copy()


def block_slice_gram(block: FactorBlock, lo: int, hi: int) -> np.ndarray:
    """The float64 FᵀF of rows ``lo:hi`` of one block (a slice of :func:`gram64` that lies
    within the block), computed as gram64 computes each slice."""
    part = block.factors[lo:hi].astype(np.float64)
    return part.T @ part


def slice_gram(*pieces: np.ndarray) -> np.ndarray:
    """The float64 FᵀF of one slice of :func:`gram64` from its rows in consecutive blocks."""
    part = np.concatenate(pieces).astype(np.float64)
    return part.T @ part


def gram_total(k: int, *slices: np.ndarray) -> np.ndarray:
    """Σ of the slices' products in slice order: :func:`gram64`'s sum, bit for bit."""
    gram = np.zeros((k, k))
    for part in slices:
        gram += part
    return gram


@sizeof.register(Piece)
@sizeof.register(RatingBlock)
@sizeof.register(TestPairs)
@sizeof.register(FactorBlock)
def _sizeof_arrays(block: object) -> int:
    """The bytes of a block's arrays: Dask places tasks (and moves data) by these sizes.

    Without it Dask counts a dataclass as ~56 bytes and may move a whole rating block to its
    messages. Registered on import, which every worker does before running any of these tasks
    (unpickling a task's function imports its package, whose ``__init__`` imports this).
    """
    return sum(sizeof(value) for value in vars(block).values())


def seen(ratings: RatingBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A user block's training ratings with global item indices: (counts, items, values)."""
    return (np.diff(ratings.indptr), ratings.columns[ratings.indices].astype(np.int32),
            ratings.values)


def plan_sizes(ratings: RatingBlock) -> np.ndarray:
    """Rows this block receives from each source block (the routing plan's sizes)."""
    return np.diff(ratings.source_bounds)


def _worker_threads() -> int:
    """The Dask worker's thread count (the kernel's share of cores), or numba's default."""
    from distributed import get_worker

    try:
        threads = get_worker().state.nthreads
    except ValueError:  # not inside a worker: run with numba's setting
        return numba.get_num_threads()
    return max(1, min(threads, numba.config.NUMBA_NUM_THREADS))


def _relax_malloc() -> None:
    """Let glibc serve the kernels' per-row scratch blocks from the heap (once per process).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which pins glibc's mmap
    threshold at 128 KiB, so every larger scratch block becomes an mmap and munmap with fresh
    page faults, and a half-step runs several times slower.
    :func:`alsmf.distributed.local_cluster` starts workers without it; this covers workers
    started by ``dask worker`` or other deployments.
    """
    global _malloc_relaxed
    if _malloc_relaxed or "MALLOC_TRIM_THRESHOLD_" not in os.environ or sys.platform != "linux":
        return
    _malloc_relaxed = True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): nothing to undo
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's own upper limit for the threshold
