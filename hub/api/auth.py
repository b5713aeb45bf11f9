"""Who is calling: HTTP Basic (TAXII requires it) or a Bearer token, against the federation;
or, over mutual TLS, a client certificate that an account pins by fingerprint.

A bearer token is `<username>.<secret>`; both forms check the same scrypt hash. Verified
secrets are remembered (as keyed hashes) so scrypt runs once per secret, not per request.
scrypt runs on its own two threads with a bounded queue, so a flood of bad credentials
costs at most two cores' worth of hashing and is then turned away with 503, instead of
starving the pipeline that shares the default executor.

Failed logins are throttled per source address and per account (hub.throttle): each check
is counted before its hash runs, and a locked-out login gets 429 before any hashing.
`use()` takes a reloaded federation's accounts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from hub.credentials import VerifiedCache, hash_secret, new_secret, verify_secret
from hub.errors import TooManyRequests, Unauthorized, Unavailable
from hub.federation import Account, Federation
from hub.metrics import HubMetrics
from hub.throttle import Attempt, Lockout, LoginThrottle, LoginThrottling
from hub.tls import fingerprint

log = logging.getLogger(__name__)
_HASH_THREADS = 2
_MAX_WAITING = 64


@cache
def _decoy() -> str:
    """A hash of a secret nobody has: unknown usernames are checked against it, so they
    cost the same time as known ones. One per process (scrypt is slow on purpose)."""
    return hash_secret(new_secret())


class Authenticator:
    def __init__(
        self,
        federation: Federation,
        throttling: LoginThrottling | None = None,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.use(federation)
        self._decoy = _decoy()
        self._pool = ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="scrypt")
        self._waiting = 0
        self._throttle = LoginThrottle(throttling or LoginThrottling())
        self._metrics = metrics

    def use(self, federation: Federation) -> None:
        """Authenticate against `federation`'s accounts from now on (a reload): new accounts,
        new secrets and revocations count at once, as nothing verified before is kept."""
        self._accounts = {a.username: a for a in federation.accounts() if not a.disabled}
        self._cache = VerifiedCache()

    def current(self, username: str) -> Account | None:
        """The account as the federation now has it; None once revoked or disabled."""
        return self._accounts.get(username)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, username: str, secret: str, address: str | None = None) -> Account:
        """The account if `secret` is its own; `address` (the caller's) for throttling."""
        attempt = self._throttle.begin(username, secret, address)
        if isinstance(attempt, Lockout):
            wait = math.ceil(attempt.seconds)
            where = "for this account" if attempt.scope == "account" else "from this address"
            why = (
                f"too many logins {where} are being checked at once"
                if attempt.checking
                else f"too many failed logins {where}"
            )
            raise TooManyRequests(f"{why}: none is checked for {wait} s", retry_after=wait)
        account = self._accounts.get(username)
        stored = account.secret_hash if account else self._decoy
        if account and self._cache.known(username, secret, stored):
            self._throttle.succeeded(attempt)
            return account
        if self._waiting >= _MAX_WAITING:
            self._throttle.abandoned(attempt)
            raise Unavailable("too many logins are being checked right now; retry shortly")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, verify_secret, secret, stored)
        except BaseException:
            self._throttle.abandoned(attempt)
            raise
        finally:
            self._waiting -= 1
        # A reload while scrypt ran may have revoked or changed the account: check it again.
        if not ok or account is None or self._accounts.get(username) != account:
            self._failed(attempt, username, address)
            raise Unauthorized("unknown account or wrong secret")
        self._throttle.succeeded(attempt)
        self._cache.remember(username, secret, stored)
        return account

    def _failed(self, attempt: Attempt, username: str, address: str | None) -> None:
        if self._metrics is not None:
            self._metrics.login_failures.inc()
        for lockout in self._throttle.failed(attempt):
            if self._metrics is not None:
                self._metrics.login_lockouts.labels(lockout.scope).inc()
            # Only a real account is named: a "username" that is none may be a mistyped secret.
            who = f"account {username!r}" if username in self._accounts else "an unknown account"
            subject = who if lockout.scope == "account" else f"address {address}"
            log.warning(
                "failed logins: %s locked out for %d s (the last: %s, from %s)",
                subject,
                lockout.seconds,
                who,
                address or "an unknown address",
            )

    async def authenticate(self, authorization: str | None, address: str | None = None) -> Account:
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
        return await self.check(username, secret, address)

    async def authenticate_certificate(
        self, der: bytes, authorization: str | None, address: str | None = None
    ) -> Account:
        """The account that pins this verified client certificate; an Authorization header
        sent with it must name the same account (and hold its secret)."""
        presented = fingerprint(der)
        account = next((a for a in self._accounts.values() if presented in a.certificates), None)
        if account is None:
            raise Unauthorized(
                f"the client certificate {presented} is not mapped to any account: the hub's "
                "operators list it under an account's certificates in the federation file"
            )
        if authorization:
            named = await self.authenticate(authorization, address)
            if named.username != account.username:
                raise Unauthorized(
                    f"the client certificate is account {account.username!r}'s, but the "
                    "Authorization header names another account; send one or the other"
                )
        return account
