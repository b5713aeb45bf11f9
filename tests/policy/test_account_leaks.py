"""Account-level confidentiality, by property, on both buses.

Random federations whose members each have two reader accounts, `-r1` and `-r2`; a sender's
TLP:RED names only `-r1` accounts. Random indicators at every TLP level (all reporting one
domain, so the correlator raises alerts), some given a second version later, some of those
revoked, and now and then a revocation posted by another member under someone else's id.
Then, over real HTTP, every reader account reads everything it can: each collection's
objects (every version), manifest, every object id (and an unknown one) by id and by
versions, the live stream, every submission's status resource, every object's explanation,
its alerts, and look-ups (`/api/v1/lookup`) of the reported domain, its parent, free text
and a value never sent. A simple oracle, written here from the sharing table and nothing in
`hub.policy`, says which object versions each account may read: nothing else may show, by
content or by existence (an answer about an id or status it may not know must be the very
answer for one that never existed). Checked per account, not per member: `-r2` must not
learn what was sent to `-r1` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.credentials import hash_secret
from hub.federation import Account, Federation, HubInfo, Member, Region
from hub.stix.predefined import predefined
from tests.hubs import RunningHub, serving, with_sharing

# The oracle's own TLP 2.0 table: marking id → level (0 CLEAR … 4 RED).
CLEAR, GREEN, AMBER, STRICT, RED = range(5)
MARKING = {
    CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
LEVEL = {marking: level for level, marking in MARKING.items()}
HUB_IDENTITY = "identity--0b7e2a0c-6f1d-4c55-8d6e-2a4f3b9c1d7e"
SLOTS = ["cirt-a", "cirt-b", "cirt-c", "cirt-d"]
IDENTITIES = {m: f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, m + '.accounts')}" for m in SLOTS}
REGIONS = ["north", "south"]
READERS = ("r1", "r2")
TAXII = "application/taxii+json;version=2.1"
PATTERN = "[domain-name:value = 'c2.account-leaks.example']"
FIRST, LATER = "2026-11-20T08:00:00.000Z", "2026-11-21T08:00:00.000Z"
# Another member's revocation: never a version the owner or a third member also sends.
HOSTILE = {m: f"2026-11-22T08:00:0{i}.000Z" for i, m in enumerate(SLOTS)}
# One report from two members is a major incident: the correlator has something to say.
CORRELATION = {"rules": [{"scope": "all", "min_members": 2, "min_countries": 1}]}
EXPLORED: dict[str, list[int]] = {}  # bus → [federations, versions, (account, answer) checks]


@cache
def credentials() -> dict[str, tuple[str, str]]:
    """username → (secret, hash), made once (the suite makes hashing cheap)."""
    names = [f"{m}-{kind}" for m in SLOTS for kind in ("submit", *READERS)]
    secrets = {name: uuid.uuid4().hex for name in names}
    return {name: (secret, hash_secret(secret)) for name, secret in secrets.items()}


@dataclass
class World:
    member_regions: dict[str, list[str]]
    rules: dict[str, dict[str, Any]]
    first: dict[str, list[dict[str, Any]]]  # sender → its first submission
    later: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # its second

    @property
    def members(self) -> list[str]:
        return list(self.member_regions)

    def federation(self) -> Federation:
        secret = credentials()

        def accounts(m: str) -> tuple[Account, ...]:
            submit = Account(f"{m}-submit", frozenset({"submit"}), secret[f"{m}-submit"][1], m)
            readers = (
                Account(f"{m}-{r}", frozenset({"read"}), secret[f"{m}-{r}"][1], m) for r in READERS
            )
            return (submit, *readers)

        regions = sorted({r for rs in self.member_regions.values() for r in rs})
        federation = Federation(
            hub=HubInfo("accounts-hub", "Account property hub", HUB_IDENTITY),
            regions=tuple(Region(r, r.title()) for r in regions),
            members=tuple(
                Member(m, m.upper(), "AA", tuple(rs), IDENTITIES[m], accounts(m))
                for m, rs in self.member_regions.items()
            ),
            correlation=CORRELATION,
        )
        return with_sharing(federation, self.rules)


# ---------------------------------------------------------------- strategies


@st.composite
def worlds(draw: st.DrawFn) -> World:
    members = SLOTS[: draw(st.integers(2, 4))]
    member_regions = {
        m: sorted(draw(st.sets(st.sampled_from(REGIONS), min_size=1))) for m in members
    }
    regions = sorted({r for rs in member_regions.values() for r in rs})
    anyone = st.one_of(
        st.just("all"),
        st.sampled_from([f"region:{r}" for r in regions]),
        st.sampled_from([f"member:{m}" for m in members]),
    )
    rules = {}
    for m in members:
        recipients: dict[str, Any] = {
            "amber": draw(st.lists(anyone, unique=True, max_size=2)),
            "amber+strict": draw(
                st.lists(st.sampled_from([f"member:{o}" for o in members]), unique=True, max_size=2)
            ),
            # TLP:RED names first reader accounts only: the second ones are the witnesses.
            "red": draw(
                st.lists(st.sampled_from([f"account:{o}-r1" for o in members]), unique=True)
            ),
        }
        if draw(st.booleans()):
            green = st.one_of(st.just("all"), st.sampled_from([f"region:{r}" for r in regions]))
            recipients["green"] = draw(st.lists(green, unique=True, min_size=1, max_size=2))
        rules[m] = {"recipients": recipients}
    levels = st.sampled_from([CLEAR, GREEN, AMBER, STRICT, RED, RED])
    first = {}
    for m in members:
        first[m] = [
            indicator(f"indicator--{draw(st.uuids(version=4))}", m, draw(levels), FIRST)
            for _ in range(draw(st.integers(1, 3)))
        ]
    world = World(member_regions, rules, first)
    sent = [(m, o) for m in members for o in first[m]]
    for m in members:
        again = []
        for owner, obj in draw(st.lists(st.sampled_from(sent), unique_by=lambda s: s[1]["id"])):
            hostile = owner != m
            if hostile and draw(st.integers(0, 2)) != 0:
                continue  # now and then a member revokes someone else's object id
            revoked = hostile or draw(st.booleans())
            later = indicator(obj["id"], m, draw(levels), HOSTILE[m] if hostile else LATER)
            again.append({**later, "revoked": True} if revoked else later)
        if draw(st.booleans()):
            # A note about objects sent before, its own or others' (TLP:RED ones included).
            about = draw(st.lists(st.sampled_from(sent), min_size=1, max_size=2))
            again.append(
                note(
                    f"note--{draw(st.uuids(version=4))}",
                    m,
                    draw(levels),
                    [o["id"] for _, o in about],
                )
            )
        if again:
            world.later[m] = again
    return world


def indicator(object_id: str, sender: str, level: int, modified: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id,
        "created": FIRST,
        "modified": modified,
        "name": f"C2 domain, as {sender} saw it at {modified}",
        "pattern": PATTERN,
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
        "created_by_ref": IDENTITIES[sender],
        "object_marking_refs": [MARKING[level]],
    }


def note(object_id: str, sender: str, level: int, refs: list[str]) -> dict[str, Any]:
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": object_id,
        "created": LATER,
        "modified": LATER,
        "content": f"{sender} saw these together",
        "object_refs": sorted(set(refs)),
        "created_by_ref": IDENTITIES[sender],
        "object_marking_refs": [MARKING[level]],
    }


# ---------------------------------------------------------------- the oracle


Version = tuple[str, str]  # (object id, modified)


def names(entries: Iterable[str], member: str, regions: list[str]) -> bool:
    return any(
        e == "all" or e == f"member:{member}" or (e.startswith("region:") and e[7:] in regions)
        for e in entries
    )


def by_table(world: World, sender: str, account: str, level: int) -> bool:
    """May `account` read an object of `level` from `sender`, by the sharing table?"""
    member = account.rsplit("-", 1)[0]
    recipients = world.rules[sender]["recipients"]
    regions = world.member_regions[member]
    if member == sender or level == CLEAR:
        return True
    if level == GREEN:
        own = [f"region:{r}" for r in world.member_regions[sender]]
        return names(recipients.get("green", own), member, regions)
    if level == AMBER:
        return names(recipients["amber"], member, regions)
    if level == STRICT:
        return f"member:{member}" in recipients["amber+strict"]
    return f"account:{account}" in recipients["red"]


def member_by_table(world: World, sender: str, member: str, level: int) -> bool:
    return any(by_table(world, sender, f"{member}-{r}", level) for r in READERS)


@dataclass
class Sent:
    """What the hub took: each accepted version, its sender, and the submissions' statuses."""

    versions: dict[Version, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    order: list[Version] = field(default_factory=list)  # as submitted
    statuses: dict[str, str] = field(default_factory=dict)  # status id → member


def readable(world: World, sent: Sent, account: str) -> set[Version]:
    """The versions `account` may read: by the table, and a revocation wherever an earlier
    version of the id was readable (it reaches whoever had the object)."""
    out: set[Version] = set()
    for version in sent.order:
        sender, obj = sent.versions[version]
        if by_table(world, sender, account, LEVEL[obj["object_marking_refs"][0]]) or (
            obj.get("revoked") and any(v[0] == obj["id"] for v in out)
        ):
            out.add(version)
    return out


def certain(world: World, sent: Sent, account: str) -> set[Version]:
    """The versions `account` must be able to read: those no revocation routed (and no
    note, which the references it may not follow can leave incomplete)."""
    return {
        v
        for v in readable(world, sent, account)
        if not sent.versions[v][1].get("revoked")
        and sent.versions[v][1]["type"] != "note"
        and by_table(
            world,
            sent.versions[v][0],
            account,
            LEVEL[sent.versions[v][1]["object_marking_refs"][0]],
        )
    }


# ---------------------------------------------------------------- reading as an account


@dataclass
class Reader:
    hub: RunningHub
    http: aiohttp.ClientSession
    username: str

    @property
    def auth(self) -> dict[str, str]:
        secret = credentials()[self.username][0]
        return {"Authorization": aiohttp.encode_basic_auth(self.username, secret), "Accept": TAXII}

    async def get(self, path: str, **query: str) -> tuple[int, Any, dict[str, str]]:
        async with self.http.get(
            self.hub.base_url + path, headers=self.auth, params=query
        ) as response:
            return response.status, await response.json(content_type=None), dict(response.headers)

    async def paged(self, path: str, key: str, **query: str) -> list[Any]:
        found: list[Any] = []
        while True:
            status, body, _ = await self.get(path, **query)
            assert status == 200, (self.username, path, body)
            found += body.get(key, [])
            if not body.get("more"):
                return found
            query = {**query, "next": body["next"]}

    async def collections(self) -> list[str]:
        status, body, _ = await self.get("/taxii2/hub/collections/")
        assert status == 200, body
        return [c["alias"] for c in body["collections"] if c["can_read"]]

    async def stream(self, alias: str, expected: int) -> list[dict[str, Any]]:
        """The live stream's events: `expected` of them, and whatever else comes in 0.3 s."""
        events: list[dict[str, Any]] = []
        url = f"{self.hub.base_url}/api/v1/streams/{alias}"
        async with self.http.get(url, headers=self.auth) as response:
            assert response.status == 200
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while len(events) < expected:
                        events += await self._events(response)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    while True:
                        events += await self._events(response)
        return events

    async def _events(self, response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
        line = await response.content.readline()
        if line.startswith(b"data: "):
            return [orjson.loads(line[6:])]
        return []


def unlike(body: Any, real: str, fake: str) -> Any:
    """`body` as it would read for `fake` in place of `real`."""
    return orjson.loads(orjson.dumps(body).replace(real.encode(), fake.encode()))


async def check_account(world: World, sent: Sent, reader: Reader) -> int:
    """Everything `reader` can read shows what the oracle allows, nothing more; the number
    of answers checked."""
    account, member = reader.username, reader.username.rsplit("-", 1)[0]
    allowed, must = readable(world, sent, account), certain(world, sent, account)
    ids = sorted(
        {v[0] for v in sent.versions} | {o["id"] for os in world.first.values() for o in os}
    )
    unknown = f"indicator--{uuid.uuid4()}"  # never sent: what "nothing here" looks like
    nothing: dict[str, Any] = {}

    async def as_if_unknown(path: str, real: str) -> tuple[int, Any]:
        """The answer for `path` with an id never sent, read as if about `real`."""
        fake = path.replace(real, unknown)
        if fake not in nothing:
            nothing[fake] = (await reader.get(fake))[:2]
        status, body = nothing[fake]
        return status, orjson.loads(orjson.dumps(body).replace(unknown.encode(), real.encode()))

    checks = 0
    seen: dict[str, set[Version]] = {}
    latest: dict[tuple[str, str], dict[str, Any]] = {}  # (collection, id) → as delivered
    alerts: list[dict[str, Any]] = []
    for alias in await reader.collections():
        root = f"/taxii2/hub/collections/{alias}"
        objects = [
            o
            for o in await reader.paged(f"{root}/objects/", "objects", **{"match[version]": "all"})
            if o["id"] not in predefined()  # the hub's own definitions, in `public`
        ]
        if alias == "alerts":
            alerts = objects
            continue
        here = seen[alias] = {(o["id"], o["modified"]) for o in objects}
        assert here <= allowed, (account, alias, here - allowed)
        for obj in objects:
            original = sent.versions[(obj["id"], obj["modified"])][1]
            # A note may lose references this account may not follow, nothing else.
            refs = obj.pop("object_refs", [])
            assert set(refs) <= set(original.get("object_refs", [])), (account, obj)
            assert {k: v for k, v in obj.items() if k != "extensions"} == {
                k: v for k, v in original.items() if k != "object_refs"
            }, account
            mentions(sent, allowed, account, {**obj, "object_refs": refs})
            known = latest.get((alias, obj["id"]))
            if known is None or known["modified"] < obj["modified"]:
                latest[(alias, obj["id"])] = {**obj, "object_refs": refs}
        manifest = await reader.paged(f"{root}/manifest/", "objects", **{"match[version]": "all"})
        listed = {(e["id"], e["version"]) for e in manifest if e["id"] not in predefined()}
        assert listed == here, (account, alias)
        checks += len(objects) + len(manifest)
        # One object a page: `more` and `next` and the date-added headers count only what
        # this account reads (a page that is empty, or says more when nothing it may read
        # follows, would tell it that something else is there).
        added = {(e["id"], e["version"]): e["date_added"] for e in manifest}
        pages, query = 0, {"match[version]": "all", "limit": "1"}
        while manifest:
            status, page, headers = await reader.get(f"{root}/objects/", **query)
            pages += 1
            assert status == 200 and len(page.get("objects", [])) == 1, (account, alias, page)
            (obj,) = page["objects"]
            stamp = added[(obj["id"], obj.get("modified", obj.get("created")))]
            first, last = headers["X-TAXII-Date-Added-First"], headers["X-TAXII-Date-Added-Last"]
            assert first == last == stamp, (account, alias, headers)
            if not page["more"]:
                break
            query["next"] = page["next"]
        assert pages == len(manifest), (account, alias, pages)
        if not manifest:
            status, page, headers = await reader.get(f"{root}/objects/", **query)
            assert (status, page.get("objects", []), page["more"]) == (200, [], False), page
            assert not any(h.startswith("X-TAXII-Date-Added") for h in headers), headers
        checks += pages
        for object_id in [*ids, unknown]:
            mine = {v for v in here if v[0] == object_id}
            for path in (f"{root}/objects/{object_id}/", f"{root}/objects/{object_id}/versions/"):
                status, body, headers = await reader.get(path)
                if mine:
                    assert status == 200, (account, path, body)
                    listed = body.get("versions") or [o["modified"] for o in body["objects"]]
                    assert {(object_id, v) for v in listed} <= mine, (account, path)
                else:
                    assert (status, body) == await as_if_unknown(path, object_id), (account, path)
                    assert not any(h.startswith("X-TAXII-Date-Added") for h in headers)
                checks += 1
    assert must <= set().union(*seen.values()), (account, must - set().union(*seen.values()))
    checks += await check_lookups(sent, allowed, reader, latest)
    # The live stream of each collection: what TAXII shows there, every version, no more.
    streamed = await asyncio.gather(
        *(reader.stream(alias, len(here)) for alias, here in seen.items())
    )
    for (alias, here), events in zip(seen.items(), streamed, strict=True):
        for event in events:
            mentions(sent, allowed, account, event)
        got = {(e["id"], e.get("modified")) for e in events if e["id"] not in predefined()}
        assert got == here, (account, alias)
        checks += len(events)

    # Another member's submission status, another sender's explanation: as for none at all.
    for status_id, owner in sent.statuses.items():
        path = f"/taxii2/hub/status/{status_id}/"
        status, body, _ = await reader.get(path)
        if owner == member:
            assert status == 200, body
        else:
            fake = str(uuid.uuid4())
            _, none, _ = await reader.get(path.replace(status_id, fake))
            assert (status, body) == (404, unlike(none, fake, status_id)), account
        checks += 1
    for object_id in ids:
        path = f"/api/v1/explain/{object_id}"
        status, body, _ = await reader.get(path)
        own = [v for v in sent.order if v[0] == object_id and sent.versions[v][0] == member]
        if own:
            assert status == 200, body
            check_explanation(world, sent, member, own, body["decisions"])
        else:
            assert (status, body) == await as_if_unknown(path, object_id), account
        checks += 1

    # Alerts refer only to reports this account may read, and count no member whose only
    # reports on the domain were TLP:RED.
    reporters = {
        sender
        for sender, obj in sent.versions.values()
        if obj["type"] == "indicator" and LEVEL[obj["object_marking_refs"][0]] != RED
    }
    for alert in alerts:
        mentions(sent, allowed, account, alert)
        assert set(alert.get("object_refs", [])) <= {v[0] for v in allowed}, (account, alert)
        assert alert["x_cirt_hub_alert"]["members"] <= len(reporters), (account, alert)
        checks += 1
    return checks


async def check_lookups(
    sent: Sent,
    allowed: set[Version],
    reader: Reader,
    latest: dict[tuple[str, str], dict[str, Any]],
) -> int:
    """`/api/v1/lookup` finds, collection by collection, the latest version TAXII gives this
    account of each object naming the value (not revoked) and what refers to those; a value
    never sent finds nothing. Alerts (written by the hub, apart) only name what it may read."""
    account = reader.username
    current = {key: obj for key, obj in latest.items() if not obj.get("revoked")}
    indicators = {key for key, obj in current.items() if obj["type"] == "indicator"}
    matched = {object_id for _, object_id in indicators}
    notes = {
        key
        for key, obj in current.items()
        if obj["type"] == "note" and set(obj["object_refs"]) & matched
    }
    domain = PATTERN.split("'")[1]
    expected = {
        domain: indicators | notes,
        domain.split(".", 1)[1]: indicators | notes,  # the parent: its subdomains
        "saw": set(current),  # free text: every name and note content says it
        "c2.never-sent.example": set(),
    }
    for value, wanted in expected.items():
        status, body, _ = await reader.get("/api/v1/lookup", value=value, limit="500")
        assert status == 200 and not body["more"], (account, value, body)
        got = set()
        for entry in body["objects"]:
            mentions(sent, allowed, account, entry)
            if entry["collection"] == "alerts":
                assert set(entry["refers_to"]) <= {v[0] for v in allowed}, (account, entry)
                continue
            assert (entry["id"], entry["version"]) in allowed, (account, value, entry)
            got.add((entry["collection"], entry["id"]))
        assert got == wanted, (account, value, got ^ wanted)
    return len(expected)


def mentions(sent: Sent, allowed: set[Version], account: str, answer: dict[str, Any]) -> None:
    """`answer` names no object id the account may not read (a reference would tell it
    that the object exists); its member's own objects, as it sent them, aside."""
    found = sent.versions.get((str(answer.get("id")), str(answer.get("modified"))))
    if found is not None and found[0] == account.rsplit("-", 1)[0]:
        return
    text = orjson.dumps(answer).decode()
    hidden = {v[0] for v in sent.versions} - {v[0] for v in allowed}
    named = {object_id for object_id in hidden if object_id in text}
    assert not named, (account, named, answer)


def check_explanation(
    world: World, sent: Sent, member: str, own: list[Version], decisions: list[dict[str, Any]]
) -> None:
    """A sender's explanation names, per version, only the members its own rules gave that
    version or its own earlier versions reached, and only TLP:RED accounts it named."""
    assert [(d["object_id"], d["version"]) for d in decisions] == own, (own, decisions)
    named = {e.removeprefix("account:") for e in world.rules[member]["recipients"]["red"]}
    reached: set[str] = {member}
    for decision in decisions:
        obj = sent.versions[(decision["object_id"], decision["version"])][1]
        level = LEVEL[obj["object_marking_refs"][0]]
        ruled = {m for m in world.members if member_by_table(world, member, m, level)}
        allowed = {v["member"] for v in decision["verdicts"] if v["allowed"]}
        assert allowed <= ruled | reached, (member, decision, ruled | reached)
        for delivery in decision["deliveries"]:
            assert set(delivery["accounts"]) <= named, (member, delivery)
            if delivery["collection"].startswith("member-"):
                assert delivery["collection"].removeprefix("member-") in allowed, decision
        reached |= allowed


# ---------------------------------------------------------------- the property


async def submit(
    http: aiohttp.ClientSession,
    hub: RunningHub,
    sender: str,
    objects: list[dict[str, Any]],
    sent: Sent,
) -> None:
    """POST as the sender's submit account, wait for the status, note what was accepted."""
    username = f"{sender}-submit"
    secret = credentials()[username][0]
    headers = {
        "Authorization": aiohttp.encode_basic_auth(username, secret),
        "Accept": TAXII,
        "Content-Type": TAXII,
    }
    url = f"{hub.base_url}/taxii2/hub/collections/inbox/objects/"
    async with http.post(url, data=orjson.dumps({"objects": objects}), headers=headers) as response:
        assert response.status == 202, await response.text()
        status = await response.json(content_type=None)
    async with asyncio.timeout(30):
        while status["status"] != "complete":
            await asyncio.sleep(0.05)
            async with http.get(
                f"{hub.base_url}/taxii2/hub/status/{status['id']}/", headers=headers
            ) as response:
                status = await response.json(content_type=None)
    sent.statuses[status["id"]] = sender
    accepted = {(s["id"], s["version"]) for s in status.get("successes", [])}
    for obj in objects:
        if (obj["id"], obj["modified"]) in accepted:
            sent.versions[(obj["id"], obj["modified"])] = (sender, obj)
            sent.order.append((obj["id"], obj["modified"]))


async def explained(http: aiohttp.ClientSession, hub: RunningHub, sent: Sent) -> None:
    """Wait until every accepted version's decision is in the view (the chainer runs apart)."""
    for version in sent.order:
        sender = sent.versions[version][0]
        reader = Reader(hub, http, f"{sender}-r2")
        async with asyncio.timeout(30):
            while True:
                status, body, _ = await reader.get(f"/api/v1/explain/{version[0]}")
                if status == 200 and version[1] in {d["version"] for d in body["decisions"]}:
                    break
                await asyncio.sleep(0.1)


async def check(world: World, bus_url: str, data_dir: Path) -> int:
    passwords = {name: secret for name, (secret, _) in credentials().items()}
    async with (
        serving(
            world.federation(),
            passwords,
            bus_url,
            data_dir,
            topic_prefix=f"acc{uuid.uuid4().hex[:10]}.",
        ) as hub,
        aiohttp.ClientSession() as http,
    ):
        sent = Sent()
        for round_ in (world.first, world.later):
            for sender, objects in round_.items():
                await submit(http, hub, sender, objects, sent)
        await explained(http, hub, sent)
        checks = 0
        for member in world.members:
            for r in READERS:
                checks += await check_account(world, sent, Reader(hub, http, f"{member}-{r}"))
        return checks


# Examples per bus (CIRT_HUB_ACCOUNT_EXAMPLES overrides): each starts a hub with a new
# federation, and Kafka's topics per hub take longer, so it gets fewer.
EXAMPLES = {"embedded": 8, "kafka": 3}


# aiokafka's threads use the global `random` while Hypothesis draws (see test_leak_freedom).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.timeout(600)
def test_no_account_learns_of_a_version_it_may_not_read(bus_url: str) -> None:
    bus = bus_url.split(":")[0]
    examples = int(os.environ.get("CIRT_HUB_ACCOUNT_EXAMPLES", EXAMPLES[bus]))

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds())
    def holds(world: World) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            checks = asyncio.run(check(world, bus_url, Path(tmp)))
        counts = EXPLORED.setdefault(bus, [0, 0, 0])
        counts[0] += 1
        counts[1] += sum(len(o) for o in (*world.first.values(), *world.later.values()))
        counts[2] += checks

    holds()
