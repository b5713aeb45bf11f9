"""TLS and SASL for the hub's Kafka connections: what the bus URL may say, where secrets come
from, and proof that every aiokafka client the bus makes speaks TLS with the configured CA
and client certificate (against a real TLS endpoint that records who shook hands)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.bus import TopicPartition
from hub.bus.errors import BusUnavailable
from hub.bus.kafka import KafkaBus
from hub.bus.kafka_security import SASL_PASSWORD_ENV, SASL_PASSWORD_FILE_ENV
from hub.bus.url import BusUrlError, parse_kafka_url, validate_bus_url
from hub.tls import TlsFiles, fingerprint
from tests.security.tls_pki import Issued, authority, issue

SECRET = "kafka-sasl-secret-do-not-log"
ENV = {SASL_PASSWORD_ENV: SECRET}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued | Path]:
    folder = tmp_path_factory.mktemp("kafka-pki")
    ca, rogue = authority(folder, "kafka-ca"), authority(folder, "rogue-ca")
    return {
        "ca": ca.path,
        "rogue": rogue.path,
        "broker": issue(ca, folder, "broker", server=True),
        "hub": issue(ca, folder, "hub-client"),
    }


def test_sasl_ssl_options_and_secrets_reach_the_client_options(pki: dict) -> None:
    url = (
        "kafka://127.0.0.1:9093,localhost:9094?security_protocol=SASL_SSL"
        f"&sasl_mechanism=SCRAM-SHA-512&sasl_username=hub&ssl_cafile={pki['ca']}"
        f"&client_id=hub-a&replication_factor=3"
    )
    settings = parse_kafka_url(url, ENV)
    assert settings.client_id == "hub-a" and settings.replication_factor == 3
    assert SECRET not in repr(settings)  # what a log line or a traceback would show
    options = KafkaBus(settings).client_options()
    assert options["bootstrap_servers"] == "127.0.0.1:9093,localhost:9094"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "hub" and options["sasl_plain_password"] == SECRET
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "kafka-ca"),),)]


def test_the_password_may_come_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "sasl-password"
    secret_file.write_text(SECRET + "\n")
    url = "kafka://h:9093?security_protocol=SASL_PLAINTEXT&sasl_mechanism=PLAIN&sasl_username=hub"
    options = KafkaBus(
        parse_kafka_url(url, {SASL_PASSWORD_FILE_ENV: str(secret_file)})
    ).client_options()
    assert options["sasl_plain_password"] == SECRET and "ssl_context" not in options


def test_plaintext_stays_the_default() -> None:
    options = KafkaBus(parse_kafka_url("kafka://h:9092", {})).client_options()
    assert options["security_protocol"] == "PLAINTEXT"
    assert not {k for k in options if k.startswith(("ssl_", "sasl_"))}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?security_protocol=TLS", "security_protocol: 'TLS' is not one of PLAINTEXT, SSL,"),
        (
            "?security_protocol=SASL_SSL&sasl_mechanism=GSSAPI&sasl_username=hub",
            "sasl_mechanism: 'GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        ("?security_protocol=SASL_SSL&sasl_username=hub", "sasl_mechanism: security_protocol="),
        ("?security_protocol=SASL_SSL&sasl_mechanism=PLAIN", "sasl_username: security_protocol="),
        ("?ssl_cafile=/ca.pem", "ssl_cafile: needs security_protocol=SSL or SASL_SSL"),
        ("?sasl_mechanism=PLAIN", "sasl_mechanism: needs security_protocol=SASL_SSL or"),
        ("?security_protocol=SSL&ssl_keyfile=/k.pem", "ssl_keyfile: needs ssl_certfile"),
        ("?security_protocol=SSL&ssl_cafile=", "ssl_cafile: is empty"),
        ("?sasl_password=" + SECRET, "sasl_password: secrets do not belong in the bus URL"),
        ("?ssl_key_password=" + SECRET, "ssl_key_password: secrets do not belong"),
        ("?sasl_mechanizm=PLAIN", "unknown option(s) sasl_mechanizm (known: client_id,"),
        ("?client_id=", "client_id: is empty"),
    ],
)
def test_options_that_cannot_work_are_named(query: str, message: str) -> None:
    with pytest.raises(BusUrlError) as refused:
        parse_kafka_url("kafka://h:9093" + query, ENV)
    assert message in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_sasl_protocol_needs_the_password_in_the_environment() -> None:
    url = "kafka://h:9093?security_protocol=SASL_SSL&sasl_mechanism=PLAIN&sasl_username=hub"
    with pytest.raises(BusUrlError, match=f"needs {SASL_PASSWORD_ENV}"):
        parse_kafka_url(url, {})


def test_credentials_before_the_host_are_refused_without_echoing_them() -> None:
    with pytest.raises(BusUrlError) as refused:
        parse_kafka_url(f"kafka://hub:{SECRET}@h:9093", ENV)
    assert SECRET not in str(refused.value) and SASL_PASSWORD_ENV in str(refused.value)


def test_startup_loads_the_tls_files_and_names_the_one_it_cannot_use(
    pki: dict, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(BusUrlError, match=f"ssl_cafile {missing}: cannot read"):
        validate_bus_url(f"kafka://h:9093?security_protocol=SSL&ssl_cafile={missing}")
    hub: Issued = pki["hub"]
    with pytest.raises(BusUrlError, match=f"ssl_certfile {hub.cert}: cannot be used"):
        # The certificate without its key: the file holds no private key.
        validate_bus_url(f"kafka://h:9093?security_protocol=SSL&ssl_certfile={hub.cert}")
    validate_bus_url(
        f"kafka://h:9093?security_protocol=SSL&ssl_cafile={pki['ca']}"
        f"&ssl_certfile={hub.cert}&ssl_keyfile={hub.key}"
    )


@contextlib.asynccontextmanager
async def tls_endpoint(pki: dict) -> AsyncIterator[tuple[int, list[str]]]:
    """A TLS listener that wants a client certificate from the test CA, records its
    fingerprint and hangs up: a broker as far as the handshake goes."""
    broker: Issued = pki["broker"]
    context = TlsFiles(broker.cert, broker.key, pki["ca"]).context(environ={})
    context.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        seen.append(fingerprint(der))
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        await server.wait_closed()


async def test_every_client_the_bus_makes_speaks_tls_with_the_hubs_certificate(
    pki: dict,
) -> None:
    hub: Issued = pki["hub"]
    async with tls_endpoint(pki) as (port, seen):
        bus = KafkaBus(
            parse_kafka_url(
                f"kafka://127.0.0.1:{port}?security_protocol=SSL&ssl_cafile={pki['ca']}"
                f"&ssl_certfile={hub.cert}&ssl_keyfile={hub.key}",
                {},
            )
        )
        clients = {
            "bus (admin and metadata)": bus,
            "group consumer": bus.group_consumer("g", ["t"], transactional_id="tx"),
            "reader": bus.reader(["t"], {TopicPartition("t", 0): 0}),
        }
        for name, client in clients.items():
            before = len(seen)
            with pytest.raises(BusUnavailable):
                await client.start()
            assert seen[before:] and set(seen[before:]) == {hub.fingerprint}, name


async def test_a_broker_the_ca_does_not_vouch_for_is_not_talked_to(pki: dict) -> None:
    async with tls_endpoint(pki) as (port, seen):
        bus = KafkaBus(
            parse_kafka_url(
                f"kafka://127.0.0.1:{port}?security_protocol=SSL&ssl_cafile={pki['rogue']}", {}
            )
        )
        with pytest.raises(BusUnavailable):
            await bus.start()
        assert seen == []
