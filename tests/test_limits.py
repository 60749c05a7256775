"""The limits on what is read (alsmf.data.limits): zip members refused by their headers or
cut off while read, nothing extracted that is refused anyway, and no file held whole in
memory for one long line. Big inputs are sparse files or crafted zip headers, never bytes
written out."""

from __future__ import annotations

import io
import resource
import tempfile
import zipfile
from pathlib import Path

import pytest

import alsmf.data.layout as layout
import alsmf.data.movielens as movielens
from alsmf.data.limits import format_bytes, max_member_bytes, parse_size
from alsmf.data.movielens import load_movielens, load_ratings
from alsmf.data.readers import read_table
from alsmf.data.titles import read_titles
from alsmf.errors import ConfigError, DataError
from tests.corpus.make_binary import patched_zip

U_DATA = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
U_ITEM = b"".join(b"%d|Film %d (1996)|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0"
                 b"|0\n" % (n, n) for n in range(1, 5))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _refusal(read, path: Path) -> tuple[str, int]:
    """The message of the DataError ``read(path)`` raises, and the bytes the process's peak
    resident memory grew by meanwhile (0 when it stayed below an earlier peak: then it
    cannot have grown by much either)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError) as caught:
        read(path)
    return str(caught.value), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024


# ---------------------------------------------------------------------- the limits themselves
def test_sizes_take_binary_suffixes():
    assert parse_size("4096") == 4096
    assert parse_size("8G") == 8 << 30
    assert parse_size("512MiB") == 512 << 20
    assert format_bytes(3 << 30) == "3 GiB" and format_bytes(1536) == "1.5 KiB"
    for text in ("0", "-1", "1.5G", "lots"):
        with pytest.raises(ValueError):
            parse_size(text)


def test_a_bad_limit_in_the_environment_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("ALSMF_MAX_MEMBER_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"\$ALSMF_MAX_MEMBER_BYTES must be a positive number "
                                          r"of bytes \(e.g. 8G\), got 'lots'"):
        max_member_bytes()
    monkeypatch.setenv("ALSMF_MAX_MEMBER_BYTES", "")
    assert max_member_bytes() == 4 << 30


# ---------------------------------------------------------------------- zip members
def test_a_member_above_the_size_limit_is_refused_by_its_header(tmp_path, monkeypatch):
    path = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": U_DATA * 40})
    monkeypatch.setenv("ALSMF_MAX_MEMBER_BYTES", "1K")
    with pytest.raises(DataError, match=r"ml-100k.zip: member 'ml-100k/u.data' is 2.3 KiB, "
                                        r"above the limit of 1 KiB; refused \(set "
                                        r"\$ALSMF_MAX_MEMBER_BYTES higher"):
        load_movielens(path)
    monkeypatch.setenv("ALSMF_MAX_MEMBER_BYTES", "1M")
    assert len(load_movielens(path, duplicates="last")) == 3


def test_the_compression_ratio_limit_refuses_bombs_and_can_be_raised(tmp_path, monkeypatch):
    zeros = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": U_DATA,
                                            "ml-100k/zeros.bin": bytes(2 << 20)})
    with pytest.raises(DataError, match=r"member 'ml-100k/zeros.bin' would expand [0-9,]+ "
                                        r"times \(from .* to 2 MiB\), as a zip bomb does"):
        load_movielens(zeros)
    monkeypatch.setenv("ALSMF_MAX_COMPRESSION_RATIO", "1e6")
    assert len(load_movielens(zeros)) == 3


def test_a_titles_bomb_is_refused_before_it_is_read(tmp_path):
    """6.9 MB of zip once expanded to 13 GB in memory: the header says so first."""
    path = tmp_path / "ml-100k.zip"
    path.write_bytes(patched_zip([("ml-100k/u.data", U_DATA), ("ml-100k/u.item", U_ITEM)],
                                 {"ml-100k/u.item": {"file_size": 3 << 30}}))
    message, growth = _refusal(read_titles, path)
    assert "member 'ml-100k/u.item' would expand" in message
    assert growth < 64 << 20


def test_titles_above_their_limit_are_refused_in_a_zip_and_a_folder(tmp_path, monkeypatch):
    path = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": U_DATA, "ml-100k/u.item": U_ITEM})
    assert len(read_titles(path)) == 4
    monkeypatch.setenv("ALSMF_MAX_TITLES_BYTES", "100")
    with pytest.raises(DataError, match=r"member 'ml-100k/u.item' is .* above the limit of "
                                        r"100 bytes; refused \(set \$ALSMF_MAX_TITLES_BYTES"):
        read_titles(path)
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_bytes(U_DATA)
    (folder / "u.item").write_bytes(U_ITEM)
    with pytest.raises(DataError, match=r"ml-100k/u.item is .* above the limit of 100 bytes"):
        read_titles(folder)
    monkeypatch.setenv("ALSMF_MAX_TITLES_BYTES", "1M")
    assert read_titles(folder)["title"].tolist()[0] == "Film 1 (1996)"


# ---------------------------------------------------------------------- extraction to $TMPDIR
@pytest.fixture
def temporary(tmp_path, monkeypatch) -> Path:
    """The folder temporary files go to, watched by the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_binary_member_is_refused_before_it_is_extracted(tmp_path, temporary, monkeypatch):
    path = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": bytes(1000) + U_DATA})
    written = []
    real_copy = movielens.copy_member
    monkeypatch.setattr(movielens, "copy_member", lambda *args: written.append(args)
                        or real_copy(*args))
    with pytest.raises(DataError, match=r"ml-100k.zip:ml-100k/u.data: unknown format: .*binary"):
        load_movielens(path)
    assert written == [] and list(temporary.iterdir()) == []


