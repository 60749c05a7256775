"""``alsmf serve``: the recommendation service and its web page over a trained model.

The web libraries (Starlette, uvicorn) are imported inside the command, so the other
commands never load them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

import typer

from alsmf.cli.options import MODEL_OPTION, user_errors
from alsmf.errors import ConfigError

API_KEY_VARIABLE = "ALSMF_API_KEY"
"""The environment variable ``--api-key`` is read from when not given (keeps the key out of
the process list)."""


@user_errors
def serve(
    model_path: Path = MODEL_OPTION,
    host: str = typer.Option("127.0.0.1", help="Address to listen on; the default answers "
                             "this machine only."),
    port: int = typer.Option(8000, help="TCP port."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar=API_KEY_VARIABLE, show_envvar=True,
        help="Require 'Authorization: Bearer KEY' on /api/* (the page asks for it)."),
    reload_on_change: bool = typer.Option(
        False, "--reload-on-change", help="Watch the model file and swap in a changed model "
        "without dropping requests (each request finishes on the model it started with)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve recommendations over HTTP: a JSON API under /api/ and a page to rate movies at /.

    Nothing a visitor rates is stored: POST /api/rate folds the ratings into a user that
    lasts for that request.
    """
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be from 1 to 65535, got {port}")
    if api_key is not None and not api_key.strip():
        raise ConfigError(f"--api-key (or {API_KEY_VARIABLE}) is empty")
    from alsmf.serve.app import create_app
    from alsmf.serve.model_holder import ModelHolder
    from alsmf.serve.runner import run

    holder = ModelHolder(model_path)
    app = create_app(holder, api_key=api_key, reload_on_change=reload_on_change)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {model_path} ({holder.current.model!r}) at http://{shown}:{port}/ "
               "(Ctrl-C stops)", err=True)
    if api_key is None and not _loopback(host):
        typer.echo(f"note: {host} is reachable from other machines and no --api-key is set",
                   err=True)
    run(app, host, port, access_log=access_log)


def _loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False

