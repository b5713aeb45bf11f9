"""Who is calling: HTTP Basic (TAXII requires it) or a Bearer token, against the federation.

A bearer token is `<username>.<secret>`; both forms check the same scrypt hash. Verified
secrets are remembered (as keyed hashes) so scrypt runs once per secret, not per request.
scrypt runs on its own two threads with a bounded queue, so a flood of bad credentials
costs at most two cores' worth of hashing and is then turned away with 503, instead of
starving the pipeline that shares the default executor.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from concurrent.futures import ThreadPoolExecutor

from hub.credentials import VerifiedCache, hash_secret, new_secret, verify_secret
from hub.errors import Unauthorized, Unavailable
from hub.federation import Account, Federation

_HASH_THREADS = 2
_MAX_WAITING = 64


class Authenticator:
    def __init__(self, federation: Federation) -> None:
        self._accounts = {a.username: a for a in federation.accounts()}
        self._cache = VerifiedCache()
        # Unknown usernames are checked against this, so they cost the same time as known ones.
        self._decoy = hash_secret(new_secret())
        self._pool = ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="scrypt")
        self._waiting = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, username: str, secret: str) -> Account:
        account = self._accounts.get(username)
        stored = account.secret_hash if account else self._decoy
        if account and self._cache.known(username, secret, stored):
            return account
        if self._waiting >= _MAX_WAITING:
            raise Unavailable("too many logins are being checked right now; retry shortly")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, verify_secret, secret, stored)
        finally:
            self._waiting -= 1
        if not ok or account is None:
            raise Unauthorized("unknown account or wrong secret")
        self._cache.remember(username, secret, stored)
        return account

    async def authenticate(self, authorization: str | None) -> Account:
        """The account named by an Authorization header; Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("this resource needs HTTP Basic or Bearer authentication")
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII input
                raise Unauthorized("Basic credentials are not base64 of user:password") from exc
            username, sep, secret = decoded.partition(":")
        elif scheme.lower() == "bearer":
            # Secrets never contain dots; usernames may, so split at the last one.
            username, sep, secret = credentials.rpartition(".")
        else:
            raise Unauthorized(f"authentication scheme {scheme!r} is not supported")
        if not sep or not username or not secret:
            raise Unauthorized("credentials must name an account and its secret")
        try:
            # Header bytes that are not UTF-8 arrive as surrogates; no account has them.
            f"{username}:{secret}".encode()
        except UnicodeEncodeError as exc:
            raise Unauthorized("credentials must be UTF-8 text") from exc
        return await self.check(username, secret)
