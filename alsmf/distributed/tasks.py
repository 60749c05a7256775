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
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numba
import numpy as np
from dask.sizeof import sizeof

from alsmf.distributed.blocks import (Piece, RatingBlock, TestPairs, initial_normal_rows, pack,
                                      unpack)
from alsmf.models.implicit_features import (implicit_loss, implicit_rows, implicit_solve_matrix,
                                            row_terms)
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
        factors = initial_normal_rows(params["seed"], params["init_scale"], k, dtype,
                                      start, stop)
    else:
        factors = np.zeros((stop - start, k), dtype=dtype)
    return FactorBlock(factors, np.zeros(stop - start, dtype=dtype))


def send(block: FactorBlock, rows: np.ndarray, implicit: np.ndarray | None = None
         ) -> np.ndarray:
    """The message of a routing-plan entry: the planned rows of ``block``, bias attached,
    and their implicit factors (rows of ``implicit``, the block's) when given."""
    return pack(block.factors, block.bias, rows, implicit)


Bundle = dict[tuple[int, int], np.ndarray]
"""The messages one worker's source blocks send to one worker's destination blocks, by
(destination block, source block)."""


def bundle(plan: tuple[tuple[int, int, int], ...], *inputs: object) -> Bundle:
    """The messages of ``plan`` in one task: entry ``(j, s, n)`` is destination block ``j``'s
    message from source block ``s``, whose factor block is ``inputs[n]``, whose implicit
    factors (or None) ``inputs[n + 1]``, and whose route ``inputs[n + 2]``.

    One task per pair of workers rather than per pair of blocks: the scheduler's work per
    half-step then grows with the number of workers squared plus the blocks, not the blocks
    squared."""
    return {(j, s): send(inputs[n], inputs[n + 2], inputs[n + 1]) for j, s, n in plan}


def messages_for(block: int, bundles: tuple[Bundle, ...]) -> list[np.ndarray]:
    """Destination ``block``'s messages from ``bundles``, in source-block order (the order
    :func:`unpack` rebuilds the block's fixed rows in)."""
    mine = {s: message for parts in bundles for (j, s), message in parts.items() if j == block}
    return [mine[s] for s in sorted(mine)]


def zero_rows(n_rows: int, k: int, dtype: str) -> np.ndarray:
    """A block's implicit factors before their first solve (zeros, as in-process)."""
    return np.zeros((n_rows, k), dtype=dtype)


def restored(value: object) -> object:
    """A block's arrays handed in with the task (from a checkpoint): the root of a lineage
    that never reaches back before that checkpoint."""
    return value


def implicit_block(ratings: RatingBlock, solve_matrix: np.ndarray, k: int, dtype: str,
                   block: int, *bundles: Bundle) -> np.ndarray:
    """The implicit factors (``dtype``) of ``ratings``' rows (block ``block`` of its side)
    from the fixed rows of its messages in ``bundles`` (their first ``k`` columns) and
    :func:`implicit_solve_matrix` of the whole fixed side: the in-process
    :func:`solve_implicit_factors`'s rows, bit for bit."""
    fixed = unpack(messages_for(block, bundles), k, np.dtype(dtype))[0]
    return implicit_rows(ratings.indptr, ratings.indices, fixed, solve_matrix)


def figures(block: FactorBlock) -> dict:
    """The block's figures alone (what the client gathers each iteration)."""
    return block.figures


