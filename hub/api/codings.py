"""Content codings (RFC 9110 8.4): which one an answer goes out in, and decoding bodies
within bounds (request bodies here, answers in the member client).

Answers: the coding the request's Accept-Encoding ranks highest (q-values respected), zstd
before gzip before deflate among equals: zstd at level 6 is 7-15 % smaller than gzip at its
default level on the hub's pages of 50-200 ATT&CK objects and compresses twice as fast (level
9 saves 2-3 % more at two thirds of the speed). Every answer names
in `Accept-Encoding` what the hub decodes in a request body (RFC 9110 12.5.3), which is how
a client knows it may send zstd.

Requests: aiohttp's own decoding is off (HubRunner), since its zstd decoder takes frames
with windows up to 128 MB before the handler, even unauthenticated, has seen the request.
Here a body is decoded when a handler reads it: a zstd window of at most 8 MB (RFC 9659's
limit for the zstd coding), at most `MAX_FRAMES` frames or gzip members, and never more
output than the caller's limit, however large a size a frame declares.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web import ContentCoding

from hub.zstd import DecompressionParameter, ZstdDecompressor, ZstdError, compress

# What the hub answers in, best first, and decodes in request bodies (besides identity).
CODINGS = ("zstd", "gzip", "deflate")
ACCEPTED = ", ".join(CODINGS)
ZSTD_LEVEL = 6
ZSTD_WINDOW_LOG = 23  # 8 MB
MAX_FRAMES = 64
_PIECE = 256 * 1024  # decoded bytes per call: no large temporary copies
_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 8.4.1.3


def accept_weights(accept_encoding: str) -> dict[str, float]:
    """Accept-Encoding's codings and their q-values (an unreadable q counts as 0)."""
    weights: dict[str, float] = {}
    for element in accept_encoding.split(","):
        name, *params = (part.strip() for part in element.split(";"))
        if not name:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        name = name.lower()
        weights[_ALIASES.get(name, name)] = q
    return weights


def negotiate(accept_encoding: str | None) -> str:
    """The coding to answer in: one of CODINGS or "identity". No header: identity."""
    if not accept_encoding:
        return "identity"
    weights = accept_weights(accept_encoding)
    default = weights.get("*", 0.0)
    best, best_q = "identity", 0.0
    for coding in CODINGS:
        q = weights.get(coding, default)
        if q > best_q:  # strictly: the earlier (better) coding keeps a tie
            best, best_q = coding, q
    if weights.get("identity", 0.0) > best_q:
        return "identity"
    return best


def encode_answer(request: web.Request, response: web.Response) -> None:
    """Put `response` (a bytes body) in the coding the request prefers."""
    response.headers.add("Vary", "Accept-Encoding")
    coding = negotiate(request.headers.get("Accept-Encoding"))
    if coding == "zstd":
        assert isinstance(response.body, bytes | bytearray)
        response.body = compress(bytes(response.body), ZSTD_LEVEL)
        response.headers["Content-Encoding"] = "zstd"
    elif coding != "identity":
        response.enable_compression(ContentCoding(coding))


async def advertise_codings(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: `Accept-Encoding` says what the hub decodes in request bodies."""
    response.headers["Accept-Encoding"] = ACCEPTED


class DecodingError(ValueError):
    """A body that is not valid in its coding, or breaks a bound on decoding it."""


@dataclass
class BodyDecoder:
    """A body in `coding` ("zstd", "gzip" or "deflate"), decoded as it arrives."""

    coding: str
    _decoder: ZstdDecompressor | zlib._Decompress | None = None
    _frames: int = 0

    def __post_init__(self) -> None:
        if self.coding not in CODINGS:
            raise DecodingError(f"{self.coding!r} is not a coding this side decodes")

    def feed(self, data: bytes, into: bytearray, limit: int) -> None:
        """Decode `data` onto `into`, stopping once `into` holds more than `limit` bytes:
        the caller refuses such a body, so no frame is decoded further than that."""
        try:
            while data or self._pending():
                room = limit + 1 - len(into)
                if room <= 0:
                    return
                if self._decoder is None or self._decoder.eof:
                    self._decoder = self._next(data)
                decoder = self._decoder
                into += decoder.decompress(data, min(room, _PIECE))
                if decoder.eof:
                    data = decoder.unused_data
                elif isinstance(decoder, ZstdDecompressor):
                    data = b""  # it keeps what it has not decoded yet (needs_input is False)
                else:
                    data = decoder.unconsumed_tail
        except (zlib.error, ZstdError) as exc:
            hint = " (zstd frames may have a window of at most 8 MB here, as RFC 9659 says)"
            raise DecodingError(
                f"the body is not valid {self.coding}: {exc}" + hint * (self.coding == "zstd")
            ) from None

    def finish(self) -> None:
        """Refuse a body that did not end where a frame (member) ends."""
        if self._decoder is None or not self._decoder.eof:
            raise DecodingError(f"the body ends inside a {self.coding} frame: it was cut short")

    def _pending(self) -> bool:
        """Whether the zstd decoder holds input it could still decode (output was capped)."""
        decoder = self._decoder
        return isinstance(decoder, ZstdDecompressor) and not decoder.eof and not decoder.needs_input

    def _next(self, data: bytes) -> ZstdDecompressor | zlib._Decompress:
        self._frames += 1
        if self._frames > MAX_FRAMES:
            raise DecodingError(
                f"the {self.coding} body has more than {MAX_FRAMES} frames: send one"
            )
        if self.coding == "zstd":
            return ZstdDecompressor(
                options={DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG}
            )
        if self.coding == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        # deflate is the zlib format (RFC 9110 8.4.1.2); some clients send raw deflate.
        zlib_header = bool(data) and data[0] & 0x0F == 8
        return zlib.decompressobj(wbits=zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
