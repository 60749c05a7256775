"""Saving and loading models (and training checkpoints) as one ``.npz`` file, safely.

The file is a NumPy zip archive of plain arrays plus one JSON document (``meta``) holding the
format version, the model's scalar fields, its history and row system, and a SHA-256 digest
of every array. Loading uses ``allow_pickle=False``, so a model file can never run code; it
refuses unknown versions and files whose arrays do not match their digests. Saving replaces
the target atomically (:mod:`alsmf.files`), so a crash never leaves a half-written model.

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
import zipfile
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

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
            truncated, or altered (an array does not match its recorded digest).
    """
    return load_with_state(cls, path)[0]


def load_with_state(cls: type[Model], path: str | Path) -> tuple[Model, dict[str, np.ndarray]]:
    """A model file and the training-state arrays saved beside it (empty for a model)."""
    path = Path(path)
    meta, arrays = _read_checked(path)
    kinds = _kinds(cls)
    state = {name[len(_STATE_PREFIX):]: arrays.pop(name) for name in list(arrays)
             if name.startswith(_STATE_PREFIX)}
    values: dict[str, Any] = {}
    try:
        for name, kind in kinds.items():
            stored = kind["stored"]
            if stored == "array":
                values[name] = arrays[name]
            elif stored in ("optional_array", "optional_text"):
                values[name] = arrays.get(name)
            elif stored == "named_arrays":
                prefix = kind["prefix"]
                values[name] = {key[len(prefix):]: array for key, array in arrays.items()
                                if key.startswith(prefix)}
            elif stored == "number":
                values[name] = float(meta[name])
            elif stored == "flag":
                values[name] = bool(meta[name])
            elif stored == "json":
                values[name] = meta[name]
            elif stored == "history":
                values[name] = [IterationRecord(**record) for record in meta[name]]
            elif stored == "row_system":
                values[name] = (_legacy_system(meta) if meta["version"] == 1
                                else None if meta[name] is None
                                else RowSystem.from_dict(meta[name]))
            elif stored == "optional_row_system":
                found = meta.get(name)
                values[name] = None if found is None else RowSystem.from_dict(found)
    except KeyError as missing:
        raise ModelFileError(f"{path}: {missing} is missing; the file was altered or "
                             "damaged") from None
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: not a valid alsmf model file ({error})") from None
    return cls(**values), state


def _read_checked(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every array of the file, each array checked against its digest."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "meta" not in archive.files:
                raise ModelFileError(f"{path}: not an alsmf model file (no metadata)")
            meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
            _check_header(path, meta)
            arrays = {name: archive[name] for name in archive.files if name != "meta"}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as error:
        raise ModelFileError(f"{path}: not a readable alsmf model file ({error})") from None
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{path}: not an alsmf model file (format {found!r})")
    if meta.get("version") not in _READABLE_VERSIONS:
        raise ModelFileError(
            f"{path}: model format version {meta.get('version')!r} is not supported "
            f"(this alsmf reads versions {', '.join(map(str, _READABLE_VERSIONS))})"
        )
    if not isinstance(meta.get("sha256"), dict):
        raise ModelFileError(f"{path}: the header has no array digests; the file was altered "
                             "or damaged")
