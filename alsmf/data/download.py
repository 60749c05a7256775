"""Fetch a MovieLens release from GroupLens into a local cache folder, safely.

A release is downloaded once: the zip streams into a temporary file in the cache folder while
its MD5 is computed, and only a zip whose digest matches the one GroupLens publishes next to it
(``<zip>.md5``) is renamed to its final name. The zip is then extracted into a temporary
sibling folder and renamed into place, so an interrupted download or extraction never leaves a
partial release that a later call would mistake for a complete one.

Extraction refuses members that could write outside the cache folder (absolute paths, ``..``
that escapes it, symbolic links), that Python cannot read (encrypted, deflate64) and zip bombs
(:func:`alsmf.data.zips.check_member`), because a mirror given with ``base_url`` need not be
trusted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from alsmf.data.zips import check_archive
from alsmf.errors import DataError, DownloadError

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens/"
"""Where GroupLens publishes the MovieLens zips and their ``.md5`` files."""

RELEASES: dict[str, str] = {
    "ml-100k": "ml-100k.zip",
    "ml-1m": "ml-1m.zip",
    "ml-10m": "ml-10m.zip",
    "ml-20m": "ml-20m.zip",
    "ml-25m": "ml-25m.zip",
    "ml-32m": "ml-32m.zip",
    "ml-latest": "ml-latest.zip",
    "ml-latest-small": "ml-latest-small.zip",
}
"""Release name -> zip file name on the GroupLens server."""

_FOLDERS: dict[str, str] = {"ml-10m": "ml-10M100K"}
"""Releases whose zip extracts to a folder not named like the zip."""

TIMEOUT_S = 60.0
"""Seconds without any network progress before a request is abandoned."""

_CHUNK = 1 << 20
_NETWORK_ERRORS = (OSError, http.client.HTTPException)
"""What a read from an open connection raises (timeouts, resets, TLS errors, short bodies)."""
_MD5_PATTERN = re.compile(r"\b([0-9a-fA-F]{32})\b")

Progress = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, total_bytes_or_None)`` while a zip downloads."""


def default_cache_dir() -> Path:
    """The cache folder: ``$ALSMF_DATA``, else ``$XDG_CACHE_HOME/alsmf``, else ``~/.cache/alsmf``.

    Empty variables count as unset, as the XDG specification asks.
    """
    explicit = os.environ.get("ALSMF_DATA")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "alsmf"
    return Path.home() / ".cache" / "alsmf"


