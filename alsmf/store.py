"""Saving and loading models (and training checkpoints) as one ``.npz`` file, safely.

The file is a NumPy zip archive of plain arrays plus one JSON document (``meta``) holding the
format version, the model's scalar fields, its history and row system, and a SHA-256 digest
of every array. Loading never unpickles, so a model file can never run code; it refuses
unknown versions, a header field of the wrong JSON type, and files whose arrays do not match
their digests, and it unpacks no more than :mod:`alsmf.archive` allows. Digests only show
damage (anyone can recompute them): whether the arrays fit together is the model's own check,
:mod:`alsmf.model_checks`. Saving replaces the target atomically (:mod:`alsmf.files`), so a
crash never leaves a half-written model.

What is saved, and how, comes from the model's own fields: each dataclass field carries one of
the metadata markers below (``field(metadata=store.ARRAY)``), so a field added to the model is
saved once it says how, and this module imports nothing of the model's.

A training checkpoint is a model file with the training state the model does not hold (say,
a sampler's kept draws) added as ``state_<name>`` arrays: it loads as a model too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from alsmf.archive import ArrayArchive
from alsmf.errors import ModelFileError
from alsmf.files import replace_atomically
from alsmf.history import IterationRecord
from alsmf.rowsystem import RowSystem

FORMAT = "alsmf-model"
FORMAT_VERSION = 2
"""Version 2 stores the row system; version 1 files (without it) still load."""
_READABLE_VERSIONS = (1, 2)

ARRAY = {"stored": "array"}
"""A required numeric array."""
OPTIONAL_ARRAY = {"stored": "optional_array"}
"""A numeric array or None (absent from files without it)."""
OPTIONAL_TEXT = {"stored": "optional_text"}
"""An array of strings or None, stored as fixed-width unicode (never as objects: no pickle)."""
NAMED_ARRAYS = {"stored": "named_arrays", "prefix": "extra_"}
"""A dict of numeric arrays, each stored as ``extra_<name>``."""
NUMBER = {"stored": "number"}
"""A float in the JSON header."""
FLAG = {"stored": "flag"}
"""A bool in the JSON header."""
JSON = {"stored": "json"}
"""A JSON-ready dict in the JSON header."""
HISTORY = {"stored": "history"}
"""A list of :class:`IterationRecord` in the JSON header."""
ROW_SYSTEM = {"stored": "row_system"}
"""A :class:`RowSystem` or None in the JSON header (a version-1 file derives it)."""
OPTIONAL_ROW_SYSTEM = {"stored": "optional_row_system"}
"""A :class:`RowSystem` or None in the JSON header, None in files written without it."""

_STATE_PREFIX = "state_"
_HEADER_KINDS = ("number", "flag", "json", "history", "row_system",
                 "optional_row_system")
MAX_HEADER_BYTES = 64 * 2**20
"""The JSON header's cap, 64 MiB (a header of a thousand-iteration history is 200 KB)."""
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")

Model = TypeVar("Model")


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes, hashed in place (no copy of a 100 MB array)."""
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def _kinds(cls: type) -> dict[str, dict[str, Any]]:
    """Each saved field of the dataclass ``cls`` and its metadata marker."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(cls) if "stored" in f.metadata}


def save_dataclass(model: Any, path: str | Path,
                   state: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``model`` to ``path`` (``.npz`` is appended when missing); returns the path.

    ``state``: arrays of a training state to keep beside the model (a checkpoint).
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION}
    for name, kind in _kinds(type(model)).items():
        value = getattr(model, name)
        stored = kind["stored"]
        if stored == "array" or (stored == "optional_array" and value is not None):
            arrays[name] = np.ascontiguousarray(value)
        elif stored == "optional_text" and value is not None:
            arrays[name] = np.asarray(value).astype(str)
        elif stored == "named_arrays":
            arrays |= _named(kind["prefix"], value, "model extra")
        elif stored in _HEADER_KINDS:
            meta[name] = _header_value(stored, value)
    arrays |= _named(_STATE_PREFIX, state or {}, "training state")
    meta["sha256"] = {name: _digest(array) for name, array in arrays.items()}
    meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    replace_atomically(path, lambda handle: np.savez(handle, meta=meta_bytes, **arrays))
    return path


