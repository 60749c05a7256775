"""A fuzz pass over the service: hundreds of malformed requests, not one 5xx.

The requests are drawn from a seeded generator, so a failure repeats: random and hostile
query values for every parameter of every endpoint, random JSON (and not JSON) bodies for
``POST /api/rate``, wrong methods and unknown paths. Every answer must be below 500, and every
refusal a JSON ``{"error": ...}``.
"""

import json
import random
from urllib.parse import quote

import httpx
import pytest

from alsmf.serve.app import create_app
from alsmf.serve.model_holder import ModelHolder
from tests.serve_helpers import running, save_titled_model

REQUESTS = 400
HOSTILE_TEXT = ["", " ", "-", "--1", "+5", "1e3", "0x10", "5.0", "NaN", "inf", "-0", "٣",
                "²", "1_000", "9" * 19, "9" * 40, "-9223372036854775809", "9223372036854775808",
                "null", "[]", "{}", "%00", "\x00", "'; DROP TABLE", "<script>", "☃" * 50,
                "movie", "Movie 1", "star wars", "a" * 500, "\ud800".encode("utf-8",
                                                                          "surrogatepass")
                .decode("latin-1")]
PARAMETERS = {"/api/recommend": ["user", "n", "explain", "rank_by"],
              "/api/similar": ["item", "n"], "/api/predict": ["user", "item"],
              "/api/search": ["q", "n"], "/api/health": [], "/api/model": []}


def hostile_value(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.5:
        return rng.choice(HOSTILE_TEXT)
    if choice < 0.8:
        return str(rng.choice([0, 1, 7, 101, 125, -1, 10**6, 2**63, -(2**63), 10**30]))
    return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(1, 30)))


def query_request(rng: random.Random) -> tuple[str, str, bytes | None]:
    path = rng.choice(list(PARAMETERS))
    names = PARAMETERS[path] + ["bogus"]
    pairs = [(rng.choice(names), hostile_value(rng)) for _ in range(rng.randrange(0, 5))]
    query = "&".join(f"{quote(name)}={quote(value, safe='')}" for name, value in pairs)
    if rng.random() < 0.1:  # broken percent-encoding and bare separators
        query += rng.choice(["&%", "&=&", "%zz", "&user", "==", "&n=%FF%FE"])
    return "GET", f"{path}?{query}", None


def hostile_json(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "bool", "null", "list", "dict"] if depth < 3 else ["int"]
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, 1, 5, 7, -3, 125, 10**20, -(10**20)])
    if kind == "float":
        return rng.choice([0.5, 4.5, 1e308, -1e308, 3.7, 1e-300])
    if kind == "str":
        return hostile_value(rng)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [hostile_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["ratings", "n", "explain", "item", "rating", "x"]):
            hostile_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def rate_body(rng: random.Random) -> bytes:
    choice = rng.random()
    if choice < 0.4:  # the right shape with hostile values, some of them for known items
        ratings = [{"item": rng.choice([110, 125, "movie", "Star Wars (1977)", hostile_json(rng)]),
                    "rating": hostile_json(rng)} for _ in range(rng.randrange(0, 4))]
        body = {"ratings": ratings}
        if rng.random() < 0.5:
            body["n"] = hostile_json(rng)
        if rng.random() < 0.3:
            body["explain"] = hostile_json(rng)
        return json.dumps(body).encode()
    if choice < 0.7:
        return json.dumps(hostile_json(rng)).encode()
    if choice < 0.8:  # JSON's non-standard tokens and truncations
        return rng.choice([b'{"ratings": [{"item": 110, "rating": NaN}]}',
                           b'{"ratings": [{"item": 110, "rating": Infinity}]}',
                           b'{"ratings": [{"item": 110, "rating": 1e999}]}',
                           b'{"ratings": [{"item": 110, "rating": 5}', b'{"ratings":',
                           b'{"ratings": [{"item": 110, "rating": 5}], "n": 10}}', b"[" * 5000,
                           b'{"ratings": [{"item": ' + b"9" * 5000 + b', "rating": 5}]}'])
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))


def malformed_request(rng: random.Random) -> tuple[str, str, bytes | None]:
    choice = rng.random()
    if choice < 0.55:
        return query_request(rng)
    if choice < 0.9:
        return "POST", "/api/rate", rate_body(rng)
    if choice < 0.95:
        return rng.choice(["PUT", "DELETE", "PATCH", "POST"]), rng.choice(
            ["/api/recommend", "/api/model", "/", "/api/rate/x"]), b"{}"
    return "GET", "/" + quote(hostile_value(rng), safe="/"), None


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    path = save_titled_model(tmp_path_factory.mktemp("fuzz") / "model.npz")
    with running(create_app(ModelHolder(path))) as base:
        yield base


def test_no_malformed_request_gets_a_server_error(base_url):
    rng = random.Random(20261204)
    statuses = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(REQUESTS):
            method, path, body = malformed_request(rng)
            response = client.request(method, path, content=body)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, path, body, response.text)
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, (method, path, response.text)
    assert sum(statuses.values()) == REQUESTS
    # the pass reaches every kind of refusal, not just one
    assert {400, 404, 422} <= set(statuses), statuses
