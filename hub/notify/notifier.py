"""The notifier: fills the outbox from what subscribers may read, and drains it.

It runs on a node that holds the view and reads it as each subscriber, with the decision
TAXII takes (hub.api.access.reading, the view's per-account rows), so a subscriber is told
only of what it could read itself; the check is taken again just before each delivery, so
an account revoked or narrowed meanwhile is told nothing more. A webhook receives the object
as delivered, carrying the hub's signature, and is retried with exponential backoff until it
answers 2xx; e-mails go one per subscriber and address: at once for alerts, as a digest per
interval for collections.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from hub.collections import ALERTS, Collection, Reading, reading
from hub.federation import Account, Federation
from hub.metrics import HubMetrics
from hub.notify.config import NotifySettings
from hub.notify.mail import MailError, send_mail
from hub.notify.messages import compose, told
from hub.notify.store import CHANNELS, Anchor, Due, NotifyStore, Pending, Subscription
from hub.stix.markings import Tlp, tlp_by_marking_id
from hub.store.lookup_values import LookupQuery, NotAValue, lookup_query
from hub.store.view import Entry, ObjectQuery, View, timestamp_key

log = logging.getLogger(__name__)
STIX_JSON = "application/stix+json;version=2.1"


def object_tlp(obj: Mapping[str, Any]) -> int | None:
    """The object's TLP level (the most restrictive of its markings), None when unmarked."""
    table = tlp_by_marking_id()
    refs = obj.get("object_marking_refs")
    levels = [table[r] for r in refs if isinstance(r, str) and r in table] if refs else []
    return int(max(levels)) if levels else None


def matches(subscription: Subscription, obj: Mapping[str, Any], tlp: int | None) -> bool:
    """Whether a collection subscription's filter takes `obj`."""
    if subscription.max_tlp is not None and tlp is not None and tlp > subscription.max_tlp:
        return False
    if subscription.min_confidence is not None:
        confidence = obj.get("confidence")
        if not isinstance(confidence, int) or confidence < subscription.min_confidence:
            return False
    return True


