"""Build the binary members of the bad-input corpus (zips, Parquet files) into a folder.

The text cases of the corpus are committed as they are; the binary ones are built here, at
test time, because a committed binary cannot be reviewed in a diff and a Parquet file's bytes
depend on the pyarrow version that wrote it; so are the text files too long to review (tens
of KB of blank lines, a file extended with zeros, kept sparse). Every file is built from
fixed data with fixed zip timestamps, so a run gives the same files every time.

Zip bombs and unreadable members are crafted rather than made: :func:`patched_zip` writes a
small zip, then rewrites its headers to declare what a bomb, an encrypted or a deflate64
member declares, since alsmf refuses those from the headers alone.

Run ``python tests/corpus/make_binary.py OUTDIR`` to look at them by hand; the tests call
:func:`build_all` into a temporary folder.
"""

from __future__ import annotations

import csv
import io
import stat
import struct
import sys
import zipfile
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

CORPUS = Path(__file__).resolve().parent
_DATE = (2001, 1, 1, 0, 0, 0)


def _good_rows() -> list[tuple[int, int, int, int]]:
    """(user, item, rating, timestamp) of the corpus's valid file ``good.csv``."""
    with (CORPUS / "good.csv").open(newline="") as stream:
        return [tuple(int(v) for v in row) for row in list(csv.reader(stream))[1:]]


def _u_data() -> bytes:
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in _good_rows()).encode()


def _zip(path: Path, members: list[tuple[str, bytes]], *, symlinks: tuple[str, ...] = (),
         compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = compression
            mode = (stat.S_IFLNK | 0o777) if name in symlinks else (stat.S_IFREG | 0o644)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


_HEADER_FIELDS = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "file_size": (22, 24, "<I")}
"""Field -> (offset in the local header, offset in the central directory record, format)."""


