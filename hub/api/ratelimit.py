"""Per-member rate limits and quotas at the TAXII inbox: requests/s, objects/s, bytes/day.

From each member's `rate_limits` in the federation file (absent: unlimited). A POST over a
limit gets 429 with Retry-After and a TAXII error naming the limit; nothing of it is stored.
Requests and objects are token buckets (objects may run into debt: a large submission is
taken whole and the next waits until it is paid off); bytes count per UTC day. The state
lives in this node's memory: with several API nodes each enforces the limits on what
reaches it, so a member spread over N nodes may post up to N times its limits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from hub.api.bodies import read_body
from hub.errors import TooManyRequests
from hub.federation import Account, Federation, RateLimits
from hub.metrics import HubMetrics


@dataclass
class _Bucket:
    rate: float
    tokens: float
    updated: float

    def wait(self, need: float, now: float) -> float:
        """Seconds until the bucket holds `need` tokens (0: it does now)."""
        # It holds one second's worth, and at least one token, so a slow rate still admits.
        capacity = max(self.rate, 1.0)
        self.tokens = min(capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return max(0.0, (need - self.tokens) / self.rate)


@dataclass
class _Usage:
    requests: _Bucket | None
    objects: _Bucket | None
    day: date
    bytes: int = 0


@dataclass(frozen=True)
class _Over:
    limit: str
    wait: float
    said: str


def _seconds_to_midnight(now: datetime) -> float:
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return (midnight - now).total_seconds()


class RateLimiter:
    """This node's per-member counters against the federation's `rate_limits`."""

    def __init__(
        self,
        federation: Federation,
        metrics: HubMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._usage: dict[str, _Usage] = {}
        self.use(federation)

    def use(self, federation: Federation) -> None:
        """Enforce `federation`'s limits from now on (a reload); counts so far are kept."""
        self._limits = {m.id: m.rate_limits for m in federation.members}

    def _usage_of(self, member: str, limits: RateLimits, now: float) -> _Usage:
        today = datetime.now(UTC).date()
        usage = self._usage.get(member)
        if usage is None:
            usage = self._usage[member] = _Usage(None, None, today)
        if usage.day != today:
            usage.day, usage.bytes = today, 0
        usage.requests = _fitted(usage.requests, limits.requests_per_second, now)
        usage.objects = _fitted(usage.objects, limits.objects_per_second, now)
        return usage

    def admit(self, member: str) -> None:
        """Take one request from `member`, or TooManyRequests (429) naming the limit it is over."""
        limits = self._limits.get(member)
        if limits is None or limits == RateLimits():
            return
        now = self._clock()
        usage = self._usage_of(member, limits, now)
        over: list[_Over] = []
        if usage.requests is not None and (wait := usage.requests.wait(1, now)) > 0:
            said = f"{limits.requests_per_second:g} requests per second"
            over.append(_Over("requests_per_second", wait, said))
        if usage.objects is not None and (wait := usage.objects.wait(0, now)) > 0:
            said = f"{limits.objects_per_second:g} objects per second"
            over.append(_Over("objects_per_second", wait, said))
        if limits.bytes_per_day is not None and usage.bytes >= limits.bytes_per_day:
            wait = _seconds_to_midnight(datetime.now(UTC))
            over.append(_Over("bytes_per_day", wait, f"{limits.bytes_per_day} bytes per UTC day"))
        if over:
            # The longest wait is the one that matters: retrying sooner would only fail again.
            worst = max(over, key=lambda o: o.wait)
            self._metrics.rate_limited.labels(member, worst.limit).inc()
            retry = max(1, math.ceil(worst.wait))
            raise TooManyRequests(
                f"member {member!r} is over its rate limit {worst.limit} ({worst.said}): "
                f"nothing was stored; send again in {retry} s",
                details={"limit": worst.limit},
                retry_after=retry,
            )
        if usage.requests is not None:
            usage.requests.tokens -= 1

    def charge(self, member: str, objects: int, size: int) -> None:
        """Count an admitted submission's objects and bytes against `member`'s limits."""
        self._metrics.submitted_bytes.labels(member).inc(size)
        usage = self._usage.get(member)
        if usage is None:
            return  # no limits: nothing to count against
        if usage.objects is not None:
            usage.objects.tokens -= objects
        usage.bytes += size


def _fitted(bucket: _Bucket | None, rate: float | None, now: float) -> _Bucket | None:
    """`bucket` at `rate` (a reload may change it, keeping any debt), full when new."""
    if rate is None:
        return None
    if bucket is None:
        return _Bucket(rate, max(rate, 1.0), now)
    bucket.rate = rate
    return bucket


RATE_LIMITS = web.AppKey("rate_limits", RateLimiter)


def admit(request: web.Request, account: Account) -> None:
    """429 while the caller's member is over one of its limits; else its request counts."""
    if account.member is not None:
        request.app[RATE_LIMITS].admit(account.member)


async def charge(request: web.Request, account: Account, objects: int) -> None:
    """Count the submission's objects and body bytes (already read: no second read)."""
    if account.member is not None:
        size = len(await read_body(request))
        request.app[RATE_LIMITS].charge(account.member, objects, size)