@dataclass
class Notifier:
    """A node's notifier: one runner (hub.api.background.supervised) on an API node."""

    store: NotifyStore
    view: View
    federation: Federation
    collections: Mapping[str, Collection]
    settings: NotifySettings
    metrics: HubMetrics
    # The account as the federation has it now (a reload revokes and changes accounts).
    current: Callable[[str], Account | None]
    poll: float = 0.5  # the pause between rounds while there is work left
    # With nothing due, a channel's loop sleeps until its next row falls due or the scan
    # queues one; it looks again after this long all the same.
    idle_look: float = 60.0
    first_pause: float = 1.0
    max_pause: float = 3600.0
    attempts: int = 16  # about a day of backoff before a notification is given up
    timeout: float = 10.0
    page: int = 200
    page_bytes: int = 4 * 1024 * 1024
    concurrency: int = 32  # receivers served at once
    per_receiver: int = 20  # deliveries to one receiver per round
    round_seconds: float = 15.0  # no new delivery to a receiver after this long in a round
    keep_delivered: float = 7 * 24 * 3600.0  # delivered rows kept for the operator to read
    _next_prune: float = 0.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _queued: dict[str, asyncio.Event] = field(
        default_factory=lambda: {channel: asyncio.Event() for channel in CHANNELS}
    )

    def _account(self, username: str) -> Account | None:
        """The subscriber as the federation has it now; None when it may read nothing."""
        account = self.current(username)
        if account is None or account.disabled or account.member is None:
            return None
        return account if account.can("read") else None

    def _scope(self, username: str) -> Reading | None:
        account = self._account(username)
        return reading(account, self.collections) if account is not None else None

    def _language(self, username: str) -> str:
        account = self.federation.account(username)
        owner = account.member if account is not None else None
        member = next((m for m in self.federation.members if m.id == owner), None)
        return member.language if member is not None else "en"

    def _digest_due(self, now: float) -> float:
        interval = self.settings.digest_seconds
        return (math.floor(now / interval) + 1) * interval

    async def scan(self) -> bool:
        """Queue a page of what each subscription is due; whether any has more to read."""
        more = False
        for subscription in await self.store.every():
            more = await self._scan_one(subscription) or more
        return more

    async def _scan_loop(self) -> None:
        # A new subscription starts after what its reader can read already, so only the view
        # moving on (or a page left for later) gives the subscriptions anything new to read.
        seen: int | None = None
        while not self._stopping.is_set():
            applied = self.view.applied
            if applied != seen:
                seen = None if await self.scan() else applied
            if time.time() >= self._next_prune:
                await self.store.prune(time.time() - self.keep_delivered)
                self._next_prune = time.time() + 3600
            if seen is None:
                await self._pause_for(self.poll)  # a page was left for later
            else:
                await self._pause_for(self._next_prune - time.time(), self.view.moved(seen))

    async def _scan_one(self, subscription: Subscription) -> bool:
        """Queue one page of what `subscription` is due; whether there is more."""
        scope = self._scope(subscription.account)
        alias = ALERTS if subscription.kind in ("alerts", "alert") else subscription.target
        collection = scope.collections.get(alias) if scope is not None else None
        if scope is None or collection is None:
            return False
        after_seq = await self._resume(subscription, alias, scope)
        if after_seq is None:
            return False
        page = await self.view.objects(
            ObjectQuery(
                collection=collection.alias,
                reader=scope.reader,
                after_seq=after_seq,
                ids=(subscription.target,) if subscription.kind == "alert" else (),
                types=subscription.types,
                versions=("all",),
                limit=self.page,
                max_bytes=self.page_bytes,
            )
        )
        if not page.entries:
            return False
        naming = await self._naming(subscription, collection.alias, scope, page.entries)
        now = time.time()
        due: list[Due] = []
        for entry in page.entries:
            if naming is not None and entry.seq not in naming:
                continue
            obj = orjson.loads(entry.json)
            tlp = object_tlp(obj)
            if subscription.kind == "collection" and not matches(subscription, obj, tlp):
                continue
            if subscription.kind == "alerts" and not await self._first(entry, alias, scope):
                continue  # a later version of an alert it was told of already
            version = "" if subscription.kind == "alerts" else (entry.version or entry.date_added)
            if subscription.email:
                # A TLP:RED object's content never goes into the outbox for e-mail.
                told = {"type": entry.id.partition("--")[0], "id": entry.id}
                body = entry.json if tlp != Tlp.RED else orjson.dumps(told)
                when = now if subscription.kind != "collection" else self._digest_due(now)
                due.append(
                    Due("email", subscription.email, alias, entry.id, version, tlp, body, when)
                )
            if subscription.webhook:
                due.append(
                    Due(
                        "webhook",
                        subscription.webhook,
                        alias,
                        entry.id,
                        version,
                        tlp,
                        entry.json,
                        now,
                    )
                )
        last = page.entries[-1]
        anchor = Anchor(last.id, last.version)
        if await self.store.queue(subscription, due, page.last_seq, anchor):
            for queued in self._queued.values():
                queued.set()
        return page.more

    async def _naming(
        self, subscription: Subscription, alias: str, scope: Reading, entries: list[Entry]
    ) -> set[int] | None:
        """The seqs of `entries` that name the subscription's value, as a look-up by its
        subscriber finds them; None when it names no value (every entry passes)."""
        if subscription.kind != "collection" or subscription.value is None:
            return None
        try:
            query: LookupQuery = lookup_query(subscription.value, subscription.value_kind)
        except NotAValue as exc:
            # Checked when it was made; only a change in how values are read gets here.
            log.warning("subscription %s: its value no longer reads: %s", subscription.id, exc)
            return set()
        return await self.view.matching(query, alias, scope.reader, [e.seq for e in entries])

    async def _resume(self, subscription: Subscription, alias: str, scope: Reading) -> int | None:
        """The seq to read on from: the anchor's where the view has it now (a rebuilt view
        numbers its rows anew); just before its newer versions when retention pruned it;
        None while the view has not got to it yet (being rebuilt): wait."""
        anchor = subscription.anchor
        if anchor is None:
            return subscription.after_seq
        found = await self.view.objects(
            ObjectQuery(
                alias,
                scope.reader,
                ids=(anchor.id,),
                versions=("all",),
                limit=1000,
                with_json=False,
            )
        )
        same = [e.seq for e in found.entries if e.version == anchor.version]
        if same:
            return max(same)
        if anchor.version is not None:
            key = timestamp_key(anchor.version)
            newer = [e.seq for e in found.entries if timestamp_key(e.version) > key]
            if newer:
                return min(newer) - 1
        return None

    async def _first(self, entry: Entry, alias: str, scope: Reading) -> bool:
        """Whether `entry` is the first version of its object this reader could read."""
        first = await self.view.objects(
            ObjectQuery(
                alias, scope.reader, ids=(entry.id,), versions=("first",), limit=1, with_json=False
            )
        )
        return not first.entries or first.entries[0].seq >= entry.seq

    async def _readable(self, row: Pending) -> bool:
        """Whether the subscriber may still read the object: the decision, taken again now."""
        scope = self._scope(row.account)
        if scope is None or row.collection not in scope.collections:
            return False
        return bool(await self.view.present([row.object_id], [row.collection], scope.reader))

    def _pause(self, attempts: int) -> float:
        return float(min(self.first_pause * 2**attempts, self.max_pause))

    async def _failed(self, channel: str, ids: list[int], attempts: int, error: str) -> None:
        self.metrics.notify_failures.labels(channel).inc()
        give_up = attempts + 1 >= self.attempts
        log.warning(
            "notification by %s failed (attempt %d%s): %s",
            channel,
            attempts + 1,
            ", given up" if give_up else "",
            error,
        )
        await self.store.retry(ids, time.time() + self._pause(attempts), error, give_up)

    async def _post(self, session: aiohttp.ClientSession, row: Pending) -> bool:
        """Deliver one row; whether its receiver took it (or it was dropped)."""
        if not await self._readable(row):
            await self.store.drop([row.id])
            return True
        headers = {
            "Content-Type": STIX_JSON,
            "X-Cirt-Hub-Delivery": str(row.id),  # the same on every retry: receivers may dedupe
            "X-Cirt-Hub-Subscription": row.subscription,
        }
        if row.object_id.startswith("grouping--"):
            headers["X-Cirt-Hub-Alert"] = row.object_id  # as the correlator's webhooks said
        try:
            # Never redirected: the receiver must be where the operator's prefixes allow.
            async with session.post(
                row.address, data=row.body, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    await self.store.delivered([row.id])
                    self.metrics.notify_sent.labels("webhook").inc()
                    return True
                problem = f"{row.address} answered {response.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            problem = f"{row.address}: {type(exc).__name__}: {exc}"
        await self._failed("webhook", [row.id], row.attempts, problem)
        return False

    async def _webhooks(self, session: aiohttp.ClientSession) -> int:
        """One round of webhook deliveries; how many rows were due."""
        rows = await self.store.due("webhook", time.time(), 500)
        by_address: dict[str, list[Pending]] = {}
        for row in rows:
            by_address.setdefault(row.address, []).append(row)
        gate = asyncio.Semaphore(self.concurrency)

        async def one_receiver(queue: list[Pending]) -> None:
            # In order for one receiver, a few a round: a slow or failing receiver costs the
            # others at most one round's wait, and one that fails waits for its next round.
            async with gate:
                ends = time.monotonic() + self.round_seconds
                for row in queue[: self.per_receiver]:
                    if self._stopping.is_set() or not await self._post(session, row):
                        return
                    if time.monotonic() > ends:
                        return

        await asyncio.gather(*(one_receiver(q) for q in by_address.values()))
        return len(rows)

    async def _emails(self) -> int | None:
        """One round of e-mails; how many rows were due, None when no mail can go."""
        smtp = self.settings.smtp
        if smtp is None:
            return None
        rows = await self.store.due("email", time.time(), 1000)
        groups: dict[tuple[str, str], list[Pending]] = {}
        for row in rows:
            groups.setdefault((row.account, row.address), []).append(row)
        for (account, address), group in groups.items():
            readable = [row for row in group if await self._readable(row)]
            gone = [row.id for row in group if row not in readable]
            if gone:
                await self.store.drop(gone)
            if not readable:
                continue
            language = self._language(account)
            manage = f"{self.settings.console_url}/console/subscriptions"
            items = [told(row, self.federation) for row in readable]
            mail = compose(address, items, language, self.settings.console_url, manage)
            ids = [row.id for row in readable]
            try:
                await send_mail(smtp, mail)
            except MailError as exc:
                await self._failed("email", ids, max(r.attempts for r in readable), str(exc))
                continue
            await self.store.delivered(ids)
            self.metrics.notify_sent.labels("email").inc()
        return len(rows)

    async def _count(self) -> None:
        pending = await self.store.pending()
        for channel in ("email", "webhook"):
            self.metrics.notify_pending.labels(channel).set(pending.get(channel, 0))
            self.metrics.notify_given_up.labels(channel).set(pending.get(channel + "-failed", 0))

    async def _pause_for(self, seconds: float, *until: Coroutine[Any, Any, object]) -> None:
        """Sleep `seconds`, less when stopping or when one of `until` ends first."""
        waits = [asyncio.ensure_future(c) for c in (self._stopping.wait(), *until)]
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _after_round(self, channel: str, due: int | None) -> None:
        """Soon again after a round that had rows due (more may be); else sleep until the
        channel's next row falls due or the scan queues one."""
        await self._count()
        if due:
            await self._pause_for(self.poll)
            return
        wait = self.idle_look
        if due is not None and (at := await self.store.next_due(channel)) is not None:
            wait = min(wait, at - time.time())
        await self._pause_for(wait, self._queued[channel].wait())

    async def _webhook_loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._stopping.is_set():
                self._queued["webhook"].clear()  # what the scan queues from now wakes it
                await self._after_round("webhook", await self._webhooks(session))

    async def _email_loop(self) -> None:
        while not self._stopping.is_set():
            self._queued["email"].clear()
            await self._after_round("email", await self._emails())

    async def run(self) -> None:
        """Scan, and deliver by webhook and e-mail, until stopped: three loops, so a slow
        receiver of one kind never holds up the other or the scan."""
        await asyncio.gather(self._scan_loop(), self._webhook_loop(), self._email_loop())

    def stop(self) -> None:
        self._stopping.set()
