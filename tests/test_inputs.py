"""Input paths that are not readable regular files: a pipe (a FIFO, ``/dev/stdin``,
``<(...)``) is refused with one line, without being opened, and a file without read
permission names the reason; never "the file is empty", a hang or a traceback."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from alsmf.data.movielens import detect_release, load_ratings
from alsmf.data.pairs import read_pairs
from alsmf.data.readers import read_table
from alsmf.errors import DataError

RATINGS = b"user,item,rating\n1,10,4\n1,11,3\n2,10,5\n2,12,1\n3,11,2\n3,12,4\n"
PIPE = "is not a regular file (a pipe); save the data to a file first"


@pytest.fixture
def fifo(tmp_path):
    """A named pipe with a writer waiting to send ratings; the test checks that no reader
    opened it (the writer still waits), then the fixture drains it so the writer ends."""
    path = tmp_path / "ratings.csv"
    os.mkfifo(path)
    writer = threading.Thread(target=path.write_bytes, args=(RATINGS,), daemon=True)
    writer.start()
    yield path
    assert writer.is_alive(), "the pipe was opened and read"
    with path.open("rb") as stream:
        stream.read()
    writer.join(timeout=5)


@pytest.mark.parametrize("read", [read_table, load_ratings, detect_release, read_pairs])
def test_a_pipe_is_refused_without_being_opened(fifo, read):
    with pytest.raises(DataError, match="^" + re.escape(f"{fifo}: {PIPE}") + "$"):
        read(fifo)


@pytest.mark.parametrize("args", [["train", "--data", "{fifo}", "-o", "{out}"],
                                  ["train", "--train", "{fifo}", "--test", "{fifo}", "-o", "{out}"],
                                  ["data", "info", "{fifo}"]])
def test_the_command_line_refuses_a_pipe_in_one_line(fifo, cli, tmp_path, args):
    result = cli(*[arg.format(fifo=fifo, out=tmp_path / "out") for arg in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and f"{fifo}: {PIPE}" in result.stderr


def test_a_character_device_is_named_as_one(cli):
    result = cli("data", "info", "/dev/null")
    assert result.exit_code == 2
    assert "/dev/null: is not a regular file (a terminal or character device)" in result.stderr


def _permissions_bind(folder: Path) -> bool:
    """Whether this process is kept out of a file without read permission (root is not,
    unless it runs without its capability to override them)."""
    probe = folder / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return True
    finally:
        probe.unlink()
    return False


@pytest.fixture
def permissions_bind(tmp_path):
    if not _permissions_bind(tmp_path):
        pytest.skip(f"running as root (uid {os.geteuid()}), which reads files and folders "
                    "without read permission")


def test_a_ratings_file_without_read_permission_is_one_line(tmp_path, cli, permissions_bind):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    u_data = folder / "u.data"
    u_data.write_bytes(b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    u_data.chmod(0)
    generic = tmp_path / "ratings.csv"
    generic.write_bytes(RATINGS)
    generic.chmod(0)
    try:
        for path in (folder, u_data, generic):
            result = cli("data", "info", path)
            assert result.exit_code == 2, result.output
            assert result.stderr.count("\n") == 1
            assert f"{u_data if path != generic else generic}: cannot read (Permission " \
                   "denied)" in result.stderr
    finally:
        u_data.chmod(0o644)
        generic.chmod(0o644)


def test_a_release_folder_without_read_permission_is_one_line(tmp_path, permissions_bind):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    folder.chmod(0)
    try:
        with pytest.raises(DataError, match=rf"{folder}: cannot list the folder \(Permission "
                                            r"denied\)"):
            load_ratings(folder)
    finally:
        folder.chmod(0o755)


def test_a_fifo_path_is_not_left_blocking(tmp_path: Path):
    """The refusal looks at the path only: with no writer, opening a pipe would block."""
    path = tmp_path / "silent.csv"
    os.mkfifo(path)
    with pytest.raises(DataError, match="a pipe"):
        read_table(path)
