"""Failed-login throttling, per account and per source address, in this node's memory.

After `failures` different wrong secrets within `window` seconds, an account (or an address)
is locked out for `lockout` seconds, doubling with each further lockout up to `max_lockout`;
a locked-out login is answered 429 without running scrypt. A success clears the account's
record; an address's record clears only with time, so one good account cannot wash out
guesses against others. The same wrong secret sent again (a client with a stale secret,
retrying) counts once: guessing needs different secrets, and a misconfigured client should
not lock its CIRT out. Memory is bounded: at most `max_entries` records per kind, the least
recently failed forgotten first. The address is the TCP peer's (aiohttp's request.remote):
behind a reverse proxy it is the proxy's, shared by every caller (X-Forwarded-For is not
trusted: any client could write it). Each node keeps its own records.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Usernames are at most 64 characters (the schema); longer ones name no account, and are
# cut so a record's key stays small whatever a header holds.
_USERNAME_MAX = 64


@dataclass(frozen=True)
class ThrottlePolicy:
    """Lock a key for `lockout` s (doubling to `max_lockout`) after `failures` in `window` s."""

    failures: int
    window: float
    lockout: float
    max_lockout: float


@dataclass(frozen=True)
class LoginThrottling:
    # Fewer per address than per account: one source guessing is stopped by its address
    # before it can lock the account out for the account's owner; only guesses spread over
    # several addresses lock the account itself.
    account: ThrottlePolicy = ThrottlePolicy(failures=20, window=60, lockout=30, max_lockout=900)
    address: ThrottlePolicy = ThrottlePolicy(failures=10, window=60, lockout=30, max_lockout=900)
    max_entries: int = 10_000


@dataclass(frozen=True)
class Lockout:
    """Why a login is not checked now, and for how many more seconds."""

    scope: str  # "account" or "address"
    seconds: float


@dataclass
class _Record:
    recent: deque[tuple[float, bytes]]  # (when, keyed hash of the secret) of recent failures
    strikes: int = 0  # lockouts so far; each doubles the next
    locked_until: float = 0.0
    last: float = 0.0  # the last failure, or the end of the last lockout if later


class _Counter:
    def __init__(self, policy: ThrottlePolicy, max_entries: int) -> None:
        self.policy = policy
        self._max = max_entries
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def locked(self, key: str, now: float) -> float:
        record = self._records.get(key)
        return max(0.0, record.locked_until - now) if record else 0.0

    def fail(self, key: str, tag: bytes, now: float) -> float:
        """Count a failure; the lockout (seconds) it starts, or 0."""
        p = self.policy
        record = self._records.pop(key, None) or _Record(deque(maxlen=p.failures))
        if now < record.locked_until:
            # A check that began before the lockout and ended after it: already counted for.
            self._records[key] = record
            return 0.0
        self._records[key] = record  # most recently failed last: evicted last
        if record.strikes and now - record.last > p.max_lockout:
            record.strikes = 0  # quiet for long enough: start over from the first lockout
        record.last = now
        if all(seen != tag for _, seen in record.recent):
            record.recent.append((now, tag))
        full = len(record.recent) == p.failures
        if not (full and now - record.recent[0][0] <= p.window):
            self._bound(now)
            return 0.0
        duration = min(p.lockout * 2**record.strikes, p.max_lockout)
        record.strikes += 1
        record.locked_until = record.last = now + duration
        record.recent.clear()
        self._bound(now)
        return duration

    def forget(self, key: str) -> None:
        self._records.pop(key, None)

    def _bound(self, now: float) -> None:
        while len(self._records) > self._max:
            self._records.popitem(last=False)
        # Drop the oldest records that have nothing left to remember (cheap: from the front).
        while self._records:
            key, record = next(iter(self._records.items()))
            if now - record.last <= max(self.policy.window, self.policy.max_lockout):
                break
            del self._records[key]


def address_key(remote: str | None) -> str | None:
    """The throttling key of a source address: itself, or its /64 for IPv6 (one host's
    share of a network, which an attacker can otherwise walk address by address)."""
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class LoginThrottle:
    """The failed-login records of one node: one counter per account, one per address."""

    throttling: LoginThrottling = field(default_factory=LoginThrottling)
    clock: Callable[[], float] = time.monotonic
    _key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)

    def __post_init__(self) -> None:
        t = self.throttling
        self._accounts = _Counter(t.account, t.max_entries)
        self._addresses = _Counter(t.address, t.max_entries)

    def locked(self, username: str, remote: str | None) -> Lockout | None:
        """The lockout in force for this account or this address, if any."""
        username = username[:_USERNAME_MAX]
        now, address = self.clock(), address_key(remote)
        waits = [Lockout("account", self._accounts.locked(username, now))]
        if address is not None:
            waits.append(Lockout("address", self._addresses.locked(address, now)))
        longest = max(waits, key=lambda w: w.seconds)
        return longest if longest.seconds > 0 else None

    def failed(self, username: str, secret: str, remote: str | None) -> list[Lockout]:
        """Count a wrong secret; the lockouts it started (to log), if any."""
        username = username[:_USERNAME_MAX]
        now, address = self.clock(), address_key(remote)
        # Keyed, truncated hash: enough to tell secrets apart, useless to anyone reading memory.
        tag = hmac.new(self._key, f"{username}\0{secret}".encode(), hashlib.sha256).digest()[:12]
        started = [Lockout("account", self._accounts.fail(username, tag, now))]
        if address is not None:
            started.append(Lockout("address", self._addresses.fail(address, tag, now)))
        return [s for s in started if s.seconds > 0]

    def succeeded(self, username: str) -> None:
        self._accounts.forget(username[:_USERNAME_MAX])

    @property
    def sizes(self) -> tuple[int, int]:
        """Records held (accounts, addresses): bounded by `max_entries` each."""
        return len(self._accounts), len(self._addresses)
