"""Rating blocks and their routing plan: the data layout of blocked ALS (no Dask in here).

Users and items are cut into contiguous index ranges (blocks) holding about equal numbers of
ratings. Every rating is stored twice: in the *user block* of its user (rows = the block's
users) and in the *item block* of its item (rows = the block's items), as Spark MLlib's blocked
ALS does. A block's columns are renumbered to a compact, sorted list of the other side's rows
it needs (``columns``). Because the other side's blocks are contiguous ranges, the part of that
list that lies in source block ``s`` is one slice (``source_bounds``), and those are exactly the
factor rows that ``s`` must send to this block in a half-step: the routing plan
(:func:`route`). Concatenating the received messages in source order rebuilds the block's
fixed factors in ``columns`` order.

Renumbering preserves the order of every row's ratings (columns stay ascending), so each row's
arithmetic in the kernel is the in-process trainer's, and the solved factors are bit-identical
to it for any number of blocks or workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alsmf.data.csr import build_csr
from alsmf.errors import DataError

SIDES = ("user", "item")


def balanced_bounds(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """Cut rows 0..len(counts) into at most ``n_blocks`` contiguous ranges of equal ratings.

    Returns the ``B + 1`` boundaries (int64, first 0, last ``len(counts)``); empty ranges are
    dropped, so B is smaller than ``n_blocks`` when there are fewer rows than blocks.
    """
    cumulative = np.cumsum(counts, dtype=np.int64)
    total = int(cumulative[-1]) if len(cumulative) else 0
    targets = total * np.arange(1, n_blocks, dtype=np.float64) / n_blocks
    cuts = np.searchsorted(cumulative, targets, side="left") + 1
    return np.unique(np.concatenate([[0], np.minimum(cuts, len(counts)), [len(counts)]])
                     ).astype(np.int64)


def block_of(index: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The block number of each row index (all in ``[0, bounds[-1])``)."""
    return np.searchsorted(bounds, index, side="right") - 1


@dataclass(frozen=True)
class Piece:
    """The ratings of one input partition that fall in one block (global indices)."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray


def split_partition(users: np.ndarray, items: np.ndarray, values: np.ndarray,
                    user_bounds: np.ndarray, item_bounds: np.ndarray
                    ) -> dict[tuple[str, int], Piece]:
    """Cut one partition's ratings by user block (rows: users) and by item block (rows: items).

    Every (side, block) gets a piece, possibly empty, so the block builders' inputs are fixed.
    """
    pieces = {}
    for side, rows, cols, bounds in (("user", users, items, user_bounds),
                                     ("item", items, users, item_bounds)):
        block = block_of(rows, bounds)
        order = np.argsort(block, kind="stable")
        starts = np.searchsorted(block[order], np.arange(len(bounds)))
        for b in range(len(bounds) - 1):
            take = order[starts[b]:starts[b + 1]]
            pieces[side, b] = Piece(rows[take], cols[take], values[take])
    return pieces


@dataclass(frozen=True)
class TestPairs:
    """Held-out pairs scored by one user block (its users, or unknown users for block 0).

    ``users`` are global user indices or -1 (unknown), ``items`` global item indices or -1.
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class RatingBlock:
    """One block of rows of one side with all their ratings, columns renumbered.

    Attributes:
        side: ``"user"`` (rows are users, columns items) or ``"item"``.
        start: global index of the block's first row.
        ids: raw id of each row (for error messages).
        indptr, indices, values: the block's CSR; ``indices`` index ``columns``.
        columns: sorted global indices of the other side's rows this block needs.
        source_bounds: ``columns[source_bounds[s]:source_bounds[s + 1]]`` lie in the other
            side's block ``s``.
        test_rows, test_cols, test_values: held-out pairs scored here (user blocks only):
            local row or -1, position in ``columns`` or -1, rating.
    """

    side: str
    start: int
    ids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    columns: np.ndarray
    source_bounds: np.ndarray
    test_rows: np.ndarray
    test_cols: np.ndarray
    test_values: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)


