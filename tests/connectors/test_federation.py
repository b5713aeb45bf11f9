"""Two hubs on loopback federating both ways with `cirt-hub federate`: each takes the other's
objects under its own rules, signatures of both hubs verify with `cirt-hub verify`, and
nothing loops back to where it came from."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connectors.client import HubClient, MemberKey
from hub.credentials import hash_secret, new_secret
from hub.demo import demo_federation
from hub.federation import Account, Federation, Member
from hub.signing.keyring import KeyStore
from hub.signing.provenance import EXTENSION_ID
from tests.hubs import (
    KEY_PASSPHRASE,
    RunningHub,
    read_all,
    running_hub,
    serving,
    with_member_key,
    with_sharing,
)
from tests.signing.support import run_verify, verdicts
from tests.stixdata import TLP2, incident_report

CLI = [sys.executable, "-m", "hub"]
WEST, EAST = ("ng-cert", "gh-cert", "sn-cert"), ("ke-cirt", "rw-csirt", "tz-cert")


@dataclass(frozen=True)
class Side:
    name: str
    identity: str
    keys: Path
    jwks: list[dict[str, str]]


def side(name: str, tmp: Path) -> Side:
    """A hub's identity and signing key, made before either hub starts: each lists the
    other's public keys in its federation file."""
    store = KeyStore(tmp / name / "keys")
    store.ensure_key(KEY_PASSPHRASE)
    jwks = [{k: jwk[k] for k in ("kty", "crv", "x", "kid")} for jwk in store.jwks()["keys"]]
    return Side(name, f"identity--{uuid.uuid4()}", store.path, jwks)


def peer_member(peer: Side, region: str, sharing: dict[str, Any]) -> tuple[Member, dict]:
    """The peer hub as a member here: its identity, its hub keys, a reader and a submitter."""
    secrets = {f"{peer.name}-read": new_secret(), f"{peer.name}-submit": new_secret()}
    accounts = tuple(
        Account(user, frozenset({user.rsplit("-", 1)[1]}), hash_secret(secret), peer.name)
        for user, secret in secrets.items()
    )
    member = Member(
        peer.name,
        f"Peer hub {peer.name}",
        "ZA",
        (region,),
        peer.identity,
        accounts,
        tuple(peer.jwks),
        sharing,
    )
    return member, secrets


def federation_of(
    base: Federation, me: Side, keep: tuple[str, ...], peer: Member, sharing: dict[str, Any]
) -> Federation:
    members = tuple(m for m in base.members if m.id in keep)
    hub = replace(base.hub, id=me.name, name=f"Hub {me.name}", identity=me.identity)
    return with_sharing(replace(base, hub=hub, members=(*members, peer)), sharing)


@asynccontextmanager
async def two_hubs(
    tmp: Path, demo_secrets: Path
) -> AsyncIterator[tuple[RunningHub, RunningHub, MemberKey]]:
    west, east = side("hub-west", tmp), side("hub-east", tmp)
    (tmp / "demo").mkdir()
    (tmp / "demo" / demo_secrets.name).write_bytes(demo_secrets.read_bytes())
    base, accounts = demo_federation(tmp / "demo")
    passwords = {a.username: a.password for a in accounts}
    ng_key = MemberKey.generate()
    # West: ngCERT sends AMBER to the east hub by name; what comes from the east hub is
    # GREEN for West Africa.
    east_here, east_secrets = peer_member(
        east, "west-africa", {"recipients": {"green": ["region:west-africa"]}}
    )
    west_fed = federation_of(
        base,
        west,
        WEST,
        east_here,
        {"ng-cert": {"default_tlp": "amber", "recipients": {"amber": ["member:hub-east"]}}},
    )
    west_fed = replace(
        west_fed,
        members=tuple(
            replace(m, public_keys=(ng_key.public_jwk(),)) if m.id == "ng-cert" else m
            for m in west_fed.members
        ),
    )
    # East: from the west hub, GREEN goes to East Africa, AMBER only to KE-CIRT.
    west_here, west_secrets = peer_member(
        west,
        "east-africa",
        {
            "default_tlp": "amber",
            "recipients": {"green": ["region:east-africa"], "amber": ["member:ke-cirt"]},
        },
    )
    east_fed = federation_of(base, east, EAST, west_here, {})
    async with AsyncExitStack() as stack:
        hubs = [
            await stack.enter_async_context(
                serving(
                    fed,
                    {**passwords, **secrets},
                    "embedded",
                    tmp / me.name / "data",
                    keys_dir=me.keys,
                )
            )
            for fed, secrets, me in ((west_fed, east_secrets, west), (east_fed, west_secrets, east))
        ]
        yield hubs[0], hubs[1], ng_key


async def federate(
    here: RunningHub, peer: RunningHub, peer_name: str, me: str, collections: list[str], state: Path
):
    args = [
        *CLI,
        "federate",
        "--peer",
        peer.base_url,
        "--peer-user",
        f"{me}-read",
        "--url",
        here.base_url,
        "--user",
        f"{peer_name}-submit",
        "--state",
        str(state),
    ]
    for c in collections:
        args += ["--collection", c]
    env = {
        **os.environ,
        "CIRT_HUB_PEER_PASSWORD": peer.password(f"{me}-read"),
        "CIRT_HUB_PASSWORD": here.password(f"{peer_name}-submit"),
    }
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode().splitlines()[-1]


async def post(hub: RunningHub, username: str, objects: list[dict[str, Any]]) -> None:
    async with HubClient(hub.base_url, username, hub.password(username)) as client:
        result = await client.submit(objects)
    assert result.refused == 0, result.outcomes


def ids(objects: list[dict[str, Any]]) -> set[str]:
    return {o["id"] for o in objects}


