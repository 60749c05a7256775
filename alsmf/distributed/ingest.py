"""Getting the ratings onto the workers as rating blocks, built by tasks.

Blocks are made by tasks (never ``client.scatter``) so that a block lost with its worker is
rebuilt from its lineage. The input is either a :class:`Ratings` (cut into chunks that travel
inside the task graph, since the client holds them anyway) or a folder of Parquet files with
columns user, item, rating, which the workers read through ``dask.dataframe``: then the ratings
never pass through the client, only the sorted id lists and per-id counts do (the model needs
the ids, and the counts decide the block boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.distributed.blocks import (SIDES, TestPairs, balanced_bounds, block_of, build_block,
                                      split_partition)
from alsmf.distributed.cluster import worker_addresses
from alsmf.errors import DataError
from alsmf.rowsystem import rating_scale
from alsmf.training.builder import rating_variance

CHUNK_RATINGS = 1 << 19
"""Ratings per graph chunk of an in-memory input (about 5 MB, under Dask's large-graph warning)."""

COLUMNS = ("user", "item", "rating")


@dataclass
class Dataset:
    """What the client knows of the training data, and the futures of its blocks.

    Attributes:
        user_ids, item_ids: sorted raw ids of the users and items with training ratings.
        bounds: per side, the block boundaries (index ranges).
        blocks: per side, the futures of the :class:`RatingBlock` s.
        homes: per side, the worker each block was first placed on.
        mean: mean training rating.
        n_ratings: number of training ratings.
        scale: (lowest, highest) training rating.
        variance: variance of the training ratings (the sampler's starting noise level), by
            :func:`~alsmf.training.builder.rating_variance` (for Parquet input from the
            partitions' sums: the in-process value for one partition, to rounding for more).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    bounds: dict[str, np.ndarray]
    blocks: dict[str, list[Any]]
    homes: dict[str, list[str]]
    mean: float
    n_ratings: int
    scale: tuple[float, float]
    variance: float


def load(client: Any, train: Ratings | str | Path, test: Ratings | None, n_blocks: int,
         run: str) -> Dataset:
    """Build the rating blocks of ``train`` on the workers (test pairs go with user blocks).

    ``run`` prefixes the keys of the tasks, so that runs sharing a cluster never mix.
    """
    if isinstance(train, Ratings):
        train = train.compact()
        if not len(train):
            raise DataError("no training ratings")
        user_counts, item_counts = train.user_counts(), train.item_counts()
        user_ids, item_ids = train.user_ids, train.item_ids
        mean = float(np.mean(train.values, dtype=np.float64))  # as the in-process trainer
        scale = rating_scale(train.values)
        variance = rating_variance(train.values)  # as the in-process sampler
        partitions = [
            client.submit(_chunk, train.users[lo:lo + CHUNK_RATINGS],
                          train.items[lo:lo + CHUNK_RATINGS],
                          train.values[lo:lo + CHUNK_RATINGS], key=f"{run}-chunk-{n}")
            for n, lo in enumerate(range(0, len(train), CHUNK_RATINGS))
        ]
    else:
        partitions, summary = _read_parquet(client, Path(train), run)
        user_ids, user_counts = summary["user_ids"], summary["user_counts"]
        item_ids, item_counts = summary["item_ids"], summary["item_counts"]
        mean = summary["sum"] / summary["count"]
        scale = (summary["low"], summary["high"])
        variance = summary["squares"] / summary["count"] - mean * mean  # rating_variance's
    bounds = {"user": balanced_bounds(user_counts, n_blocks),
              "item": balanced_bounds(item_counts, n_blocks)}
    splits = [client.submit(_split, part, bounds["user"], bounds["item"],
                            key=f"{run}-split-{n}")
              for n, part in enumerate(partitions)]
    tests = _test_pairs(test, user_ids, item_ids, bounds["user"])
    workers = worker_addresses(client)
    blocks: dict[str, list[Any]] = {}
    homes = {side: [workers[b % len(workers)] for b in range(len(bounds[side]) - 1)]
             for side in SIDES}
    for side, other in zip(SIDES, reversed(SIDES)):
        ids = user_ids if side == "user" else item_ids
        blocks[side] = []
        for b in range(len(bounds[side]) - 1):
            pieces = [client.submit(_piece, split, side, b, key=f"{run}-piece-{side}{b}-{n}")
                      for n, split in enumerate(splits)]
            blocks[side].append(client.submit(
                build_block, side, bounds[side], b, ids[bounds[side][b]:bounds[side][b + 1]],
                bounds[other], pieces, tests[b] if side == "user" else None,
                key=f"{run}-ratings-{side}{b}", workers=[homes[side][b]],
                allow_other_workers=True))
    return Dataset(user_ids, item_ids, bounds, blocks, homes, mean,
                   int(np.sum(user_counts, dtype=np.int64)), scale, variance)


def _chunk(users: np.ndarray, items: np.ndarray, values: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An in-memory chunk of (user index, item index, value) as a task's result."""
    return users, items, values


def _split(partition: tuple[np.ndarray, np.ndarray, np.ndarray], user_bounds: np.ndarray,
           item_bounds: np.ndarray) -> dict:
    """A partition's pieces per (side, block), as one task's result."""
    return split_partition(*partition, user_bounds, item_bounds)


def _piece(split: dict, side: str, block: int):
    """One piece of a split, as its own key: a block builder fetches only its pieces."""
    return split[side, block]


def _test_pairs(test: Ratings | None, user_ids: np.ndarray, item_ids: np.ndarray,
                user_bounds: np.ndarray) -> list[TestPairs | None]:
    """Held-out pairs per user block, in training indices (-1: unknown; unknown users: block 0),
    each block's in the test set's order."""
    n_blocks = len(user_bounds) - 1
    if test is None or not len(test):
        return [None] * n_blocks
    users = lookup_ids(user_ids, test.user_ids[test.users]).astype(np.int64)
    items = lookup_ids(item_ids, test.item_ids[test.items]).astype(np.int64)
    block = _test_blocks(users, user_bounds)
    return [TestPairs(users[block == b], items[block == b], test.values[block == b])
            for b in range(n_blocks)]


def order_of_test_pairs(test: Ratings, user_ids: np.ndarray, user_bounds: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Where the user blocks' test pairs, taken block after block, lie in ``test`` (pair n
    of the blocks is ``test``'s pair ``order[n]``), and how many each block has."""
    block = _test_blocks(lookup_ids(user_ids, test.user_ids[test.users]), user_bounds)
    return (np.argsort(block, kind="stable"),
            np.bincount(block, minlength=len(user_bounds) - 1))


def _test_blocks(users: np.ndarray, user_bounds: np.ndarray) -> np.ndarray:
    """The user block scoring each test pair (unknown users: block 0)."""
    return np.where(users >= 0, block_of(np.maximum(users, 0), user_bounds), 0)


def _read_parquet(client: Any, path: Path, run: str) -> tuple[list[Any], dict]:
    """Partitions of a Parquet folder as (user index, item index, value) futures, and the ids.

    The workers read the files; each partition reports its distinct ids with their counts and
    its sum of ratings, one task merges those, and only that summary comes to the client.
    """
    import dask.dataframe as dd

    if not path.exists():
        raise DataError(f"{path}: no such file or folder of Parquet files")
    try:
        frame = dd.read_parquet(str(path))
    except Exception as error:  # pyarrow and fsspec raise many types for an unreadable input
        raise DataError(f"{path}: cannot read as Parquet ({error})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; the "
                        f"Parquet files need columns {', '.join(COLUMNS)}")
    for column in ("user", "item"):
        if frame.dtypes[column].kind not in "iu":
            raise DataError(f"{path}: column {column!r} must hold integer ids, found "
                            f"{frame.dtypes[column]}")
    frames = client.compute(frame[list(COLUMNS)].to_delayed())
    summaries = [client.submit(_summarise, f, str(path), key=f"{run}-summary-{n}")
                 for n, f in enumerate(frames)]
    merged = client.submit(_merge_summaries, summaries, key=f"{run}-summary")
    summary = merged.result()
    if not summary["count"]:
        raise DataError(f"{path}: no training ratings")
    partitions = [client.submit(_encode, f, merged, key=f"{run}-encoded-{n}")
                  for n, f in enumerate(frames)]
    return partitions, summary


def _summarise(frame: Any, source: str) -> dict:
    """One partition's distinct ids with counts, and the sum, sum of squares, count and range
    of its ratings."""
    values = frame["rating"].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        raise DataError(f"{source}: a rating is not a finite number (NaN or infinite)")
    user_ids, user_counts = np.unique(frame["user"].to_numpy(dtype=np.int64), return_counts=True)
    item_ids, item_counts = np.unique(frame["item"].to_numpy(dtype=np.int64), return_counts=True)
    return {"user_ids": user_ids, "user_counts": user_counts, "item_ids": item_ids,
            "item_counts": item_counts, "sum": float(np.sum(values, dtype=np.float64)),
            "squares": float(np.sum(np.square(values, dtype=np.float64))),
            "count": len(values), "low": float(np.min(values, initial=np.inf)),
            "high": float(np.max(values, initial=-np.inf))}


def _merge_summaries(summaries: list[dict]) -> dict:
    """All partitions' ids (sorted, distinct) with their total counts; the ratings' sum, sum
    of squares, count and range."""
    merged = {}
    for side in SIDES:
        ids = np.concatenate([s[f"{side}_ids"] for s in summaries])
        counts = np.concatenate([s[f"{side}_counts"] for s in summaries])
        merged[f"{side}_ids"], where = np.unique(ids, return_inverse=True)
        merged[f"{side}_counts"] = np.bincount(where, weights=counts,
                                               minlength=len(merged[f"{side}_ids"])
                                               ).astype(np.int64)
    merged["sum"] = float(np.sum([s["sum"] for s in summaries]))
    merged["squares"] = float(np.sum([s["squares"] for s in summaries]))
    merged["count"] = int(np.sum([s["count"] for s in summaries]))
    merged["low"] = float(min(s["low"] for s in summaries))
    merged["high"] = float(max(s["high"] for s in summaries))
    return merged


def _encode(frame: Any, summary: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A partition in training indices: (user index, item index, value as float32)."""
    return (np.searchsorted(summary["user_ids"], frame["user"].to_numpy(dtype=np.int64)
                            ).astype(np.int32),
            np.searchsorted(summary["item_ids"], frame["item"].to_numpy(dtype=np.int64)
                            ).astype(np.int32),
            frame["rating"].to_numpy(dtype=np.float32))
