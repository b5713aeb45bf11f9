"""Refusals that know their outcome. The API turns them into TAXII error messages.

HubError (500)
├── BadRequest (400)
├── Unauthorized (401)
├── Forbidden (403)
├── NotFound (404)
├── NotAcceptable (406)
├── RequestTimeout (408; also a TimeoutError)
├── PayloadTooLarge (413)
├── UnsupportedMediaType (415)
├── InvalidStix (422)
├── TooManyRequests (429, retriable)
└── Unavailable (503, retriable)

A retriable refusal tells the client when to come back (`retry_after`, seconds; the
response's Retry-After header).
"""

from __future__ import annotations

from typing import ClassVar


class HubError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    retriable: ClassVar[bool] = False

    def __init__(
        self,
        description: str,
        *,
        details: dict[str, object] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.details = details
        self.retry_after = retry_after


class BadRequest(HubError):
    status = 400
    title = "Bad request"


class Unauthorized(HubError):
    status = 401
    title = "Authentication required"


class Forbidden(HubError):
    status = 403
    title = "Not permitted"


class NotFound(HubError):
    status = 404
    title = "Not found"


class NotAcceptable(HubError):
    status = 406
    title = "Not acceptable"


class RequestTimeout(HubError, TimeoutError):
    """A request body that did not arrive in time. A TimeoutError too: aiohttp, reading what
    is left of a body after the answer, stops quietly on one."""

    status = 408
    title = "Request timeout"


class PayloadTooLarge(HubError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(HubError):
    status = 415
    title = "Unsupported media type"


class InvalidStix(HubError):
    status = 422
    title = "Invalid STIX content"


class TooManyRequests(HubError):
    status = 429
    title = "Too many requests"
    retriable = True


class Unavailable(HubError):
    status = 503
    title = "Service unavailable"
    retriable = True
