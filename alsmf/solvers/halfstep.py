"""One ALS half-step as a model's settings describe it: the entry point to the row kernels.

The in-process trainer, fold-in and the Dask workers all solve "every row of this CSR block
against those fixed factors" with the same settings; :class:`HalfStep` turns the settings (an
``ALS`` config's or a saved model's ``params``) into the right kernel call, so none of them
repeats the argument plumbing and a new option (a solver, a regulariser) is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from alsmf.errors import NumericalError
from alsmf.solvers.als import als_half_step
from alsmf.solvers.cg import cg_half_step
from alsmf.solvers.gram import gather_source

WARMUP_REG_SHARE = 0.5
"""Share of the factors' λ that the warm-up iterations of training use (``ALS.reg_warmup``)."""


@dataclass(frozen=True)
class HalfStep:
    """The settings a half-step needs.

    Attributes:
        solver: ``"cg"`` (warm-started conjugate gradient, float32) or ``"cholesky"`` (exact).
        cg_steps: CG steps per row (ignored by ``"cholesky"``).
        reg: λ, the L2 weight on each row's factors.
        reg_bias: the L2 weight on each row's bias.
        weighted_reg: scale both weights by the row's rating count (ALS-WR).
        biases: solve for the row's bias together with its factors.
    """

    solver: str
    cg_steps: int
    reg: float
    reg_bias: float
    weighted_reg: bool
    biases: bool

    @classmethod
    def for_iteration(cls, params: dict[str, Any], iteration: int) -> HalfStep:
        """The half-step of training iteration ``iteration`` (counted from 1): that of
        :meth:`from_params`, with the factors' λ times :data:`WARMUP_REG_SHARE` in the first
        ``params["reg_warmup"]`` iterations (``ALS.reg_warmup`` says why)."""
        settings = cls.from_params(params)
        if iteration <= int(params.get("reg_warmup", 0)):
            return replace(settings, reg=settings.reg * WARMUP_REG_SHARE)
        return settings

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> HalfStep:
        """The half-step of a model trained with ``params`` (an ``ALS.params()`` dict)."""
        reg = float(params["reg"])
        reg_bias = params.get("reg_bias")
        return cls(solver=params.get("solver", "cholesky"),
                   cg_steps=int(params.get("cg_steps", 3)), reg=reg,
                   reg_bias=reg if reg_bias is None else float(reg_bias),
                   weighted_reg=bool(params["weighted_reg"]),
                   biases=bool(params.get("biases", True)))

    def exact(self) -> HalfStep:
        """The same settings with the exact Cholesky solver (fold-in, explanations)."""
        return replace(self, solver="cholesky")

    def run(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
            fixed_factors: np.ndarray, fixed_bias: np.ndarray, global_mean: float,
            out_factors: np.ndarray, out_bias: np.ndarray, *,
            extra_gram: np.ndarray | None = None,
            extra_rhs: np.ndarray | None = None) -> np.ndarray:
        """Solve every row of the CSR block (indptr, indices, values) against the fixed side.

        ``indices`` index rows of ``fixed_factors``/``fixed_bias``. ``out_factors`` and
        ``out_bias`` (one row per CSR row) hold the warm start for CG and receive the result,
        in place. A row without ratings gets zeros. ``extra_gram`` ((k+1) x (k+1), its last
        row and column zero) and ``extra_rhs`` ((rows, k+1)) add the implicit-feature terms
        to every row's system (:mod:`alsmf.models.implicit_features`).

        Returns:
            Per row, 0 or the failing Cholesky pivot (that row's system is not positive
            definite and its outputs are unchanged); the CG solver never fails a pivot, so its
            callers check the outputs for non-finite values instead.
        """
        k = fixed_factors.shape[1]
        d = k + 1 if self.biases or self.solver == "cg" else k
        if extra_gram is None:
            extra_gram, extra_rhs = np.zeros((0, 0)), np.zeros((0, d))
        else:
            extra_gram = np.ascontiguousarray(extra_gram[:d, :d])
            extra_rhs = np.ascontiguousarray(extra_rhs[:, :d])
        status = np.zeros(len(indptr) - 1, dtype=np.int64)
        if self.solver == "cg":
            cg_half_step(indptr, indices, values, fixed_factors, fixed_bias, global_mean,
                         self.biases, self.reg, self.reg_bias, self.weighted_reg, self.cg_steps,
                         extra_gram, extra_rhs, out_factors, out_bias)
            return status
        prior = np.diag(np.r_[np.full(k, self.reg), [self.reg_bias]][:d])
        als_half_step(indptr, indices, values, gather_source(fixed_factors),
                      fixed_bias, global_mean, self.biases, prior, self.weighted_reg, extra_gram,
                      extra_rhs, out_factors, out_bias, status)
        return status


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
