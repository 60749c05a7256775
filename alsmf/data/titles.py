"""Movie titles and genres of a MovieLens release, and looking movies up by title.

Each release ships a movies file next to its ratings: ``u.item`` in ml-100k (pipe-separated,
Latin-1, one 0/1 flag per genre, the genre names in ``u.genre``), ``movies.dat`` in ml-1m and
ml-10m (``id::title::genres``; ml-1m is Latin-1, ml-10m UTF-8) and ``movies.csv`` from ml-20m
on (a CSV with a ``movieId,title,genres`` header, titles quoted where they hold commas, UTF-8).
:func:`read_titles` reads any of them into one table; :func:`find_items` finds the rows of
such a table whose title matches what a user typed. A trained model's items are looked up the
same way, by id or title, through :class:`alsmf.catalog.ItemCatalog`.

Files are decoded as UTF-8 and, on the lines where that fails, as Latin-1, which maps every
byte to a character, so no file's encoding makes the reader crash.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from typing import TYPE_CHECKING

from alsmf.data.inputs import require_regular_file
from alsmf.data.limits import TITLES_BYTES_VARIABLE, max_titles_bytes
from alsmf.data.movielens import ReleaseInfo, detect_release
from alsmf.data.zips import check_size, longer_than, member_errors, read_member
from alsmf.errors import DataError

if TYPE_CHECKING:  # imported where a table is made: the train command needs it only for titles
    import pandas as pd

GENRES_100K: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)
"""The genre names of ml-100k, in the order of the flags in ``u.item`` (used without u.genre)."""

MOVIES_FILES: dict[str, str] = {
    "u.data": "u.item",
    "ratings.dat": "movies.dat",
    "ratings.csv": "movies.csv",
}
"""Ratings file of a release -> its movies file."""

NO_GENRES = "(no genres listed)"
COLUMNS = ("item", "title", "genres")
_U_ITEM_FIXED = 5  # id | title | release date | video release date | IMDb url


# ---------------------------------------------------------------------- reading
def read_titles(path: str | os.PathLike) -> pd.DataFrame | None:
    """The movies of the MovieLens release at ``path``, or None when it has no movies file.

    ``path`` is anything :func:`~alsmf.data.movielens.detect_release` accepts: the release
    folder, a folder holding it, the zip, or the ratings file.

    Returns:
        A DataFrame with columns ``item`` (int64, the raw movie id used in the ratings),
        ``title`` (str) and ``genres`` (str, the genre names joined by ``|``, empty when the
        movie has none), in file order.

    Raises:
        DataError: when the release cannot be recognised, or its movies file is malformed
            (the message names the file and the line).
    """
    info = detect_release(path)
    file_name = MOVIES_FILES[info.format.ratings_file]
    found = _read_member(info, file_name)
    if found is None:
        return None
    data, source = found
    text = _decode(data)
    if file_name == "u.item":
        genre_file = _read_member(info, "u.genre")
        names = (_parse_u_genre(_decode(genre_file[0]), genre_file[1]) if genre_file is not None
                 else list(GENRES_100K))
        rows = _parse_u_item(text, source, names)
    elif file_name == "movies.dat":
        rows = _parse_movies_dat(text, source)
    else:
        rows = _parse_movies_csv(text, source)
    return _frame(rows, source)


def _read_member(info: ReleaseInfo, file_name: str) -> tuple[bytes, str] | None:
    """The bytes of a release file and its name for messages, or None when it is absent.

    The file is read whole, so it is refused beyond
    :func:`~alsmf.data.limits.max_titles_bytes`, by its size and by what is read.
    """
    member = info.sibling(file_name)
    limit = max_titles_bytes()
    if not info.in_zip:
        path = info.location / member
        if not path.is_file():
            return None
        check_size(str(path), require_regular_file(path, str(path)), limit,
                   TITLES_BYTES_VARIABLE)
        try:
            with path.open("rb") as stream:
                data = stream.read(limit + 1)
        except OSError as error:
            raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
        if len(data) > limit:  # it grew since its size was taken
            raise longer_than(str(path), limit, TITLES_BYTES_VARIABLE)
        return data, str(path)
    with member_errors(info.location, member), zipfile.ZipFile(info.location) as archive:
        if member not in archive.namelist():
            return None
        data = read_member(archive, member, info.location, limit, TITLES_BYTES_VARIABLE)
    return data, f"{info.location}:{member}"


def _decode(data: bytes) -> str:
    """UTF-8 (a byte-order mark dropped), line by line Latin-1 where a line is not UTF-8.

    Decoding line by line keeps the UTF-8 titles of a file right when only some of its lines
    hold other bytes (a file edited with another encoding); a wholly Latin-1 file such as
    ml-100k's ``u.item`` decodes the same either way.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = []
    for line in data.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("latin-1"))
    return "\n".join(lines)


