"""Numeric kernels only: arrays in, arrays out; no I/O and no model objects.

- :mod:`alsmf.solvers.cholesky`: the per-row regularised solve shared by every trainer.
- :mod:`alsmf.solvers.gram`: one row's normal equations (Gram matrix and right-hand side).
- :mod:`alsmf.solvers.als`: the parallel ALS half-step (normal equations with the bias column).
- :mod:`alsmf.solvers.cg`: the fast half-step, warm-started conjugate gradient per row (float32).
- :mod:`alsmf.solvers.predict`: scoring index pairs and summing squared errors.
- :mod:`alsmf.solvers.gibbs`: the Gibbs sweep of Bayesian MF (a draw from each row's
  conditional, on the same Gram and Cholesky kernels).
"""

from alsmf.solvers.als import als_half_step
from alsmf.solvers.cg import cg_half_step, conjugate_gradient_row
from alsmf.solvers.cholesky import solve_row
from alsmf.solvers.predict import predict_pairs, squared_error

__all__ = ["als_half_step", "cg_half_step", "conjugate_gradient_row", "predict_pairs",
           "solve_row", "squared_error"]
