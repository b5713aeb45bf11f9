"""Subscriptions, end to end against a real SMTP server (STARTTLS, login) and a real webhook
receiver: each subscriber gets one e-mail in its language with the TLP label in the subject,
TLP:RED is never e-mailed, a reader the sharing rules exclude is told nothing, a restart
between an alert and its delivery loses and repeats nothing, and a failing receiver is
retried with growing pauses and then gets the notification once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from hub.api.keys import AUTH, SIGNING_KEYS
from hub.correlate.alerts import ALERT_PROPERTY
from hub.federation import Federation, schema
from hub.signing.verify import Verifier, hub_keys
from tests.api.test_metrics import scrape, value
from tests.conftest import free_port
from tests.correlate.test_alerts import indicator as c2_indicator
from tests.hubs import RunningHub, member_identity, read_all, running_hub, submit
from tests.notify.servers import password_file, smtp_server, webhook_receiver
from tests.stixdata import TLP2, indicator

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
REPORTERS = ("ng-cert", "gh-cert", "sn-cert")


def configured(
    notify: dict[str, Any], languages: dict[str, str] | None = None
) -> Callable[[Federation], Federation]:
    """A federation change: this `notify` block (checked against the schema), and these
    members' languages."""
    jsonschema.validate(notify, schema()["properties"]["notify"])

    def adjust(federation: Federation) -> Federation:
        members = tuple(
            replace(m, language=(languages or {}).get(m.id, m.language)) for m in federation.members
        )
        return replace(federation, members=members, notify=notify)

    return adjust


def auth(hub: RunningHub, username: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def api(
    hub: RunningHub, username: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, hub.base_url + path, json=body, headers=auth(hub, username)
        ) as response,
    ):
        text = await response.text()
        return response.status, (await response.json(content_type=None)) if text else None


async def subscribe(hub: RunningHub, username: str, **fields: Any) -> dict[str, Any]:
    status, made = await api(hub, username, "POST", "/api/v1/subscriptions", fields)
    assert status == 201, made
    return made


