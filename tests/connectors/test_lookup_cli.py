"""`cirt-hub lookup VALUE` against a real hub: one line per object a reader may read that
mentions the value, in English or French; nothing found is exit 4; a value not of the kind
asked is refused by the hub with the reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.connectors.test_client import run_cli
from tests.hubs import member_identity, running_hub, submit
from tests.stixdata import TLP2, indicator


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_a_lookup_from_the_command_line(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        network = indicator(ng, "[ipv4-addr:value = '203.0.113.0/24']", TLP2["green"], "C2 net")
        assert (await submit(hub, "ng-cert-submit", [network])).success_count == 1
        reader = ("--url", hub.base_url, "--user", "gh-cert-read")
        secret = hub.password("gh-cert-read")

        code, out, err = await run_cli("lookup", "203.0.113.45", *reader, password=secret)
        assert code == 0, err
        [line] = out.splitlines()
        assert line.startswith("TLP:GREEN  indicator  203.0.113.0/24 contains it  ")
        assert "region-west-africa" in line and network["id"] in line and "C2 net" in line

        code, out, _ = await run_cli(
            "lookup", "203.0.113.45", *reader, "--lang", "fr", password=secret
        )
        assert code == 0 and "203.0.113.0/24 le contient" in out
        code, out, _ = await run_cli("lookup", "198.51.100.1", *reader, "--json", password=secret)
        assert code == 4 and orjson.loads(out)["objects"] == []
        code, out, _ = await run_cli("lookup", "198.51.100.1", *reader, password=secret)
        assert code == 4 and "nothing you may read mentions it" in out

        code, _, err = await run_cli(
            "lookup", "example.org", *reader, "--kind", "ipv4", password=secret
        )
        assert code == 1 and "not an ipv4 address" in err, err