def _named(prefix: str, arrays: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    stored = {}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{what} {name!r} must be a numeric array, not {array.dtype}")
        stored[prefix + name] = np.ascontiguousarray(array)
    return stored


def _header_value(stored: str, value: Any) -> Any:
    if stored == "number":
        return float(value)
    if stored == "flag":
        return bool(value)
    if stored == "history":
        return [record.to_dict() for record in value]
    if stored in ("row_system", "optional_row_system"):
        return None if value is None else value.to_dict()
    return value


def load_dataclass(cls: type[Model], path: str | Path) -> Model:
    """Read a model of class ``cls`` written by :func:`save_dataclass`.

    Raises:
        ModelFileError: the file is missing, not an alsmf model, of an unknown version,
            truncated, larger than :mod:`alsmf.archive` allows, or altered (a header field of
            the wrong type, an array that does not match its recorded digest).
    """
    return load_with_state(cls, path)[0]


def load_with_state(cls: type[Model], path: str | Path) -> tuple[Model, dict[str, np.ndarray]]:
    """A model file and the training-state arrays saved beside it (empty for a model)."""
    path = Path(path)
    kinds = _kinds(cls)
    meta, arrays = _read_checked(path, kinds)
    state = {name[len(_STATE_PREFIX):]: arrays.pop(name) for name in list(arrays)
             if name.startswith(_STATE_PREFIX)}
    values: dict[str, Any] = {}
    for name, kind in kinds.items():
        stored = kind["stored"]
        if stored == "array":
            if name not in arrays:
                raise ModelFileError(f"{path}: array {name!r} is missing; the file was "
                                     "altered or damaged")
            values[name] = arrays[name]
        elif stored in ("optional_array", "optional_text"):
            values[name] = arrays.get(name)
        elif stored == "named_arrays":
            prefix = kind["prefix"]
            values[name] = {key[len(prefix):]: array for key, array in arrays.items()
                            if key.startswith(prefix)}
        elif stored == "number":
            values[name] = float(meta[name])
        elif stored in ("flag", "json"):
            values[name] = meta[name]
        elif stored == "history":
            values[name] = [IterationRecord(**record) for record in meta[name]]
        elif stored in ("row_system", "optional_row_system"):
            values[name] = _row_system(path, meta, name, stored)
    return cls(**values), state


def _row_system(path: Path, meta: dict[str, Any], name: str, stored: str) -> RowSystem | None:
    """The row system the header holds as ``name`` (a version-1 file's derived)."""
    try:
        if stored == "row_system" and meta["version"] == 1:
            return _legacy_system(meta)
        found = meta.get(name) if stored == "optional_row_system" else meta[name]
        return None if found is None else RowSystem.from_dict(found)
    except KeyError as missing:
        raise ModelFileError(f"{path}: the header has no {missing}; the file was altered or "
                             "damaged") from None
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFileError(f"{path}: not a valid alsmf model file ({error})") from None


def _read_checked(path: Path, kinds: dict[str, dict[str, Any]]
                  ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every array of the file: the header checked before any array is read,
    each array against its digest."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    with ArrayArchive(path) as archive:
        if "meta" not in archive.names:
            raise ModelFileError(f"{path}: not an alsmf model file (no metadata)")
        try:
            meta = json.loads(archive.read("meta", MAX_HEADER_BYTES).tobytes().decode("utf-8"))
        except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deep
            raise ModelFileError(f"{path}: the header is not readable JSON "
                                 f"({type(error).__name__})") from None
        _check_header(path, meta)
        _check_fields(path, meta, kinds)
        arrays = {name: archive.read(name) for name in archive.names if name != "meta"}
    for name, array in arrays.items():
        if _digest(array) != meta["sha256"].get(name):
            raise ModelFileError(f"{path}: array {name!r} does not match its checksum; "
                                 "the file was altered or damaged")
    missing = sorted(set(meta["sha256"]) - set(arrays))
    if missing:
        raise ModelFileError(f"{path}: array {missing[0]!r} is missing; the file was altered "
                             "or damaged")
    return meta, arrays


def _legacy_system(meta: dict[str, Any]) -> RowSystem | None:
    """The row system of a version-1 file, which recorded it inside the trainer's settings."""
    params = meta["params"]
    if "reg" not in params:
        return None
    reg = float(params["reg"])
    reg_bias = params.get("reg_bias")
    return RowSystem(reg=reg, reg_bias=reg if reg_bias is None else float(reg_bias),
                     weighted_reg=bool(params.get("weighted_reg", False)),
                     biases=bool(meta["biases"]),
                     implicit_weight=float(params.get("fold_in_implicit_weight",
                                                      params.get("implicit_weight", 0.0))))


def _check_header(path: Path, meta: Any) -> None:
    """Refuse a header that is not an object of this format, of a readable version, with a
    digest (64 hex digits) per array name."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{path}: not an alsmf model file (format {found!r})")
    version = meta.get("version")
    if not _is_int(version) or version not in _READABLE_VERSIONS:
        raise ModelFileError(
            f"{path}: model format version {version!r} is not supported "
            f"(this alsmf reads versions {', '.join(map(str, _READABLE_VERSIONS))})"
        )
    digests = meta.get("sha256")
    if not isinstance(digests, dict):
        raise ModelFileError(f"{path}: the header has no array digests; the file was altered "
                             "or damaged")
    for name, digest in digests.items():
        if not (isinstance(digest, str) and _HEX_DIGEST.fullmatch(digest)):
            raise ModelFileError(f"{path}: the header's digest of {name!r} is "
                                 f"{_shown(digest)}, not 64 hex digits")


def _check_fields(path: Path, meta: dict[str, Any], kinds: dict[str, dict[str, Any]]) -> None:
    """Refuse a header field that is missing or whose JSON type is not its kind's (row
    systems are checked as they are read, by :meth:`RowSystem.from_dict`)."""
    for name, kind in kinds.items():
        check = _FIELD_CHECKS.get(kind["stored"])
        if check is None:
            continue
        if name not in meta:
            raise ModelFileError(f"{path}: the header has no {name!r}; the file was altered "
                                 "or damaged")
        problem = check(meta[name])
        if problem:
            raise ModelFileError(f"{path}: the header's {name} {problem}")


def _number_problem(value: Any) -> str | None:
    return None if _is_finite_number(value) else f"is {_shown(value)}, not a finite number"


def _flag_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"is {_shown(value)}, not true or false"


def _object_problem(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"is {_shown(value)}, not an object"


_RECORD_TYPES = typing.get_type_hints(IterationRecord)
_RECORD_REQUIRED = {field.name for field in dataclasses.fields(IterationRecord)
                    if field.default is dataclasses.MISSING}


def _history_problem(value: Any) -> str | None:
    """What is wrong with a history: not a list of objects with IterationRecord's fields
    (those with a default may be absent: files from before the field) of its types."""
    if not isinstance(value, list):
        return f"is {_shown(value)}, not a list"
    for number, record in enumerate(value, 1):
        if not isinstance(record, dict):
            return f"record {number} is {_shown(record)}, not an object"
        if not _RECORD_REQUIRED <= set(record) <= set(_RECORD_TYPES):
            return (f"record {number} has fields {sorted(record)}, expected "
                    f"{sorted(_RECORD_TYPES)}")
        for field, found in record.items():
            if not _is_of(found, _RECORD_TYPES[field]):
                hint = _RECORD_TYPES[field]
                return (f"record {number}'s {field} is {_shown(found)}, not "
                        f"{getattr(hint, '__name__', hint)}")
    return None


_FIELD_CHECKS = {"number": _number_problem, "flag": _flag_problem, "json": _object_problem,
                 "history": _history_problem}
"""Each header kind checked by type alone, and its check: what is wrong, or None."""


def _is_of(value: Any, hint: Any) -> bool:
    """Whether a JSON value has a record field's type: int, float (an int will do), None, or
    a union of them."""
    if hint is type(None):
        return value is None
    if hint is int:
        return _is_int(value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return any(_is_of(value, part) for part in typing.get_args(hint))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond a float's range
        return False


def _shown(value: Any) -> str:
    """A header value as a message shows it: its JSON, cut to 40 characters."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