def patched_zip(members: list[tuple[str, bytes]], changes: dict[str, dict[str, int]]) -> bytes:
    """A zip of ``members`` (stored, not compressed) whose headers are then rewritten:
    ``changes`` maps a member to the fields to set, ``flags`` (bit 0: encrypted), ``method``
    (the compression method's number, 9 for deflate64) or ``file_size`` (the uncompressed
    size it declares, below 4 GiB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=_DATE), data)
    raw = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        record = archive.start_dir
        for info in archive.infolist():
            for field, value in changes.get(info.filename, {}).items():
                local, central, layout = _HEADER_FIELDS[field]
                struct.pack_into(layout, raw, info.header_offset + local, value)
                struct.pack_into(layout, raw, record + central, value)
            name_length, extra_length, comment_length = struct.unpack_from("<HHH", raw,
                                                                           record + 28)
            record += 46 + name_length + extra_length + comment_length
    return bytes(raw)


# ---------------------------------------------------------------------- zips
def truncated_zip(folder: Path) -> Path:
    """An ml-100k zip cut in half, as an interrupted copy leaves it."""
    path = _zip(folder / "truncated.zip", [("ml-100k/u.data", _u_data() * 20)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_member_zip(folder: Path) -> Path:
    """A zip whose directory is intact but whose u.data bytes were damaged (bad CRC)."""
    data = _u_data()
    path = _zip(folder / "corrupt_member.zip", [("ml-100k/u.data", data)],
                compression=zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    start = raw.index(data[:32])
    raw[start + 10: start + 20] = b"9" * 10
    path.write_bytes(bytes(raw))
    return path


def empty_zip(folder: Path) -> Path:
    """A valid zip with no members."""
    return _zip(folder / "empty.zip", [])


def zero_byte_zip(folder: Path) -> Path:
    """A 0-byte file named like a zip (a failed download)."""
    path = folder / "zero_bytes.zip"
    path.write_bytes(b"")
    return path


def traversal_zip(folder: Path) -> Path:
    """The ratings file itself stored as ``../u.data``."""
    return _zip(folder / "traversal.zip", [("../u.data", _u_data())])


def traversal_extra_zip(folder: Path) -> Path:
    """A normal ml-100k zip that also carries a member escaping with ``../../``."""
    return _zip(folder / "traversal_extra.zip",
                [("ml-100k/u.data", _u_data()), ("../../evil.sh", b"echo pwned\n")])


def absolute_member_zip(folder: Path) -> Path:
    """A member with an absolute path."""
    return _zip(folder / "absolute_member.zip",
                [("ml-100k/u.data", _u_data()), ("/tmp/alsmf-evil.txt", b"x\n")])


def symlink_member_zip(folder: Path) -> Path:
    """``u.data`` stored as a symbolic link to a system file."""
    return _zip(folder / "symlink_member.zip", [("ml-100k/u.data", b"/etc/passwd")],
                symlinks=("ml-100k/u.data",))


def not_a_release_zip(folder: Path) -> Path:
    """A zip of a generic CSV, not a MovieLens release."""
    return _zip(folder / "not_a_release.zip",
                [("export/my_ratings.csv", (CORPUS / "good.csv").read_bytes())])


def bomb_member_zip(folder: Path) -> Path:
    """An ml-100k zip whose u.data declares 3 GiB from a few hundred bytes: a zip bomb."""
    path = folder / "bomb_member.zip"
    path.write_bytes(patched_zip([("ml-100k/u.data", _u_data())],
                                 {"ml-100k/u.data": {"file_size": 3 << 30}}))
    return path


def titles_bomb_zip(folder: Path) -> Path:
    """A valid ml-100k zip but for its movies file, a bomb of 3 GiB."""
    path = folder / "titles_bomb.zip"
    path.write_bytes(patched_zip([("ml-100k/u.data", _u_data()), ("ml-100k/u.item", b"1|x\n")],
                                 {"ml-100k/u.item": {"file_size": 3 << 30}}))
    return path


def encrypted_member_zip(folder: Path) -> Path:
    """An ml-100k zip whose u.data is marked encrypted (password-protected)."""
    path = folder / "encrypted_member.zip"
    path.write_bytes(patched_zip([("ml-100k/u.data", _u_data())],
                                 {"ml-100k/u.data": {"flags": 0x1}}))
    return path


def deflate64_member_zip(folder: Path) -> Path:
    """An ml-100k zip whose u.data is compressed with deflate64 (Windows' zip of large
    files), which Python's zipfile cannot read."""
    path = folder / "deflate64_member.zip"
    path.write_bytes(patched_zip([("ml-100k/u.data", _u_data())],
                                 {"ml-100k/u.data": {"method": 9}}))
    return path


# ---------------------------------------------------------------------- long text
def blank_lines_before_header(folder: Path) -> Path:
    """The valid file after 70,000 blank lines: its header lies past the first 64 KB."""
    path = folder / "blank_lines_70k.csv"
    path.write_bytes(b"\n" * 70_000 + (CORPUS / "good.csv").read_bytes())
    return path


def long_header(folder: Path) -> Path:
    """The valid file with a fifth column whose name is 70,000 characters long."""
    header, *rows = (CORPUS / "good.csv").read_text().splitlines()
    path = folder / "long_header.csv"
    path.write_text("\n".join([f"{header},{'x' * 70_000}"] + [f"{row},1" for row in rows])
                    + "\n")
    return path


def nul_tail(folder: Path) -> Path:
    """The valid file and 70,000 blank lines (past the first 64 KB) extended with zeros to
    2 GiB (sparse: no disk is used), as a crash or a preallocating download can leave a
    file."""
    path = folder / "nul_tail.csv"
    path.write_bytes((CORPUS / "good.csv").read_bytes() + b"\n" * 70_000)
    with path.open("r+b") as stream:
        stream.truncate(2 << 30)
    return path


# ---------------------------------------------------------------------- parquet
def _columns() -> dict[str, list]:
    rows = _good_rows()
    return {name: [row[n] for row in rows]
            for n, name in enumerate(("user", "item", "rating", "timestamp"))}


