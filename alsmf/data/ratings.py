"""The one in-memory form of explicit ratings that every part of alsmf works on.

A :class:`Ratings` holds parallel arrays (user index, item index, rating, optional timestamp)
in a contiguous index space, together with the raw ids of users and items so that indices and
raw ids convert both ways. Raw ids are kept sorted, so raw -> index is a binary search
(``numpy.searchsorted``) rather than a Python dict, which matters at 20M ratings.

Splits keep the id maps of the set they came from (train and test share one index space);
filters call :meth:`Ratings.compact` to drop ids that no longer have ratings.

The module is longer than most because the type's validation (ids, ratings, repeated pairs)
and its views (by user, by item, subsets, frames) belong with it: every reader, filter and
trainer relies on the invariants checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
import scipy.sparse as sp

from alsmf.data.csr import build_csr, count_per_index, count_repeated_pairs, row_major_order
from alsmf.data.idcoding import encode_pair, scan_columns
from alsmf.errors import DataError

if TYPE_CHECKING:  # pandas is imported where a frame is made or read: tens of MB otherwise
    import pandas as pd

DuplicatePolicy = Literal["error", "last", "mean"]
"""What to do when one (user, item) pair is rated more than once.

``"error"`` (the default) refuses the data and names both rows; ``"last"`` keeps the latest
rating (by timestamp when there is one, else the later row); ``"mean"`` averages them.
"""

DUPLICATE_POLICIES: tuple[str, ...] = ("error", "last", "mean")

MAX_ABS_RATING = 1e6
"""Largest rating magnitude accepted when no scale is given.

