"""How a ratings table is laid out: which columns are which; for a delimited file also its
delimiter, header, field names and line numbers.

Columns a caller does not name are recognised by their header names (``userId``,
``movie_id``, ``score``, ...; :data:`RECOGNISED_NAMES`), so common exports read as they are.
A delimited file's layout is sniffed from the first non-empty line, so that both parsers
(the fast numeric one of :mod:`alsmf.data.fastcsv` and Arrow's,
:mod:`alsmf.data.arrow_readers`) read the same columns, and messages can name the line of a
row without either parser counting lines.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Literal, get_args

from alsmf.data.limits import MAX_LINE_BYTES, format_bytes
from alsmf.errors import ConfigError, DataError

SEPARATORS: tuple[str, ...] = ("::", "\t", ",", ";")
"""Delimiters recognised by sniffing, in the order they are tried on the first line."""

_ZIP_MAGIC = b"PK\x03\x04"
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
              (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
HEAD_BYTES = 1 << 16
"""Bytes at the start and at the end of a file that are checked for signs that it is not
text: a zip's signature, a UTF-16 or UTF-32 byte-order mark, NUL bytes (the end too, since a
file extended with zeros, by a crash or an unfinished download, starts like any other)."""
_SCAN_BYTES = 1 << 20
"""Bytes read at a time while looking for the first non-blank line."""


Feedback = Literal["explicit", "implicit"]
"""What a table records: ``"explicit"`` ratings (the rating column is required), or
``"implicit"`` feedback, (user, item) pairs that were used, where a count or weight column is
optional."""

FEEDBACK_KINDS: tuple[str, ...] = get_args(Feedback)

RECOGNISED_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "user_id"),
    "item": ("item", "itemid", "item_id", "movie", "movieid", "movie_id"),
    "rating": ("rating", "score", "value"),
    "timestamp": ("timestamp", "time", "ts"),
}
"""The header names a column is recognised by when the caller does not name it, compared
without regard to case: alsmf's own names, MovieLens' (``userId``, ``movieId``) and the usual
variants (``user_id``, ``UserID``)."""

WEIGHT_NAMES: tuple[str, ...] = ("count", "weight", "plays", "clicks", "value", "rating")
"""The names the optional count or weight column of implicit feedback is recognised by."""

_ROLES = ("user", "item", "rating", "timestamp")
_WHAT = {"user": "user id", "item": "item id", "rating": "rating", "timestamp": "timestamp"}


@dataclass(frozen=True)
class Columns:
    """The columns wanted from a table and how each is described in messages.

    Each of ``user``, ``item``, ``rating`` and ``timestamp`` is the column's name as the
    caller gave it, or ``None``: then the header's column of one of the
    :data:`RECOGNISED_NAMES` (:data:`WEIGHT_NAMES` for the rating of implicit feedback) is
    used. A name given is matched exactly and always wins.
    """

    user: str | None = None
    item: str | None = None
    rating: str | None = None
    timestamp: str | None = None
    timestamps: bool = True
    """Whether to read the timestamp column, where there is one."""
    feedback: Feedback = "explicit"
    """``"implicit"``: the rating column (a count or weight) may be absent."""

    def __post_init__(self) -> None:
        if self.feedback not in FEEDBACK_KINDS:
            raise ConfigError(f"unknown feedback {self.feedback!r}; choose one of "
                              f"{', '.join(FEEDBACK_KINDS)}")
        given = [(role, getattr(self, role)) for role in _ROLES if getattr(self, role)]
        if len({column for _, column in given}) < len(given):
            raise ConfigError("one column cannot be two of user, item, rating and timestamp: "
                              + ", ".join(f"{role} {column!r}" for role, column in given))

    def positional(self, n_fields: int) -> list[str]:
        """The names of a headerless file's fields, which are in the order user, item,
        rating (optional for implicit feedback) and timestamp; fields after those are
        ignored."""
        names = [getattr(self, role) or role for role in _ROLES]
        return names[:n_fields] + [f"__extra{n}__" for n in range(len(names), n_fields)]

    def found_in(self, present: list[str], name: str, listing: str) -> dict[str, str]:
        """Column name -> description ("user id", "item id", "rating", "timestamp") of the
        columns to read among ``present``, in that order; a DataError naming what is missing
        or ambiguous.

        ``listing`` introduces the columns there are in the message, for example
        ``"the header (line 1) has"``. The user and item columns are always required, the
        rating for explicit feedback or when named; the timestamp is read when present and
        wanted.
        """
        given = {role: getattr(self, role) for role in _ROLES if getattr(self, role)}
        wanted: dict[str, str] = {}
        missing: list[str] = []
        for role in _ROLES:
            if role == "timestamp" and not self.timestamps:
                continue
            column = given.get(role)
            if column is None:
                column = self._recognised(role, present, set(given.values()), name)
            elif column not in present:
                column = None
            if column is not None:
                wanted[column] = _WHAT[role]
            elif role != "timestamp" and (self.feedback == "explicit" or role in given):
                missing.append(given.get(role, role))
        if missing:
            hint = ""
            if self.feedback == "explicit" and missing == [given.get("rating", "rating")]:
                hint = (" (pairs without ratings are implicit feedback: alsmf train --feedback "
                        "implicit)")
            raise DataError(f"{name}: missing column(s) {', '.join(map(repr, missing))}; "
                            f"{listing} {', '.join(map(repr, present))}{hint}")
        return wanted

    def _recognised(self, role: str, present: list[str], taken: set[str],
                    name: str) -> str | None:
        """The one column of ``present`` recognised for ``role`` (none of ``taken``), or None;
        a DataError when two are."""
        names = (WEIGHT_NAMES if role == "rating" and self.feedback == "implicit"
                 else RECOGNISED_NAMES[role])
        found = list(dict.fromkeys(c for c in present if c.lower() in names and c not in taken))
        if len(found) > 1:
            option = (f"--{role}-col (or {role}_col=...)" if role != "timestamp"
                      else "timestamp_col=...")
            raise DataError(f"{name}: ambiguous header: {', '.join(map(repr, found))} could "
                            f"each be the {_WHAT[role]} column; name the one to use with "
                            f"{option}")
        return found[0] if found else None


@dataclass(frozen=True)
class Layout:
    """How a delimited file is laid out: delimiter, header and the names of its fields."""

    sep: str
    names: list[str]
    header_line: int | None
    """1-based line number of the header, ``None`` for a headerless file."""
    first_line: int
    """1-based line number of the first non-empty line (the header, or the first data row)."""

    @property
    def parse_delimiter(self) -> str:
        return ":" if self.sep == "::" else self.sep

    @property
    def skip_rows(self) -> int:
        return self.first_line if self.header_line is not None else self.first_line - 1

    @property
    def parse_names(self) -> list[str]:
        """Field names as pyarrow sees them (with filler names between ``::`` fields)."""
        if self.sep != "::":
            return self.names
        names: list[str] = []
        for n, name in enumerate(self.names):
            names += [name] if n == 0 else [f"__gap{n}__", name]
        return names


def sniff_layout(path: Path, name: str, sep: str | None, header: bool | None,
                  columns: Columns) -> Layout:
    """Find the first line, the delimiter, whether there is a header, and the field names."""
    if sep is not None and sep != "::" and len(sep) != 1:
        raise ConfigError(f"sep must be one character or '::', got {sep!r}")
    first_line, text = _first_line(path, name)
    if sep is None:
        sep = _guess_separator(text, path, name)
    fields = [f.strip().strip('"').strip() for f in text.split(sep)]
    if header is None:
        header = not all(_is_number(f) for f in fields[:3])
    if header:
        return Layout(sep, fields, first_line, first_line)
    if columns.feedback == "implicit" and len(fields) < 2:
        raise DataError(f"{name}, line {first_line}: found {len(fields)} field(s) separated by "
                        f"{sep!r}; a file without a header needs user and item columns")
    if columns.feedback == "explicit" and len(fields) < 3:
        raise DataError(
            f"{name}, line {first_line}: found {len(fields)} field(s) separated by {sep!r}; "
            "a file without a header needs user, item and rating columns (pairs without "
            "ratings are implicit feedback: alsmf train --feedback implicit)"
        )
    return Layout(sep, columns.positional(len(fields)), None, first_line)


def _first_line(path: Path, name: str) -> tuple[int, str]:
    """The 1-based number and text of the first non-blank line, wherever it is; refuses
    binary files and a line longer than :data:`~alsmf.data.limits.MAX_LINE_BYTES`.

    The file is read a block at a time, so blank lines before the header cost no memory and
    a line without an end (a file of one huge line) is refused once it passes the limit.
    """
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        if head.startswith(_ZIP_MAGIC):
            raise DataError(f"{name}: {_zip_problem(path)}")
        check_text_head(head, name)
        _check_tail(stream, name)
        stream.seek(0)
        number, pending = 1, b""
        while chunk := stream.read(_SCAN_BYTES):
            data = pending + chunk
            end = data.rfind(b"\n") + 1  # the whole lines of data end there
            pending = data[end:]
            if not data[:end].strip():  # blank lines only: count them
                number += data.count(b"\n", 0, end)
            else:
                for raw in data[:end].split(b"\n")[:-1]:
                    text = _line_text(raw, number, name)
                    if text:
                        return number, text
                    number += 1
            if len(pending) > MAX_LINE_BYTES:
                raise line_too_long(name, number)
    text = _line_text(pending, number, name)  # the last line, which has no line end
    if text:
        return number, text
    raise DataError(f"{name}: the file is empty (only blank lines)")


def check_text_head(head: bytes, name: str) -> None:
    """Refuse the first bytes of a file that cannot be a text table: UTF-16 or UTF-32 text
    (its byte-order mark) or binary data (NUL bytes)."""
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise DataError(f"{name}: unknown format: the text is {encoding}; "
                            "save it as UTF-8 and read it again")
    if b"\0" in head:
        raise DataError(f"{name}: unknown format: not CSV, TSV or Parquet (it is binary)")


def line_too_long(name: str, number: int) -> DataError:
    """The error for a line longer than any line of a ratings file can be."""
    return DataError(f"{name}, line {number}: longer than {format_bytes(MAX_LINE_BYTES)}, so "
                     "not a line of a ratings file (binary data, or a file without line ends)")


def _check_tail(stream: BinaryIO, name: str) -> None:
    """Refuse a file whose last bytes hold NUL bytes, before a parser reads up to them."""
    size = os.fstat(stream.fileno()).st_size
    if size <= HEAD_BYTES:
        return  # the head, already checked, is the whole file
    stream.seek(size - HEAD_BYTES)
    tail = stream.read(HEAD_BYTES)
    if b"\0" in tail:
        raise DataError(f"{name}: unknown format: its last {format_bytes(len(tail))} hold "
                        "binary data (NUL bytes); is it a file extended with zeros, by a crash "
                        "or an unfinished download?")


def _line_text(raw: bytes, number: int, name: str) -> str:
    """A line's text without surrounding blanks (and without a UTF-8 byte-order mark on the
    first line); refuses NUL bytes and text that is not UTF-8."""
    if b"\0" in raw:
        raise DataError(f"{name}, line {number}: unknown format: not CSV, TSV or Parquet "
                        "(it is binary)")
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
    except UnicodeDecodeError:
        raise DataError(f"{name}: unknown format: line {number} is not UTF-8 text") from None


def _zip_problem(path: Path) -> str:
    """What to tell about a file that starts like a zip archive."""
    if zipfile.is_zipfile(path):
        return ("is a zip archive, not a CSV, TSV or Parquet file; a MovieLens zip is read "
                "by load_ratings or 'alsmf train --data'")
    return ("is a truncated or corrupt zip file (its central directory, at the end of the "
            "file, is missing); download or copy it again")


def _guess_separator(line: str, path: Path, name: str) -> str:
    if path.suffix.lower() == ".tsv" and "\t" in line:
        return "\t"
    for sep in SEPARATORS:
        if sep in line:
            return sep
    raise DataError(
        f"{name}: unknown format: cannot tell how fields are separated on the first line "
        f"({line[:60]!r}); expected ',', tab, ';' or '::' (or pass sep=...)"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def ragged_line(path: Path, name: str, layout: Layout) -> DataError | None:
    """The first data line whose number of fields differs from the first line's, or that is
    too long to be one, if any."""
    expected = len(layout.names)
    for number, line in _data_lines(path, layout):
        if len(line) > MAX_LINE_BYTES:
            return line_too_long(name, number)
        found = len(line.split(layout.sep.encode()))
        if found != expected:
            return DataError(
                f"{name}, line {number}: expected {expected} fields separated by "
                f"{layout.sep!r}, found {found}"
            )
    return None


def _data_lines(path: Path, layout: Layout) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, bytes) for each non-empty data line, as pyarrow sees them.

    A line longer than :data:`~alsmf.data.limits.MAX_LINE_BYTES` is yielded cut to one byte
    more than that, and the rest of it skipped, so no line is held whole in memory.
    """
    with path.open("rb") as stream:
        number = 0
        while line := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                _skip_rest_of_line(stream)
            else:
                line = line.rstrip(b"\r\n")
            if number > layout.skip_rows and line:
                yield number, line


def _skip_rest_of_line(stream: BinaryIO) -> None:
    """Move past the next line end, or to the end of the file, a block at a time into one
    buffer (reading a long line in pieces would allocate, and fault in, each piece)."""
    buffer = bytearray(_SCAN_BYTES)
    while size := stream.readinto(buffer):
        end = buffer.find(b"\n", 0, size)
        if end >= 0:
            stream.seek(end + 1 - size, os.SEEK_CUR)
            return


def line_labeller(path: Path, layout: Layout) -> Callable[[int], str]:
    """``row -> "line N"``, scanning the file on demand (blank lines do not count as rows)."""

    def row_label(row: int) -> str:
        for index, (number, _) in enumerate(_data_lines(path, layout)):
            if index == row:
                return f"line {number}"
        return f"data row {row + 1}"

    return row_label