def _lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) for each non-blank line."""
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), 1)
            if line.strip()]


def _parse_id(value: str, source: str, line: int) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise DataError(f"{source}: line {line}: movie id {value.strip()!r} is not an "
                        "integer") from None


def _parse_u_genre(text: str, source: str) -> list[str]:
    """ml-100k's ``u.genre`` (``name|index`` lines) as names in index order."""
    by_index: dict[int, str] = {}
    for number, line in _lines(text):
        name, sep, index = line.rpartition("|")
        if not sep or not index.strip().isdigit():
            raise DataError(f"{source}: line {number}: expected 'genre|index', got {line!r}")
        by_index[int(index)] = name.strip()
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError(f"{source}: genre indices are not 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def _parse_u_item(text: str, source: str, genres: list[str]) -> list[tuple[int, str, str]]:
    expected = _U_ITEM_FIXED + len(genres)
    rows = []
    for number, line in _lines(text):
        fields = line.split("|")
        if len(fields) != expected:
            raise DataError(f"{source}: line {number}: expected {expected} '|'-separated "
                            f"fields (id, title, dates, url and {len(genres)} genre flags), "
                            f"found {len(fields)}")
        flags = [f.strip() for f in fields[_U_ITEM_FIXED:]]
        bad = next((f for f in flags if f not in ("0", "1")), None)
        if bad is not None:
            raise DataError(f"{source}: line {number}: genre flag {bad!r} is not 0 or 1")
        names = "|".join(name for name, flag in zip(genres, flags) if flag == "1")
        rows.append((_parse_id(fields[0], source, number), fields[1].strip(), names))
    return rows


def _parse_movies_dat(text: str, source: str) -> list[tuple[int, str, str]]:
    rows = []
    for number, line in _lines(text):
        if line.count("::") < 2:
            raise DataError(f"{source}: line {number}: expected 'id::title::genres', "
                            f"got {line!r}")
        movie_id, rest = line.split("::", 1)
        title, genres = rest.rsplit("::", 1)
        rows.append((_parse_id(movie_id, source, number), title.strip(), _genres(genres)))
    return rows


def _parse_movies_csv(text: str, source: str) -> list[tuple[int, str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        header = next(reader, None)
        if header is None:
            return rows
        if [h.strip() for h in header[:3]] != ["movieId", "title", "genres"]:
            raise DataError(f"{source}: line 1: expected the header 'movieId,title,genres', "
                            f"got {','.join(header)!r}")
        for fields in reader:
            number = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataError(f"{source}: line {number}: expected {len(header)} "
                                f"comma-separated fields (quote titles that hold commas), "
                                f"found {len(fields)}")
            rows.append((_parse_id(fields[0], source, number), fields[1].strip(),
                         _genres(fields[2])))
    except csv.Error as error:
        raise DataError(f"{source}: line {reader.line_num}: {error}") from None
    return rows


def _genres(value: str) -> str:
    value = value.strip()
    if value == NO_GENRES:
        return ""
    return "|".join(g.strip() for g in value.split("|") if g.strip())


def _frame(rows: list[tuple[int, str, str]], source: str) -> pd.DataFrame:
    seen: set[int] = set()
    for movie_id, _, _ in rows:
        if movie_id in seen:
            raise DataError(f"{source}: movie id {movie_id} appears more than once")
        seen.add(movie_id)
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"item": "int64", "title": object, "genres": object})


# ---------------------------------------------------------------------- lookup
def find_items(titles: pd.DataFrame, query: str) -> pd.DataFrame:
    """The movies of ``titles`` (as from :func:`read_titles`) that ``query`` names.

    In order of precedence: a query that is an integer and a movie id gives just that movie;
    a query equal to a whole title (ignoring case and surrounding spaces) gives just that
    movie; otherwise every movie whose title contains the query, ignoring case, in table
    order. An empty query or no match gives an empty table. The index is reset.
    """
    wanted = str(query).strip()
    if not wanted:
        return titles.iloc[:0].reset_index(drop=True)
    try:
        movie_id = int(wanted)
    except ValueError:
        movie_id = None
    if movie_id is not None:
        by_id = titles[titles["item"] == movie_id]
        if len(by_id):
            return by_id.iloc[:1].reset_index(drop=True)
    folded = titles["title"].astype(str).str.strip().str.casefold()
    key = wanted.casefold()
    exact = titles[folded == key]
    if len(exact):
        return exact.iloc[:1].reset_index(drop=True)
    contains = folded.str.contains(key, regex=False)
    return titles[contains].reset_index(drop=True)