def solve(ratings: RatingBlock, previous: FactorBlock, step: HalfStep, system: RowSystem,
          global_mean: float, fallback_mean: float, iteration: int, block: int,
          *bundles: Bundle, shared_gram: np.ndarray | None = None,
          implicit_gram: np.ndarray | None = None, scored: bool = True) -> FactorBlock:
    """Solve one block's rows (block ``block`` of its side) by ``step`` against the fixed
    rows of its messages in ``bundles``.

    ``previous`` is the warm start (copied, never changed). Rows are solved by the in-process
    kernel (:class:`HalfStep`) and checked with :func:`check_solved`, so a failure names the
    row and iteration as in-process training does. ``system`` is the model's row system at
    its full λ, which the objective's penalty is measured with.

    Implicit feedback (a system with a ``target``): every used pair is fitted to that target,
    whatever its value, and ``shared_gram`` (FᵀF of the whole fixed side, :func:`gram_total`)
    times the system's ``gram_weight`` is added to every row's Gram matrix, as
    :meth:`ImplicitALSState.half_step <alsmf.models.implicit_als.ImplicitALSState.half_step>`
    adds it in-process. Implicit features (``implicit_gram``, CᵀC of the fixed side's whole
    implicit factors C, whose rows this block uses ride in the messages after the bias):
    :func:`row_terms` of those rows, as :meth:`ALSState.half_step
    <alsmf.models.als.ALSState.half_step>` adds them. ``scored=False`` (a ranking head,
    never scored) skips the figures.
    """
    k = previous.factors.shape[1]
    messages = messages_for(block, bundles)
    fixed, fixed_bias, fixed_implicit = unpack(messages, k, previous.factors.dtype,
                                               implicit=implicit_gram is not None)
    out = previous.factors.copy()
    out_bias = previous.bias.copy()
    values, extra = ratings.values, {}
    if step.system.target is not None:
        values = np.full(len(ratings.values), step.system.target, dtype=np.float32)
        gram = np.zeros((k + 1, k + 1))
        gram[:k, :k] = step.system.gram_weight * shared_gram
        extra = {"extra_gram": gram,
                 "extra_rhs": np.zeros((ratings.n_rows, k + 1), previous.factors.dtype)}
    elif fixed_implicit is not None:
        gram, rhs = row_terms(ratings.indptr, ratings.indices, fixed_implicit,
                              system.implicit_weight, columns_gram=implicit_gram)
        extra = {"extra_gram": gram, "extra_rhs": rhs}
    with worker_kernel():
        status = step.run(ratings.indptr, ratings.indices, values, fixed,
                          fixed_bias, global_mean, out, out_bias, **extra)
        check_solved(status, out, out_bias, ratings.indptr, ratings.ids, ratings.side,
                     f"iteration {iteration}", step.reg)
        figures = {}
        if scored and system.target is not None:
            figures = _implicit_figures(ratings, out, out_bias, fixed, fixed_bias,
                                        system, fallback_mean)
        elif scored:
            figures = _figures(ratings, out, out_bias, fixed, fixed_bias, system,
                               global_mean, fallback_mean)
            if fixed_implicit is not None:  # this block's part of the implicit loss
                figures["implicit"] = implicit_loss(
                    ratings.indptr, ratings.indices, out, fixed_implicit,
                    system.implicit_weight, 0.0, sums=(extra["extra_rhs"],
                                                       system.implicit_weight),
                    columns_gram=implicit_gram)
    return FactorBlock(out, out_bias, figures)


@contextmanager
def worker_kernel() -> Iterator[None]:
    """Run a parallel kernel on this worker: one at a time per process (a kernel already
    uses the worker's threads), with numba set to the worker's thread count."""
    with _KERNEL_LOCK:
        _relax_malloc()
        threads_before = numba.get_num_threads()
        numba.set_num_threads(_worker_threads())
        try:
            yield
        finally:
            numba.set_num_threads(threads_before)


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
                      fallback_mean: float) -> dict:
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


def factor_rows(block: FactorBlock | np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` of a block's factors (or implicit factors): its part of a Gram slice
    that spans two blocks."""
    return _factors(block)[lo:hi].copy()


def block_slice_grams(block: FactorBlock | np.ndarray, cuts: list[tuple[int, int]]
                      ) -> list[np.ndarray]:
    """The float64 FᵀF of each slice ``lo:hi`` of one block's factors or implicit factors
    (slices of :func:`gram64` that lie within the block), computed as gram64 computes each
    slice, in order."""
    products = []
    for lo, hi in cuts:
        part = _factors(block)[lo:hi].astype(np.float64)
        products.append(part.T @ part)
    return products


def _factors(block: FactorBlock | np.ndarray) -> np.ndarray:
    return block.factors if isinstance(block, FactorBlock) else block


def solve_matrix(gram: np.ndarray, weight: float, reg: float) -> np.ndarray:
    """:func:`implicit_solve_matrix` of a whole side's Gram matrix (one small task)."""
    return implicit_solve_matrix(gram, weight, reg)


def slice_gram(*pieces: np.ndarray) -> np.ndarray:
    """The float64 FᵀF of one slice of :func:`gram64` from its rows in consecutive blocks."""
    part = np.concatenate(pieces).astype(np.float64)
    return part.T @ part


def gram_total(k: int, *parts: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Σ of the slices' products in slice order (``parts``: a block's products, as
    :func:`block_slice_grams` lists them, or one slice's): :func:`gram64`'s sum, bit for
    bit."""
    gram = np.zeros((k, k))
    for part in parts:
        for product in (part if isinstance(part, list) else [part]):
            gram += product
    return gram


@sizeof.register(Piece)
@sizeof.register(RatingBlock)
@sizeof.register(TestPairs)
@sizeof.register(FactorBlock)
def sizeof_arrays(block: object) -> int:
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