Explicit ratings live on small scales (stars, 0..10, 0..100). A larger value is almost always
a wrong column read as the rating (a timestamp, an id), and values far beyond it make the
normal equations lose their precision or, past the float32 range the ratings are stored in,
turn into infinities; either way the model would be wrong, so such data is refused.
"""

_INT64_MAX = np.iinfo(np.int64).max


def _row_label(row: int) -> str:
    return f"row {row}"


@dataclass(frozen=True, eq=False)
class Ratings:
    """Explicit ratings in contiguous index space, with raw ids kept both ways.

    Attributes:
        users: int32 user index of each rating, in ``[0, n_users)``.
        items: int32 item index of each rating, in ``[0, n_items)``.
        values: float32 rating values.
        user_ids: int64 raw user ids, sorted ascending; ``user_ids[users[n]]`` is the raw id.
        item_ids: int64 raw item ids, sorted ascending.
        timestamps: int64 seconds since the epoch per rating, or ``None``.
        source: where the ratings came from, used in messages.
        scale: the rating scale ``(low, high)`` of the release, when known.
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray | None = None
    source: str = "<memory>"
    scale: tuple[float, float] | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        user_raw: np.ndarray,
        item_raw: np.ndarray,
        values: np.ndarray,
        timestamps: np.ndarray | None = None,
        *,
        source: str = "<memory>",
        scale: tuple[float, float] | None = None,
        duplicates: DuplicatePolicy = "error",
        row_label: Callable[[int], str] = _row_label,
        overwrite_ids: bool = False,
    ) -> Ratings:
        """Build ratings from raw ids, checking values and duplicate pairs.

        Args:
            user_raw, item_raw: integer raw ids, one per rating.
            values: rating values; must be finite, at most :data:`MAX_ABS_RATING` in
                magnitude and, when ``scale`` is given, inside it.
            timestamps: optional integer timestamps, one per rating.
            source: file or object name used in error messages.
            scale: ``(low, high)``; ratings outside it are refused.
            duplicates: policy for repeated (user, item) pairs, see :data:`DuplicatePolicy`.
            row_label: turns a row position into the place a user can find it
                (for a file, its line number).
            overwrite_ids: let the codes be written over ``user_raw`` and ``item_raw`` when
                they are writeable int32 arrays (as ``scipy.linalg``'s ``overwrite_a``): for
                callers that own them, such as the readers; saves two arrays of codes.

        Raises:
            DataError: naming the first offending row.
        """
        user_raw = np.asarray(user_raw)
        item_raw = np.asarray(item_raw)
        values = np.asarray(values)
        if values.dtype != np.float32:  # float32 input (the readers') is checked as it is
            values = values.astype(np.float64, copy=False)
        n = len(values)
        if not (len(user_raw) == len(item_raw) == n):
            raise DataError(
                f"{source}: users, items and ratings have different lengths "
                f"({len(user_raw)}, {len(item_raw)}, {n})"
            )
        if n == 0:
            raise DataError(f"{source}: no ratings")
        for name, ids in (("user", user_raw), ("item", item_raw)):
            if not np.issubdtype(ids.dtype, np.integer):
                raise DataError(f"{source}: {name} ids must be integers, got {ids.dtype}")
            _check_int64_range(ids, f"{name} id", source, row_label)
        if timestamps is not None:
            timestamps = np.asarray(timestamps)
            if np.issubdtype(timestamps.dtype, np.integer):
                _check_int64_range(timestamps, "timestamp", source, row_label)
        bounds = (-MAX_ABS_RATING, MAX_ABS_RATING)
        if scale is not None:
            bounds = (max(scale[0], bounds[0]), min(scale[1], bounds[1]))
        # compared in the ratings' own precision, as numpy compares them in _refuse_values
        scan = scan_columns(user_raw, item_raw, values, *np.array(bounds, dtype=values.dtype))
        if scan.bad_values:
            _refuse_values(values, scale, source, row_label)
        if timestamps is not None:
            timestamps = np.asarray(timestamps, dtype=np.int64)

        user_ids, users, item_ids, items = encode_pair(user_raw, item_raw, scan, overwrite_ids)
        if count_repeated_pairs(users, items, (len(user_ids), len(item_ids))):
            users, items, values, timestamps = _resolve_duplicates(
                users, items, values, timestamps, len(item_ids), duplicates, source, row_label
            )
        ratings = cls(
            users=users,
            items=items,
            values=values.astype(np.float32, copy=False),
            user_ids=user_ids,
            item_ids=item_ids,
            timestamps=timestamps,
            source=source,
            scale=scale,
        )
        return ratings

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str = "rating",
        timestamp_col: str | None = "timestamp",
        source: str = "DataFrame",
        scale: tuple[float, float] | None = None,
        duplicates: DuplicatePolicy = "error",
    ) -> Ratings:
        """Build ratings from a pandas DataFrame with user, item and rating columns.

        ``timestamp_col`` is used when the column exists and ignored otherwise.
        """
        missing = [c for c in (user_col, item_col, rating_col) if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
                f"columns are {', '.join(map(repr, map(str, frame.columns)))}"
            )
        index = frame.index

        def row_label(row: int) -> str:
            return f"row {index[row]!r}"

        users = _integer_column(frame[user_col], "user id", source, row_label)
        items = _integer_column(frame[item_col], "item id", source, row_label)
        values = _float_column(frame[rating_col], source, row_label)
        timestamps = None
        if timestamp_col is not None and timestamp_col in frame.columns:
            timestamps = _integer_column(frame[timestamp_col], "timestamp", source, row_label)
        return cls.from_arrays(
            users, items, values, timestamps,
            source=source, scale=scale, duplicates=duplicates, row_label=row_label,
        )

    # ------------------------------------------------------------------ sizes and maps
    @property
    def n_users(self) -> int:
        """Number of users in the id map (some may have no ratings after a split)."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the id map."""
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return (
            f"Ratings({len(self):,} ratings, {self.n_users:,} users, {self.n_items:,} items, "
            f"source={self.source!r})"
        )

    def user_index(self, raw_ids: np.ndarray | int) -> np.ndarray:
        """Indices of raw user ids; ``-1`` for ids not in the map."""
        return lookup_ids(self.user_ids, raw_ids)

    def item_index(self, raw_ids: np.ndarray | int) -> np.ndarray:
        """Indices of raw item ids; ``-1`` for ids not in the map."""
        return lookup_ids(self.item_ids, raw_ids)

    # ------------------------------------------------------------------ matrix views
    def by_user(self) -> sp.csr_matrix:
        """Ratings as CSR, one row per user (n_users x n_items), built once and cached."""
        if "by_user" not in self._cache:
            self._cache["by_user"] = _csr(self.users, self.items, self.values,
                                          (self.n_users, self.n_items))
        return self._cache["by_user"]

    def by_item(self) -> sp.csr_matrix:
        """Ratings as CSR, one row per item (n_items x n_users), built once and cached."""
        if "by_item" not in self._cache:
            self._cache["by_item"] = _csr(self.items, self.users, self.values,
                                          (self.n_items, self.n_users))
        return self._cache["by_item"]

    def user_counts(self) -> np.ndarray:
        """Number of ratings of each user (int64, length n_users)."""
        return count_per_index(self.users, self.n_users)

    def item_counts(self) -> np.ndarray:
        """Number of ratings of each item (int64, length n_items)."""
        return count_per_index(self.items, self.n_items)

    # ------------------------------------------------------------------ derived sets
    def subset(self, mask_or_rows: np.ndarray) -> Ratings:
        """The ratings selected by a boolean mask or row positions, keeping the same id maps."""
        sel = np.asarray(mask_or_rows)
        return replace(
            self,
            users=self.users[sel],
            items=self.items[sel],
            values=self.values[sel],
            timestamps=None if self.timestamps is None else self.timestamps[sel],
            _cache={},
        )

    def compact(self) -> Ratings:
        """Re-index so that only users and items that have ratings remain (ids stay sorted)."""
        user_counts, item_counts = self.user_counts(), self.item_counts()
        if user_counts.all() and item_counts.all():
            return self  # nothing to drop: no copy (this is the usual case at scale)
        used_users = np.flatnonzero(user_counts)
        used_items = np.flatnonzero(item_counts)
        user_remap = np.full(self.n_users, -1, dtype=np.int32)
        user_remap[used_users] = np.arange(len(used_users), dtype=np.int32)
        item_remap = np.full(self.n_items, -1, dtype=np.int32)
        item_remap[used_items] = np.arange(len(used_items), dtype=np.int32)
        return replace(
            self,
            users=user_remap[self.users],
            items=item_remap[self.items],
            user_ids=self.user_ids[used_users],
            item_ids=self.item_ids[used_items],
            _cache={},
        )

    def in_user_order(self) -> Ratings:
        """The same ratings ordered by user, then item (stably; ``self`` if already so).

        Training reads the ratings by user and by item; in this order the by-user CSR is
        built on these arrays instead of copying them (at 20M ratings, 150 MB less).
        """
        order = row_major_order(self.users, self.items, self.n_users)
        return self if order is None else self.subset(order)

    def to_frame(self) -> pd.DataFrame:
        """The ratings as a DataFrame of raw ids (columns user, item, rating[, timestamp])."""
        columns = {
            "user": self.user_ids[self.users],
            "item": self.item_ids[self.items],
            "rating": self.values,
        }
        if self.timestamps is not None:
            columns["timestamp"] = self.timestamps
        import pandas as pd

        return pd.DataFrame(columns)

    def dense(self, fill: float = np.nan) -> np.ndarray:
        """The full user x item matrix with ``fill`` where there is no rating (small data only)."""
        matrix = np.full((self.n_users, self.n_items), fill, dtype=np.float64)
        matrix[self.users, self.items] = self.values
        return matrix


