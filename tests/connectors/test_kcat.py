"""The kcat + openssl recipe of docs/connectors/kafka-native.md, run as the page shows it
(its `# recipe:` blocks, in bash) against the real broker and a real hub: a member makes its
key with openssl, produces a file as a compact JWS and a single object with a detached
signature, the hub accepts them under the status ids the recipe prints, and the objects are
readable over TAXII. And the partitioner the page sets: kcat with it puts every member id on
the partition the hub's own producer does (without it, not)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from hub.api.keys import BUS
from hub.bus import Message, TopicSpec
from hub.federation import Federation
from tests.conftest import TESTDATA
from tests.hubs import running_hub, submit, visible_to
from tests.intake.conftest import wait_complete
from tests.intake.corpus import indicator

pytestmark = pytest.mark.kafka

PAGE = Path(__file__).parents[2] / "docs" / "connectors" / "kafka-native.md"
EXAMPLES = TESTDATA / "oasis-cti-documentation-examples"
MEMBER = "ng-cert"
KID = "ng-cert-2026"


def recipes() -> dict[str, str]:
    """The page's shell blocks that open with `# recipe: <name>`, by name."""
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.DOTALL)
    found = {m[1]: block for block in blocks if (m := re.match(r"# recipe: (\S+)", block))}
    assert set(found) >= {"keys", "produce-jws", "produce-detached"}, found.keys()
    return found


async def bash(script: str, **env: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def listing(jwk: dict[str, str]) -> Callable[[Federation], Federation]:
    def adjust(federation: Federation) -> Federation:
        return replace(
            federation,
            members=tuple(
                replace(m, public_keys=(jwk,)) if m.id == MEMBER else m for m in federation.members
            ),
        )

    return adjust


def ids(path: Path) -> set[str]:
    doc = json.loads(path.read_text())
    return {o["id"] for o in doc["objects"]} if "objects" in doc else {doc["id"]}


async def test_the_kcat_and_openssl_recipe_produces_what_the_hub_accepts(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    steps = recipes()
    key = tmp_path / "ng-cert.pem"
    jwk = json.loads(await bash(steps["keys"], KEY=str(key), KID=KID))
    assert jwk["kid"] == KID and jwk["crv"] == "Ed25519"
    bundle = EXAMPLES / "malware-indicator-for-file-hash.json"
    # One object alone, as a person writes it: indented, a final newline, signed as it is.
    single = tmp_path / "one-indicator.json"
    single.write_text(json.dumps(indicator(), indent=4) + "\n")
    single_jws = tmp_path / "another-indicator.json"
    single_jws.write_text(json.dumps(indicator()))
    async with running_hub(
        "kafka://" + kafka_bootstrap,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"kc{unique}.",
        adjust=listing(jwk),
    ) as hub:
        env = {
            "KEY": str(key),
            "KID": KID,
            "MEMBER": MEMBER,
            "BOOTSTRAP": kafka_bootstrap,
            "PREFIX": hub.settings.topic_prefix,
        }
        produced = {
            bundle: await bash(steps["produce-jws"], FILE=str(bundle), **env),
            single_jws: await bash(steps["produce-jws"], FILE=str(single_jws), **env),
            single: await bash(steps["produce-detached"], FILE=str(single), **env),
        }
        # A TAXII submission of the same member: the hub's API writes it to the same topic.
        await submit(hub, "ng-cert-submit", [indicator()])

        async with aiohttp.ClientSession() as session:
            for path, printed in produced.items():
                status = await wait_complete(session, hub, printed.split()[1], "ng-cert-submit")
                assert status["success_count"] == len(ids(path)), (path.name, status)
                assert status["failure_count"] == 0, status
        sent = set().union(*(ids(path) for path in produced))
        view = await visible_to(hub, "ng-cert-read")
        assert sent <= {o["id"] for objects in view.values() for o in objects}

        # kcat's records and the hub's own landed on one partition: worked in order.
        topic = hub.settings.topics.member_intake(MEMBER)
        landed = await bash(
            f"kcat -C -b {kafka_bootstrap} -t {topic} -o beginning -e -q -f '%p %h\\n'"
        )
        rows = [line.split(" ", 1) for line in landed.splitlines()]
        assert len(rows) == 4 and any("cirt-hub-intake-mac=" in h for _, h in rows), rows
        assert len({p for p, _ in rows}) == 1, rows


async def test_kcat_with_murmur2_random_partitions_as_the_hubs_producer_does(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        "kafka://" + kafka_bootstrap, tmp_path / "data", demo_secrets, topic_prefix=f"kp{unique}."
    ) as hub:
        bus, topic = hub.app[BUS], f"kp{unique}.partitioner"
        await bus.ensure_topics([TopicSpec(topic, 6)])
        members = [m.id for m in hub.settings.federation.members]
        positions = await bus.publish([Message(topic, b"hub", key=m.encode()) for m in members])
        hub_partition = {m: p.partition for m, p in zip(members, positions, strict=True)}
        lines = "".join(f"{m}\t{m}\n" for m in members)
        produce = f"kcat -P -b {kafka_bootstrap} -t {topic} -K '\t'"
        # The setting the page's recipe gives kcat.
        documented = re.search(r"-X partitioner=\S+", recipes()["produce-jws"])
        assert documented is not None
        settings = {"kcat-default": "", "kcat-documented": documented[0]}
        for tool, setting in settings.items():
            await bash(f"printf '%s' \"$LINES\" | {produce} {setting} -H tool={tool}", LINES=lines)
        landed = await bash(
            f"kcat -C -b {kafka_bootstrap} -t {topic} -o beginning -e -q -f '%k %p %h\\n'"
        )
        where: dict[str, dict[str, int]] = {}
        for line in landed.splitlines():
            member, partition, *tool = line.split(" ")
            if tool:
                where.setdefault(tool[0].removeprefix("tool="), {})[member] = int(partition)
        assert where["kcat-documented"] == hub_partition
        # The setting matters: kcat's default (CRC32) puts some member elsewhere.
        assert where["kcat-default"] != hub_partition, where
