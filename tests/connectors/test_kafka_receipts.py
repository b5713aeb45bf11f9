"""Receipts and keys on Kafka, as a Kafka-native member meets them (docs/connectors/
kafka-native.md, its `# recipe:` blocks run as the page shows them): kcat produces signed
records, a JWS-wrapped bundle and a single object, and reads back one receipt each from
the member's receipts topic, the status the TAXII API serves, or for a forged record the
reason it was refused; kcat reads the hub's JWKS from the keys topic, and the test checks
feed signatures against it with `cryptography` alone, before and after a key rotation;
the page's `cirt-hub verify` recipe and the Python example's consumer do the same."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rfc8785
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.admin import CreateAclsRequest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connectors.client.hubkeys import HubKeys
from connectors.client.keys import MemberKey
from connectors.kafka.connection import KafkaConnection
from connectors.kafka.keys import ROTATION_LAG, KeysTopic
from connectors.kafka.member import FeedConsumer, IntakeProducer
from connectors.kafka.receipts import Receipts
from hub.bus.kafka_security import SASL_PASSWORD_ENV
from hub.bus.url import open_bus
from hub.demo import DEMO_ACCOUNTS_FILE, demo_federation
from hub.signing.keyring import KeyStore
from hub.signing.keys_topic import KeysPublisher
from hub.signing.provenance import EXTENSION_ID, HubSigner, Provenance, without_extension
from hub.topics import Topics
from tests.conftest import KAFKA_SCRIPT, TESTDATA, free_port
from tests.connectors.test_kafka_member import member_cli
from tests.connectors.test_kcat import KID, MEMBER, bash, ids, listing, recipes
from tests.hubs import KEY_PASSPHRASE, running_hub, submit, with_member_key
from tests.intake.conftest import wait_complete
from tests.intake.corpus import indicator
from tests.signing.test_keys_topic import publishing

pytestmark = pytest.mark.kafka

EXAMPLES = TESTDATA / "oasis-cti-documentation-examples"
READER = "rw-csirt"  # its TLP:AMBER goes to its own feed (and East Africa's)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def kcat_read(bootstrap: str, topic: str, fmt: str) -> list[str]:
    """Every committed record of `topic`, formatted by kcat's `-f`, one per line."""
    out = await bash(f"kcat -C -b {bootstrap} -t {topic} -o beginning -e -q -f '{fmt}\\n'")
    return out.splitlines()


