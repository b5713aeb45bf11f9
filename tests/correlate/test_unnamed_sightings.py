"""A sighting its sender chose not to be named in ("seen here too", unnamed) is counted by the
alert without a name, and what the other members receive of the sighting itself names the hub
where it named the sender: its creator, where it was sighted, the submitter in the hub's
provenance, and no member signature. The sender reads its own sighting as it sent it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.correlate.alerts import ALERT_PROPERTY
from hub.signing.provenance import EXTENSION_ID
from tests.connectors.test_client import run_cli
from tests.correlate.test_alerts import indicator, settled, with_rule
from tests.hubs import member_identity, read_all, running_hub, submit, visible_to

REGION = "region-west-africa"


def sightings(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == "sighting"]


async def test_an_unnamed_sighting_reaches_the_others_in_the_hubs_name(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        reports = {m: indicator(member_identity(hub, m)) for m in ("ng-cert", "gh-cert")}
        for member, report in reports.items():
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        federation = hub.settings.federation
        sn, hub_identity = federation.member("sn-cert"), federation.hub.identity
        code, out, err = await run_cli(
            "sight", reports["ng-cert"]["id"],
            "--url", hub.base_url, "--user", "sn-cert-submit",
            "--identity", sn.identity, "--tlp", "green", "--where", "resolver logs",
            password=hub.password("sn-cert-submit"),
        )  # fmt: skip
        assert code == 0 and out.startswith("accepted  sighting--"), (out, err)

        # Counted (two reports and a sighting make three members), never named.
        alert = (await settled(hub, "ng-cert-read", 1))[-1]
        assert alert[ALERT_PROPERTY]["sighted"] == 1 and not alert[ALERT_PROPERTY].get("named")

        for reader in ("ng-cert-read", "gh-cert-read"):
            [shared] = sightings(await read_all(hub, REGION, reader))
            assert shared["created_by_ref"] == hub_identity, shared
            assert shared["where_sighted_refs"] == [hub_identity], shared
            assert shared["description"] == "resolver logs"
            provenance = shared["extensions"][EXTENSION_ID]
            assert provenance["submitter"] == "anonymous", provenance
            assert "member_signature" not in provenance, provenance
            # Nothing this reader may read says who sighted it.
            assert sn.identity not in str(await visible_to(hub, reader))

        [own] = sightings(await read_all(hub, "member-sn-cert", "sn-cert-read"))
        assert own["created_by_ref"] == sn.identity and own["where_sighted_refs"] == [sn.identity]
        assert own["extensions"][EXTENSION_ID]["submitter"] == "sn-cert"
