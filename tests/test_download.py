"""Downloading and extracting MovieLens releases, against a local HTTP server (no network)."""

from __future__ import annotations

import fcntl
import hashlib
import io
import stat
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alsmf.data.download import RELEASES, default_cache_dir, download_release, safe_extract
from alsmf.errors import ConfigError, DataError, DownloadError
from tests.corpus.make_binary import patched_zip

U_DATA = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


ML_100K_ZIP = _zip_bytes({"ml-100k/": b"", "ml-100k/u.data": U_DATA})
ML_100K_MD5 = hashlib.md5(ML_100K_ZIP).hexdigest()


class _Server:
    """A local file server whose files and request log the tests control."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.lengths: dict[str, int] = {}
        self.pauses: dict[str, float] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                length = server.lengths.get(self.path.lstrip("/"), len(body))
                self.send_header("Content-Length", str(length))
                self.end_headers()
                pause = server.pauses.get(self.path.lstrip("/"))
                if pause is None:
                    self.wfile.write(body)
                    return
                for byte in body:  # a trickle: one byte, then a pause
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return
                    time.sleep(pause)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/movielens/"

    def serve(self, name: str, body: bytes, content_length: int | None = None,
              pause: float | None = None) -> None:
        """Serve ``body`` at ``name``, announcing ``content_length`` when given (to cut it
        short), one byte every ``pause`` seconds when given."""
        self.files[f"movielens/{name}"] = body
        if content_length is not None:
            self.lengths[f"movielens/{name}"] = content_length
        if pause is not None:
            self.pauses[f"movielens/{name}"] = pause


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv("ALSMF_MOVIELENS_URL", raising=False)
    srv = _Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("md5_text", [
    f"MD5 (ml-100k.zip) = {ML_100K_MD5}\n",
    f"{ML_100K_MD5}  ml-100k.zip\n",
])
def test_download_verifies_and_extracts(server, tmp_path, md5_text):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", md5_text.encode())
    calls = []
    folder = download_release("ml-100k", cache_dir=tmp_path, base_url=server.url,
                              progress=lambda done, total: calls.append((done, total)))
    assert folder == tmp_path / "ml-100k"
    assert (folder / "u.data").read_bytes() == U_DATA
    assert calls[-1] == (len(ML_100K_ZIP), len(ML_100K_ZIP))
    assert _leftovers(tmp_path) == ["ml-100k", "ml-100k.zip"]


def test_second_call_uses_the_cache(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    first = download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    n_requests = len(server.requests)
    assert download_release("ml-100k", cache_dir=tmp_path, base_url=server.url) == first
    assert len(server.requests) == n_requests == 2
    download_release("ml-100k", cache_dir=tmp_path, base_url=server.url, force=True)
    assert len(server.requests) == 4
    assert (first / "u.data").read_bytes() == U_DATA


def test_release_with_a_differently_named_folder(server, tmp_path):
    zip_bytes = _zip_bytes({"ml-10M100K/ratings.dat": b"1::122::5::838985046\n"})
    server.serve("ml-10m.zip", zip_bytes)
    server.serve("ml-10m.zip.md5", hashlib.md5(zip_bytes).hexdigest().encode())
    folder = download_release("ml-10m", cache_dir=tmp_path, base_url=server.url)
    assert folder == tmp_path / "ml-10M100K"
    assert (folder / "ratings.dat").is_file()
    n_requests = len(server.requests)
    assert download_release("ml-10m", cache_dir=tmp_path, base_url=server.url) == folder
    assert len(server.requests) == n_requests


def test_verified_zip_is_extracted_again_without_network(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    folder = download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    n_requests = len(server.requests)
    assert (download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
            / "u.data").read_bytes() == U_DATA
    assert len(server.requests) == n_requests


def test_base_url_from_environment(server, tmp_path, monkeypatch):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    monkeypatch.setenv("ALSMF_MOVIELENS_URL", server.url.rstrip("/"))
    assert (download_release("ml-100k", cache_dir=tmp_path) / "u.data").is_file()


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", b"0" * 32)
    with pytest.raises(DownloadError, match=f"{'0' * 32}.*{ML_100K_MD5}"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert _leftovers(tmp_path) == []


def test_body_cut_short_leaves_nothing(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP, content_length=len(ML_100K_ZIP) + 100)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    with pytest.raises(DownloadError, match="ml-100k.zip"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert _leftovers(tmp_path) == []


def test_unknown_release_lists_known_names(tmp_path):
    with pytest.raises(DataError, match="ml-99k") as caught:
        download_release("ml-99k", cache_dir=tmp_path)
    assert all(name in str(caught.value) for name in RELEASES)


def test_http_404_is_a_download_error(server, tmp_path):
    server.serve("ml-1m.zip.md5", b"0" * 32)
    with pytest.raises(DownloadError, match=r"ml-1m\.zip: HTTP 404"):
        download_release("ml-1m", cache_dir=tmp_path, base_url=server.url)
    assert _leftovers(tmp_path) == []


def test_unreachable_server_is_a_download_error(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "*")
    with pytest.raises(DownloadError, match="127.0.0.1:9/ml-100k.zip.md5"):
        download_release("ml-100k", cache_dir=tmp_path, base_url="http://127.0.0.1:9/")


def test_malformed_base_url_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="not-a-url/ml-100k.zip.md5"):
        download_release("ml-100k", cache_dir=tmp_path, base_url="not-a-url")


def test_unwritable_cache_is_a_download_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DownloadError, match="cache folder"):
        download_release("ml-100k", cache_dir=tmp_path / "file" / "cache", base_url="http://x/")


@pytest.mark.parametrize("member", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt"])
def test_unsafe_paths_are_refused(tmp_path, member):
    zip_path = tmp_path / "bad.zip"
    zip_path.write_bytes(_zip_bytes({"ml-100k/u.data": U_DATA, member: b"evil"}))
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="refused"):
        safe_extract(zip_path, dest)
    assert _leftovers(tmp_path) == ["bad.zip", "dest"]
    assert _leftovers(dest) == []


def test_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("ml-100k/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    zip_path = tmp_path / "link.zip"
    zip_path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract(zip_path, tmp_path / "dest")
    assert _leftovers(tmp_path / "dest") == []


def test_truncated_zip_is_a_data_error(tmp_path):
    zip_path = tmp_path / "ml-100k.zip"
    zip_path.write_bytes(ML_100K_ZIP[: len(ML_100K_ZIP) // 2])
    with pytest.raises(DataError, match="ml-100k.zip"):
        safe_extract(zip_path, tmp_path / "dest")
    assert _leftovers(tmp_path / "dest") == []


def test_missing_zip_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="missing.zip"):
        safe_extract(tmp_path / "missing.zip", tmp_path / "dest")


def test_extract_replaces_an_older_copy(tmp_path):
    zip_path = tmp_path / "ml-100k.zip"
    zip_path.write_bytes(ML_100K_ZIP)
    (tmp_path / "dest" / "ml-100k").mkdir(parents=True)
    (tmp_path / "dest" / "ml-100k" / "stale.txt").write_text("old")
    folder = safe_extract(zip_path, tmp_path / "dest")
    assert _leftovers(folder) == ["u.data"]
    assert _leftovers(tmp_path / "dest") == ["ml-100k"]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ALSMF_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "data"
    monkeypatch.delenv("ALSMF_DATA")
    assert default_cache_dir() == tmp_path / "xdg" / "alsmf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "alsmf"


# ---------------------------------------------------------------------- hangs and leftovers
def test_a_trickling_server_is_stopped_by_the_deadline(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP, pause=0.05)  # 20 bytes a second
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"not finished after 0.5 s, the deadline; give "
                                            r"more with --deadline or \$ALSMF_DOWNLOAD_DEADLINE"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url, deadline_s=0.5)
    assert time.monotonic() - started < 1.5
    assert _leftovers(tmp_path) == []


def test_the_deadline_comes_from_the_environment(server, tmp_path, monkeypatch):
    server.serve("ml-100k.zip", ML_100K_ZIP, pause=0.05)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    monkeypatch.setenv("ALSMF_DOWNLOAD_DEADLINE", "0.3")
    with pytest.raises(DownloadError, match="not finished after 0.3 s"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    monkeypatch.setenv("ALSMF_DOWNLOAD_DEADLINE", "soon")
    with pytest.raises(ConfigError, match=r"\$ALSMF_DOWNLOAD_DEADLINE must be a positive "
                                          r"number, got 'soon'"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)


@pytest.mark.parametrize("deadline", [0, -1, float("nan"), float("inf")])
def test_a_deadline_out_of_range_is_refused_before_any_request(server, tmp_path, deadline):
    with pytest.raises(ConfigError, match="deadline must be a number of seconds above 0"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url,
                         deadline_s=deadline)
    assert server.requests == []


def test_a_killed_downloads_part_file_is_removed_by_the_next_download(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    stale = tmp_path / ".ml-100k.zip.k1ll3d.part"  # what a killed download leaves: no lock
    stale.write_bytes(ML_100K_ZIP[:10])
    live = tmp_path / ".ml-100k.zip.l1v3.part"  # another download, still writing
    live.write_bytes(ML_100K_ZIP[:10])
    with live.open("rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert _leftovers(tmp_path) == [live.name, "ml-100k", "ml-100k.zip"]


def test_a_failed_download_leaves_no_part_file(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP, content_length=len(ML_100K_ZIP) + 1)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    with pytest.raises(DownloadError, match="connection closed after"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert not list(tmp_path.glob("*.part")) and _leftovers(tmp_path) == []


# ---------------------------------------------------------------------- bad zips
def test_a_zip_bomb_with_the_published_md5_is_not_reported_as_a_success(server, tmp_path):
    bomb = patched_zip([("ml-100k/u.data", U_DATA)], {"ml-100k/u.data": {"file_size": 3 << 30}})
    server.serve("ml-100k.zip", bomb)
    server.serve("ml-100k.zip.md5", hashlib.md5(bomb).hexdigest().encode())
    with pytest.raises(DataError, match=r"/ml-100k.zip: member 'ml-100k/u.data' would expand "
                                        r".* times .* as a zip bomb does; refused"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert _leftovers(tmp_path) == []  # not kept, so the next call downloads again


def test_a_download_that_is_no_zip_is_not_kept(server, tmp_path):
    server.serve("ml-100k.zip", b"<html>maintenance</html>")
    server.serve("ml-100k.zip.md5", hashlib.md5(b"<html>maintenance</html>").hexdigest().encode())
    with pytest.raises(DataError, match="the download is not a readable zip file"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert _leftovers(tmp_path) == []


def test_a_corrupt_cached_zip_says_how_to_get_past_it(server, tmp_path):
    server.serve("ml-100k.zip", ML_100K_ZIP)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    (tmp_path / "ml-100k.zip").write_bytes(ML_100K_ZIP[: len(ML_100K_ZIP) // 2])
    with pytest.raises(DataError, match=r"ml-100k.zip: truncated or corrupt zip file .*; "
                                        r"delete it or rerun with --force$"):
        download_release("ml-100k", cache_dir=tmp_path, base_url=server.url)
    assert server.requests == []
    folder = download_release("ml-100k", cache_dir=tmp_path, base_url=server.url, force=True)
    assert (folder / "u.data").read_bytes() == U_DATA


def test_cli_download_deadline_is_one_line(server, tmp_path, cli):
    server.serve("ml-100k.zip", ML_100K_ZIP, pause=0.05)
    server.serve("ml-100k.zip.md5", ML_100K_MD5.encode())
    result = cli("data", "download", "ml-100k", "--cache", tmp_path, "--base-url", server.url,
                 "--deadline", 0.3)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "not finished after 0.3 s" in result.stderr
