"""Subscriptions to a value, told as a look-up finds it: a network holds the addresses inside
it, a domain its subdomains, values are normalised as GET /api/v1/lookup normalises them; a
bad value is refused as the look-up refuses it; and a matching object the subscriber may not
read is never told, by e-mail (a real SMTP server) or webhook (a real receiver)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from hub.notify.store import NotifyStore
from tests.hubs import member_identity, running_hub, submit
from tests.notify.servers import password_file, smtp_server, webhook_receiver
from tests.notify.test_subscriptions import api, configured, subject, subscribe, text, until
from tests.stixdata import TLP2, indicator

COLLECTION = "member-gh-cert"


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_a_network_is_told_of_addresses_inside_it_and_a_domain_of_its_subdomains(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    # ng-cert's TLP:RED goes to one reader of gh-cert only: the other never reads it.
    sharing = {
        "ng-cert": {"recipients": {"amber": ["member:gh-cert"], "red": ["account:gh-cert-read2"]}}
    }
    with smtp_server(tmp_path / "smtp") as box:
        async with webhook_receiver() as networks, webhook_receiver() as domains:
            notify = {
                "smtp": box.notify_block(password_file(tmp_path)),
                "webhook_prefixes": [networks.prefix, domains.prefix],
                "digest_interval": "PT2S",
            }
            async with running_hub(
                bus_url,
                tmp_path / "data",
                demo_secrets,
                topic_prefix=f"t{unique}.",
                sharing=sharing,
                extra_readers={"gh-cert-read2": "gh-cert"},
                adjust=configured(notify),
            ) as hub:
                made = await subscribe(
                    hub,
                    "gh-cert-read",
                    kind="collection",
                    collection=COLLECTION,
                    value=" 203.0.113.77/24 ",
                    email="read@certgh.example",
                    webhook=networks.url,
                )
                assert (made["value"], made["value_kind"]) == ("203.0.113.0/24", "ipv4")
                await subscribe(
                    hub,
                    "gh-cert-read2",
                    kind="collection",
                    collection=COLLECTION,
                    value="203.0.113.0/24",
                    value_kind="ip",
                    email="read2@certgh.example",
                )
                made = await subscribe(
                    hub,
                    "gh-cert-read",
                    kind="collection",
                    collection=COLLECTION,
                    value="Example.ORG.",
                    value_kind="domain",
                    webhook=domains.url,
                )
                assert (made["value"], made["value_kind"]) == ("example.org", "domain")
                ng = member_identity(hub, "ng-cert")
                amber = TLP2["amber"]
                objects = [
                    indicator(ng, "[ipv4-addr:value = '203.0.113.45']", amber, "Inside"),
                    indicator(ng, "[ipv4-addr:value = '198.51.100.7']", amber, "Outside"),
                    indicator(ng, "[ipv4-addr:value = '203.0.113.9']", TLP2["red"], "Red inside"),
                    indicator(ng, "[domain-name:value = 'WWW.C2.Example.org']", amber, "Sub"),
                    indicator(ng, "[domain-name:value = 'badexample.org']", amber, "Lookalike"),
                    indicator(ng, "[url:value = 'https://example.net/example.org']", amber, "Path"),
                ]
                red_id = objects[2]["id"]
                assert (await submit(hub, "ng-cert-submit", objects)).success_count == 6
                await until(
                    lambda: len(box.messages) >= 2 and networks.accepted and domains.accepted,
                    "told",
                )
                await asyncio.sleep(4)  # two digest intervals: anything more would show now
    assert [b["name"] for b in networks.bodies()] == ["Inside"]
    assert [b["name"] for b in domains.bodies()] == ["Sub"]
    assert len(box.messages) == 2
    (read,) = box.to("read@certgh.example")
    (read2,) = box.to("read2@certgh.example")
    assert subject(read).startswith("[TLP:AMBER] ") and "Inside" in text(read)
    for other in ("Outside", "Lookalike", "Sub", "Red inside", red_id, "TLP:RED"):
        assert other not in text(read) + subject(read), other
    # The reader the rules let read it is told of it: it matched, only the other may not know.
    assert "Inside" in text(read2) and red_id in text(read2) and "Outside" not in text(read2)


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_a_bad_value_is_refused_as_the_lookup_refuses_it(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    notify = {"webhook_prefixes": ["https://soar.gh-cert.example/"]}
    base = {
        "kind": "collection",
        "collection": "public",
        "webhook": "https://soar.gh-cert.example/hooks/1",
    }
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        adjust=configured(notify),
    ) as hub:
        for value, value_kind in (
            ("203.0.113.300/24", "ip"),
            ("example.org", "ipv4"),
            ("not a hash", "sha256"),
            ("x" * 3000, None),
            ("", "domain"),
        ):
            fields: dict[str, Any] = {**base, "value": value}
            if value_kind:
                fields["value_kind"] = value_kind
            status, error = await api(hub, "gh-cert-read", "POST", "/api/v1/subscriptions", fields)
            assert status == 400 and error["description"].startswith("value: "), error
            if value:
                asked = urlencode({"value": value, **({"kind": value_kind} if value_kind else {})})
                _, lookup = await api(hub, "gh-cert-read", "GET", f"/api/v1/lookup?{asked}")
                assert error["description"] == lookup["description"]
        for fields, named in (
            ({**base, "value": 203}, "value: "),
            ({**base, "value": "example.org", "value_kind": "planet"}, "value_kind: "),
        ):
            status, error = await api(hub, "gh-cert-read", "POST", "/api/v1/subscriptions", fields)
            assert status == 400 and error["description"].startswith(named), error
        status, listed = await api(hub, "gh-cert-read", "GET", "/api/v1/subscriptions")
        assert listed == {"subscriptions": []}


# The subscriptions table as hubs made it before subscriptions took a value.
_BEFORE_VALUES = """
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
    types TEXT NOT NULL, min_confidence INTEGER, max_tlp INTEGER, email TEXT, webhook TEXT,
    created TEXT NOT NULL, after_seq INTEGER NOT NULL, anchor_id TEXT, anchor_version TEXT
);
INSERT INTO subscriptions VALUES ('subscription--00000000-0000-4000-8000-000000000001',
    'gh-cert-read', 'collection', 'public', '[]', NULL, NULL, NULL, 'https://x.example/',
    '2026-12-01T00:00:00Z', 7, NULL, NULL);
"""


async def test_a_notify_file_made_before_values_keeps_its_subscriptions_and_takes_values(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notify-node.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_BEFORE_VALUES)
    store = NotifyStore(path)
    await store.open()
    try:
        (old,) = await store.every()
        assert (old.target, old.after_seq, old.value, old.value_kind) == ("public", 7, None, None)
        watching = replace(old, value="203.0.113.0/24", value_kind="ipv4")
        assert await store.add(watching, limit=5) is not None
        shown = [s.public() for s in await store.of_account("gh-cert-read")]
    finally:
        await store.close()
    assert [s.get("value") for s in shown] == [None, "203.0.113.0/24"]
    assert shown[1]["value_kind"] == "ipv4" and "value_kind" not in shown[0]