def build_block(side: str, bounds: np.ndarray, block: int, ids: np.ndarray,
                other_bounds: np.ndarray, pieces: list[Piece],
                test: TestPairs | None = None) -> RatingBlock:
    """Assemble block ``block`` of ``side`` from its pieces of every input partition.

    Args:
        bounds: this side's block boundaries; ``ids`` are the raw ids of this block's rows.
        other_bounds: the other side's block boundaries (for ``source_bounds``).
        pieces: the block's ratings from each partition (global indices).
        test: held-out pairs to score in this (user) block.

    Raises:
        DataError: the same (user, item) pair is rated twice.
    """
    start, stop = int(bounds[block]), int(bounds[block + 1])
    rows = np.concatenate([p.rows for p in pieces]).astype(np.int64) - start
    cols = np.concatenate([p.cols for p in pieces]).astype(np.int64)
    values = np.concatenate([p.values for p in pieces]).astype(np.float32, copy=False)
    n_other = int(other_bounds[-1])
    present = np.zeros(n_other, dtype=bool)
    present[cols] = True
    if test is not None:
        present[test.items[test.items >= 0]] = True
    columns = np.flatnonzero(present)
    compact = (np.cumsum(present, dtype=np.int64) - 1).astype(np.int32)
    matrix, repeated = build_csr(rows, compact[cols], values, (stop - start, len(columns)))
    if repeated:
        row = _first_repeated_row(matrix.indptr, matrix.indices)
        other = "item" if side == "user" else "user"
        raise DataError(f"the same (user, item) pair is rated twice ({side} {ids[row]} has two "
                        f"ratings of one {other}; {repeated} repeated pairs in this block); "
                        "remove repeated pairs before training")
    if test is None:
        test = TestPairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    test_rows = np.where(test.users >= 0, test.users - start, -1).astype(np.int32)
    test_cols = np.where(test.items >= 0, compact[np.maximum(test.items, 0)], -1).astype(np.int32)
    return RatingBlock(
        side=side, start=start, ids=ids, indptr=matrix.indptr.astype(np.int64),
        indices=matrix.indices, values=matrix.data, columns=columns,
        source_bounds=np.searchsorted(columns, other_bounds).astype(np.int64),
        test_rows=test_rows, test_cols=test_cols, test_values=np.asarray(test.values),
    )


def _first_repeated_row(indptr: np.ndarray, indices: np.ndarray) -> int:
    """The first row of a CSR (columns ascending) with a column twice."""
    same = np.flatnonzero(indices[1:] == indices[:-1]) + 1  # entry equal to the one before
    rows = np.searchsorted(indptr, same, side="right") - 1
    return int(rows[indptr[rows] < same][0])  # ...and not the first entry of its row


def route(block: RatingBlock, source: int, source_start: int) -> np.ndarray:
    """The plan of one message: rows (local to source block ``source``) that ``block`` needs."""
    lo, hi = block.source_bounds[source], block.source_bounds[source + 1]
    return (block.columns[lo:hi] - source_start).astype(np.int32)


def pack(factors: np.ndarray, bias: np.ndarray, rows: np.ndarray,
         implicit: np.ndarray | None = None) -> np.ndarray:
    """One message: the planned rows' factors with their bias as a next column, then (with
    implicit features) the same rows' implicit factors."""
    k = factors.shape[1]
    width = k + 1 + (0 if implicit is None else implicit.shape[1])
    message = np.empty((len(rows), width), dtype=factors.dtype)
    message[:, :k] = factors[rows]
    message[:, k] = bias[rows]
    if implicit is not None:
        message[:, k + 1:] = implicit[rows]
    return message