async def until(holds: Callable[[], bool], what: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"still not: {what}"
        await asyncio.sleep(0.2)


async def raise_alert(hub: RunningHub) -> None:
    """Three members in three countries report the same C2 domain: one alert each."""
    for member in REPORTERS:
        report = c2_indicator(member_identity(hub, member))
        assert (await submit(hub, f"{member}-submit", [report])).success_count == 1


def subject(message: Any) -> str:
    return str(message["Subject"])


def text(message: Any) -> str:
    return str(message.get_content())


async def test_each_subscriber_gets_one_email_in_its_language_and_the_webhook_the_signed_alert(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    with smtp_server(tmp_path / "smtp") as box:
        async with webhook_receiver() as receiver:
            notify = {
                "smtp": box.notify_block(password_file(tmp_path)),
                "webhook_prefixes": [receiver.prefix],
                "console_url": "https://hub.example",
            }
            async with running_hub(
                bus_url,
                tmp_path / "data",
                demo_secrets,
                topic_prefix=f"t{unique}.",
                adjust=configured(notify, {"gh-cert": "fr"}),
            ) as hub:
                await subscribe(hub, "ng-cert-read", kind="alerts", email="soc@ngcert.example")
                await subscribe(hub, "gh-cert-read", kind="alerts", email="veille@certgh.example")
                await subscribe(hub, "sn-cert-read", kind="alerts", webhook=receiver.url)
                await raise_alert(hub)
                await until(lambda: len(box.messages) >= 2 and receiver.accepted, "delivered")
                await asyncio.sleep(2)  # anything more would be a duplicate
                verifier = Verifier(hub_keys(hub.app[SIGNING_KEYS].jwks()))
    assert len(box.messages) == 2 and box.tls_sessions == 2 and len(box.logins) == 2
    (english,) = box.to("soc@ngcert.example")
    (french,) = box.to("veille@certgh.example")
    assert subject(english).startswith("[TLP:AMBER] New major-incident alert: 3 members")
    assert subject(french).startswith(
        "[TLP:AMBER] Nouvelle alerte d\u2019incident majeur : 3 membres"
    )
    assert english["Content-Language"] == "en" and french["Content-Language"] == "fr"
    assert "https://hub.example/console/objects/grouping--" in text(english)
    assert "supprimez l\u2019abonnement sur https://hub.example/console/subscriptions" in text(
        french
    )
    (alert,) = receiver.bodies()
    assert alert["type"] == "grouping" and verifier.verify(alert).valid


async def test_tlp_red_is_never_emailed_and_a_reader_the_rules_exclude_is_told_nothing(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    sharing = {
        "ng-cert": {"recipients": {"amber": ["member:gh-cert"], "red": ["account:gh-cert-read2"]}}
    }
    with smtp_server(tmp_path / "smtp") as box:
        async with webhook_receiver() as receiver:
            notify = {
                "smtp": box.notify_block(password_file(tmp_path)),
                "webhook_prefixes": [receiver.prefix],
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
                for reader in ("gh-cert-read", "gh-cert-read2"):
                    await subscribe(
                        hub,
                        reader,
                        kind="collection",
                        collection="member-gh-cert",
                        email=f"{reader}@certgh.example",
                    )
                await subscribe(
                    hub,
                    "gh-cert-read2",
                    kind="collection",
                    collection="member-gh-cert",
                    webhook=receiver.url,
                )
                status, listed = await api(hub, "sn-cert-read", "GET", "/api/v1/subscriptions")
                assert status == 200 and listed == {"subscriptions": []}
                for alias in ("public", "region-west-africa", "member-sn-cert"):
                    await subscribe(
                        hub,
                        "sn-cert-read",
                        kind="collection",
                        collection=alias,
                        email="sn@certsn.example",
                        webhook=receiver.url,
                    )
                ng = member_identity(hub, "ng-cert")
                amber = indicator(
                    ng, "[domain-name:value = 'amber.example']", TLP2["amber"], "Amber C2"
                )
                red = indicator(
                    ng, "[domain-name:value = 'red.example']", TLP2["red"], "Red secret C2"
                )
                assert (await submit(hub, "ng-cert-submit", [amber, red])).success_count == 2
                await until(lambda: len(box.messages) >= 2 and receiver.accepted, "delivered")
                await asyncio.sleep(3)  # a digest interval and more: anything else would show
    assert sorted(rcpts[0] for rcpts, _ in box.messages) == [
        "gh-cert-read2@certgh.example",
        "gh-cert-read@certgh.example",
    ]
    (excluded,) = box.to("gh-cert-read@certgh.example")
    (cleared,) = box.to("gh-cert-read2@certgh.example")
    assert subject(excluded).startswith("[TLP:AMBER] ")
    assert "Amber C2" in text(excluded)
    assert "TLP:RED" not in text(excluded) + subject(excluded) and red["id"] not in text(excluded)
    assert subject(cleared).startswith("[TLP:AMBER] 2 new objects")
    assert "Amber C2" in text(cleared) and "1 TLP:RED object — read it in the console" in text(
        cleared
    )
    assert "Red secret C2" not in text(cleared) and "red.example" not in text(cleared)
    assert red["id"] in text(cleared)  # the link to read it in the console
    # The webhook (a machine of the member's own) gets both, only gh-cert-read2's.
    assert sorted(b["name"] for b in receiver.bodies()) == ["Amber C2", "Red secret C2"]


async def test_the_api_shows_and_deletes_only_the_accounts_own_subscriptions(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    notify = {"webhook_prefixes": ["https://soar.ng-cert.example/"]}
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        adjust=configured(notify),
    ) as hub:
        mine = await subscribe(
            hub,
            "ng-cert-read",
            kind="collection",
            collection="region-west-africa",
            types=["indicator", "malware"],
            min_confidence=60,
            max_tlp="amber",
            webhook="https://soar.ng-cert.example/hooks/1",
        )
        assert mine["max_tlp"] == "TLP:AMBER" and mine["types"] == ["indicator", "malware"]
        status, listed = await api(hub, "ng-cert-read", "GET", "/api/v1/subscriptions")
        assert status == 200 and listed["subscriptions"] == [mine]
        status, theirs = await api(hub, "gh-cert-read", "GET", "/api/v1/subscriptions")
        assert theirs == {"subscriptions": []}
        path = f"/api/v1/subscriptions/{mine['id']}"
        status, refused = await api(hub, "gh-cert-read", "DELETE", path)
        assert status == 404 and refused["http_status"] == "404"
        bad = [
            ({"kind": "everything", "webhook": "https://soar.ng-cert.example/x"}, "kind"),
            ({"kind": "alerts"}, "email, webhook"),
            ({"kind": "alerts", "email": "ng@example.org"}, "email: this hub sends no e-mail"),
            ({"kind": "alerts", "webhook": "http://169.254.169.254/latest"}, "webhook:"),
            (
                {"kind": "alerts", "webhook": "https://soar.ng-cert.example.evil.example/"},
                "webhook:",
            ),
            ({"kind": "alerts", "email": "not an address"}, "email:"),
            (
                {
                    "kind": "collection",
                    "collection": "public",
                    "max_tlp": "purple",
                    "webhook": "https://soar.ng-cert.example/x",
                },
                "max_tlp:",
            ),
            (
                {
                    "kind": "collection",
                    "collection": "public",
                    "min_confidence": 101,
                    "webhook": "https://soar.ng-cert.example/x",
                },
                "min_confidence:",
            ),
            ({"kind": "alerts", "webhook": "https://soar.ng-cert.example/", "x": 1}, "unknown"),
        ]
        for body, named in bad:
            status, error = await api(hub, "gh-cert-read", "POST", "/api/v1/subscriptions", body)
            assert status == 400, (body, error)
            assert error["title"] and named in error["description"], (body, error)
        for body in (
            {
                "kind": "collection",
                "collection": "member-ng-cert",
                "webhook": "https://soar.ng-cert.example/x",
            },
            {
                "kind": "alert",
                "alert": "grouping--00000000-0000-4000-8000-000000000000",
                "webhook": "https://soar.ng-cert.example/x",
            },
        ):
            status, error = await api(hub, "gh-cert-read", "POST", "/api/v1/subscriptions", body)
            assert status == 404 and error["http_status"] == "404", error
        status, _ = await api(hub, "ng-cert-submit", "GET", "/api/v1/subscriptions")
        assert status == 403
        assert (await api(hub, "ng-cert-read", "DELETE", path))[0] == 204
        assert (await api(hub, "ng-cert-read", "GET", "/api/v1/subscriptions"))[1] == {
            "subscriptions": []
        }


async def test_a_restart_between_an_alert_and_its_delivery_loses_and_repeats_nothing(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    smtp_port = free_port()
    async with webhook_receiver() as receiver:
        receiver.fail_next = 10**6  # down for as long as the first run lasts

        def notify(box_block: dict[str, Any]) -> dict[str, Any]:
            return {"smtp": box_block, "webhook_prefixes": [receiver.prefix]}

        with smtp_server(tmp_path / "smtp-ca") as probe:
            ca_block = probe.notify_block(password_file(tmp_path))
        block = {**ca_block, "port": smtp_port}  # nothing listens there during the first run
        hub_args = dict(topic_prefix=f"t{unique}.", node_id="node-restart")
        async with running_hub(
            bus_url, tmp_path / "data", demo_secrets, adjust=configured(notify(block)), **hub_args
        ) as hub:
            await subscribe(
                hub,
                "ng-cert-read",
                kind="alerts",
                email="soc@ngcert.example",
                webhook=receiver.url,
            )
            await raise_alert(hub)
            await until(lambda: len(receiver.attempts) >= 1, "a first attempt")
            failures = value(await scrape(hub), "cirt_hub_notify_failures_total", channel="webhook")
        assert not receiver.accepted and failures >= 1
        receiver.fail_next = 0
        with smtp_server(tmp_path / "smtp", port=smtp_port) as box:
            block = box.notify_block(password_file(tmp_path))
            async with running_hub(
                bus_url,
                tmp_path / "data",
                demo_secrets,
                adjust=configured(notify(block)),
                **hub_args,
            ) as hub:
                await until(lambda: receiver.accepted and box.messages, "delivered", 60)
                await asyncio.sleep(3)  # a duplicate would come now
    assert len(receiver.accepted) == 1 and len(box.messages) == 1
    assert receiver.bodies()[0]["type"] == "grouping"


async def test_a_failing_receiver_is_retried_with_growing_pauses_then_gets_it_once(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with webhook_receiver() as receiver:
        receiver.fail_next = 3
        notify = {"webhook_prefixes": [receiver.prefix]}
        async with running_hub(
            bus_url,
            tmp_path / "data",
            demo_secrets,
            topic_prefix=f"t{unique}.",
            adjust=configured(notify),
        ) as hub:
            await subscribe(hub, "ng-cert-read", kind="alerts", webhook=receiver.url)
            await raise_alert(hub)
            await until(lambda: bool(receiver.accepted), "delivered", 60)
            await asyncio.sleep(3)
            scraped = await scrape(hub)
    assert len(receiver.attempts) == 4 and len(receiver.accepted) == 1
    pauses = [b - a for a, b in zip(receiver.attempts, receiver.attempts[1:], strict=False)]
    assert pauses[0] >= 0.9 and pauses[1] >= 1.8 and pauses[2] >= 3.6, pauses
    assert value(scraped, "cirt_hub_notify_failures_total", channel="webhook") == 3
    assert value(scraped, "cirt_hub_notify_sent_total", channel="webhook") == 1


async def test_a_followed_alert_tells_each_change_and_new_alerts_tell_it_once(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    with smtp_server(tmp_path / "smtp") as box:
        async with webhook_receiver() as receiver:
            notify = {
                "smtp": box.notify_block(password_file(tmp_path)),
                "webhook_prefixes": [receiver.prefix],
            }
            async with running_hub(
                bus_url,
                tmp_path / "data",
                demo_secrets,
                topic_prefix=f"t{unique}.",
                adjust=configured(notify),
            ) as hub:
                address = "soc@ngcert.example"
                await subscribe(hub, "ng-cert-read", kind="alerts", email=address)
                await raise_alert(hub)
                await until(lambda: len(box.messages) == 1, "the new alert")
                (alert,) = await read_all(hub, "alerts", "ng-cert-read")
                await subscribe(
                    hub,
                    "ng-cert-read",
                    kind="alert",
                    alert=alert["id"],
                    email=address,
                    webhook=receiver.url,
                )
                fourth = c2_indicator(member_identity(hub, "ke-cirt"))
                assert (await submit(hub, "ke-cirt-submit", [fourth])).success_count == 1
                await until(lambda: len(box.messages) == 2 and receiver.accepted, "the change")
                await asyncio.sleep(2)
    first, change = (m for _, m in box.messages)
    assert subject(first).startswith("[TLP:AMBER] New major-incident alert: 3 members")
    assert subject(change).startswith("[TLP:AMBER] Major-incident alert updated: 4 members")
    (updated,) = receiver.bodies()
    assert updated["id"] == alert["id"] and updated["modified"] > alert["modified"]
    assert updated[ALERT_PROPERTY]["members"] == 4


async def test_an_account_revoked_before_delivery_is_told_nothing_more(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with webhook_receiver() as receiver, webhook_receiver() as other:
        receiver.fail_next = 10**6
        notify = {"webhook_prefixes": [receiver.prefix, other.prefix]}
        async with running_hub(
            bus_url,
            tmp_path / "data",
            demo_secrets,
            topic_prefix=f"t{unique}.",
            adjust=configured(notify),
        ) as hub:
            for reader, url in (("gh-cert-read", receiver.url), ("sn-cert-read", other.url)):
                await subscribe(
                    hub, reader, kind="collection", collection="region-west-africa", webhook=url
                )
            ng = member_identity(hub, "ng-cert")
            shared = indicator(ng, "[domain-name:value = 'green.example']", TLP2["green"], "Green")
            assert (await submit(hub, "ng-cert-submit", [shared])).success_count == 1
            await until(lambda: bool(receiver.attempts) and bool(other.accepted), "queued")
            # A reload disables the account (what `cirt-hub reload` applies).
            federation = hub.settings.federation
            revoked = replace(
                federation,
                members=tuple(
                    replace(
                        m,
                        accounts=tuple(
                            replace(a, disabled=a.username == "gh-cert-read") for a in m.accounts
                        ),
                    )
                    for m in federation.members
                ),
            )
            hub.app[AUTH].use(revoked)
            receiver.fail_next = 0
            await asyncio.sleep(5)  # past the retry's pause
            scraped = await scrape(hub)
    assert receiver.accepted == [] and [b["name"] for b in other.bodies()] == ["Green"]
    assert value(scraped, "cirt_hub_notify_pending", channel="webhook") == 0


async def test_a_receiver_that_redirects_is_not_followed(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with webhook_receiver() as receiver, webhook_receiver() as inside:
        receiver.redirect_to = inside.url  # an address the operator did not allow
        notify = {"webhook_prefixes": [receiver.prefix]}
        async with running_hub(
            bus_url,
            tmp_path / "data",
            demo_secrets,
            topic_prefix=f"t{unique}.",
            adjust=configured(notify),
        ) as hub:
            await subscribe(hub, "ng-cert-read", kind="alerts", webhook=receiver.url)
            await raise_alert(hub)
            await until(lambda: len(receiver.attempts) >= 2, "a retry")
            scraped = await scrape(hub)
    assert inside.attempts == []
    assert value(scraped, "cirt_hub_notify_failures_total", channel="webhook") >= 1


async def test_a_rebuilt_view_neither_repeats_nor_loses_notifications(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """The node's view rebuilt from the bus (deleted, as an upgrade or a restore may) numbers
    its rows anew: subscriptions go on from the last object they told of, not a number."""
    async with webhook_receiver() as receiver:
        notify = {"webhook_prefixes": [receiver.prefix]}
        hub_args: dict[str, Any] = {
            "topic_prefix": f"t{unique}.",
            "node_id": "node-rebuilt",
            "adjust": configured(notify),
        }
        sharing = {"ng-cert": {"recipients": {"amber": ["member:gh-cert"]}}}
        async with running_hub(
            bus_url, tmp_path / "data", demo_secrets, sharing=sharing, **hub_args
        ) as hub:
            ng = member_identity(hub, "ng-cert")
            for n in range(3):  # before the subscription: never told
                green = indicator(ng, f"[domain-name:value = 'g{n}.example']", TLP2["green"])
                assert (await submit(hub, "ng-cert-submit", [green])).success_count == 1
            await subscribe(
                hub,
                "gh-cert-read",
                kind="collection",
                collection="region-west-africa",
                webhook=receiver.url,
            )
            for n in range(6):  # region and member feeds interleaved
                marking = TLP2["green"] if n % 2 else TLP2["amber"]
                told = indicator(ng, f"[domain-name:value = 't{n}.example']", marking, f"t{n}")
                assert (await submit(hub, "ng-cert-submit", [told])).success_count == 1
            await until(lambda: len(receiver.accepted) == 3, "the three region objects")
            for n in range(3):  # after the last one told of, in another feed
                amber = indicator(ng, f"[domain-name:value = 'a{n}.example']", TLP2["amber"])
                assert (await submit(hub, "ng-cert-submit", [amber])).success_count == 1
        for view in (tmp_path / "data").glob("view-*.sqlite3*"):
            view.unlink()
        async with running_hub(
            bus_url, tmp_path / "data", demo_secrets, sharing=sharing, **hub_args
        ) as hub:
            late = indicator(ng, "[domain-name:value = 'late.example']", TLP2["green"], "late")
            assert (await submit(hub, "ng-cert-submit", [late])).success_count == 1
            await until(lambda: len(receiver.accepted) >= 4, "the late object")
            await asyncio.sleep(3)
    assert sorted(b["name"] for b in receiver.bodies()) == ["late", "t1", "t3", "t5"]
