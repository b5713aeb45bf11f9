"""`cirt-hub sight` and `cirt-hub respond` against a real hub: a member's sighting from the
command line reaches an alert's threshold and names it when asked; a response is counted,
and one to an alert the member did not receive is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.correlate.alerts import ALERT_PROPERTY
from tests.connectors.test_client import run_cli
from tests.correlate.test_alerts import alerts_of, indicator, settled, with_rule
from tests.correlate.test_responses import until
from tests.hubs import member_identity, running_hub, submit, visible_to


async def test_a_sighting_and_a_response_from_the_command_line(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        reports = {m: indicator(member_identity(hub, m)) for m in ("ng-cert", "gh-cert")}
        for member, report in reports.items():
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        sn = hub.settings.federation.member("sn-cert")
        sn_secret = hub.password("sn-cert-submit")
        hub_args = ("--url", hub.base_url, "--user", "sn-cert-submit")
        target = reports["ng-cert"]["id"]

        code, _, err = await run_cli("sight", target, *hub_args, password=sn_secret)
        assert code == 2 and "--identity" in err, err
        code, out, err = await run_cli(
            "sight", target, *hub_args,
            "--identity", sn.identity,
            "--count", "4",
            "--where", "resolver logs at the border",
            "--named",
            password=sn_secret,
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith("accepted  sighting--"), out

        # Two reports and a sighting make three members: the alert goes out, naming sn-cert
        # as a sighter because it asked to be named.
        alert = (await settled(hub, "ng-cert-read", 1))[-1]
        fields = alert[ALERT_PROPERTY]
        assert fields["members"] == 3 and fields["sighted"] == 1, fields
        assert fields["named"] == [{"identity": sn.identity, "name": sn.name, "sighted": True}]
        seen = await visible_to(hub, "sn-cert-read")
        [sighting] = [o for objs in seen.values() for o in objs if o["id"] in out]
        assert sighting["sighting_of_ref"] == target and sighting["count"] == 4
        assert sighting["created_by_ref"] == sn.identity
        assert sighting["where_sighted_refs"] == [sn.identity]
        assert sighting["description"] == "resolver logs at the border"

        ng_args = ("--url", hub.base_url, "--user", "ng-cert-submit")
        ng_secret = hub.password("ng-cert-submit")
        code, out, err = await run_cli(
            "respond", alert["id"], "investigating", *ng_args,
            "--note", "sinkholing",
            "--named",
            password=ng_secret,
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith(f"recorded  investigating on {alert['id']}"), out

        def counted(fields: dict[str, Any]) -> bool:
            return fields["responses"]["investigating"] == 1

        ng = hub.settings.federation.member("ng-cert")
        for member in ("ng-cert", "gh-cert", "sn-cert"):
            named = (await until(hub, member, counted))[ALERT_PROPERTY]["named"]
            by_identity = {n["identity"]: n for n in named}
            assert by_identity[ng.identity]["state"] == "investigating", named
            assert by_identity[sn.identity]["sighted"] is True, named
        assert "sinkholing" not in str(await alerts_of(hub, "gh-cert-read"))

        # sn-cert has its own alert, not ng-cert's: the hub answers as for an unknown id.
        code, out, err = await run_cli(
            "respond", alert["id"], "affected", *hub_args, password=sn_secret
        )
        assert code == 1 and "Not found" in err, (out, err)
        code, _, err = await run_cli(
            "respond", alert["id"], "panicking", *hub_args, password=sn_secret
        )
        assert code == 2 and "invalid choice" in err, err
