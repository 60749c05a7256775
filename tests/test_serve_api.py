"""The service's JSON API through an HTTP client: answers equal the library's, errors are
JSON with 400, 404 or 422, the API key, the body limit and the page's files."""

import json
import re

import httpx
import numpy as np
import pytest

from alsmf.model import MFModel
from alsmf.serve.app import PAGE, create_app
from alsmf.serve.model_holder import ModelHolder
from alsmf.serve.params import MAX_BODY_BYTES, MAX_N
from tests.serve_helpers import running, save_titled_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_titled_model(tmp_path_factory.mktemp("serve") / "model.npz")


@pytest.fixture(scope="module")
def model(model_path):
    return MFModel.load(model_path)


@pytest.fixture(scope="module", params=[False, True], ids=["inline", "offload"])
def client(request, model_path):
    """A client of the service, with the model's queries on the event loop or offloaded to
    the thread pool (both must answer alike)."""
    app = create_app(ModelHolder(model_path), offload=request.param)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as session:
        yield session


def ok(response):
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "1"
    return response.json()


def test_recommend_is_the_models_list_with_titles_and_reasons(client, model):
    body = ok(client.get("/api/recommend", params={"user": 7, "n": 4, "explain": 1}))
    expected = model.recommend(7, 4)
    assert [row["item"] for row in body["items"]] == expected.items.tolist()
    np.testing.assert_allclose([row["score"] for row in body["items"]], expected.scores)
    np.testing.assert_allclose([row["predicted"] for row in body["items"]], expected.ratings)
    assert [row["rank"] for row in body["items"]] == [1, 2, 3, 4]
    first = body["items"][0]
    assert first["title"] == f"Movie {first['item']}" and first["genres"]
    explanation = model.explain(7, first["item"], 3)
    assert [r["item"] for r in first["because"]["items"]] == explanation.items.tolist()
    np.testing.assert_allclose([r["contribution"] for r in first["because"]["items"]],
                               explanation.contributions)
    assert first["because"]["baseline"] == pytest.approx(explanation.baseline)
    plain = ok(client.get("/api/recommend", params={"user": 7, "n": 4, "rank_by": "rating"}))
    assert [row["item"] for row in plain["items"]] == model.recommend(
        7, 4, rank_by="rating").items.tolist()
    assert "because" not in plain["items"][0]


def test_rate_folds_in_a_new_user_by_title_and_id(client, model):
    ratings = [{"item": "Star Wars (1977)", "rating": 5}, {"item": 103, "rating": 1},
               {"item": "movie 110", "rating": 4.5}]
    body = ok(client.post("/api/rate", json={"ratings": ratings, "n": 5, "explain": True}))
    folded = model.fold_in([125, 103, 110], [5.0, 1.0, 4.5])
    expected = model.recommend(folded, 5)
    assert [row["item"] for row in body["items"]] == expected.items.tolist()
    np.testing.assert_allclose([row["predicted"] for row in body["items"]], expected.ratings)
    assert [(r["item"], r["title"], r["rating"]) for r in body["rated"]] == [
        (125, "Star Wars (1977)", 5.0), (103, "Movie 103", 1.0), (110, "Movie 110", 4.5)]
    reasons = {r["item"] for row in body["items"] for r in row["because"]["items"]}
    assert reasons <= {125, 103, 110} and not {125, 103, 110} & {r["item"] for r in body["items"]}


def test_similar_predict_search_and_model(client, model):
    similar = ok(client.get("/api/similar", params={"item": "star wars", "n": 3}))
    expected = model.similar_items(125, 3)
    assert similar["item"] == {"item": 125, "title": "Star Wars (1977)",
                               "genres": ["Action", "Sci-Fi"]}
    assert [row["item"] for row in similar["items"]] == expected.items.tolist()
    np.testing.assert_allclose([row["cosine"] for row in similar["items"]], expected.scores)
    predicted = ok(client.get("/api/predict", params={"user": 3, "item": 110}))
    assert predicted["predicted"] == pytest.approx(model.predict_one(3, 110))
    assert predicted["title"] == "Movie 110"
    found = ok(client.get("/api/search", params={"q": "movie 11"}))
    assert found["total"] == 10 and {r["item"] for r in found["items"]} == set(range(110, 120))
    counts = [r["ratings"] for r in found["items"]]
    assert counts == sorted(counts, reverse=True)
    assert ok(client.get("/api/search", params={"q": "movie 1", "n": 2}))["total"] == 24
    info = ok(client.get("/api/model"))
    assert (info["users"], info["items"], info["factors"]) == (40, 25, 4)
    assert info["rating_scale"] == [1.0, 5.0] and info["ranking_head"] and info["titles"]
    assert info["training_ratings"] == len(model.seen_indices)
    assert info["params"] == json.loads(json.dumps(model.params))
    assert info["limits"] == {"n": MAX_N, "body_bytes": MAX_BODY_BYTES, "ratings": 1000,
                              "query_chars": 200}
    assert ok(client.get("/api/health")) == {"status": "ok", "model_version": 1}


