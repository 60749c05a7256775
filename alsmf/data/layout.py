"""How a delimited ratings file is laid out: delimiter, header, field names, line numbers.

Sniffed from the first non-empty line, so that both parsers (the fast numeric one of
:mod:`alsmf.data.fastcsv` and Arrow's, :mod:`alsmf.data.arrow_readers`) read the same columns,
and messages can name the line of a row without either parser counting lines.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from alsmf.errors import ConfigError, DataError

SEPARATORS: tuple[str, ...] = ("::", "\t", ",", ";")
"""Delimiters recognised by sniffing, in the order they are tried on the first line."""

_ZIP_MAGIC = b"PK\x03\x04"
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
              (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Columns:
    """The columns wanted from a table and how each is described in messages."""

    user: str
    item: str
    rating: str
    timestamp: str | None

    def described(self, present: list[str]) -> dict[str, str]:
        """Column name -> description, for the columns that will be read."""
        names = {self.user: "user id", self.item: "item id", self.rating: "rating"}
        if self.timestamp is not None and self.timestamp in present:
            names[self.timestamp] = "timestamp"
        return names

    def found_in(self, present: list[str], name: str, listing: str) -> dict[str, str]:
        """:meth:`described`, or a DataError naming the columns ``present`` lacks.

        ``listing`` introduces the columns there are in the message, for example
        ``"the header (line 1) has"``.
        """
        wanted = self.described(present)
        missing = [c for c in wanted if c not in present]
        if missing:
            raise DataError(f"{name}: missing column(s) {', '.join(map(repr, missing))}; "
                            f"{listing} {', '.join(map(repr, present))}")
        return wanted


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
    positional = [columns.user, columns.item, columns.rating, columns.timestamp or "__timestamp__"]
    names = positional[: len(fields)] + [f"__extra{n}__" for n in range(4, len(fields))]
    if len(fields) < 3:
        raise DataError(
            f"{name}, line {first_line}: found {len(fields)} field(s) separated by {sep!r}; "
            "a file without a header needs user, item and rating columns"
        )
    return Layout(sep, names, None, first_line)


def _first_line(path: Path, name: str) -> tuple[int, str]:
    """The 1-based number and text of the first non-empty line; refuses binary files."""
    with path.open("rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    if head.startswith(_ZIP_MAGIC):
        raise DataError(f"{name}: {_zip_problem(path)}")
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise DataError(f"{name}: unknown format: the text is {encoding}; "
                            "save it as UTF-8 and read it again")
    if b"\0" in head:
        raise DataError(f"{name}: unknown format: not CSV, TSV or Parquet (it is binary)")
    for number, raw in enumerate(head.split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            raise DataError(f"{name}: unknown format: line {number} is not UTF-8 text") from None
        if text:
            return number, text
    raise DataError(f"{name}: the file is empty (only blank lines)")


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
    """The first data line whose number of fields differs from the first line's, if any."""
    expected = len(layout.names)
    for number, line in _data_lines(path, layout):
        found = len(line.split(layout.sep.encode()))
        if found != expected:
            return DataError(
                f"{name}, line {number}: expected {expected} fields separated by "
                f"{layout.sep!r}, found {found}"
            )
    return None


def _data_lines(path: Path, layout: Layout):
    """Yield (1-based line number, bytes) for each non-empty data line, as pyarrow sees them."""
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            line = line.rstrip(b"\r\n")
            if number > layout.skip_rows and line:
                yield number, line


def line_labeller(path: Path, layout: Layout) -> Callable[[int], str]:
    """``row -> "line N"``, scanning the file on demand (blank lines do not count as rows)."""

    def row_label(row: int) -> str:
        for index, (number, _) in enumerate(_data_lines(path, layout)):
            if index == row:
                return f"line {number}"
        return f"data row {row + 1}"

    return row_label