def download_release(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Download, verify and extract a MovieLens release; return the folder holding its ratings.

    Args:
        name: a key of :data:`RELEASES`, e.g. ``"ml-100k"``.
        cache_dir: where zips and releases are kept; default :func:`default_cache_dir`.
        base_url: server folder holding the zips; default ``$ALSMF_MOVIELENS_URL``, else
            :data:`DEFAULT_BASE_URL`.
        progress: called with ``(bytes_done, total_or_None)`` as the zip arrives.
        force: download and extract again even if the release is already in the cache.

    Returns:
        The extracted release folder, e.g. ``<cache>/ml-100k``. When it already exists (and
        ``force`` is false) it is returned without any network access.

    Raises:
        DataError: unknown release name, or a zip that is corrupt or has unsafe members.
        DownloadError: the server could not be reached or answered with an error, the
            zip's MD5 differs from the published one, or the cache folder cannot be written.
    """
    zip_name = _zip_name(name)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache / _FOLDERS.get(name, zip_name.removesuffix(".zip"))
    zip_path = cache / zip_name
    if folder.is_dir() and not force:
        return folder
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if force or not zip_path.is_file():
            # Only a verified zip ever gets its final name, so an existing one can be reused.
            zip_url = _base_url(base_url) + zip_name
            expected = _published_md5(zip_url + ".md5")
            _download_verified(zip_url, zip_path, expected, progress)
        return safe_extract(zip_path, cache)
    except OSError as error:
        # Network failures are DownloadErrors already; what is left is the local disk.
        raise DownloadError(
            f"{cache}: cannot write to the cache folder ({error.strerror or error}); "
            "choose another one with cache_dir or $ALSMF_DATA"
        ) from None


def safe_extract(zip_path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a zip into ``dest`` all at once and return the top-level folder it created.

    Every member is checked before anything is written: absolute paths, paths whose ``..``
    escape ``dest`` and symbolic links are refused. The members are extracted into a
    temporary folder inside ``dest`` and renamed into place, replacing an older copy, so a
    crash never leaves a half-extracted release. A zip whose members do not share one
    top-level folder is extracted into a folder named after the zip.

    Raises:
        DataError: naming the zip, when it is missing, truncated or corrupt or has a refused
            member (:func:`~alsmf.data.zips.check_member`).
    """
    zip_path = Path(zip_path)
    dest = Path(dest)
    if not zip_path.is_file():
        raise DataError(f"{zip_path}: no such zip file")
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{zip_path.stem}.", suffix=".extracting", dir=dest))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = archive.infolist()
                check_archive(archive, zip_path)
                archive.extractall(staging)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            raise DataError(f"{zip_path}: truncated or corrupt zip file ({error})") from None
        top = _single_top_folder(members)
        source = staging / top if top is not None else staging
        final = dest / (top if top is not None else zip_path.stem)
        _replace_folder(source, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------- helpers
def _zip_name(name: str) -> str:
    """The zip file of a release, or a DataError listing the known releases."""
    try:
        return RELEASES[name]
    except KeyError:
        raise DataError(
            f"unknown MovieLens release {name!r}; known releases are {', '.join(RELEASES)}"
        ) from None


def _base_url(base_url: str | None) -> str:
    """The server folder to download from, always ending in ``/``."""
    url = base_url or os.environ.get("ALSMF_MOVIELENS_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def _open(url: str) -> http.client.HTTPResponse:
    """Open a URL, turning every network failure into a DownloadError naming it."""
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadError(f"{url}: {error.reason}") from None
    except ValueError as error:
        raise DownloadError(f"{url}: not a URL that can be downloaded ({error})") from None
    except _NETWORK_ERRORS as error:
        raise DownloadError(f"{url}: {error or type(error).__name__}") from None


def _read(url: str, response: http.client.HTTPResponse, size: int) -> bytes:
    """Up to ``size`` bytes of the body, turning a failed read into a DownloadError."""
    try:
        return response.read(size)
    except _NETWORK_ERRORS as error:
        raise DownloadError(f"{url}: {error or type(error).__name__}") from None


def _published_md5(url: str) -> str:
    """The hex digest in a checksum file, as written by ``md5`` or ``md5sum``."""
    with _open(url) as response:
        text = _read(url, response, 64 * 1024).decode("utf-8", errors="replace")
    match = _MD5_PATTERN.search(text)
    if match is None:
        raise DownloadError(f"{url}: no MD5 digest found in the checksum file")
    return match.group(1).lower()


def _download_verified(url: str, zip_path: Path, expected_md5: str,
                       progress: Progress | None) -> None:
    """Stream ``url`` to a temporary file, check its MD5 and rename it to ``zip_path``.

    The temporary file is removed on any failure, including an interrupt.
    """
    part = tempfile.NamedTemporaryFile(
        dir=zip_path.parent, prefix=f".{zip_path.name}.", suffix=".part", delete=False
    )
    try:
        with part, _open(url) as response:
            actual_md5 = _stream(url, response, part, progress)
        if actual_md5 != expected_md5:
            raise DownloadError(
                f"{url}: checksum mismatch, expected MD5 {expected_md5} but got {actual_md5}"
            )
        os.replace(part.name, zip_path)
    except BaseException:
        Path(part.name).unlink(missing_ok=True)
        raise


def _stream(url: str, response: http.client.HTTPResponse, out,
            progress: Progress | None) -> str:
    """Copy the response body to ``out`` in chunks; return its MD5 hex digest."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    while chunk := _read(url, response, _CHUNK):
        out.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    if total is not None and done != total:
        raise DownloadError(f"{url}: connection closed after {done:,} of {total:,} bytes")
    return digest.hexdigest()


def _single_top_folder(members: list[zipfile.ZipInfo]) -> str | None:
    """The one folder every member lies in, or None when there is no such folder."""
    tops = set()
    for member in members:
        parts = posixpath.normpath(member.filename.replace("\\", "/")).split("/")
        if len(parts) == 1 and not member.is_dir():
            return None
        tops.add(parts[0])
    return tops.pop() if len(tops) == 1 else None


def _replace_folder(source: Path, final: Path) -> None:
    """Rename ``source`` to ``final``, moving an existing ``final`` aside and deleting it."""
    if not final.exists():
        os.replace(source, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    try:
        os.replace(final, old / final.name)
        try:
            os.replace(source, final)
        except BaseException:
            os.replace(old / final.name, final)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