# ---------------------------------------------------------------------- helpers
def lookup_ids(sorted_ids: np.ndarray, raw_ids: np.ndarray | int) -> np.ndarray:
    """Positions of ``raw_ids`` in the sorted id array ``sorted_ids``; -1 where absent.

    Raises:
        DataError: an id does not fit in 64 bits (no model can know it; a typo, most likely).
    """
    try:
        raw = np.asarray(raw_ids, dtype=np.int64)
    except OverflowError:
        raise DataError(f"id {raw_ids} is out of the 64-bit integer range") from None
    if len(sorted_ids) == 0:
        return np.full(raw.shape, -1, dtype=np.int64)
    if raw.ndim == 0:
        return _lookup_chunk(sorted_ids, raw)
    out = np.empty(raw.shape, dtype=np.int64)
    for start in range(0, len(raw), _LOOKUP_CHUNK):  # bounded temporaries for big inputs
        stop = start + _LOOKUP_CHUNK
        out[start:stop] = _lookup_chunk(sorted_ids, raw[start:stop])
    return out


_LOOKUP_CHUNK = 1 << 20


def _lookup_chunk(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    position = np.minimum(np.searchsorted(sorted_ids, raw), len(sorted_ids) - 1)
    return np.where(sorted_ids[position] == raw, position, -1)


def _csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]):
    """The CSR matrix of ratings without repeated pairs (float32, columns ascending)."""
    return build_csr(rows, cols, values, shape)[0]


