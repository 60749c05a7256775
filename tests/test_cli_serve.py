"""``alsmf serve``: the command starts the service on loopback, with the key from the
environment, and refuses bad options in one line."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.cli_helpers import run
from tests.serve_helpers import save_titled_model


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_on_loopback_with_the_key_from_the_environment(tmp_path):
    model = save_titled_model(tmp_path / "model.npz")
    port = free_port()
    env = os.environ | {"ALSMF_API_KEY": "from-env"}
    server = subprocess.Popen([sys.executable, "-m", "alsmf.cli", "serve", "--model", str(model),
                               "--port", str(port)], env=env, stderr=subprocess.PIPE,
                              text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"{base}/api/health",
                                   headers={"Authorization": "Bearer from-env"})
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["model_version"] == 1
        assert httpx.get(f"{base}/api/health").status_code == 401
        assert httpx.get(f"{base}/").status_code == 200
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}/" in stderr and "note:" not in stderr


@pytest.mark.parametrize("args, fragment", [
    (["--port", "0"], "--port must be from 1 to 65535"),
    (["--api-key", " "], "--api-key (or ALSMF_API_KEY) is empty"),
    (["--model", "missing.npz"], "no such model file"),
])
def test_bad_options_are_one_line(tmp_path, args, fragment):
    model = save_titled_model(tmp_path / "model.npz")
    result = run("serve", "--model", model, *args)
    assert result.exit_code == 2 and fragment in result.output, result.output