async def key_sets(bootstrap: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The keys topic as kcat reads it: the latest JWK Set of each key."""
    latest: dict[str, dict[str, Any]] = {}
    for line in await kcat_read(bootstrap, f"{prefix}keys", "%k\\t%s"):
        name, value = line.split("\t", 1)
        latest[name] = json.loads(value)
    return latest


async def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """The topic's configuration as the broker describes it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = response.resources
    return {name: value for name, value, *_ in entries}


def hub_signer(obj: dict[str, Any], jwks: dict[str, Any]) -> str:
    """The kid whose key in `jwks` signed `obj` (its provenance signature checked with
    `cryptography` over the RFC 8785 form of the object without the extension)."""
    header_part, detached, signature = obj["extensions"][EXTENSION_ID]["signature"].split(".")
    assert detached == ""
    kid = json.loads(b64url_decode(header_part))["kid"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
    signed = f"{header_part}.{b64url(rfc8785.dumps(without_extension(obj)))}".encode()
    key = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    key.verify(b64url_decode(signature), signed)  # raises InvalidSignature otherwise
    return str(kid)


async def test_kcat_reads_back_one_receipt_per_record_with_its_status_or_reason(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    steps = recipes()
    key, forger = tmp_path / "ng-cert.pem", tmp_path / "not-ng-cert.pem"
    jwk = json.loads(await bash(steps["keys"], KEY=str(key), KID=KID))
    await bash(steps["keys"], KEY=str(forger), KID=KID)  # the member's kid, another key
    bundle = EXAMPLES / "malware-indicator-for-file-hash.json"
    single = tmp_path / "one-indicator.json"
    single.write_text(json.dumps(indicator(), indent=4) + "\n")
    async with running_hub(
        "kafka://" + kafka_bootstrap,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"kr{unique}.",
        adjust=listing(jwk),
    ) as hub:
        prefix = hub.settings.topic_prefix
        env = {
            "KEY": str(key),
            "KID": KID,
            "MEMBER": MEMBER,
            "BOOTSTRAP": kafka_bootstrap,
            "PREFIX": prefix,
        }
        printed = {
            "bundle": await bash(steps["produce-jws"], FILE=str(bundle), **env),
            "single": await bash(steps["produce-detached"], FILE=str(single), **env),
            "forged": await bash(
                steps["produce-jws"], FILE=str(single), **env | {"KEY": str(forger)}
            ),
        }
        landed = {name: out.split() for name, out in printed.items()}
        receipts = {
            name: json.loads(await bash(steps["receipt"], WHERE=where, **env))
            for name, (where, _) in landed.items()
        }
        for name, (where, _) in landed.items():
            topic, partition, offset = where.rsplit("/", 2)
            assert receipts[name]["intake"] == {
                "topic": topic,
                "partition": int(partition),
                "offset": int(offset),
            }

        async with aiohttp.ClientSession() as session:
            for name, path in (("bundle", bundle), ("single", single)):
                status_id = landed[name][1]
                receipt = receipts[name]
                assert receipt["outcome"] == "complete", receipt
                served = await wait_complete(session, hub, status_id, "ng-cert-submit")
                assert receipt["status"] == served  # the TAXII status, object by object
                assert served["id"] == status_id and served["success_count"] == len(ids(path))

        refused = receipts["forged"]
        assert refused["outcome"] == "refused" and "status" not in refused
        assert refused["reason"] == "member-signature-invalid"
        assert refused["message"].startswith(
            f"record JWS refused: the member signature (key '{KID}') does not match the payload"
        )

        # Read whole (committed records only): one receipt per record, none twice.
        keys = await kcat_read(kafka_bootstrap, f"{prefix}receipts.member-{MEMBER}", "%k")
        assert sorted(keys) == sorted(where for where, _ in landed.values())


async def test_signatures_check_out_from_the_keys_topic_alone(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    member_key = MemberKey.generate()
    first = json.loads((EXAMPLES / "indicator-for-malicious-url.json").read_text())["objects"]
    second = json.loads((EXAMPLES / "malware-indicator-for-file-hash.json").read_text())["objects"]
    async with running_hub(
        "kafka://" + kafka_bootstrap,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"kk{unique}.",
        adjust=with_member_key(READER, member_key),
    ) as hub:
        prefix, feed = hub.settings.topic_prefix, f"{hub.settings.topic_prefix}feed.member-{READER}"
        await submit(hub, f"{READER}-submit", first)
        assert (await topic_config(kafka_bootstrap, f"{prefix}keys"))["cleanup.policy"] == "compact"
        sets = await key_sets(kafka_bootstrap, prefix)
        [old] = sets["hub"]["keys"]
        assert old["status"] == "current"
        identity = hub.settings.federation.member(READER).identity
        assert sets[f"member-{READER}"]["keys"] == [
            {"use": "sig", "alg": "EdDSA", **member_key.public_jwk()}
            | {"member": READER, "identity": identity}
        ]
        assert sets["member-ng-cert"] == {"keys": []}  # the demo lists no key for it
        delivered = [json.loads(v) for v in await kcat_read(kafka_bootstrap, feed, "%s")]
        assert {o["id"] for o in delivered} == {o["id"] for o in first}
        assert {hub_signer(o, sets["hub"]) for o in delivered} == {old["kid"]}

        # A rotation shows on the topic: the new key current, the old one retired.
        store = KeyStore(hub.settings.signing_keys_dir)
        new = (await asyncio.to_thread(store.rotate, KEY_PASSPHRASE)).kid
        await submit(hub, f"{READER}-submit", second)
        deadline = time.monotonic() + 20
        while {k["kid"]: k["status"] for k in sets["hub"]["keys"]} != {
            new: "current",
            old["kid"]: "retired",
        }:
            assert time.monotonic() < deadline, sets["hub"]
            await asyncio.sleep(0.5)
            sets = await key_sets(kafka_bootstrap, prefix)
        delivered = [json.loads(v) for v in await kcat_read(kafka_bootstrap, feed, "%s")]
        signers = {o["id"]: hub_signer(o, sets["hub"]) for o in delivered}
        assert signers == {o["id"]: old["kid"] for o in first} | {o["id"]: new for o in second}

        # The page's recipe: kcat and `cirt-hub verify`, nothing over HTTP.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        verified = await bash(
            recipes()["verify"],
            COLLECTION=f"member-{READER}",
            BOOTSTRAP=kafka_bootstrap,
            PREFIX=prefix,
            PATH=path,
        )
        lines = verified.splitlines()
        assert len(lines) == len(signers) and all(line.startswith("valid") for line in lines)

        # The Python example's consumer, its keys from the topic.
        connection = KafkaConnection(kafka_bootstrap)
        keys = HubKeys(KeysTopic(connection, topic_prefix=prefix).hub_jwks)
        consumer = FeedConsumer(
            connection, READER, keys, topic_prefix=prefix, group=f"{READER}-keys-{unique}"
        )
        found = []
        async with consumer, asyncio.timeout(30), aclosing(consumer.objects()) as objects:
            async for item in objects:
                found.append(item)
                if len(found) == len(signers):
                    break
        assert {f.obj["id"] for f in found} == set(signers)
        assert all(f.verdict.valid for f in found), [f.verdict for f in found]


async def test_the_python_member_produces_jws_records_and_waits_for_their_receipts(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    pem, stranger = tmp_path / "ng-cert.pem", tmp_path / "stranger.pem"
    code, out, err = await member_cli("keygen", "--out", str(pem))
    assert code == 0, err
    jwk = json.loads(out)
    assert (await member_cli("keygen", "--out", str(stranger)))[0] == 0  # a key not listed
    bundle = EXAMPLES / "malware-indicator-for-file-hash.json"
    broken = tmp_path / "broken.json"  # one object the hub refuses, one it takes
    bad, good = indicator(pattern="not a pattern"), indicator()
    broken.write_text(json.dumps({"objects": [bad, good]}))
    async with running_hub(
        "kafka://" + kafka_bootstrap,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"kw{unique}.",
        adjust=listing(jwk),
    ) as hub:
        prefix = hub.settings.topic_prefix
        common = ("--bootstrap", kafka_bootstrap, "--member", MEMBER, "--topic-prefix", prefix)
        code, out, err = await member_cli(
            "produce", str(bundle), "--key", str(pem), "--jws", "--wait", "60", *common
        )
        assert code == 0, err
        assert f"{bundle}: complete, {len(ids(bundle))} accepted, 0 refused" in out, out

        # A refusal of one object, and a record refused whole: exit 1, each says why.
        code, out, err = await member_cli(
            "produce", str(broken), "--key", str(pem), "--jws", "--wait", "60", *common
        )
        assert code == 1, err
        assert f"{broken}: complete, 1 accepted, 1 refused; {bad['id']}: " in out, out
        code, out, err = await member_cli(
            "produce", str(bundle), "--key", str(stranger), "--jws", "--wait", "60", *common
        )
        assert code == 1, err
        assert f"{bundle}: refused (member-signature-unknown-key): record JWS refused" in out

        # From code: a single object as a compact JWS; its receipt is the TAXII status.
        connection = KafkaConnection(kafka_bootstrap)
        key = MemberKey.load(pem)
        async with (
            Receipts(connection, MEMBER, topic_prefix=prefix) as receipts,
            IntakeProducer(connection, MEMBER, key, topic_prefix=prefix, jws=True) as producer,
        ):
            done = await producer.send(indicator())
            [receipt] = (await receipts.wait([done.where])).values()
        topic = hub.settings.topics.member_intake(MEMBER)
        values = dict(
            line.split(" ", 1) for line in await kcat_read(kafka_bootstrap, topic, "%o %s")
        )
        assert values[str(done.offset)].count(".") == 2  # the value is a compact JWS
        assert receipt.status is not None and receipt.status["id"] == done.status_id
        async with aiohttp.ClientSession() as session:
            assert receipt.status == await wait_complete(
                session, hub, done.status_id, "ng-cert-submit"
            )


# Kafka's ACL enums (CreateAcls): resource TOPIC, pattern LITERAL, ALLOW; Read, Write, Describe.
TOPIC, LITERAL, ALLOW = 2, 3, 3
READ, WRITE, DESCRIBE = 3, 4, 8
PASSWORDS = {"hub": "hub-secret", "ng-cert": "ng-secret", "gh-cert": "gh-secret"}


@dataclass(frozen=True)
class AclBroker:
    admin: str  # PLAINTEXT: the broker's own side, a super user
    sasl: str  # SASL_PLAINTEXT (PLAIN): the hub's and the members' principals

    async def grant(self, principal: str, topic: str, *operations: int) -> None:
        """An ACL as the docs' `kafka-acls.sh --add` makes it (aiokafka has no call for it)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.admin)
        await admin.start()
        try:
            for operation in operations:
                request = CreateAclsRequest(
                    TOPIC, topic, LITERAL, f"User:{principal}", "*", operation, ALLOW
                )
                response = await admin._send_request(request)
                assert [r[0] for r in response.creation_responses] == [0], response
        finally:
            await admin.close()

    def kcat_config(self, folder: Path, user: str) -> Path:
        """A kcat configuration file (KCAT_CONFIG) logging in as `user`."""
        path = folder / f"{user}.kcat.conf"
        path.write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\n"
            f"sasl.username={user}\nsasl.password={PASSWORDS[user]}\n"
        )
        return path


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclBroker]:
    """A broker of its own with SASL principals and an authorizer (no ACL, no access), as
    docs/operating/kafka.md asks of a production one; the hub's principal is a super user."""
    run_dir = tmp_path_factory.mktemp("kafka-acl")
    port, controller, sasl = free_port(), free_port(), free_port()
    users = " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items())
    extra = run_dir / "acl.properties"
    extra.write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}\n"
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_PLAINTEXT:SASL_PLAINTEXT\n"
        "sasl.enabled.mechanisms=PLAIN\n"
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};\n"
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
        # The PLAINTEXT listener (controller, this test's admin) and the hub: super users.
        "super.users=User:ANONYMOUS;User:hub\n"
        "allow.everyone.if.no.acl.found=false\n"
    )
    started = subprocess.run(
        [
            *("bash", str(KAFKA_SCRIPT), "start", "--port", str(port)),
            *("--controller-port", str(controller), "--dir", str(run_dir / "run")),
        ],
        env={**os.environ, "CIRT_HUB_KAFKA_EXTRA_PROPERTIES": str(extra)},
        stdout=sys.stderr,
    )
    assert started.returncode == 0, "the ACL broker did not start (kafka.sh's output above)"
    try:
        yield AclBroker(f"127.0.0.1:{port}", f"127.0.0.1:{sasl}")
    finally:
        subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "stop", "--dir", str(run_dir / "run")],
            check=False,
            stdout=sys.stderr,
        )