def _parquet(path: Path, columns: dict[str, pa.Array | list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def parquet_string_ratings(folder: Path) -> Path:
    c = _columns()
    c["rating"] = pa.array([str(r) for r in c["rating"]], pa.string())
    return _parquet(folder / "string_ratings.parquet", c)


def parquet_missing_column(folder: Path) -> Path:
    c = _columns()
    del c["rating"]
    return _parquet(folder / "missing_column.parquet", c)


def parquet_float_ids(folder: Path) -> Path:
    c = _columns()
    c["user"] = pa.array([float(u) for u in c["user"]], pa.float64())
    return _parquet(folder / "float_ids.parquet", c)


def parquet_null_rating(folder: Path) -> Path:
    c = _columns()
    c["rating"] = pa.array([None if n == 2 else float(r) for n, r in enumerate(c["rating"])])
    return _parquet(folder / "null_rating.parquet", c)


def parquet_nan_rating(folder: Path) -> Path:
    c = _columns()
    c["rating"] = pa.array([float("nan") if n == 4 else float(r)
                            for n, r in enumerate(c["rating"])])
    return _parquet(folder / "nan_rating.parquet", c)


def parquet_uint64_ids(folder: Path) -> Path:
    """Unsigned ids, one of them above the int64 range (it must not wrap to a negative id)."""
    c = _columns()
    c["user"] = pa.array([2**64 - 1 if u == 8 else u for u in c["user"]], pa.uint64())
    return _parquet(folder / "uint64_ids.parquet", c)


def parquet_string_timestamps(folder: Path) -> Path:
    c = _columns()
    c["timestamp"] = pa.array(["2001-01-01"] * len(c["timestamp"]), pa.string())
    return _parquet(folder / "string_timestamps.parquet", c)


def parquet_no_rows(folder: Path) -> Path:
    return _parquet(folder / "no_rows.parquet",
                    {"user": pa.array([], pa.int64()), "item": pa.array([], pa.int64()),
                     "rating": pa.array([], pa.float64())})


def parquet_truncated(folder: Path) -> Path:
    path = _parquet(folder / "truncated.parquet", _columns())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def parquet_narrow_types(folder: Path) -> Path:
    """Valid: int32 ids, float32 ratings, a datetime timestamp and an extra string column."""
    c = _columns()
    return _parquet(folder / "narrow_types.parquet", {
        "user": pa.array(c["user"], pa.int32()),
        "item": pa.array(c["item"], pa.int16()),
        "rating": pa.array(c["rating"], pa.float32()),
        "timestamp": pa.array(c["timestamp"], pa.timestamp("s")),
        "comment": pa.array(["ok"] * len(c["user"]), pa.string()),
    })


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "truncated.zip": truncated_zip,
    "corrupt_member.zip": corrupt_member_zip,
    "empty.zip": empty_zip,
    "zero_bytes.zip": zero_byte_zip,
    "traversal.zip": traversal_zip,
    "traversal_extra.zip": traversal_extra_zip,
    "absolute_member.zip": absolute_member_zip,
    "symlink_member.zip": symlink_member_zip,
    "not_a_release.zip": not_a_release_zip,
    "bomb_member.zip": bomb_member_zip,
    "titles_bomb.zip": titles_bomb_zip,
    "encrypted_member.zip": encrypted_member_zip,
    "deflate64_member.zip": deflate64_member_zip,
    "blank_lines_70k.csv": blank_lines_before_header,
    "long_header.csv": long_header,
    "nul_tail.csv": nul_tail,
    "string_ratings.parquet": parquet_string_ratings,
    "missing_column.parquet": parquet_missing_column,
    "float_ids.parquet": parquet_float_ids,
    "null_rating.parquet": parquet_null_rating,
    "nan_rating.parquet": parquet_nan_rating,
    "uint64_ids.parquet": parquet_uint64_ids,
    "string_timestamps.parquet": parquet_string_timestamps,
    "no_rows.parquet": parquet_no_rows,
    "truncated.parquet": parquet_truncated,
    "narrow_types.parquet": parquet_narrow_types,
}
"""File name -> builder; each builder writes that file into the folder it is given."""


def build_all(folder: Path) -> dict[str, Path]:
    """Write every binary case into ``folder``; file name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    built = {name: build(folder) for name, build in BUILDERS.items()}
    assert all(path.name == name for name, path in built.items())
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/corpus/make_binary.py OUTDIR")
    for path in build_all(Path(sys.argv[1])).values():
        print(path)