def _resolve_duplicates(users, items, values, timestamps, n_items, policy, source, row_label):
    """Apply the duplicate policy; rows come back in their original order (minus dropped ones)."""
    if policy not in DUPLICATE_POLICIES:
        raise DataError(
            f"unknown duplicate policy {policy!r}; choose one of {', '.join(DUPLICATE_POLICIES)}"
        )
    keys = users.astype(np.int64) * n_items + items
    if timestamps is not None and policy == "last":
        order = np.lexsort((np.arange(len(keys)), timestamps, keys))
    else:
        order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(repeated) == 0:
        return users, items, values, timestamps
    if policy == "error":
        first, second = sorted(order[repeated[0]: repeated[0] + 2])
        raise DataError(
            f"{source}: the same (user, item) pair is rated twice, at {row_label(int(first))} "
            f"and {row_label(int(second))} ({len(repeated)} repeated pairs in all); "
            "choose a duplicate policy ('last' or 'mean') to accept such data"
        )
    group_start = np.ones(len(sorted_keys), dtype=bool)
    group_start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.flatnonzero(group_start)
    if policy == "last":
        ends = np.append(starts[1:], len(sorted_keys)) - 1
        keep = np.sort(order[ends])
        return (users[keep], items[keep], values[keep],
                None if timestamps is None else timestamps[keep])
    # mean: one row per pair at the position of its first occurrence
    sums = np.add.reduceat(values[order], starts)
    counts = np.diff(np.append(starts, len(sorted_keys)))
    first_rows = order[starts]  # stable sort: the first occurrence of each pair
    position = np.argsort(first_rows, kind="stable")
    keep = first_rows[position]
    mean_values = (sums / counts)[position]
    new_times = None
    if timestamps is not None:
        new_times = np.maximum.reduceat(timestamps[order], starts)[position]
    return users[keep], items[keep], mean_values, new_times


def _check_int64_range(values: np.ndarray, what: str, source: str, row_label) -> None:
    """Refuse unsigned values above the int64 range, which a cast would wrap to negative ids."""
    if values.dtype.kind == "u" and len(values) and values.max() > _INT64_MAX:
        row = int(np.flatnonzero(values > _INT64_MAX)[0])
        raise DataError(f"{source}, {row_label(row)}: {what} {values[row]} is out of the "
                        "64-bit integer range")


def _refuse_values(values: np.ndarray, scale: tuple[float, float] | None, source: str,
                   row_label) -> None:
    """Raise the DataError that names the first rating that is not a number, is outside the
    scale or is too large for an explicit rating (called once a scan has found one)."""
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(
            f"{source}, {row_label(int(bad[0]))}: rating {values[bad[0]]} is not a finite number"
            f" ({len(bad)} such rows)"
        )
    if scale is not None:
        low, high = scale
        bad = np.flatnonzero((values < low) | (values > high))
        if len(bad):
            raise DataError(
                f"{source}, {row_label(int(bad[0]))}: rating {values[bad[0]]:g} is outside "
                f"the scale {low:g}..{high:g} ({len(bad)} such rows)"
            )
    bad = np.flatnonzero(np.abs(values) > MAX_ABS_RATING)
    raise DataError(
        f"{source}, {row_label(int(bad[0]))}: rating {values[bad[0]]:g} is too large for "
        f"an explicit rating (more than {MAX_ABS_RATING:g} in magnitude; "
        f"{len(bad)} such rows); is the rating column the right one?"
    )


def _integer_column(column: pd.Series, what: str, source: str, row_label) -> np.ndarray:
    """A column as integers, or a DataError naming the first value that is not an integer.

    Integer columns keep their dtype (unsigned ones are range-checked by ``from_arrays``);
    others must hold whole numbers inside the int64 range.
    """
    import pandas as pd

    if pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any():
        return column.to_numpy(dtype=column.dtype.numpy_dtype
                               if hasattr(column.dtype, "numpy_dtype") else None)
    numeric = pd.to_numeric(column, errors="coerce")
    bad = numeric.isna() | (numeric.round() != numeric)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{source}, {row_label(row)}: {what} {column.iloc[row]!r} is not an integer"
        )
    if numeric.dtype.kind == "u":
        return numeric.to_numpy()
    outside = ((numeric < -2.0**63) | (numeric >= 2.0**63)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{source}, {row_label(row)}: {what} {column.iloc[row]!r} is out of the 64-bit "
            "integer range"
        )
    return numeric.to_numpy(dtype=np.int64)


def _float_column(column: pd.Series, source: str, row_label) -> np.ndarray:
    """A rating column as float64, or a DataError naming the first non-numeric value."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    numeric = pd.to_numeric(column, errors="coerce")
    bad = numeric.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{source}, {row_label(row)}: rating {column.iloc[row]!r} is not a number")
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)