async def test_a_member_reads_its_own_receipts_and_no_one_elses(
    acl_broker: AclBroker,
    tmp_path: Path,
    demo_secrets: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = recipes()
    key = tmp_path / "ng-cert.pem"
    jwk = json.loads(await bash(steps["keys"], KEY=str(key), KID=KID))
    monkeypatch.setenv(SASL_PASSWORD_ENV, PASSWORDS["hub"])
    bus_url = (
        f"kafka://{acl_broker.sasl}?security_protocol=SASL_PLAINTEXT&sasl_mechanism=PLAIN"
        "&sasl_username=hub"
    )
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"ka{unique}.", adjust=listing(jwk)
    ) as hub:
        topics = hub.settings.topics
        # The documented ACLs: each member writes its intake topic, reads its receipts and
        # the keys topic.
        for member in ("ng-cert", "gh-cert"):
            await acl_broker.grant(member, topics.member_intake(member), WRITE, DESCRIBE)
            await acl_broker.grant(member, topics.receipts(member), READ, DESCRIBE)
            await acl_broker.grant(member, topics.keys, READ, DESCRIBE)
        as_member = {
            m: {"KCAT_CONFIG": str(acl_broker.kcat_config(tmp_path, m)), "MEMBER": "ng-cert"}
            for m in ("ng-cert", "gh-cert")
        }
        env = {"KEY": str(key), "KID": KID, "BOOTSTRAP": acl_broker.sasl, "PREFIX": topics.prefix}
        single = tmp_path / "one-indicator.json"
        single.write_text(json.dumps(indicator()))
        printed = await bash(steps["produce-jws"], FILE=str(single), **env, **as_member["ng-cert"])
        where, status_id = printed.split()
        receipt = json.loads(
            await bash(steps["receipt"], WHERE=where, **env, **as_member["ng-cert"])
        )
        assert receipt["outcome"] == "complete" and receipt["status"]["id"] == status_id

        # gh-cert: the same recipe on ng-cert's receipts topic, refused by the broker.
        refused = await bash_failing(steps["receipt"], WHERE=where, **env, **as_member["gh-cert"])
        assert "Topic authorization failed" in refused
        # The keys topic it may read.
        keys = await bash(
            f"kcat -C -b {acl_broker.sasl} -t {topics.keys} -o beginning -e -q -f '%k\\n'",
            **as_member["gh-cert"],
        )
        assert "hub" in keys.split() and "member-ng-cert" in keys.split()