def test_a_member_larger_than_the_free_space_is_not_extracted(tmp_path, temporary, monkeypatch):
    path = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": U_DATA})
    monkeypatch.setattr(movielens.shutil, "disk_usage",
                        lambda folder: type("Usage", (), {"free": 10})())
    with pytest.raises(DataError, match=rf"cannot extract ml-100k/u.data \(59 bytes\) to "
                                        rf"{temporary}: only 10 bytes free there; point "
                                        r"\$TMPDIR at a disk with more room"):
        load_movielens(path)
    assert list(temporary.iterdir()) == []


def test_the_extracted_copy_is_removed_when_reading_it_fails(tmp_path, temporary):
    path = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": U_DATA + b"1\t2\tx\t3\n"})
    with pytest.raises(DataError, match=r"ml-100k.zip:ml-100k/u.data, line 4: rating 'x'"):
        load_movielens(path)
    assert list(temporary.iterdir()) == []


def test_a_member_is_copied_no_further_than_the_limit(tmp_path, monkeypatch):
    """What a member declares is checked first; the copy stops at the limit all the same."""
    path = _zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": U_DATA * 100})
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("ml-100k/u.data")
        monkeypatch.setenv("ALSMF_MAX_MEMBER_BYTES", "1K")
        out = io.BytesIO()
        with pytest.raises(DataError, match=r"member 'ml-100k/u.data' holds more than 1 KiB, "
                                            r"the limit"):
            movielens.copy_member(archive, member, path, out)
    assert len(out.getvalue()) <= 1024


# ---------------------------------------------------------------------- sparse and long lines
def test_a_sparse_ratings_csv_is_refused_without_reading_it(tmp_path):
    """A 2 GiB ratings.csv of zeros once reached 4 GB of memory while its first line was
    read to tell whether it is a MovieLens file."""
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    with (folder / "ratings.csv").open("wb") as stream:
        stream.truncate(2 << 30)
    for path in (folder, folder / "ratings.csv"):
        message, growth = _refusal(load_ratings, path)
        assert "ratings.csv: unknown format: not CSV, TSV or Parquet (it is binary)" in message
        assert growth < 64 << 20


def test_zeros_in_the_middle_are_one_line_within_bounded_memory(tmp_path):
    """Lines, 512 MiB of zeros, lines: the line of zeros is refused by its length, and no
    reader holds it or sizes its output by it (the fast parser once sized its output for a
    file of such lines: 3 GB for 2 GiB of zeros)."""
    path = tmp_path / "holed.csv"
    rows = b"".join(b"%d,%d,%d\n" % (n, n % 97, n % 5 + 1) for n in range(20_000))
    with path.open("wb") as stream:
        stream.write(b"user,item,rating\n" + rows)
        stream.seek(512 << 20, io.SEEK_CUR)
        stream.write(b"\n" + rows.replace(b"\n", b"0\n"))
    message, growth = _refusal(read_table, path)
    assert "holed.csv, line 20002: longer than 16 MiB, so not a line of a ratings file" in message
    assert growth < 256 << 20


def test_a_line_without_end_is_refused_past_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "MAX_LINE_BYTES", 1024)  # the mechanism, without 16 MiB lines
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"user,item,rating" + b"x" * 2000)
    with pytest.raises(DataError, match=r"one_line.csv, line 1: longer than 1 KiB"):
        read_table(path)
    path.write_bytes(b"user,item,rating\n1,2,3\n" + b"7" * 2000 + b"\n")
    with pytest.raises(DataError, match=r"one_line.csv, line 3: longer than 1 KiB"):
        read_table(path)
