"""How a member's own Kafka clients reach the hub's cluster: bootstrap, TLS and SASL.

The options are aiokafka's, passed through as they are; the command line takes the SASL
password from an environment variable so that it never shows in a process listing.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

SASL_PASSWORD_ENV = "CIRT_HUB_KAFKA_PASSWORD"
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to authenticate to it (aiokafka's own option names)."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    client_id: str = "cirt-hub-member"

    def options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer and AIOKafkaConsumer."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            # Hostname checking stays on: the hub's brokers are who their certificates say.
            options["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        if self.security_protocol.startswith("SASL_"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection options of every `connectors.kafka.member` command."""
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--security-protocol", choices=PROTOCOLS, default="PLAINTEXT")
    parser.add_argument("--ssl-cafile", help="CA certificates of the brokers (PEM)")
    parser.add_argument("--ssl-certfile", help="client certificate for mutual TLS (PEM)")
    parser.add_argument("--ssl-keyfile", help="its private key (PEM)")
    parser.add_argument("--sasl-mechanism", choices=MECHANISMS, default="PLAIN")
    parser.add_argument(
        "--sasl-username", help=f"SASL user; the password comes from ${SASL_PASSWORD_ENV}"
    )


def from_arguments(args: argparse.Namespace) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=args.bootstrap,
        security_protocol=args.security_protocol,
        ssl_cafile=args.ssl_cafile,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        sasl_mechanism=args.sasl_mechanism,
        sasl_username=args.sasl_username,
        sasl_password=os.environ.get(SASL_PASSWORD_ENV),
    )


async def topic_partitions(connection: KafkaConnection, topic: str) -> list[int]:
    """The partitions of `topic`; none when it does not exist or the principal may not
    describe it (a consumer's own metadata would wait for it instead)."""
    admin = AIOKafkaAdminClient(**connection.options())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for t in described if t["error_code"] == 0 for p in t["partitions"]
    )
