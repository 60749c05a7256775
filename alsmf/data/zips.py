"""Reading zip archives safely: which members are refused before anything is read, and reads
bounded by the limits of :mod:`alsmf.data.limits`.

A member is refused, with one line naming it, when it could write outside the folder it is
extracted to (an absolute path, ``..`` that escapes, a symbolic link), when Python cannot read
it (encrypted, or compressed with a method such as deflate64 that :mod:`zipfile` lacks), when
it declares more bytes than the limit, or when it would expand more times than real data does
(a zip bomb). The declared size comes from the archive and can lie, so reads stop one byte
past the limit whatever it says. Used before extracting a download and before reading ratings
or titles from a zip: GroupLens zips never hold such members.
"""

from __future__ import annotations

import lzma
import posixpath
import re
import stat
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from alsmf.data.limits import (MEMBER_BYTES_VARIABLE, RATIO_FLOOR_BYTES, RATIO_VARIABLE,
                               format_bytes, max_compression_ratio, max_member_bytes)
from alsmf.errors import DataError

READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                    zipfile.ZIP_LZMA)
"""The compression methods :mod:`zipfile` can read."""

_ENCRYPTED_FLAG = 0x1
_CHUNK = 1 << 20
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                RuntimeError, NotImplementedError)
"""What reading a member raises when its bytes are damaged (a bad CRC, a cut stream) or it
cannot be read (an encrypted member raises RuntimeError, an unknown method
NotImplementedError)."""


def check_member(member: zipfile.ZipInfo, zip_path: Path | str) -> None:
    """Refuse a member that is unsafe to extract, unreadable, too large or a zip bomb.

    ``zip_path`` names the zip in messages (a URL for a download).

    Raises:
        DataError: naming the zip, the member and the reason.
    """
    name = member.filename.replace("\\", "/")
    shown = f"{zip_path}: member {member.filename!r}"
    if stat.S_ISLNK(member.external_attr >> 16):
        raise DataError(f"{shown} is a symbolic link; refused")
    normal = posixpath.normpath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"{shown} has an absolute path; refused")
    if normal == ".." or normal.startswith("../"):
        raise DataError(f"{shown} would be written outside the extraction folder; refused")
    if member.flag_bits & _ENCRYPTED_FLAG:
        raise DataError(f"{shown} is encrypted (password-protected); extract the zip yourself "
                        "and give the folder")
    if member.compress_type not in READABLE_METHODS:
        method = zipfile.compressor_names.get(member.compress_type,
                                              f"method {member.compress_type}")
        raise DataError(f"{shown} is compressed with {method}, which Python cannot read; "
                        "extract the zip with another tool (unzip, 7-Zip) and give the folder")
    check_size(shown, member.file_size, max_member_bytes(), MEMBER_BYTES_VARIABLE)
    ratio, expansion = max_compression_ratio(), member.file_size / max(member.compress_size, 1)
    if member.file_size > RATIO_FLOOR_BYTES and expansion > ratio:
        raise DataError(f"{shown} would expand {expansion:,.0f} times (from "
                        f"{format_bytes(member.compress_size)} to "
                        f"{format_bytes(member.file_size)}), as a zip bomb does; refused (set "
                        f"${RATIO_VARIABLE} above {ratio:g} if it is genuine)")


def check_archive(archive: zipfile.ZipFile, zip_path: Path | str) -> None:
    """:func:`check_member` for every member of an open archive."""
    for member in archive.infolist():
        check_member(member, zip_path)


def check_size(shown: str, size: int, limit: int, variable: str) -> None:
    """Refuse ``size`` bytes above ``limit``; ``shown`` names what holds them, ``variable``
    the environment variable that raises the limit."""
    if size > limit:
        raise DataError(f"{shown} is {format_bytes(size)}, above the limit of "
                        f"{format_bytes(limit)}; refused (set ${variable} higher if it is "
                        "genuine)")


@contextmanager
def member_errors(zip_path: Path, member: str) -> Iterator[None]:
    """Turn whatever reading ``member`` raises into one DataError naming the zip and it."""
    try:
        yield
    except KeyError:
        raise DataError(f"{zip_path}: has no {member}") from None
    except _READ_ERRORS as error:
        raise DataError(f"{zip_path}: cannot extract {member} "
                        f"({error or type(error).__name__})") from None


def read_member(archive: zipfile.ZipFile, member: str, zip_path: Path, limit: int,
                variable: str) -> bytes:
    """The bytes of ``member``, refused beyond ``limit`` bytes (declared or read), after
    :func:`check_member`."""
    shown = f"{zip_path}: member {member!r}"
    with member_errors(zip_path, member):
        info = archive.getinfo(member)
        check_member(info, zip_path)
        check_size(shown, info.file_size, limit, variable)
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    if len(data) > limit:
        raise longer_than(shown, limit, variable)
    return data


def copy_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, zip_path: Path,
                out: BinaryIO) -> None:
    """Copy a member checked by :func:`check_member` to ``out``, refusing it once more bytes
    than the limit have come, whatever its size says."""
    limit = max_member_bytes()
    copied = 0
    with member_errors(zip_path, member.filename), archive.open(member) as stream:
        while chunk := stream.read(_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise longer_than(f"{zip_path}: member {member.filename!r}", limit,
                                   MEMBER_BYTES_VARIABLE)
            out.write(chunk)


def longer_than(shown: str, limit: int, variable: str) -> DataError:
    """The error for a file or member that holds more bytes than the limit, whatever size it
    declared."""
    return DataError(f"{shown} holds more than {format_bytes(limit)}, the limit; refused (set "
                     f"${variable} higher if it is genuine)")
