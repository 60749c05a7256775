"""Saving and loading models as one ``.npz`` file, safely.

The file is a NumPy zip archive of plain arrays plus one JSON document (``meta``) holding the
format version, hyperparameters, history and a SHA-256 digest of every array. Loading uses
``allow_pickle=False``, so a model file can never run code; it refuses unknown versions and
files whose arrays do not match their digests. Saving writes a temporary file in the target
folder, flushes it to disk and renames it over the target, so a crash never leaves a
half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from alsmf.errors import ModelFileError
from alsmf.model import IterationRecord, MFModel

FORMAT = "alsmf-model"
FORMAT_VERSION = 1
_ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids",
           "seen_indptr", "seen_indices")
# Saved when the model has them; a file without them loads with None (older files, models
# without titles). Text is stored as fixed-width unicode, never as objects (no pickle).
_OPTIONAL_TEXT = ("item_titles", "item_genres")
_OPTIONAL_NUMERIC = ("seen_values",)
_OPTIONAL_ARRAYS = _OPTIONAL_TEXT + _OPTIONAL_NUMERIC
# ``MFModel.extras`` (what a model variant adds: implicit-feature factors, posterior samples)
# are stored as ``extra_<name>``, checksummed like the rest.
_EXTRA_PREFIX = "extra_"


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes, hashed in place (no copy of a 100 MB array)."""
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def save_model(model: MFModel, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (``.npz`` is appended when missing); returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {name: np.ascontiguousarray(getattr(model, name)) for name in _ARRAYS}
    arrays |= {name: getattr(model, name).astype(str) for name in _OPTIONAL_TEXT
               if getattr(model, name) is not None}
    arrays |= {name: np.ascontiguousarray(getattr(model, name)) for name in _OPTIONAL_NUMERIC
               if getattr(model, name) is not None}
    for name, array in model.extras.items():
        if array.dtype.kind not in "biuf":
            raise ValueError(f"model extra {name!r} must be a numeric array, not {array.dtype}")
        arrays[_EXTRA_PREFIX + name] = np.ascontiguousarray(array)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "biases": model.biases,
        "global_mean": model.global_mean,
        "fallback_mean": model.fallback_mean,
        "params": model.params,
        "history": [record.to_dict() for record in model.history],
        "sha256": {name: _digest(array) for name, array in arrays.items()},
    }
    meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, meta=meta_bytes, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | Path) -> MFModel:
    """Read a model written by :func:`save_model`.

    Raises:
        ModelFileError: the file is missing, not an alsmf model, of an unknown version,
            truncated, or altered (an array does not match its recorded digest).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "meta" not in archive.files:
                raise ModelFileError(f"{path}: not an alsmf model file (no metadata)")
            meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
            _check_header(path, meta)
            arrays = {name: archive[name] for name in _ARRAYS}
            arrays |= {name: archive[name] for name in _OPTIONAL_ARRAYS if name in archive.files}
            arrays |= {name: archive[name] for name in archive.files
                       if name.startswith(_EXTRA_PREFIX)}
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
    extras = {name[len(_EXTRA_PREFIX):]: arrays.pop(name) for name in list(arrays)
              if name.startswith(_EXTRA_PREFIX)}
    return MFModel(
        **arrays,
        extras=extras,
        global_mean=float(meta["global_mean"]),
        fallback_mean=float(meta["fallback_mean"]),
        biases=bool(meta["biases"]),
        params=meta["params"],
        history=[IterationRecord(**record) for record in meta["history"]],
    )


def _check_header(path: Path, meta: dict) -> None:
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an alsmf model file (format {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta.get('version')!r} is not supported "
            f"(this alsmf reads version {FORMAT_VERSION})"
        )