async def test_two_hubs_federate_both_ways_without_loops(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with two_hubs(tmp_path, demo_secrets) as (west, east, ng_key):
        ng_identity = west.settings.federation.member("ng-cert").identity
        green = [ng_key.sign(o) for o in incident_report(ng_identity, "ngCERT", TLP2["green"])]
        amber = [ng_key.sign(o) for o in incident_report(ng_identity, "ngCERT", TLP2["amber"])[1:]]
        await post(west, "ng-cert-submit", green + amber)
        rw_identity = east.settings.federation.member("rw-csirt").identity
        rw_green = incident_report(rw_identity, "Rwanda CSIRT", TLP2["green"])
        await post(east, "rw-csirt-submit", rw_green)

        west_state, east_state = tmp_path / "west-state", tmp_path / "east-state"

        def east_from_west():
            feeds = ["region-west-africa", "member-hub-east"]
            return federate(east, west, "hub-west", "hub-east", feeds, east_state)

        def west_from_east():
            return federate(west, east, "hub-east", "hub-west", ["region-east-africa"], west_state)

        # East pulls from West what West lets it read: the region feed and its own feed.
        code, out, summary = await east_from_west()
        assert code == 0, out + summary
        assert "7 accepted" in summary and "0 came back" in summary
        # West pulls from East: rw's report, and its own report coming back, recognised.
        code, out, summary = await west_from_east()
        assert code == 0, out + summary
        assert "4 accepted" in summary and "4 came back from this hub" in summary, summary
        # Second rounds: East finds rw's report at West (in the region feed, and in its own
        # feed, which holds what it submitted): its own, so nothing is imported.
        code, _, summary = await east_from_west()
        assert code == 0 and "8 read, 8 came back" in summary and "0 accepted" in summary, summary
        code, _, summary = await west_from_east()
        assert code == 0 and "0 read" in summary, summary

        # The receiving hub's rules: from the west hub, GREEN to East Africa, AMBER to KE-CIRT.
        ke = await read_all(east, "member-ke-cirt", "ke-cirt-read")
        ke_region = await read_all(east, "region-east-africa", "ke-cirt-read")
        tz_region = await read_all(east, "region-east-africa", "tz-cert-read")
        tz_own = await read_all(east, "member-tz-cert", "tz-cert-read")
        assert ids(green) <= ids(ke_region) and ids(green) <= ids(tz_region)
        assert ids(amber) <= ids(ke) and not ids(amber) & (ids(tz_region) | ids(tz_own))
        west_region = await read_all(west, "region-west-africa", "gh-cert-read")
        assert ids(rw_green) <= ids(west_region)
        # Each object once per collection: nothing came back as a second copy.
        assert all(n == 1 for n in Counter(o["id"] for o in west_region).values())
        relayed = [o for o in ke_region if o["id"] in ids(green)]
        assert all(o["extensions"][EXTENSION_ID]["submitter"] == "hub-west" for o in relayed)

        # Both hubs' signatures, and ngCERT's own, verify with `cirt-hub verify`.
        feed = tmp_path / "east-delivered.json"
        feed.write_text(json.dumps({"objects": relayed}))
        jwks = tmp_path / "east-jwks.json"
        async with HubClient(east.base_url, "ke-cirt-read", east.password("ke-cirt-read")) as c:
            jwks.write_text(json.dumps(await c.jwks()))
        env = {**os.environ, "CIRT_HUB_PASSWORD": east.password("ke-cirt-read")}
        checked = await run_verify(
            str(feed),
            "--jwks",
            str(jwks),
            "--member-keys",
            f"{east.base_url}/api/v1/member-keys",
            "--user",
            "ke-cirt-read",
            "--json",
            env=env,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        lines = verdicts(checked)
        assert {v["id"] for v in lines} == ids(green)
        for verdict in lines:
            assert "member signature of hub-west valid" in verdict["message"], verdict
            assert "relayed, 1 earlier signature(s)" in verdict["message"], verdict
        # A chain changed on the way is caught.
        forged = json.loads(json.dumps(relayed[0]))
        forged["extensions"][EXTENSION_ID]["chain"] = [
            forged["extensions"][EXTENSION_ID]["member_signature"]
        ]
        feed.write_text(json.dumps({"objects": [forged]}))
        checked = await run_verify(str(feed), "--jwks", str(jwks), "--json", env=env)
        assert checked.returncode == 1


async def test_a_chain_of_earlier_signatures_must_be_well_formed(
    tmp_path: Path, demo_secrets: Path
) -> None:
    key = MemberKey.generate()
    async with running_hub(
        "embedded", tmp_path / "hub", demo_secrets, adjust=with_member_key("ng-cert", key)
    ) as hub:
        identity = hub.settings.federation.member("ng-cert").identity
        report = incident_report(identity, "ngCERT", TLP2["green"])
        signed = [key.sign(o) for o in report[1:]]
        garbage, unsigned, fine = signed
        garbage["extensions"][EXTENSION_ID]["chain"] = ["not-a-signature"]
        unsigned = {
            **report[2],
            "extensions": {
                EXTENSION_ID: {
                    "extension_type": "property-extension",
                    "chain": [key.sign_bytes(b"x")],
                }
            },
        }
        fine["extensions"][EXTENSION_ID]["chain"] = [key.sign_bytes(b"earlier")]
        async with HubClient(hub.base_url, "ng-cert-submit", hub.password("ng-cert-submit")) as c:
            outcomes = {o.id: o for o in (await c.submit([garbage, unsigned, fine])).outcomes}
    assert "chain[0] is not a detached JWS" in outcomes[garbage["id"]].message
    assert "only with the relaying peer's own member_signature" in outcomes[unsigned["id"]].message
    assert outcomes[fine["id"]].ok
