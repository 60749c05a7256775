"""Fetch a MovieLens release from GroupLens into a local cache folder, safely.

A release is downloaded once: the zip streams into a temporary ``.part`` file in the cache
folder while its MD5 is computed, and only a zip whose digest matches the one GroupLens
publishes next to it (``<zip>.md5``) and whose members pass the checks of
:func:`alsmf.data.zips.check_member` is renamed to its final name. The zip is then extracted
into a temporary sibling folder and renamed into place, so an interrupted download or
extraction never leaves a partial release that a later call would mistake for a complete one.

Extraction refuses members that could write outside the cache folder (absolute paths, ``..``
that escapes it, symbolic links), that Python cannot read (encrypted, deflate64) and zip
bombs (members above the size limit, or that expand far more than real data), because a mirror
given with ``base_url`` need not be trusted and a matching MD5 only says the file is the one
published.

A stalled server cannot hang a download: every read waits at most :data:`TIMEOUT_S`, and the
whole download must end by a deadline (:func:`alsmf.data.limits.download_deadline_s`). A
download that fails removes its ``.part`` file; one that was killed leaves it locked by no
one, and the next download of that release removes it.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import posixpath
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

from alsmf.data.limits import DEADLINE_VARIABLE, download_deadline_s
from alsmf.data.zips import check_archive
from alsmf.errors import ConfigError, DataError, DownloadError

try:
    import fcntl
except ImportError:  # Windows has no advisory locks: killed downloads' parts stay there
    fcntl = None

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
"""Seconds without any network progress before a request is abandoned (less when the
deadline is nearer)."""

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
    deadline_s: float | None = None,
) -> Path:
    """Download, verify and extract a MovieLens release; return the folder holding its ratings.

    Args:
        name: a key of :data:`RELEASES`, e.g. ``"ml-100k"``.
        cache_dir: where zips and releases are kept; default :func:`default_cache_dir`.
        base_url: server folder holding the zips; default ``$ALSMF_MOVIELENS_URL``, else
            :data:`DEFAULT_BASE_URL`.
        progress: called with ``(bytes_done, total_or_None)`` as the zip arrives.
        force: download and extract again even if the release is already in the cache.
        deadline_s: seconds the download may take in all (checksum file included); default
            ``$ALSMF_DOWNLOAD_DEADLINE``, else 1800.

    Returns:
        The extracted release folder, e.g. ``<cache>/ml-100k``. When it already exists (and
        ``force`` is false) it is returned without any network access.

    Raises:
        DataError: unknown release name, or a zip that is corrupt or has refused members (a
            corrupt zip already in the cache is named, with what to do about it).
        DownloadError: the server could not be reached or answered with an error, the
            download passed its deadline, the zip's MD5 differs from the published one, or
            the cache folder cannot be written.
    """
    zip_name = _zip_name(name)
    if deadline_s is not None and not 0 < deadline_s < math.inf:
        raise ConfigError(f"the download deadline must be a number of seconds above 0, got "
                          f"{deadline_s:g}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache / _FOLDERS.get(name, zip_name.removesuffix(".zip"))
    zip_path = cache / zip_name
    if folder.is_dir() and not force:
        return folder
    deadline = _Deadline(download_deadline_s() if deadline_s is None else deadline_s)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if force or not zip_path.is_file():
            # Only a verified zip ever gets its final name, so an existing one can be reused.
            _remove_stale_parts(zip_path)
            zip_url = _base_url(base_url) + zip_name
            expected = _published_md5(zip_url + ".md5", deadline)
            _download_verified(zip_url, zip_path, expected, progress, deadline)
            return safe_extract(zip_path, cache)
        return _extract(zip_path, cache, "delete it or rerun with --force")
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
    return _extract(Path(zip_path), Path(dest), "download or copy it again")


def _extract(zip_path: Path, dest: Path, again: str) -> Path:
    """:func:`safe_extract`, saying ``again`` (what to do) about a corrupt zip."""
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
            raise DataError(f"{zip_path}: truncated or corrupt zip file ({error}); "
                            f"{again}") from None
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


class _Deadline:
    """When a download must be over, and how long each network wait may be until then."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def timeout(self, url: str) -> float:
        """Seconds the next connection or read may wait: :data:`TIMEOUT_S`, or less when
        the deadline is nearer; a DownloadError once it has passed."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise DownloadError(
                f"{url}: not finished after {self.seconds:g} s, the deadline; give more with "
                f"--deadline or ${DEADLINE_VARIABLE} (seconds)")
        return min(TIMEOUT_S, left)


def _open(url: str, deadline: _Deadline) -> http.client.HTTPResponse:
    """Open a URL, turning every network failure into a DownloadError naming it.

    Each later read of the response waits at most the timeout set here, so the deadline is
    overrun by at most that long (the reads check it between them).
    """
    try:
        return urllib.request.urlopen(url, timeout=deadline.timeout(url))
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        deadline.timeout(url)  # a connection that ran into the deadline says so
        raise DownloadError(f"{url}: {error.reason}") from None
    except ValueError as error:
        raise DownloadError(f"{url}: not a URL that can be downloaded ({error})") from None
    except _NETWORK_ERRORS as error:
        deadline.timeout(url)
        raise DownloadError(f"{url}: {error or type(error).__name__}") from None


def _read(url: str, response: http.client.HTTPResponse, size: int,
          deadline: _Deadline) -> bytes:
    """What the body has ready, up to ``size`` bytes (one wait on the network, not as many
    as filling ``size`` takes), turning a failed read or a passed deadline into a
    DownloadError."""
    deadline.timeout(url)
    try:
        return response.read1(size)
    except _NETWORK_ERRORS as error:
        deadline.timeout(url)  # a read cut short by the deadline says so
        raise DownloadError(f"{url}: {error or type(error).__name__}") from None


def _published_md5(url: str, deadline: _Deadline) -> str:
    """The hex digest in a checksum file, as written by ``md5`` or ``md5sum``."""
    with _open(url, deadline) as response:
        body = b""
        while len(body) < 64 * 1024 and (chunk := _read(url, response, 64 * 1024, deadline)):
            body += chunk
    text = body.decode("utf-8", errors="replace")
    match = _MD5_PATTERN.search(text)
    if match is None:
        raise DownloadError(f"{url}: no MD5 digest found in the checksum file")
    return match.group(1).lower()


def _download_verified(url: str, zip_path: Path, expected_md5: str,
                       progress: Progress | None, deadline: _Deadline) -> None:
    """Stream ``url`` to a ``.part`` file, check its MD5 and members, and rename it to
    ``zip_path``.

    The part file is locked while it is written (see :func:`_remove_stale_parts`) and
    removed on any failure, including an interrupt.
    """
    part = tempfile.NamedTemporaryFile(
        dir=zip_path.parent, prefix=f".{zip_path.name}.", suffix=".part", delete=False
    )
    try:
        with part:  # locked until renamed, so that no other download takes it for stale
            if fcntl is not None:
                fcntl.flock(part.fileno(), fcntl.LOCK_EX)
            with _open(url, deadline) as response:
                actual_md5 = _stream(url, response, part, progress, deadline)
            if actual_md5 != expected_md5:
                raise DownloadError(f"{url}: checksum mismatch, expected MD5 {expected_md5} "
                                    f"but got {actual_md5}")
            part.flush()
            _check_download(url, Path(part.name))
            os.replace(part.name, zip_path)
    except BaseException:
        Path(part.name).unlink(missing_ok=True)
        raise


def _check_download(url: str, part: Path) -> None:
    """Refuse a download that is no readable zip or has a member a later read would refuse,
    so that no such file is ever kept under the zip's name."""
    try:
        with zipfile.ZipFile(part) as archive:
            check_archive(archive, url)
    except zipfile.BadZipFile as error:
        raise DataError(f"{url}: the download is not a readable zip file ({error}); nothing "
                        "was kept") from None


def _remove_stale_parts(zip_path: Path) -> None:
    """Remove the ``.part`` files that killed downloads of this zip left behind.

    A download holds a lock on its part file while it writes it, and the system releases the
    lock when the process ends, however it ends: a part file that can be locked belongs to
    no running download.
    """
    if fcntl is None:
        return
    for part in zip_path.parent.glob(f".{zip_path.name}.*.part"):
        try:
            with part.open("rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                part.unlink()
        except BlockingIOError:
            continue  # another download is writing it
        except FileNotFoundError:
            continue  # it finished or failed meanwhile


def _stream(url: str, response: http.client.HTTPResponse, out: BinaryIO,
            progress: Progress | None, deadline: _Deadline) -> str:
    """Copy the response body to ``out`` in chunks; return its MD5 hex digest."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    while chunk := _read(url, response, _CHUNK, deadline):
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
