"""Failed-login throttling, per account and per source address, in this node's memory.

After `failures` different wrong secrets within `window` seconds, an account (or an address)
is locked out for `lockout` seconds, doubling with each further lockout up to `max_lockout`;
a locked-out login is answered 429 without running scrypt. A check is counted when it
begins, before its hash runs, as if it will fail: checks still running count against the
limits, so many wrong secrets sent at once are cut at the limit like the same sent one by
one. The address is counted first, so one source's guesses stop there and never reach the
account's count, which would lock the account's owner out. A success clears the account's
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
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Usernames are at most 64 characters (the schema); longer ones name no account, and are
# cut so a record's key stays small whatever a header holds.
_USERNAME_MAX = 64
# Seconds to wait while the checks running fill a limit: about how long they take.
_CHECKING_WAIT = 1.0


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
    # Not locked out yet, but as many checks are running as may fail: the wait is short,
    # as they end within moments (and if they fail, a real lockout follows).
    checking: bool = False


@dataclass
class _Record:
    recent: deque[tuple[float, bytes]]  # (when, keyed hash of the secret) of recent failures
    strikes: int = 0  # lockouts so far; each doubles the next
    locked_until: float = 0.0
    last: float = 0.0  # the last failure, or the end of the last lockout if later
    # Secrets being checked right now (keyed hashes, with how many checks of each).
    checking: Counter[bytes] = field(default_factory=Counter)

    @property
    def idle(self) -> bool:
        return not (self.recent or self.checking or self.strikes)


class _Counter:
    def __init__(self, scope: str, policy: ThrottlePolicy, max_entries: int) -> None:
        self.scope = scope
        self.policy = policy
        self._max = max_entries
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def admit(self, key: str, tag: bytes, now: float) -> Lockout | None:
        """Reserve a check of the secret `tag`, or the lockout that stops it: one in force,
        or the failures so far and the checks running already fill the limit."""
        p = self.policy
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record(deque(maxlen=p.failures), last=now)
        if now < record.locked_until:
            return Lockout(self.scope, record.locked_until - now)
        counted = {seen for when, seen in record.recent if now - when <= p.window}
        counted.update(record.checking)
        if tag not in counted and len(counted) >= p.failures:
            return Lockout(self.scope, _CHECKING_WAIT, checking=True)
        record.checking[tag] += 1
        return None

    def release(self, key: str, tag: bytes) -> None:
        """A reserved check ended without a failure to count."""
        record = self._records.get(key)
        if record is None:
            return
        record.checking[tag] -= 1
        if record.checking[tag] <= 0:
            del record.checking[tag]
        if record.idle:
            del self._records[key]

    def fail(self, key: str, tag: bytes, now: float) -> float:
        """Count a failure of a reserved check; the lockout (seconds) it starts, or 0."""
        self.release(key, tag)
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
        duration = float(min(p.lockout * 2**record.strikes, p.max_lockout))
        record.strikes += 1
        record.locked_until = record.last = now + duration
        record.recent.clear()
        self._bound(now)
        return duration

    def forget(self, key: str, tag: bytes) -> None:
        """A reserved check succeeded: the key's failures are forgotten, not others' checks."""
        record = self._records.get(key)
        if record is None:
            return
        record.recent.clear()
        record.strikes = 0
        self.release(key, tag)

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


@dataclass(frozen=True)
class Attempt:
    """A login being checked: counted against its account and address until it ends."""

    username: str
    address: str | None
    tag: bytes  # keyed hash of username and secret: tells secrets apart, reveals none


@dataclass
class LoginThrottle:
    """The failed-login records of one node: one counter per account, one per address.

    `begin` a check before hashing; end it with `failed`, `succeeded` or `abandoned`."""

    throttling: LoginThrottling = field(default_factory=LoginThrottling)
    clock: Callable[[], float] = time.monotonic
    _key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)

    def __post_init__(self) -> None:
        t = self.throttling
        self._accounts = _Counter("account", t.account, t.max_entries)
        self._addresses = _Counter("address", t.address, t.max_entries)

    def begin(self, username: str, secret: str, remote: str | None) -> Attempt | Lockout:
        """The attempt to check now, or the lockout that stops it (address before account)."""
        username = username[:_USERNAME_MAX]
        now, address = self.clock(), address_key(remote)
        tag = hmac.new(self._key, f"{username}\0{secret}".encode(), hashlib.sha256).digest()[:12]
        if address is not None and (lockout := self._addresses.admit(address, tag, now)):
            return lockout
        if lockout := self._accounts.admit(username, tag, now):
            if address is not None:
                self._addresses.release(address, tag)
            return lockout
        return Attempt(username, address, tag)

    def failed(self, attempt: Attempt) -> list[Lockout]:
        """Count a wrong secret; the lockouts it started (to log), if any."""
        now = self.clock()
        started = [Lockout("account", self._accounts.fail(attempt.username, attempt.tag, now))]
        if attempt.address is not None:
            started.append(
                Lockout("address", self._addresses.fail(attempt.address, attempt.tag, now))
            )
        return [s for s in started if s.seconds > 0]

    def succeeded(self, attempt: Attempt) -> None:
        self._accounts.forget(attempt.username, attempt.tag)
        if attempt.address is not None:
            self._addresses.release(attempt.address, attempt.tag)

    def abandoned(self, attempt: Attempt) -> None:
        """The check did not run to an answer (the hub too busy, a stop): nothing counts."""
        self._accounts.release(attempt.username, attempt.tag)
        if attempt.address is not None:
            self._addresses.release(attempt.address, attempt.tag)

    @property
    def sizes(self) -> tuple[int, int]:
        """Records held (accounts, addresses): bounded by `max_entries` each."""
        return len(self._accounts), len(self._addresses)
