"""A notifier with nothing to do asks nothing of its outbox or the view (it asked both twice
a second, a share of an idle hub's CPU: issue 21), and a new object still reaches a
subscriber's webhook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.api.keys import SUBSCRIPTIONS, VIEW
from tests.hubs import member_identity, running_hub, submit
from tests.notify.servers import webhook_receiver
from tests.notify.test_subscriptions import configured, subscribe, until
from tests.stixdata import TLP2, indicator

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


async def test_a_notifier_at_rest_asks_nothing_and_a_new_object_is_still_told(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with webhook_receiver() as receiver:
        notify = {"webhook_prefixes": [receiver.prefix]}
        async with running_hub(
            bus_url,
            tmp_path / "data",
            demo_secrets,
            topic_prefix=f"t{unique}.",
            adjust=configured(notify),
        ) as hub:
            await subscribe(
                hub, "ng-cert-read", kind="collection", collection="public", webhook=receiver.url
            )
            await asyncio.sleep(1.0)  # the hub's start-up reads are over
            asked: list[str] = []
            # Every statement the outbox's and the view's connections run from now on.
            for db in (hub.app[SUBSCRIPTIONS]._db, hub.app[VIEW]._db):
                await db.run(lambda conn: conn.set_trace_callback(asked.append))
            await asyncio.sleep(3.0)
            assert asked == []

            pattern = "[domain-name:value = 'told.example']"
            clear = indicator(member_identity(hub, "gh-cert"), pattern, TLP2["clear"])
            assert (await submit(hub, "gh-cert-submit", [clear])).success_count == 1

            def told() -> list[str]:
                return [b["id"] for b in receiver.bodies() if b["type"] == "indicator"]

            await until(lambda: told() == [clear["id"]], "told", 30)
