"""Reading a request: query parameters and the JSON body of ``POST /api/rate``, with limits.

Everything here checks types and ranges only and raises :class:`RequestError` (400) with a
message naming the parameter; whether the model knows an id is the answers' business.

The limits keep one request small: at most :data:`MAX_N` items in a list, a body of at most
:data:`MAX_BODY_BYTES`, at most :data:`MAX_RATINGS` ratings in it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from alsmf.ranking import RANK_BY
from alsmf.serve.errors import RequestError

MAX_N = 100
"""The longest list an endpoint returns (``n``): a page of results, not a data export."""
DEFAULT_N = 10
MAX_BODY_BYTES = 64 * 1024
"""The largest request body taken; 1,000 ratings by title fit in well under half of it."""
MAX_RATINGS = 1000
"""The most ratings one ``POST /api/rate`` may hold."""
MAX_QUERY_CHARS = 200
"""The longest title or title fragment taken."""
_INT64 = 2**63


def raw_id(params: Mapping[str, str], name: str) -> int:
    """The required integer id ``name`` (raw user and item ids are 64-bit integers)."""
    value = required(params, name)
    return _integer(value, name)


def required(params: Mapping[str, str], name: str) -> str:
    """The required, non-blank text parameter ``name``, at most :data:`MAX_QUERY_CHARS`."""
    value = params.get(name)
    if value is None or not value.strip():
        raise RequestError(400, f"missing parameter {name!r}")
    if len(value) > MAX_QUERY_CHARS:
        raise RequestError(400, f"{name!r} is longer than {MAX_QUERY_CHARS} characters")
    return value.strip()


def count(params: Mapping[str, str], name: str = "n") -> int:
    """The list length ``n``: :data:`DEFAULT_N` when absent, else an integer 1..MAX_N."""
    value = params.get(name)
    return DEFAULT_N if value is None else list_length(_integer(value, name), name)


def list_length(n: Any, name: str = "n") -> int:
    """``n`` when it is an integer from 1 to :data:`MAX_N`."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise RequestError(400, f"{name!r} must be an integer from 1 to {MAX_N}, got {n!r}")
    return n


def flag(params: Mapping[str, str], name: str) -> bool:
    """A yes/no parameter: 1/true/yes or 0/false/no (absent: no)."""
    value = params.get(name, "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise RequestError(400, f"{name!r} must be 1 or 0, got {value!r}")


def rank_by(params: Mapping[str, str]) -> str:
    """What a list is ranked by: ``score`` (default) or ``rating``."""
    value = params.get("rank_by", "score")
    if value not in RANK_BY:
        raise RequestError(400, f"'rank_by' must be one of {', '.join(RANK_BY)}, got {value!r}")
    return value


@dataclass(frozen=True)
class RatingRequest:
    """A ``POST /api/rate`` body, read.

    Attributes:
        items: each rated item as given: a raw id (int) or a title or title fragment (str).
        ratings: the rating of each.
        n: how many recommendations.
        explain: whether each recommendation lists the rated items behind it.
    """

    items: list[int | str]
    ratings: list[float]
    n: int
    explain: bool


def rating_request(body: bytes) -> RatingRequest:
    """Read ``{"ratings": [{"item": ID_OR_TITLE, "rating": NUMBER}, ...], "n": 10,
    "explain": false}``; ``n`` and ``explain`` are optional."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSON and UTF-8 errors are ValueErrors;
        # a deeply nested body exhausts the parser's recursion
        raise RequestError(400, f"the body is not valid JSON ({str(error)[:200]})") from None
    if not isinstance(document, dict):
        raise RequestError(400, 'the body must be a JSON object: {"ratings": [...], "n": 10}')
    unknown = sorted(set(document) - {"ratings", "n", "explain"})
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r} (fields: ratings, n, explain)")
    entries = document.get("ratings")
    if not isinstance(entries, list) or not entries:
        raise RequestError(400, "'ratings' must be a non-empty list of "
                           '{"item": ID_OR_TITLE, "rating": NUMBER}')
    if len(entries) > MAX_RATINGS:
        raise RequestError(400, f"at most {MAX_RATINGS} ratings per request, got {len(entries)}")
    items, ratings = [], []
    for position, entry in enumerate(entries):
        item, rating = _rating_entry(entry, position)
        items.append(item)
        ratings.append(rating)
    explain = document.get("explain", False)
    if not isinstance(explain, bool):
        raise RequestError(400, f"'explain' must be true or false, got {explain!r}")
    return RatingRequest(items, ratings, list_length(document.get("n", DEFAULT_N)), explain)


def _rating_entry(entry: Any, position: int) -> tuple[int | str, float]:
    where = f"ratings[{position}]"
    if not isinstance(entry, dict) or set(entry) != {"item", "rating"}:
        raise RequestError(400, f'{where} must be {{"item": ID_OR_TITLE, "rating": NUMBER}}')
    item, rating = entry["item"], entry["rating"]
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise RequestError(400, f"{where}.item must be an id or a title, got {item!r}")
    if isinstance(item, int) and not -_INT64 <= item < _INT64:
        raise RequestError(400, f"{where}.item {item} is out of the 64-bit id range")
    if isinstance(item, str) and not 0 < len(item.strip()) <= MAX_QUERY_CHARS:
        raise RequestError(400, f"{where}.item must be a title of 1 to {MAX_QUERY_CHARS} "
                           "characters")
    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not math.isfinite(
            rating):
        raise RequestError(400, f"{where}.rating must be a finite number, got {rating!r}")
    return item, float(rating)


def _integer(value: str, name: str) -> int:
    text = value.strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise RequestError(400, f"{name!r} must be an integer, got {value[:40]!r}")
    number = int(text)
    if not -_INT64 <= number < _INT64:
        raise RequestError(400, f"{name!r} is out of the 64-bit integer range")
    return number
