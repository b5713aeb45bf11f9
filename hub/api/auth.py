"""Who is calling: HTTP Basic (TAXII requires it) or a Bearer token, against the federation.

A bearer token is `<username>.<secret>`; both forms check the same scrypt hash. Verified
secrets are remembered (as keyed hashes) so scrypt runs once per secret, not per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from hub.credentials import VerifiedCache, hash_secret, new_secret, verify_secret
from hub.errors import Unauthorized
from hub.federation import Account, Federation


class Authenticator:
    def __init__(self, federation: Federation) -> None:
        self._accounts = {a.username: a for a in federation.accounts()}
        self._cache = VerifiedCache()
        # Unknown usernames are checked against this, so they cost the same time as known ones.
        self._decoy = hash_secret(new_secret())

    async def check(self, username: str, secret: str) -> Account:
        account = self._accounts.get(username)
        stored = account.secret_hash if account else self._decoy
        if account and self._cache.known(username, secret, stored):
            return account
        ok = await asyncio.to_thread(verify_secret, secret, stored)
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
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise Unauthorized("Basic credentials are not base64 of user:password") from exc
            username, sep, secret = decoded.partition(":")
        elif scheme.lower() == "bearer":
            # Secrets never contain dots; usernames may, so split at the last one.
            username, sep, secret = credentials.rpartition(".")
        else:
            raise Unauthorized(f"authentication scheme {scheme!r} is not supported")
        if not sep or not username or not secret:
            raise Unauthorized("credentials must name an account and its secret")
        return await self.check(username, secret)