async def bash_failing(script: str, **env: str) -> str:
    """What `script` wrote to stderr; it must fail."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode != 0, out.decode()
    return err.decode()


async def test_a_reader_of_the_keys_topic_waits_out_a_rotation_not_yet_published(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """After a rotation, feed records signed with the new key can be read before a pipeline
    node's next look at the keys dir has put it on the keys topic."""
    shutil.copy(demo_secrets, tmp_path / DEMO_ACCOUNTS_FILE)
    federation = demo_federation(tmp_path)[0]
    bus = open_bus("kafka://" + kafka_bootstrap, tmp_path)
    await bus.start()
    try:
        topics = Topics(f"kl{unique}.")
        await bus.ensure_topics(topics.specs([], 1, [m.id for m in federation.members]))
        store = KeyStore(tmp_path / "keys")
        signer = HubSigner(store, None)
        await asyncio.to_thread(signer.refresh)
        await publishing(KeysPublisher(bus, topics, store, federation))
        new = (await asyncio.to_thread(store.rotate, None)).kid
        assert await asyncio.to_thread(signer.refresh) == new
        provenance = Provenance("2026-12-07T22:00:00.000Z", "ng-cert", "policy")
        obj = signer.sign(indicator(), provenance)

        keys = KeysTopic(KafkaConnection(kafka_bootstrap), topic_prefix=topics.prefix)
        patient = asyncio.create_task(HubKeys(keys.hub_jwks, patience=ROTATION_LAG).verify(obj))
        hasty = await HubKeys(keys.hub_jwks).verify(obj)
        assert not hasty.valid and hasty.reason == "unknown-kid"  # the topic lags
        await asyncio.sleep(1.5)
        await publishing(KeysPublisher(bus, topics, store, federation))  # the next look
        verdict = await patient
        assert verdict.valid and verdict.kid == new, verdict
    finally:
        await bus.stop()
