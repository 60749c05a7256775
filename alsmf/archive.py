"""Reading the arrays of a model file's zip archive, within stated bounds on what it unpacks.

A model file is input, and an ``.npz`` is a zip of ``.npy`` members: the zip can declare
members far larger than the file itself (a "zip bomb"), and a member's ``.npy`` header can
declare a shape whose allocation alone would exhaust memory, since numpy allocates what the
header declares before it reads the data. So :class:`ArrayArchive` checks the zip's directory
when it opens and each member's header before reading it:

- the members' uncompressed sizes add up to at most :func:`max_model_bytes` (16 GiB unless
  the environment variable ``ALSMF_MAX_MODEL_BYTES`` says otherwise);
- no member above 1 MiB unpacks to more than 100 times its compressed size (float arrays
  barely compress, and alsmf writes its members uncompressed);
- every member is an unencrypted ``.npy`` array, stored or deflated (what ``np.savez`` and
  ``np.savez_compressed`` write), named once;
- a member's header declares a plain dtype (numbers, bools or text, never Python objects) and
  exactly as many bytes as the member holds;
- and a caller can give one member a smaller cap (the JSON header's, say).

Every refusal is a :class:`~alsmf.errors.ModelFileError` naming the file.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.lib import format as npy

from alsmf.errors import ConfigError, ModelFileError

MAX_BYTES_VARIABLE = "ALSMF_MAX_MODEL_BYTES"
"""The environment variable that sets how many bytes a model file may unpack to in all."""
DEFAULT_MAX_BYTES = 16 * 2**30
"""16 GiB: a k = 64 float32 model of ten million users and items is 5 GiB."""
MAX_RATIO = 100
"""The most a member above :data:`RATIO_FLOOR` may unpack to, per compressed byte."""
RATIO_FLOOR = 2**20
"""Members up to 1 MiB may compress any amount (a small array of zeros is no bomb)."""

_HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
"""The ``.npy`` header versions numpy writes for plain arrays, and their readers."""
_PLAIN_KINDS = "biufU"
"""dtype kinds a model file holds: bools, integers, floats and fixed-width text."""
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)
"""What zipfile and numpy raise on a damaged archive or member."""


def max_model_bytes() -> int:
    """How many bytes a model file may unpack to: ``ALSMF_MAX_MODEL_BYTES`` or 16 GiB.

    Raises:
        ConfigError: the variable is set to something other than a positive whole number.
    """
    text = os.environ.get(MAX_BYTES_VARIABLE)
    if text is None:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{MAX_BYTES_VARIABLE} is {text!r}, not a positive number of bytes")
    return value


class ArrayArchive:
    """The ``.npy`` members of a zip archive, by name without ``.npy``; use it in ``with``.

    Opening it checks the zip's directory against the caps above; :meth:`read` checks a
    member's header before allocating its array.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except _UNREADABLE as error:
            raise self._error(f"not a readable alsmf model file ({error})") from None
        try:
            self._members = self._checked_members(max_model_bytes())
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> ArrayArchive:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._zip.close()

    @property
    def names(self) -> list[str]:
        """The array names, in the archive's order."""
        return list(self._members)

    def read(self, name: str, limit: int | None = None) -> np.ndarray:
        """The array ``name``, refused when its header does not describe its bytes or when it
        is larger than ``limit`` bytes (when given)."""
        info = self._members[name]
        if limit is not None and info.file_size > limit:
            raise self._error(f"array {name!r} is {_size(info.file_size)}, more than the "
                              f"{_size(limit)} it may be")
        try:
            with self._zip.open(info) as stream:
                self._check_npy_header(name, info, stream)
                stream.seek(0)
                return npy.read_array(stream, allow_pickle=False)
        except _UNREADABLE as error:
            raise self._error(f"array {name!r} cannot be read ({error})") from None

    def _checked_members(self, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            label = info.filename
            if not label.endswith(".npy"):
                raise self._error(f"member {label!r} is not an .npy array")
            if info.flag_bits & 0x1:
                raise self._error(f"member {label!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self._error(f"member {label!r} uses compression method "
                                  f"{info.compress_type}; alsmf reads stored or deflated ones")
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
                raise self._error(
                    f"member {label!r} unpacks to {_size(info.file_size)} from "
                    f"{_size(info.compress_size)}, more than {MAX_RATIO}:1 (a zip bomb?)")
            name = label[:-len(".npy")]
            if name in members:
                raise self._error(f"member {label!r} appears twice")
            members[name] = info
        total = sum(info.file_size for info in members.values())
        if total > max_bytes:
            raise self._error(f"the archive unpacks to {_size(total)}, more than the "
                              f"{_size(max_bytes)} a model file may (set "
                              f"{MAX_BYTES_VARIABLE} to allow more)")
        return members

    def _check_npy_header(self, name: str, info: zipfile.ZipInfo, stream: zipfile.ZipExtFile
                          ) -> None:
        """Refuse a member whose ``.npy`` header is of an unknown version, declares an odd
        dtype or shape, or declares another number of bytes than the member holds."""
        version = npy.read_magic(stream)
        if version not in _HEADER_READERS:
            raise self._error(f"array {name!r} has .npy format version {version}, not 1.0 "
                              "or 2.0")
        shape, _, dtype = _HEADER_READERS[version](stream)
        if dtype.kind not in _PLAIN_KINDS:
            raise self._error(f"array {name!r} has dtype {dtype}, not a plain number, flag "
                              "or text")
        if any(length < 0 for length in shape):
            raise self._error(f"array {name!r} declares shape {shape}")
        declared = math.prod(shape) * dtype.itemsize
        held = info.file_size - stream.tell()
        if declared != held:
            raise self._error(f"array {name!r} declares shape {shape} of {dtype} "
                              f"({_size(declared)}) but holds {_size(held)}")

    def _error(self, problem: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: {problem}")


def _size(n_bytes: int) -> str:
    """A byte count for a message: exact below 1 KiB, else in KiB, MiB, GiB or TiB."""
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    value = float(n_bytes)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"