@pytest.mark.parametrize("method, path, payload, status, fragment", [
    ("GET", "/api/recommend?user=99999", None, 404, "unknown user 99999"),
    ("GET", "/api/recommend?user=abc", None, 400, "'user' must be an integer"),
    ("GET", "/api/recommend", None, 400, "missing parameter 'user'"),
    ("GET", "/api/recommend?user=7&n=0", None, 400, "from 1 to 100, got 0"),
    ("GET", f"/api/recommend?user=7&n={MAX_N + 1}", None, 400, "from 1 to 100"),
    ("GET", "/api/recommend?user=7&explain=maybe", None, 400, "'explain' must be 1 or 0"),
    ("GET", "/api/recommend?user=7&rank_by=fun", None, 400, "'rank_by' must be one of"),
    ("GET", "/api/recommend?user=99999999999999999999", None, 400, "must be an integer"),
    ("GET", "/api/similar?item=Casablanca", None, 404, "no item matches 'Casablanca'"),
    ("GET", "/api/similar?item=movie", None, 422, "matches 24 items"),
    ("GET", "/api/similar?item=4242", None, 404, "no item matches '4242'"),
    ("GET", "/api/predict?user=7&item=4242", None, 404, "no item matches"),
    ("GET", "/api/predict?user=4242&item=110", None, 404, "unknown user 4242"),
    ("GET", "/api/search?q=", None, 400, "missing parameter 'q'"),
    ("GET", "/api/search?q=" + "x" * 201, None, 400, "longer than 200 characters"),
    ("POST", "/api/rate", {"ratings": [{"item": 110, "rating": 7}]}, 422,
     "rating 7 is outside the model's rating scale 1 to 5"),
    ("POST", "/api/rate", {"ratings": [{"item": 110, "rating": 0.5}]}, 422, "outside"),
    ("POST", "/api/rate", {"ratings": [{"item": 4242, "rating": 3}]}, 404, "unknown item 4242"),
    ("POST", "/api/rate", {"ratings": [{"item": "Casablanca", "rating": 3}]}, 404,
     "no item matches"),
    ("POST", "/api/rate", {"ratings": []}, 400, "non-empty list"),
    ("POST", "/api/rate", {"ratings": [{"item": 110, "rating": "5"}]}, 400,
     "ratings[0].rating must be a finite number"),
    ("POST", "/api/rate", {"ratings": [{"item": 110, "rating": 5}], "n": 500}, 400,
     "'n' must be an integer from 1 to 100"),
    ("POST", "/api/rate", {"ratings": [{"item": 110, "rating": 5}], "user": 3}, 400,
     "unknown field 'user'"),
    ("POST", "/api/rate", [1, 2], 400, "must be a JSON object"),
    ("POST", "/api/rate", {"ratings": [{"item": 110, "rating": 4}] * 1001}, 400,
     "at most 1000 ratings"),
    ("GET", "/api/rate", None, 405, "GET is not allowed on /api/rate"),
    ("GET", "/api/nothing", None, 404, "no such path '/api/nothing'"),
])
def test_refusals_are_json_errors(client, method, path, payload, status, fragment):
    response = client.request(method, path, json=payload)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["error"]
    assert set(response.json()) == {"error"}


def test_malformed_and_oversized_bodies_are_400(client):
    broken = client.post("/api/rate", content=b'{"ratings": [', headers={
        "content-type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    nested = client.post("/api/rate", content=b"[" * 50_000)
    assert nested.status_code == 400 and "not valid JSON" in nested.json()["error"]
    latin = client.post("/api/rate", content='{"ratings": "é"}'.encode("latin-1"))
    assert latin.status_code == 400
    big = client.post("/api/rate", content=b" " * (MAX_BODY_BYTES + 1))
    assert big.status_code == 400
    assert big.json()["error"] == f"the body is over the limit of {MAX_BODY_BYTES:,} bytes"

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    streamed = client.post("/api/rate", content=chunks())
    assert streamed.status_code == 400 and "over the limit" in streamed.json()["error"]


def test_the_page_is_served_with_no_outside_resource(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "style.css"):
        text = (PAGE / name).read_text()
        assert not re.search(r"(?i)\b(https?:)?//[a-z0-9]", text.replace("http-equiv", "")), name
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/style.css").text == (PAGE / "style.css").read_text()


def test_an_api_key_guards_the_api_but_not_the_page(model_path):
    app = create_app(ModelHolder(model_path), api_key="s3cret")
    with running(app) as base, httpx.Client(base_url=base) as session:
        refused = session.get("/api/health")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer KEY" in refused.json()["error"]
        wrong = session.get("/api/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = session.get("/api/health", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200 and right.json()["status"] == "ok"
        assert session.get("/").status_code == 200
