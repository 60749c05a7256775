"""How the service refuses a request: an HTTP status and a one-line message, sent as JSON.

Every refusal is ``{"error": "..."}`` with one of three statuses (401 for a missing or wrong
API key is the fourth, and 405 for a method a path does not take):

- 400: the request cannot be read: malformed JSON, a missing or ill-typed parameter, a list
  length out of range, a body over the size limit;
- 404: an unknown user or item (by id or title), or an unknown path;
- 422: a well-formed request the model refuses: a rating outside its scale, a title that
  matches several items, ratings of which none is known.
"""

from __future__ import annotations

from alsmf.errors import AlsmfError, UnknownIdError


class RequestError(Exception):
    """A request the service refuses, with the HTTP status to answer it with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refusal(error: AlsmfError) -> RequestError:
    """The answer to a request that the library refused with ``error``: 404 for something
    the model does not know, 422 for anything else it cannot take."""
    return RequestError(404 if isinstance(error, UnknownIdError) else 422, str(error))
