"""What the Dask workers run for the Gibbs sampler: initial draws, a side's statistics and
prior, a block's row draws, its scores and the noise precision α.

Each function is pure, as those of :mod:`alsmf.distributed.tasks` are, and computes what the
in-process sampler (:mod:`alsmf.models.gibbs_sampler`) computes for the same rows, in the same
order: the rows' statistics slice by slice (:data:`~alsmf.solvers.gibbs.STATISTICS_SLICE`
rows per slice, whatever the blocks), a row's draw from the random stream of its index in the
whole side, and α from the per-row squared errors summed as one array. So every draw, and
hence every factor, is the in-process one bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dask.sizeof import sizeof

from alsmf.distributed.blocks import RatingBlock, initial_normal_rows, unpack
from alsmf.distributed.tasks import FactorBlock, messages_for, sizeof_arrays, worker_kernel
from alsmf.models.gibbs_sampler import (check_drawn, draw_alpha, draw_prior, side_code,
                                        sweep_rng)
from alsmf.models.implicit_features import row_terms
from alsmf.ranking import clip_to_scale
from alsmf.solvers.gather import UNIT_WEIGHTS
from alsmf.solvers.gibbs import (add_in_order, gibbs_half_step, slice_scatters, slice_sums,
                                 symmetric_from_lower)
from alsmf.solvers.gram import gather_source
from alsmf.solvers.predict import predict_pairs, row_squared_errors


@dataclass(frozen=True)
class KeptDraws:
    """Kept draws of one block's rows, side by side: ``factors`` (rows x m·k), ``bias``
    (rows x m) and, with implicit features, the implicit factors (rows x m·k)."""

    factors: np.ndarray
    bias: np.ndarray
    implicit: np.ndarray | None


@dataclass(frozen=True)
class DrawScores:
    """A user block's part of the current draw's scores: each row's squared training error,
    and the prediction of each of the block's test pairs."""

    row_errors: np.ndarray
    test_predictions: np.ndarray


sizeof.register(KeptDraws)(sizeof_arrays)  # Dask places tasks by the arrays' bytes
sizeof.register(DrawScores)(sizeof_arrays)


def initial_draw(side: str, start: int, stop: int, seed: int, init_scale: float, k: int,
                 n_users: int) -> FactorBlock:
    """Rows ``start:stop`` of the sampler's starting draw: normal factors from the stream
    ``default_rng([seed, 0])`` (the users' rows, then the items'), zero biases."""
    skip = 0 if side == "user" else n_users
    factors = initial_normal_rows([seed, 0], init_scale, k, np.float64, start, stop,
                                  skip_rows=skip)
    return FactorBlock(factors, np.zeros(stop - start))


def draw_rows(block: FactorBlock, lo: int, hi: int) -> FactorBlock:
    """Rows ``lo:hi`` of a block's draw: its part of a slice that spans two blocks."""
    return FactorBlock(block.factors[lo:hi].copy(), block.bias[lo:hi].copy())


def joined_rows(*pieces: FactorBlock) -> FactorBlock:
    """One slice's rows from its parts in consecutive blocks."""
    return FactorBlock(np.concatenate([p.factors for p in pieces]),
                       np.concatenate([p.bias for p in pieces]))


def rows_sums(block: FactorBlock, lo: int, hi: int) -> np.ndarray:
    """The partial sums of the slices that rows ``lo:hi`` of ``block`` hold (``lo`` starts a
    slice of the side)."""
    with worker_kernel():
        return slice_sums(block.factors[lo:hi], block.bias[lo:hi])


def rows_scatters(block: FactorBlock, lo: int, hi: int, center: np.ndarray) -> np.ndarray:
    """The partial scatter matrices about ``center`` of the slices rows ``lo:hi`` hold."""
    with worker_kernel():
        return slice_scatters(block.factors[lo:hi], block.bias[lo:hi], center)


def side_mean(n: int, *partials: np.ndarray) -> np.ndarray:
    """The mean row [factors, bias] of a side from its slices' sums, in slice order."""
    return add_in_order(np.concatenate(partials)) / n


