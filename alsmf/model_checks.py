"""Whether a model's arrays fit together: checked on every model file as it loads.

A model file is input. Its digests prove only that its arrays are the ones its header lists
(anyone can recompute them), and the kernels that use the arrays (numba, no bounds checks)
trust them: a seen item index past the last item, factor matrices of different widths or an
indptr that runs past its indices read and write outside the arrays (a crash, or silent
numbers), and NaN factors give NaN scores. So :func:`check_model` checks each array against
the others, in vectorised numpy (no loop over rows), before anything uses the model, and says
in one line what is wrong.

What a model holds, and what each check guards:

- ``user_ids``, ``item_ids``: 1-D integers, strictly increasing (ids are looked up by binary
  search), at least one of each;
- ``user_factors`` (n_users × k), ``item_factors`` (n_items × k): float32 or float64, k ≥ 1;
- ``user_bias`` (n_users), ``item_bias`` (n_items): float;
- ``seen_indptr`` (n_users + 1), ``seen_indices``, ``seen_values``: each user's training
  ratings as a CSR sorted by item (:mod:`alsmf.training.builder`), indices within the items;
- ``item_titles``, ``item_genres``: text, one per item, or None;
- ``extras``: only the arrays :data:`EXTRAS` names, of the shapes it gives;
- every float finite, the row system's ``biases`` the model's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from alsmf.errors import ModelFileError

if TYPE_CHECKING:
    from alsmf.model import MFModel

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
"""The float dtypes the kernels take, in native byte order."""


class Extra(NamedTuple):
    """An extra array a model may carry: its shape, in the model's ``users``, ``items`` and
    factor count ``k`` or in a length that the extras naming it share (those come together or
    not at all), and whether its values must be positive."""

    shape: tuple[str, ...]
    positive: bool = False


EXTRAS = {
    "implicit_item_factors": Extra(("items", "k")),  # Z of the implicit features (SVD++-like)
    "implicit_user_factors": Extra(("users", "k")),  # A of the implicit features
    "ranking_user_factors": Extra(("users", "ranking_k")),  # a ranking head's factors
    "ranking_item_factors": Extra(("items", "ranking_k")),
    "user_bias_samples": Extra(("users", "draws")),  # a Bayesian model's kept draws
    "item_bias_samples": Extra(("items", "draws")),
    "alpha_samples": Extra(("draws",), positive=True),  # and their noise precisions
}
"""Every extra array alsmf writes; a file with any other is refused, since no code checks it."""

_DRAWS = "draws"
"""The kept draws of a Bayesian model lie side by side in its factors: k is a multiple."""
_RANKING_K = "ranking_k"
"""A ranking head's factors come with its row system (``ranking_system``), and only with it."""


class _Problem(Exception):
    """What is wrong with the model, without the file's name (:func:`check_model` adds it)."""


def check_model(model: MFModel, path: str | Path) -> None:
    """Return if the model's arrays fit together; else raise naming ``path`` and the first
    problem found.

    Raises:
        ModelFileError: one line: the file and what is wrong with which array.
    """
    try:
        n_users = len(_ids(model.user_ids, "user_ids"))
        n_items = len(_ids(model.item_ids, "item_ids"))
        k = _factors(model, n_users, n_items)
        _seen(model, n_users, n_items)
        for name in ("item_titles", "item_genres"):
            _optional_text(getattr(model, name), name, n_items)
        for name in ("user_factors", "item_factors", "user_bias", "item_bias", "seen_values"):
            _finite(getattr(model, name), name)
        _extras(model, {"users": n_users, "items": n_items, "k": k})
        for name in ("global_mean", "fallback_mean"):
            if not math.isfinite(getattr(model, name)):
                raise _Problem(f"{name} is {getattr(model, name)}, not a finite number")
        if model.system is not None and model.system.biases != model.biases:
            raise _Problem(f"the model's biases flag is {model.biases} but its row system's "
                           f"is {model.system.biases}")
    except _Problem as problem:
        raise ModelFileError(f"{path}: {problem}") from None


def _array(value: Any, name: str, family: str, ndim: int) -> np.ndarray:
    """``value`` when it is an ``ndim``-D array of the dtype ``family``, "float" (float32 or
    float64) or "integer" (native byte order both)."""
    if not isinstance(value, np.ndarray):
        raise _Problem(f"{name} is {type(value).__name__}, not an array")
    if family == "float":
        fits, wanted = value.dtype in FLOATS, "float32 or float64"
    else:
        fits, wanted = value.dtype.kind in "iu" and value.dtype.isnative, "integer"
    if not fits:
        raise _Problem(f"{name} has dtype {value.dtype}, not {wanted}")
    if value.ndim != ndim:
        raise _Problem(f"{name} is {value.ndim}-D, not {ndim}-D")
    return value


def _shape(array: np.ndarray, name: str, expected: tuple[int, ...], dims: str) -> None:
    if array.shape != expected:
        raise _Problem(f"{name} has shape {array.shape}, not {dims} = {expected}")


def _ids(ids: Any, name: str) -> np.ndarray:
    ids = _array(ids, name, "integer", 1)
    if not len(ids):
        raise _Problem(f"{name} is empty (a model has at least one user and one item)")
    at = _first_not_increasing(ids)
    if at is not None:
        raise _Problem(f"{name} is not sorted without repeats: position {at} holds "
                       f"{ids[at]} after {ids[at - 1]}")
    return ids


