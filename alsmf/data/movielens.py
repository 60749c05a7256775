"""MovieLens releases as GroupLens ships them, and the one entry point for loading ratings.

A release can be given as its extracted folder, a folder holding exactly one such folder, the
downloaded zip (its ratings file is extracted to a temporary folder that is removed after
reading), or the ratings file itself. The release is recognised by its ratings file
(``u.data``, ``ratings.dat`` or ``ratings.csv``) and, where two releases share a layout, by the
folder name or a neighbouring file, because the rating scale differs (ml-1m rates 1..5 in whole
stars, ml-10m in half stars).

ml-100k also ships the canonical cross-validation folds ``u1``..``u5`` (disjoint 80/20 splits)
and ``ua``/``ub`` (10 ratings per user held out); :func:`load_fold` reads one as a
(train, test) pair in one shared id space, so that results compare with published ones.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np

from alsmf.data.inputs import require_regular_file
from alsmf.data.layout import HEAD_BYTES, check_text_head
from alsmf.data.limits import format_bytes
from alsmf.data.ratings import DuplicatePolicy, Ratings
from alsmf.data.readers import read_table
from alsmf.data.zips import check_archive, check_member, copy_member, member_errors
from alsmf.errors import ConfigError, DataError


@dataclass(frozen=True)
class ReleaseFormat:
    """How a release's ratings file is laid out."""

    ratings_file: str
    sep: str
    header: bool
    scale: tuple[float, float]
    columns: tuple[str, str, str, str] = ("user", "item", "rating", "timestamp")
    """User, item, rating and timestamp column names (positional when there is no header)."""


_U_DATA = ReleaseFormat("u.data", "\t", header=False, scale=(1.0, 5.0))
_DAT_WHOLE_STARS = ReleaseFormat("ratings.dat", "::", header=False, scale=(1.0, 5.0))
_DAT_HALF_STARS = ReleaseFormat("ratings.dat", "::", header=False, scale=(0.5, 5.0))
_CSV = ReleaseFormat("ratings.csv", ",", header=True, scale=(0.5, 5.0),
                     columns=("userId", "movieId", "rating", "timestamp"))

RELEASE_FORMATS: dict[str, ReleaseFormat] = {
    "ml-100k": _U_DATA,
    "ml-1m": _DAT_WHOLE_STARS,
    "ml-10m": _DAT_HALF_STARS,
    "ml-20m": _CSV,
    "ml-25m": _CSV,
    "ml-32m": _CSV,
    "ml-latest": _CSV,
    "ml-latest-small": _CSV,
}
"""Release name -> layout of its ratings file."""

FOLDS: tuple[str, ...] = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
"""The train/test splits that ship with ml-100k (``<fold>.base`` and ``<fold>.test``)."""

_RATINGS_FILES = tuple(dict.fromkeys(f.ratings_file for f in RELEASE_FORMATS.values()))
_FOLDER_ALIASES = {"ml-10m100k": "ml-10m"}
_FOLD_FILE = re.compile(r"^u[1-5ab]\.(base|test)$")


@dataclass(frozen=True)
class ReleaseInfo:
    """A recognised release: its name, its layout and where its ratings file is.

    Attributes:
        name: release name, a key of :data:`RELEASE_FORMATS`.
        format: the layout of its ratings file.
        location: the release folder, or the zip file holding the release.
        member: the ratings file relative to ``location`` (inside a zip, the member name).
    """

    name: str
    format: ReleaseFormat
    location: Path
    member: str

    @property
    def in_zip(self) -> bool:
        return self.location.is_file()

    def sibling(self, file_name: str) -> str:
        """The member name of another file of the release (for example ``u1.base``)."""
        return str(PurePosixPath(self.member).with_name(file_name))