def unpack(messages: list[np.ndarray], k: int, dtype: np.dtype, implicit: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The fixed factors, bias and (``implicit``: from the columns after the bias) implicit
    factors of a block, rows in ``columns`` order, from its messages."""
    n = sum(len(m) for m in messages)
    fixed, bias = np.empty((n, k), dtype=dtype), np.empty(n, dtype=dtype)
    rows = np.empty((n, k), dtype=dtype) if implicit else None
    lo = 0
    for message in messages:  # each row copied once, straight into place
        fixed[lo:lo + len(message)] = message[:, :k]
        bias[lo:lo + len(message)] = message[:, k]
        if rows is not None:
            rows[lo:lo + len(message)] = message[:, k + 1:]
        lo += len(message)
    return fixed, bias, rows


def gram_slices(bounds: np.ndarray, slice_rows: int) -> list[list[tuple[int, int, int]]]:
    """How the rows ``0:bounds[-1]``, cut into blocks at ``bounds``, fall into consecutive
    slices of ``slice_rows`` rows: per slice, its ``(block, lo, hi)`` parts (rows local to
    the block), in row order. A Gram matrix summed slice by slice in this order is
    :func:`alsmf.models.implicit_features.gram64`'s, bit for bit, whatever the blocks."""
    bounds = [int(b) for b in bounds]
    plan = []
    for lo in range(0, bounds[-1], slice_rows):
        hi = min(lo + slice_rows, bounds[-1])
        first = int(np.searchsorted(bounds, lo, side="right")) - 1
        last = int(np.searchsorted(bounds, hi, side="left")) - 1
        plan.append([(b, max(lo, bounds[b]) - bounds[b], min(hi, bounds[b + 1]) - bounds[b])
                     for b in range(first, last + 1)])
    return plan


@dataclass
class SliceGroup:
    """Consecutive slices of :func:`gram_slices`' plan that one task reduces: the run of
    slices inside one block (``block`` set; ``cuts`` their ``(block, lo, hi)``, in order), or
    one slice across blocks (``block`` None; ``cuts`` its parts). ``first`` numbers the
    group's first slice."""

    first: int
    block: int | None
    cuts: list[tuple[int, int, int]]


def group_slices(bounds: np.ndarray, slice_rows: int) -> list[SliceGroup]:
    """:func:`gram_slices` with each block's inner slices grouped, in slice order: a sum over
    the slices reduced group by group (a block's run next to the block, a slice across
    blocks from its gathered rows) keeps the slice order, and so the whole matrix's sum."""
    groups: list[SliceGroup] = []
    for n, cut in enumerate(gram_slices(bounds, slice_rows)):
        inside = cut[0][0] if len(cut) == 1 else None
        if inside is not None and groups and groups[-1].block == inside:
            groups[-1].cuts.append(cut[0])
        else:
            groups.append(SliceGroup(n, inside, list(cut)))
    return groups


def message_bytes(rows: int, k: int, itemsize: int, implicit: bool = False) -> int:
    """Payload of a message of ``rows`` factor rows (k factors and a bias each, and k
    implicit factors with ``implicit``)."""
    return rows * (k + 1 + (k if implicit else 0)) * itemsize


def initial_normal_rows(seed: int | list[int], init_scale: float, k: int, dtype: np.dtype,
                        start: int, stop: int, skip_rows: int = 0,
                        chunk_rows: int = 16384) -> np.ndarray:
    """Rows ``start:stop`` of ``init_scale * standard_normal((n, k))`` drawn from
    ``default_rng(seed)`` after ``skip_rows`` rows of the same stream: the in-process
    trainers' initial factors (ALS: the users' rows; the sampler: the users' rows, then the
    items', after all the users').

    Normal draws take a variable number of random bits, so a row cannot be reached without
    drawing the rows before it: the stream is drawn in chunks up to ``skip_rows + stop`` (the
    same numbers as one call) and the block's rows kept; memory stays one chunk.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((stop - start, k), dtype=dtype)
    start, stop = start + skip_rows, stop + skip_rows
    for lo in range(0, stop, chunk_rows):
        hi = min(lo + chunk_rows, stop)
        chunk = init_scale * rng.standard_normal((hi - lo, k), dtype=dtype)
        keep_lo, keep_hi = max(lo, start), hi
        if keep_hi > keep_lo:
            out[keep_lo - start:keep_hi - start] = chunk[keep_lo - lo:keep_hi - lo]
    return out