def _first_not_increasing(values: np.ndarray, row_starts: np.ndarray | None = None
                          ) -> int | None:
    """The first position whose value is not above the one before, or None; a position in
    ``row_starts`` (the start of a CSR row) is not compared with the one before."""
    bad = values[1:] <= values[:-1]
    if row_starts is not None:
        bad[row_starts[(row_starts > 0) & (row_starts < len(values))] - 1] = False
    return int(np.argmax(bad)) + 1 if bad.any() else None


def _factors(model: MFModel, n_users: int, n_items: int) -> int:
    """Check factors and biases against the ids; the factor count k."""
    users = _array(model.user_factors, "user_factors", "float", 2)
    k = users.shape[1]
    if k < 1:
        raise _Problem("user_factors has no columns (k must be at least 1)")
    _shape(users, "user_factors", (n_users, k), "n_users × k")
    _shape(_array(model.item_factors, "item_factors", "float", 2), "item_factors",
           (n_items, k), "n_items × k")
    _shape(_array(model.user_bias, "user_bias", "float", 1), "user_bias", (n_users,),
           "n_users")
    _shape(_array(model.item_bias, "item_bias", "float", 1), "item_bias", (n_items,),
           "n_items")
    return k


def _seen(model: MFModel, n_users: int, n_items: int) -> None:
    """Check the training ratings: a by-user CSR over the items, sorted by item in a row."""
    indptr = _array(model.seen_indptr, "seen_indptr", "integer", 1)
    _shape(indptr, "seen_indptr", (n_users + 1,), "n_users + 1")
    indices = _array(model.seen_indices, "seen_indices", "integer", 1)
    nnz = len(indices)
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise _Problem(f"seen_indptr runs from {indptr[0]} to {indptr[-1]}, not from 0 to "
                       f"{nnz} (the length of seen_indices)")
    if (indptr[1:] < indptr[:-1]).any():
        row = int(np.argmax(indptr[1:] < indptr[:-1]))
        raise _Problem(f"seen_indptr decreases: user row {row} ends before it starts")
    at = _first_not_increasing(indices, row_starts=indptr[1:-1])
    if at is not None:
        row = int(np.searchsorted(indptr, at, side="right")) - 1
        raise _Problem(f"seen_indices of user row {row} are not sorted without repeats: "
                       f"item index {indices[at]} follows {indices[at - 1]}")
    # each row ascends, so its first and last entries bound it
    rated = indptr[1:] > indptr[:-1]
    if nnz and (indices[indptr[:-1][rated]].min() < 0
                or indices[indptr[1:][rated] - 1].max() >= n_items):
        bad = indices[(indices < 0) | (indices >= n_items)][0]
        raise _Problem(f"seen_indices holds item index {bad}, outside 0..{n_items - 1}")
    if model.seen_values is not None:
        _shape(_array(model.seen_values, "seen_values", "float", 1), "seen_values", (nnz,),
               "the length of seen_indices")


def _optional_text(value: Any, name: str, n_items: int) -> None:
    if value is None:
        return
    if not (isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.ndim == 1):
        raise _Problem(f"{name} is not a 1-D array of text")
    _shape(value, name, (n_items,), "n_items")


def _extras(model: MFModel, sizes: dict[str, int]) -> None:
    """Check the extras against :data:`EXTRAS` and the model's sizes."""
    shared: dict[str, int] = {}  # a length extras share, as the first of them gives it
    for name, array in model.extras.items():
        if name not in EXTRAS:
            raise _Problem(f"extra array {name!r} is not one alsmf knows "
                           f"({', '.join(sorted(EXTRAS))})")
        dims = EXTRAS[name].shape
        array = _array(array, f"extra {name}", "float", len(dims))
        for dim, length in zip(dims, array.shape):
            if dim not in sizes and length >= 1:
                shared.setdefault(dim, length)
        expected = tuple(sizes.get(dim, shared.get(dim, 1)) for dim in dims)
        _shape(array, f"extra {name}", expected, " × ".join(dims))
        _finite(array, f"extra {name}")
        if EXTRAS[name].positive and not (array > 0).all():
            raise _Problem(f"extra {name} has a value that is not above 0")
    for dim in shared:
        partners = sorted(name for name, extra in EXTRAS.items() if dim in extra.shape)
        absent = [name for name in partners if name not in model.extras]
        if absent:
            raise _Problem(f"extras {', '.join(partners)} come together, but {absent[0]} is "
                           "missing")
    if _DRAWS in shared and sizes["k"] % shared[_DRAWS]:
        raise _Problem(f"the factors' {sizes['k']} columns are not a whole number of factors "
                       f"for each of the {shared[_DRAWS]} kept draws")
    # a model class without the field (before ranking heads) carries no ranking system
    has_system = model.ranking_system is not None
    if (_RANKING_K in shared) != has_system:
        raise _Problem("the ranking factors come without the ranking row system"
                       if not has_system else
                       "the header has a ranking row system but no ranking factors")


def _finite(array: np.ndarray | None, name: str) -> None:
    if array is not None and not np.isfinite(array).all():
        position = np.unravel_index(int(np.argmin(np.isfinite(array))), array.shape)
        raise _Problem(f"{name} has a value that is not finite ({array[position]} at "
                       f"{tuple(int(p) for p in position)})")