# ---------------------------------------------------------------------- detection
def detect_release(path: str | os.PathLike) -> ReleaseInfo:
    """Recognise a MovieLens release from its folder, parent folder, zip or ratings file.

    Raises:
        DataError: when the path is missing or is not laid out like any release, saying
            which files were expected.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _detect_in_folder(path)
    size = require_regular_file(path, str(path))
    if zipfile.is_zipfile(path):
        return _detect_in_zip(path)
    if size == 0:
        raise DataError(f"{path}: the file is empty")
    if _looks_like_zip(path):
        raise DataError(f"{path}: is a truncated or corrupt zip file (its central directory, "
                        "at the end of the file, is missing); download or copy it again")
    if path.name in _RATINGS_FILES or _FOLD_FILE.match(path.name):
        siblings = _names_in(path.parent)
        return _release(path.parent.name, path.name, siblings, path.parent, path.name)
    raise _not_a_release(path)


def _names_in(folder: Path) -> set[str]:
    """The names in a folder; a DataError when it cannot be listed (permission denied)."""
    try:
        return set(os.listdir(folder))
    except OSError as error:
        raise DataError(f"{folder}: cannot list the folder ({error.strerror or error})") from None


def _detect_in_folder(folder: Path) -> ReleaseInfo:
    names = _names_in(folder)
    ratings_file = _ratings_file_among(names)
    if ratings_file is not None:
        return _release(folder.name, ratings_file, names, folder, ratings_file)
    releases = [sub for sub in sorted(folder.iterdir())
                if sub.is_dir() and _ratings_file_among(_names_in(sub)) is not None]
    if len(releases) > 1:
        raise DataError(f"{folder}: holds several releases "
                        f"({', '.join(sub.name for sub in releases)}); give one of them")
    if not releases:
        raise _not_a_release(folder)
    return _detect_in_folder(releases[0])


def _detect_in_zip(path: Path) -> ReleaseInfo:
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path)
            names = [PurePosixPath(n) for n in archive.namelist() if not n.startswith("__MACOSX")]
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{path}: cannot read the zip file ({error})") from None
    members = [n for n in names if n.name in _RATINGS_FILES and len(n.parts) <= 2]
    if len(members) > 1:
        raise DataError(f"{path}: holds several releases "
                        f"({', '.join(map(str, members))}); give one of them")
    if not members:
        raise _not_a_release(path)
    member = members[0]
    siblings = {n.name for n in names if n.parent == member.parent}
    folder_name = member.parent.name or path.stem
    return _release(folder_name, member.name, siblings, path, str(member))


def _looks_like_zip(path: Path) -> bool:
    """Whether a file starts like a zip archive (a local file header)."""
    with path.open("rb") as stream:
        return stream.read(4) == b"PK\x03\x04"


def _ratings_file_among(names: set[str]) -> str | None:
    return next((f for f in _RATINGS_FILES if f in names), None)


def _release(folder_name: str, ratings_file: str, siblings: set[str], location: Path,
             member: str) -> ReleaseInfo:
    """Name the release from its folder name, or failing that from its files."""
    name = folder_name.lower()
    name = _FOLDER_ALIASES.get(name, name)
    if name not in RELEASE_FORMATS or RELEASE_FORMATS[name].ratings_file != ratings_file:
        name = _release_by_files(ratings_file, siblings)
    return ReleaseInfo(name, RELEASE_FORMATS[name], location, member)


def _release_by_files(ratings_file: str, siblings: set[str]) -> str:
    if ratings_file == "ratings.dat":
        return "ml-1m" if "users.dat" in siblings else "ml-10m"
    if ratings_file == "ratings.csv":
        return "ml-latest"
    return "ml-100k"


def _not_a_release(path: Path) -> DataError:
    by_file: dict[str, list[str]] = {}
    for name, layout in RELEASE_FORMATS.items():
        by_file.setdefault(layout.ratings_file, []).append(name)
    expected = ", ".join(f"{file} ({', '.join(names)})" for file, names in by_file.items())
    return DataError(f"{path}: not a MovieLens release: expected a folder or zip holding one of "
                     f"{expected}, or one of those files")


# ---------------------------------------------------------------------- loading
def load_movielens(path: str | os.PathLike, duplicates: DuplicatePolicy = "error",
                   timestamps: bool = True) -> Ratings:
    """All ratings of a release, with the release's rating scale.

    ``timestamps=False`` skips the timestamp column (8 bytes a rating: 160 MB of ML-20M) for
    uses that need no time order, such as a random split.
    """
    info = detect_release(path)
    return _read_member(info, info.member, duplicates, timestamps)


def load_fold(path: str | os.PathLike, name: str,
              duplicates: DuplicatePolicy = "error") -> tuple[Ratings, Ratings]:
    """One ml-100k fold (``u1``..``u5``, ``ua``, ``ub``) as (train, test) in one id space."""
    if name not in FOLDS:
        raise ConfigError(f"unknown fold {name!r}; choose one of {', '.join(FOLDS)}")
    return _fold(detect_release(path), name, duplicates)


def canonical_folds(path: str | os.PathLike,
                    duplicates: DuplicatePolicy = "error") -> list[tuple[Ratings, Ratings]]:
    """ml-100k's five disjoint 80/20 folds ``u1``..``u5``, in order, as (train, test) pairs."""
    info = detect_release(path)
    return [_fold(info, f"u{n}", duplicates) for n in range(1, 6)]


