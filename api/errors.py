"""Errors of the API, each mapped to one HTTP status with a JSON body ``{"error": {...}}``.

::

    ApiError                  the request cannot be served; ``status`` and a message that says what to do
    ├── BadRequest (422)      a parameter is out of range or inconsistent with another
    ├── Unauthorized (401)    no API key, or an unknown one
    ├── Forbidden (403)       the key's role or parks do not allow this
    ├── NotFound (404)        no such gateway / resource (for this key)
    ├── Conflict (409)        the resource exists already
    ├── TooLarge (413)        an upload is bigger than the configured limit
    └── Unavailable (503)     the database did not answer: retry later

``storage.query.QueryError`` is translated to ``Unavailable`` at the route boundary.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base of API errors: an HTTP status, a short code and a message for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    status = 422
    code = "invalid_parameter"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class TooLarge(ApiError):
    status = 413
    code = "too_large"


class Unavailable(ApiError):
    status = 503
    code = "unavailable"
