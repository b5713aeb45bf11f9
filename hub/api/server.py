"""The HTTP server around a hub node's app: how long a client may take to send its request,
how many connections one address may hold, and answers to requests the app never sees.

- aiohttp's keep-alive timer closes a connection that has not sent a whole request's
  headers within `header_timeout` seconds of opening or of its last answer: one timer for
  idle connections and for half-sent headers. (Bodies: hub.api.bodies.)
- A source address (an IPv6 /64) holds at most `max_connections_per_address` connections;
  one more is closed as it opens, before anything is read, so a few hundred slow sockets
  from one place cannot use up the node. Counted in `cirt_hub_connections_refused_total`.
- aiohttp does not decode request bodies: hub.api.bodies does, within its bounds, when a
  handler reads one (aiohttp's zstd decoder would allow 128 MB windows before any check).
- A request aiohttp's parser refuses (not HTTP) is answered here, since it reaches no
  middleware: a TAXII error body, never plain text.
- No answer names the server's software or versions.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hub.api.keys import METRICS, SETTINGS
from hub.api.media import taxii_response
from hub.api.middleware import error_body
from hub.metrics import HubMetrics
from hub.throttle import address_key

log = logging.getLogger(__name__)
SERVER = "cirt-hub"


async def name_server(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: `Server: cirt-hub`, in place of aiohttp's versions."""
    response.headers["Server"] = SERVER


@dataclass
class ConnectionLimit:
    """Open connections per source address, at most `per_address` each (0: no limit)."""

    per_address: int
    metrics: HubMetrics
    _open: Counter[str] = field(default_factory=Counter)
    _refusing: set[str] = field(default_factory=set)  # addresses at their limit, logged

    def admit(self, address: str) -> bool:
        if self.per_address and self._open[address] >= self.per_address:
            self.metrics.connections_refused.inc()
            if address not in self._refusing:
                self._refusing.add(address)
                log.warning(
                    "%s holds %d connections, its limit: further ones are closed on arrival",
                    address,
                    self.per_address,
                )
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
        if self._open[address] < self.per_address:
            self._refusing.discard(address)


class _Connection(web.RequestHandler):
    """aiohttp's connection handler, with the per-address limit and TAXII parse errors."""

    def __init__(self, manager: web.Server, *, limit: ConnectionLimit, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limit = limit
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = address_key(peer[0] if isinstance(peer, tuple) else peer) or "unknown"
        if self._limit.admit(address):
            self._address = address
        else:
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._address is not None:
            self._limit.release(self._address)
            self._address = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request refused before the app (or a 500 aiohttp caught) as a TAXII error."""
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already under way; the connection is closed")
        if status < 500:
            title = HTTPStatus(status).phrase.capitalize()
            reason = exc.message if isinstance(exc, HttpProcessingError) else message
            description = f"the request is not valid HTTP/1.1: {reason or 'malformed'}"
        else:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
            title, description = "Internal error", "the hub failed to handle this request"
        if status < 500:  # a parse refusal: no middleware counted it
            log.info("request from %s refused (%d): %s", request.remote, status, description)
            self._limit.metrics.http_requests.labels("malformed", "", str(status)).inc()
        response = taxii_response(error_body(title, description, status), status=status)
        response.headers["Server"] = SERVER
        response.force_close()
        return response


class _Server(web.Server):
    """The app's low-level server, making `_Connection`s."""

    def __init__(self, made: web.Server, limit: ConnectionLimit, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=loop,
            **kwargs,
        )
        self._connection_kwargs = {"loop": loop, **kwargs}
        self._limit = limit

    def __call__(self) -> _Connection:
        return _Connection(self, limit=self._limit, **self._connection_kwargs)


class HubRunner(web.AppRunner):
    """An AppRunner for a hub node's app, with the bounds its Settings give.

    aiohttp has no setting for a connection limit nor for its error pages, so the runner
    makes its own low-level server and connection handler (aiohttp's, subclassed; the
    runner's keyword arguments are theirs). tests/security/test_slow_clients.py and
    tests/api/test_errors.py hold them to it when aiohttp changes."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        settings = app[SETTINGS]
        # aiohttp's keep-alive timer also runs from a connection's opening to its first
        # complete request: it is the header timeout as well as the idle timeout.
        super().__init__(
            app, keepalive_timeout=settings.header_timeout, auto_decompress=False, **kwargs
        )
        self._limit = ConnectionLimit(settings.max_connections_per_address, app[METRICS])

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # starts the app; its handler and request factory
        return _Server(made, self._limit, **self._kwargs)
