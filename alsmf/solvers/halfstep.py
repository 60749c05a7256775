"""One half-step as a model's row system describes it: the entry point to the row kernels.

The in-process trainer, fold-in and the Dask workers all solve "every row of this CSR block
against those fixed factors" for one :class:`~alsmf.rowsystem.RowSystem`; :class:`HalfStep`
turns the system and a solver name into the kernel call, so none of them repeats the argument
plumbing. The solvers are a registry (:data:`ROW_SOLVERS`), as Spark MLlib's ALS takes a
least-squares solver object: a new solver is one function and one entry there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from alsmf.errors import NumericalError
from alsmf.rowsystem import RowSystem
from alsmf.solvers.als import als_half_step
from alsmf.solvers.cg import cg_half_step
from alsmf.solvers.gather import UNIT_WEIGHTS
from alsmf.solvers.gram import gather_source



@dataclass(frozen=True)
class HalfStep:
    """A row system and how to solve it.

    Attributes:
        system: the regularised least-squares system of every row.
        solver: a name in :data:`ROW_SOLVERS`: ``"cg"`` (warm-started conjugate gradient,
            float32) or ``"cholesky"`` (exact).
        cg_steps: CG steps per row (ignored by ``"cholesky"``).
    """

    system: RowSystem
    solver: str = "cholesky"
    cg_steps: int = 3

    @property
    def reg(self) -> float:
        """λ of the row factors (quoted by error messages)."""
        return self.system.reg

    def exact(self) -> HalfStep:
        """The same system with the exact Cholesky solver (fold-in, explanations)."""
        return replace(self, solver="cholesky")

    def run(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
            fixed_factors: np.ndarray, fixed_bias: np.ndarray, global_mean: float,
            out_factors: np.ndarray, out_bias: np.ndarray, *,
            extra_gram: np.ndarray | None = None,
            extra_rhs: np.ndarray | None = None,
            weights: np.ndarray | None = None) -> np.ndarray:
        """Solve every row of the CSR block (indptr, indices, values) against the fixed side.

        ``indices`` index rows of ``fixed_factors``/``fixed_bias``. ``out_factors`` and
        ``out_bias`` (one row per CSR row) hold the warm start for CG and receive the result,
        in place. A row without ratings gets zeros. ``extra_gram`` ((k+1) x (k+1), its last
        row and column zero) and ``extra_rhs`` ((rows, k+1)) add the implicit-feature terms
        to every row's system (:mod:`alsmf.models.implicit_features`). ``weights``, aligned
        with ``values`` (each > 0), weighs each rating's squared error, as
        :meth:`RowSystem.weights <alsmf.rowsystem.RowSystem.weights>` gives them; None (unit
        weights) runs the kernels exactly as without the argument. The CG solver takes
        weights only for a system without biases.

        Returns:
            Per row, 0 or the failing Cholesky pivot (that row's system is not positive
            definite and its outputs are unchanged); the CG solver never fails a pivot, so its
            callers check the outputs for non-finite values instead.
        """
        k = fixed_factors.shape[1]
        d = k + 1 if self.system.biases or self.solver == "cg" else k
        if extra_gram is None:
            extra_gram, extra_rhs = np.zeros((0, 0)), np.zeros((0, d))
        else:
            extra_gram = np.ascontiguousarray(extra_gram[:d, :d])
            extra_rhs = np.ascontiguousarray(extra_rhs[:, :d])
        if weights is None:
            weights = UNIT_WEIGHTS
        elif len(weights) != len(values):
            raise ValueError(f"{len(weights)} weights for {len(values)} ratings")
        else:
            weights = np.ascontiguousarray(weights)
        status = np.zeros(len(indptr) - 1, dtype=np.int64)
        ROW_SOLVERS[self.solver](self, _Block(indptr, indices, values, weights, fixed_factors,
                                              fixed_bias, global_mean),
                                 extra_gram, extra_rhs, out_factors, out_bias, status)
        return status



@dataclass(frozen=True)
class _Block:
    """The rows a half-step solves and the fixed side they are solved against (``weights``
    empty: every rating weighs 1)."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    fixed_factors: np.ndarray
    fixed_bias: np.ndarray
    global_mean: float


RowSolver = Callable[[HalfStep, _Block, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                      np.ndarray], None]
"""Solves every row of a block in place: (step, block, extra_gram, extra_rhs, out_factors,
out_bias, status); writes a failing pivot into ``status`` where it has one."""


def _conjugate_gradient(step: HalfStep, block: _Block, extra_gram: np.ndarray,
                        extra_rhs: np.ndarray, out_factors: np.ndarray, out_bias: np.ndarray,
                        status: np.ndarray) -> None:
    system = step.system
    if len(block.weights) and system.biases:
        raise ValueError("the CG solver weighs ratings only in a system without biases")
    cg_half_step(block.indptr, block.indices, block.values, block.weights, block.fixed_factors,
                 block.fixed_bias, block.global_mean, system.biases, system.reg,
                 system.reg_bias, system.weighted_reg, step.cg_steps, extra_gram, extra_rhs,
                 out_factors, out_bias)


def _cholesky(step: HalfStep, block: _Block, extra_gram: np.ndarray, extra_rhs: np.ndarray,
              out_factors: np.ndarray, out_bias: np.ndarray, status: np.ndarray) -> None:
    system = step.system
    k = block.fixed_factors.shape[1]
    d = k + 1 if system.biases else k
    prior = np.diag(np.r_[np.full(k, system.reg), [system.reg_bias]][:d])
    als_half_step(block.indptr, block.indices, block.values, block.weights,
                  gather_source(block.fixed_factors), block.fixed_bias, block.global_mean,
                  system.biases, prior, system.weighted_reg, extra_gram, extra_rhs, out_factors,
                  out_bias, status)


ROW_SOLVERS: dict[str, RowSolver] = {"cg": _conjugate_gradient, "cholesky": _cholesky}
"""The per-row solvers of a half-step, by the name a model's settings give."""


def check_solved(status: np.ndarray, out_factors: np.ndarray, out_bias: np.ndarray,
                 indptr: np.ndarray, ids: np.ndarray, side: str, where: str, reg: float) -> None:
    """Raise :class:`NumericalError` naming the first row a half-step failed to solve.

    A row fails when its Cholesky pivot was not positive (``status``) or its new factors are
    not finite; stopping here keeps a NaN from spreading through the next half-step.

    Args:
        status: per-row result of :meth:`HalfStep.run`.
        out_factors, out_bias: the rows just solved.
        indptr: the block's CSR row pointers (for the row's rating count).
        ids: raw id of each row, for the message.
        side: ``"user"`` or ``"item"``.
        where: what the message starts with, for example ``"iteration 3"``.
        reg: λ, quoted in the message.
    """
    failed = np.flatnonzero(status)
    if len(failed):
        row = int(failed[0])
        count = indptr[row + 1] - indptr[row]
        raise NumericalError(
            f"{where}: the normal equations of {side} {ids[row]} ({count} ratings) are not "
            f"positive definite (pivot {status[row]}) with reg={reg}; {len(failed)} {side}s "
            "failed. Use reg > 0."
        )
    bad = ~(np.isfinite(out_factors).all(axis=1) & np.isfinite(out_bias))
    if bad.any():
        rows = np.flatnonzero(bad)
        row = int(rows[0])
        count = indptr[row + 1] - indptr[row]
        raise NumericalError(f"{where}: the factors of {side} {ids[row]} ({count} ratings) "
                             f"became non-finite; {len(rows)} {side}s are affected. Check the "
                             "ratings' scale or raise reg")