def side_prior(hyperprior: str, seed: int, sweep: int, stage: int, n: int, mean: np.ndarray,
               *partials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The side's (m, Λ) drawn in sweep ``sweep`` from its rows' statistics (the slices'
    scatter matrices in slice order), with the in-process sampler's generator."""
    scatter = symmetric_from_lower(add_in_order(np.concatenate(partials)))
    return draw_prior(hyperprior, sweep_rng(seed, sweep, stage), n, mean, scatter)


def draw_block(ratings: RatingBlock, previous: FactorBlock, prior: tuple[np.ndarray, np.ndarray],
               alpha: float, global_mean: float, seed: int, sweep: int, implicit_weight: float,
               block: int, *bundles: dict, implicit_gram: np.ndarray | None = None
               ) -> FactorBlock:
    """Draw every row of one block (block ``block`` of its side) from its conditional given
    the fixed rows of its messages in ``bundles``, the side's ``prior`` and α.

    With implicit features (``implicit_gram``: CᵀC of the fixed side's whole implicit factors,
    whose rows this block uses ride in the messages after the bias) the rows' extra terms are
    :func:`row_terms` of those rows with weight w/α, as in-process. A failed draw raises the
    in-process sampler's NumericalError, naming the row.
    """
    k = previous.factors.shape[1]
    fixed, fixed_bias, fixed_implicit = unpack(messages_for(block, bundles), k, np.float64,
                                               implicit=implicit_gram is not None)
    extra_gram, extra_rhs = np.zeros((0, 0)), np.zeros((0, k + 1))
    if fixed_implicit is not None:
        extra_gram, extra_rhs = row_terms(ratings.indptr, ratings.indices, fixed_implicit,
                                          implicit_weight / alpha, columns_gram=implicit_gram)
    out, out_bias = previous.factors.copy(), previous.bias.copy()
    status = np.zeros(ratings.n_rows, dtype=np.int64)
    side = side_code(ratings.side)
    with worker_kernel():
        gibbs_half_step(ratings.indptr, ratings.indices, ratings.values, gather_source(fixed),
                        fixed_bias, global_mean, prior[1], prior[0], alpha, seed, sweep, side,
                        ratings.start, extra_gram, extra_rhs, out, out_bias, status)
    check_drawn(status, out, out_bias, ratings.ids, side, sweep, alpha)
    return FactorBlock(out, out_bias)


def draw_scores(ratings: RatingBlock, draw: FactorBlock, global_mean: float, block: int,
                *bundles: dict) -> DrawScores:
    """A user block's row errors and test predictions for the current draw, the item
    factors (the sweep's last draw) from the messages in ``bundles``."""
    k = draw.factors.shape[1]
    fixed, fixed_bias, _ = unpack(messages_for(block, bundles), k, np.float64)
    with worker_kernel():
        errors = row_squared_errors(ratings.indptr, ratings.indices, ratings.values,
                                    UNIT_WEIGHTS, draw.factors, fixed, draw.bias, fixed_bias,
                                    global_mean)
        predictions = predict_pairs(ratings.test_rows, ratings.test_cols, draw.factors, fixed,
                                    draw.bias, fixed_bias, global_mean)
    return DrawScores(errors, predictions)


def sweep_alpha(seed: int, sweep: int, n_ratings: int, *scores: DrawScores
                ) -> tuple[float, float]:
    """(α, SSE) of sweep ``sweep``: the draw's squared error summed as the in-process sampler
    sums its per-row errors (one array, user blocks in order), α drawn from it."""
    sse = float(np.sum(np.concatenate([s.row_errors for s in scores])))
    return draw_alpha(sweep_rng(seed, sweep, 2), sse, n_ratings), sse


def zero_test_sum(ratings: RatingBlock) -> np.ndarray:
    """A user block's sum of kept test predictions before the first kept draw."""
    return np.zeros(len(ratings.test_values))


def add_test(total: np.ndarray, scores: DrawScores) -> np.ndarray:
    """The sum of kept test predictions after keeping the current draw."""
    return total + scores.test_predictions


def block_test_error(ratings: RatingBlock, scores: DrawScores, total: np.ndarray, n_kept: int,
               scale: tuple[float, float] | None) -> tuple[float, int]:
    """(Σ squared error, pairs) of the block's test pairs predicted by the mean of the kept
    draws (by the current draw before any is kept), clipped to the rating scale."""
    predicted = total / n_kept if n_kept else scores.test_predictions.copy()
    clip_to_scale(predicted, scale)
    return float(np.sum(np.square(ratings.test_values - predicted))), len(predicted)


def kept_draw(draw: FactorBlock, implicit: np.ndarray | None) -> KeptDraws:
    """The current draw of a block as one kept draw (the arrays are shared, not copied)."""
    return KeptDraws(draw.factors, draw.bias[:, None], implicit)