def load_ratings(source: Any, *, timestamps: bool = True, **options: Any) -> Ratings:
    """Load ratings from whatever the user has: the one entry point of the library.

    ``source`` may be a pandas DataFrame (read by :meth:`Ratings.from_frame`), a MovieLens
    release (folder, zip or ratings file, see :func:`detect_release`) or any CSV, TSV or
    Parquet file (read by :func:`read_table`). ``options`` go to the reader; for a MovieLens
    release only ``duplicates`` applies, since the release fixes its own layout and scale.
    ``timestamps=False`` leaves the timestamp column unread (memory, when no split by time or
    "latest rating wins" needs it).
    """
    pandas = sys.modules.get("pandas")  # a DataFrame exists only once pandas is imported
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return Ratings.from_frame(source, **options)
    path = Path(source)
    if path.exists() and not path.is_dir():
        require_regular_file(path, str(path))  # before the format is told from its bytes
    if path.is_dir() or (path.is_file() and (zipfile.is_zipfile(path) or _is_release_file(path))):
        return load_movielens(path, options.get("duplicates", "error"), timestamps)
    return read_table(path, timestamps=timestamps, **options)


def _is_release_file(path: Path) -> bool:
    """Whether a file is a release's ratings file (a ``ratings.csv`` needs MovieLens columns)."""
    if path.name == "ratings.csv":
        header = b"userId,movieId,rating"
        with path.open("rb") as stream:  # the header's length, not a whole first line
            return stream.read(3 + len(header)).lstrip(b"\xef\xbb\xbf").startswith(header)
    return path.name in _RATINGS_FILES or bool(_FOLD_FILE.match(path.name))


def _fold(info: ReleaseInfo, name: str, duplicates: DuplicatePolicy) -> tuple[Ratings, Ratings]:
    if info.name != "ml-100k":
        raise DataError(f"{info.location}: is {info.name}; the folds {', '.join(FOLDS)} "
                        "ship with ml-100k only")
    train = _read_member(info, info.sibling(f"{name}.base"), duplicates)
    test = _read_member(info, info.sibling(f"{name}.test"), duplicates)
    return _share_id_map(train, test)


def _share_id_map(train: Ratings, test: Ratings) -> tuple[Ratings, Ratings]:
    """Rebuild train and test from one concatenated array so they share one id space."""
    n_train = len(train)

    def row_label(row: int) -> str:
        return (f"row {row + 1} of {train.source}" if row < n_train
                else f"row {row - n_train + 1} of {test.source}")

    def raw(ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
        return ratings.user_ids[ratings.users], ratings.item_ids[ratings.items]

    (train_users, train_items), (test_users, test_items) = raw(train), raw(test)
    timestamps = None
    if train.timestamps is not None and test.timestamps is not None:
        timestamps = np.concatenate([train.timestamps, test.timestamps])
    both = Ratings.from_arrays(
        np.concatenate([train_users, test_users]), np.concatenate([train_items, test_items]),
        np.concatenate([train.values, test.values]), timestamps,
        source=f"{train.source} + {test.source}", scale=train.scale, row_label=row_label,
    )
    rows = np.arange(len(both))
    return (replace(both.subset(rows[:n_train]), source=train.source),
            replace(both.subset(rows[n_train:]), source=test.source))


def _read_member(info: ReleaseInfo, member: str, duplicates: DuplicatePolicy,
                 timestamps: bool = True) -> Ratings:
    layout = info.format
    user_col, item_col, rating_col, timestamp_col = layout.columns
    with _local_file(info, member) as (path, source):
        return read_table(path, sep=layout.sep, header=layout.header, user_col=user_col,
                          item_col=item_col, rating_col=rating_col, timestamp_col=timestamp_col,
                          timestamps=timestamps, scale=layout.scale, duplicates=duplicates,
                          source=source)


@contextmanager
def _local_file(info: ReleaseInfo, member: str) -> Iterator[tuple[Path, str]]:
    """A readable path for a release file and its name for messages.

    A zip member is copied into a temporary folder that is removed on exit, error or not.
    Before a byte is written the member is checked (:func:`~alsmf.data.zips.check_member`:
    size, compression ratio, encryption), its first bytes are checked to be text, and the
    temporary folder's disk is checked to have room for it, so that a member refused anyway
    is never written out.
    """
    if not info.in_zip:
        path = info.location / member
        yield path, str(path)
        return
    source = f"{info.location}:{member}"
    with tempfile.TemporaryDirectory(prefix="alsmf-") as folder:
        target = Path(folder) / PurePosixPath(member).name
        with member_errors(info.location, member), zipfile.ZipFile(info.location) as archive:
            entry = archive.getinfo(member)
            check_member(entry, info.location)
            with archive.open(entry) as stream:
                check_text_head(stream.read(HEAD_BYTES), source)
            free = shutil.disk_usage(folder).free
            if entry.file_size > free:
                raise DataError(f"{info.location}: cannot extract {member} "
                                f"({format_bytes(entry.file_size)}) to {tempfile.gettempdir()}: "
                                f"only {format_bytes(free)} free there; point $TMPDIR at a "
                                "disk with more room")
            with target.open("wb") as out:
                copy_member(archive, entry, info.location, out)
        yield target, source
