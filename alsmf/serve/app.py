"""The service's routes: the JSON API under ``/api/``, the page at ``/``, errors as JSON.

Starlette (routing, requests, responses) without FastAPI: the endpoints take a handful of
query parameters and one small JSON body, which :mod:`alsmf.serve.params` checks by hand, so a
validation layer would add per-request cost and a dependency and give nothing the targets
need. Each request takes the current model once (:class:`ModelHolder`) and answers from it to
the end, which is what makes a model swap atomic.

The model's queries run on the event loop itself, not in a thread pool: one ``recommend`` or
fold-in is short, and the GIL lets little of it run beside the loop anyway; the pool
(``offload``) served fewer requests at a longer tail in ``benchmarks/serve.py``'s runs (the
README has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from alsmf.serve import answers
from alsmf.serve.errors import RequestError
from alsmf.serve.model_holder import WATCH_SECONDS, ModelHolder, ServedModel
from alsmf.serve.params import (MAX_BODY_BYTES, count, flag, rank_by, rating_request, raw_id,
                                required)

PAGE = Path(__file__).resolve().parent / "page"
"""The web page's files."""
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/app.js": ("app.js", "text/javascript; charset=utf-8"),
              "/style.css": ("style.css", "text/css; charset=utf-8")}
PAGE_HEADERS = {
    # the page loads nothing from elsewhere, and says so to the browser
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MODEL_VERSION_HEADER = "X-Model-Version"
"""Every API answer names the model version it came from (1, then one more per swap)."""


class JSON(JSONResponse):
    """A JSON response that never fails on a float: NaN or infinity become null (JSON has
    neither), so an odd value in a model answers with null instead of a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
        except ValueError:
            return json.dumps(_finite(content), ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")


def error_response(status: int, message: str, served: ServedModel | None = None) -> JSON:
    """``{"error": message}`` with the status (and the model version when known)."""
    headers = {} if served is None else {MODEL_VERSION_HEADER: str(served.version)}
    return JSON({"error": message}, status_code=status, headers=headers)


def create_app(holder: ModelHolder, *, api_key: str | None = None,
               reload_on_change: bool = False, offload: bool = False,
               watch_every: float = WATCH_SECONDS) -> ASGIApp:
    """The service over ``holder``'s model.

    Args:
        holder: the model being served.
        api_key: when given, every ``/api/`` request needs ``Authorization: Bearer KEY``.
        reload_on_change: watch the model file and swap in a changed model
            (:meth:`ModelHolder.watch`, every ``watch_every`` seconds).
        offload: run the model's queries in Starlette's thread pool instead of on the event
            loop (for the benchmark's comparison).
    """

    def endpoint(answer: Callable[[Request, ServedModel], Awaitable[Callable[[], Any]]]
                 ) -> Callable[[Request], Awaitable[Response]]:
        """An API route: take the current model once, read the request, answer from that
        model, and turn a refusal into its JSON error."""

        async def handle(request: Request) -> Response:
            served = holder.current
            try:
                compute = await answer(request, served)
                body = await run_in_threadpool(compute) if offload else compute()
            except RequestError as error:
                return error_response(error.status, error.message, served)
            return JSON(body, headers={MODEL_VERSION_HEADER: str(served.version)})

        return handle

    async def recommend(request: Request, served: ServedModel) -> Callable[[], Any]:
        params = request.query_params
        return partial(answers.recommend, served, raw_id(params, "user"), count(params),
                       flag(params, "explain"), rank_by(params))

    async def similar(request: Request, served: ServedModel) -> Callable[[], Any]:
        params = request.query_params
        return partial(answers.similar, served, required(params, "item"), count(params))

    async def predict(request: Request, served: ServedModel) -> Callable[[], Any]:
        params = request.query_params
        return partial(answers.predict, served, raw_id(params, "user"),
                       required(params, "item"))

    async def search(request: Request, served: ServedModel) -> Callable[[], Any]:
        params = request.query_params
        return partial(answers.search, served, required(params, "q"), count(params))

    async def rate(request: Request, served: ServedModel) -> Callable[[], Any]:
        body = rating_request(await read_body(request, MAX_BODY_BYTES))
        return partial(answers.rate, served, body, rank_by(request.query_params))

    async def health(request: Request, served: ServedModel) -> Callable[[], Any]:
        return partial(answers.health, served)

    async def model(request: Request, served: ServedModel) -> Callable[[], Any]:
        return partial(answers.model_info, served)

    routes = [Route("/api/recommend", endpoint(recommend)),
              Route("/api/similar", endpoint(similar)),
              Route("/api/predict", endpoint(predict)),
              Route("/api/search", endpoint(search)),
              Route("/api/rate", endpoint(rate), methods=["POST"]),
              Route("/api/health", endpoint(health)),
              Route("/api/model", endpoint(model))]
    routes += [Route(path, _page_file(name, media_type)) for path, (name, media_type)
               in PAGE_FILES.items()]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(holder.watch(watch_every)) if reload_on_change else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        HTTPException: _http_error, Exception: _internal_error})
    return app if api_key is None else BearerToken(app, api_key)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (400) as soon as it is known to exceed ``limit`` bytes, so
    an oversized body is never held whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(400, f"the body is over the limit of {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(400, f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class BearerToken:
    """ASGI middleware: ``/api/`` requests need ``Authorization: Bearer KEY`` (401 without).

    The page itself stays open (it holds no data); it asks for the key when the API says 401.
    The comparison takes the same time whatever the key given.
    """

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            given = next((value for name, value in scope["headers"]
                          if name == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                response = error_response(401, "this service needs an API key: send the "
                                               "header 'Authorization: Bearer KEY'")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _page_file(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    """A route answering one of the page's files (read once, when the app is made)."""
    content = (PAGE / name).read_bytes()

    async def page(request: Request) -> Response:
        return Response(content, media_type=media_type, headers=PAGE_HEADERS)

    return page


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (an unknown path 404, a wrong method 405) as JSON."""
    assert isinstance(error, HTTPException)
    message = {404: f"no such path {request.url.path!r}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(
        error.status_code, str(error.detail))
    return JSON({"error": message}, status_code=error.status_code, headers=error.headers)


async def _internal_error(request: Request, error: Exception) -> Response:
    """A fault of the service itself: a JSON 500 with no traceback (the log has it)."""
    return JSON({"error": "internal error (the server's log has the details)"},
                status_code=500)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
