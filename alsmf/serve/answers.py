"""What each endpoint answers, as JSON-ready dicts, from one :class:`ServedModel`.

Every answer is computed by the model's own queries (``recommend``, ``fold_in``,
``explain``, ``similar_items``, ``predict``) and its :class:`~alsmf.catalog.ItemCatalog`;
this module only checks what the model knows and shapes the result. An item appears as
``{"item": raw id, "title": ..., "genres": [...]}``, title and genres where the model has them.

A user the model does not know is a 404 here, not the fallback list the command line prints:
a typo in an id should not read as a recommendation. A new user posts ratings instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alsmf.data.ratings import lookup_ids
from alsmf.errors import AlsmfError
from alsmf.model import Explanation, Recommendations
from alsmf.serve.errors import RequestError, refusal
from alsmf.serve.model_holder import ServedModel
from alsmf.serve.params import MAX_BODY_BYTES, MAX_N, MAX_QUERY_CHARS, MAX_RATINGS, RatingRequest

EXPLAINED_ITEMS = 3
"""How many rated items each explained recommendation lists (as ``alsmf recommend``)."""


def recommend(served: ServedModel, user: int, n: int, explain: bool, rank_by: str
              ) -> dict[str, Any]:
    """``GET /api/recommend``: the user's top-n unrated items."""
    model = served.model
    if not _knows(model.user_ids, user):
        raise RequestError(404, f"unknown user {user} (a new user posts ratings to /api/rate)")
    result = _library(model.recommend, user, n, rank_by=rank_by)
    return {"user": user, "rank_by": rank_by,
            "items": _ranked(served, result, user if explain else None)}


def rate(served: ServedModel, request: RatingRequest, rank_by: str) -> dict[str, Any]:
    """``POST /api/rate``: fold in a new user from the ratings and recommend for them.

    Nothing is kept: the folded-in user exists for this request only.
    """
    items = [_resolve(served, item) for item in request.items]
    folded = _library(served.model.fold_in, items, request.ratings)
    result = _library(served.model.recommend, folded, request.n, rank_by=rank_by)
    rated = [_item(served, item) | {"rating": rating}
             for item, rating in zip(items, request.ratings)]
    return {"rated": rated, "rank_by": rank_by,
            "items": _ranked(served, result, folded if request.explain else None)}


def similar(served: ServedModel, item_text: str, n: int) -> dict[str, Any]:
    """``GET /api/similar``: the items closest to one item by cosine of their factors."""
    item = _resolve(served, item_text)
    result = _library(served.model.similar_items, item, n)
    return {"item": _item(served, item),
            "items": [_item(served, int(other)) | {"rank": rank, "cosine": float(cosine)}
                      for rank, (other, cosine) in enumerate(zip(result.items, result.scores),
                                                             start=1)]}


def predict(served: ServedModel, user: int, item_text: str) -> dict[str, Any]:
    """``GET /api/predict``: the model's prediction of one known user and item."""
    model = served.model
    if not _knows(model.user_ids, user):
        raise RequestError(404, f"unknown user {user}")
    item = _resolve(served, item_text)
    return {"user": user, **_item(served, item),
            "predicted": float(_library(model.predict, user, item)[0])}


def search(served: ServedModel, query: str, n: int) -> dict[str, Any]:
    """``GET /api/search``: titles containing ``query``, the whole-title match first, then
    the most rated; ``total`` counts all matches, ``items`` holds the first n."""
    found = served.catalog.search(query)
    popularity = served.catalog.popularity
    return {"query": query, "total": int(len(found)),
            "items": [_item(served, int(item))
                      | {"ratings": int(popularity[served.catalog.position(int(item))])}
                      for item in found[:n]]}


def health(served: ServedModel) -> dict[str, Any]:
    """``GET /api/health``: that the service answers, and with which model."""
    return {"status": "ok", "model_version": served.version}


def model_info(served: ServedModel) -> dict[str, Any]:
    """``GET /api/model``: the model's metadata, settings and data sizes, and the service's
    limits."""
    model = served.model
    last = model.history[-1] if model.history else None
    scale = model.rating_scale
    return {
        "path": str(served.path), "version": served.version, "loaded_at": served.loaded_at,
        "users": model.n_users, "items": model.n_items, "factors": model.factors,
        "training_ratings": int(len(model.seen_indices)),
        "rating_scale": None if scale is None else [float(scale[0]), float(scale[1])],
        "predicts_ratings": model.predicts_ratings, "ranking_head": model.has_ranking_head,
        "titles": served.catalog.has_titles, "biases": model.biases,
        "iterations": len(model.history),
        "train_rmse": None if last is None else last.train_rmse,
        "test_rmse": None if last is None else last.test_rmse,
        "params": model.params,
        "system": None if model.system is None else model.system.to_dict(),
        "limits": {"n": MAX_N, "body_bytes": MAX_BODY_BYTES, "ratings": MAX_RATINGS,
                   "query_chars": MAX_QUERY_CHARS},
    }


def _ranked(served: ServedModel, result: Recommendations, explain_for: Any
            ) -> list[dict[str, Any]]:
    """A recommendation list as rows; with the reasons when ``explain_for`` (the user id or
    folded-in user) is given."""
    rows = []
    ratings = result.ratings
    for position, item in enumerate(result.items.tolist()):
        row = _item(served, item) | {
            "rank": position + 1, "score": float(result.scores[position]),
            "predicted": None if ratings is None else float(ratings[position])}
        if explain_for is not None:
            row["because"] = _because(served, _library(served.model.explain, explain_for, item,
                                                       EXPLAINED_ITEMS))
        rows.append(row)
    return rows


def _because(served: ServedModel, explanation: Explanation) -> dict[str, Any]:
    """An explanation: the baseline (what everyone is predicted for the item) and the rated
    items that add most to the prediction, in rating points."""
    return {"baseline": explanation.baseline,
            "items": [_item(served, int(item)) | {"rating": float(rating),
                                                  "contribution": float(contribution)}
                      for item, rating, contribution in zip(
                          explanation.items, explanation.ratings, explanation.contributions)]}


def _item(served: ServedModel, item: int) -> dict[str, Any]:
    """An item's id, and its title and genres where the model has them."""
    catalog = served.catalog
    if not catalog.has_titles:
        return {"item": item}
    return {"item": item, "title": catalog.title(item), "genres": catalog.genres_of(item)}


def _resolve(served: ServedModel, item: int | str) -> int:
    """The raw id of an item given by id (a JSON number or digits) or by title."""
    if isinstance(item, int):
        if not _knows(served.model.item_ids, item):
            raise RequestError(404, f"unknown item {item}")
        return item
    return _library(served.catalog.resolve, item)


def _library(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, a refusal by the library turned into the request's error."""
    try:
        return call(*args, **kwargs)
    except AlsmfError as error:
        raise refusal(error) from None


def _knows(ids: np.ndarray, raw: int) -> bool:
    return int(lookup_ids(ids, raw)) >= 0
