"""The benchmark's workloads: incident bundles as CIRTs send them, and a replay of ATT&CK.

A bundle reports one incident: the victim organisation, the incident, indicators with
varied patterns, observed-data with its cyber observables, sightings, the malware,
relationships between them, and a report that lists them all. Sizes run from 1 to 200
objects (most are small, a few are large, as in real sharing), each under one TLP marking,
from the demo federation's members. Everything is plain JSON built from a seeded random
generator: the same seed gives the same objects, and ids never repeat within a run.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hub.stix.markings import tlp2_ids

TLP2 = tlp2_ids()  # level name -> OASIS TLP 2.0 marking-definition id
# How often each marking is used: most sharing is GREEN or AMBER.
TLP_WEIGHTS = {"clear": 10, "green": 40, "amber": 35, "amber+strict": 10, "red": 5}


@dataclass(frozen=True)
class Sender:
    """A member as the load generator posts for it: its submit account and STIX identity."""

    member: str
    username: str
    identity: str


# The demo federation's members (hub/demo/federation.yaml); bench/nodes.py gives each
# of them a recipient for every TLP level.
DEMO_SENDERS = (
    Sender("ng-cert", "ng-cert-submit", "identity--c4801c91-a321-4d5c-9a4f-aee9b0f362a2"),
    Sender("gh-cert", "gh-cert-submit", "identity--ddd9b2a2-73bc-4e51-a85e-9017793831a5"),
    Sender("sn-cert", "sn-cert-submit", "identity--211e0852-0a76-43bb-9087-355a983078af"),
    Sender("ke-cirt", "ke-cirt-submit", "identity--7c85ec27-91ca-49e1-a695-efd1b08cd7cb"),
    Sender("rw-csirt", "rw-csirt-submit", "identity--9fa9ceb4-0460-4675-8901-5bc6244e810f"),
    Sender("tz-cert", "tz-cert-submit", "identity--dd09e15c-a4c8-4c3a-ad15-63a8352339d7"),
)

_TLDS = ("com", "net", "org", "info", "xyz", "ng", "gh", "ke", "sn", "rw", "tz")
_WORDS = ("update", "secure", "login", "cdn", "mail", "portal", "cloud", "sync", "api", "pay")
_MALWARE = ("LockBit", "BlackCat", "Emotet", "QakBot", "AsyncRAT", "Remcos", "IcedID", "Akira")
_SECTORS = ("government-national", "financial-services", "telecommunications", "energy")


def _stamp(rng: random.Random) -> str:
    return f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"


class Generator:
    """Incident bundles from a seeded random source; one per load-generating process."""

    def __init__(self, seed: int, senders: tuple[Sender, ...] = DEMO_SENDERS) -> None:
        self.rng = random.Random(seed)
        self.senders = senders

    def _id(self, kind: str) -> str:
        # Random (version 4) UUIDs from the seeded source: reproducible and never repeated.
        return f"{kind}--{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def _ip(self) -> str:
        r = self.rng
        first = r.choice((41, 102, 105, 154, 196, 197))  # African RIR ranges
        return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def _domain(self) -> str:
        r = self.rng
        return f"{r.choice(_WORDS)}-{r.getrandbits(24):06x}.{r.choice(_TLDS)}"

    def _sha256(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _pattern(self) -> str:
        """One of the shapes CIRTs share: single comparisons, compound, and sequences."""
        r = self.rng
        shape = r.randrange(10)
        if shape < 3:
            return f"[ipv4-addr:value = '{self._ip()}']"
        if shape == 3:
            return f"[domain-name:value = '{self._domain()}']"
        if shape == 4:
            return f"[url:value = 'https://{self._domain()}/{r.choice(_WORDS)}/{r.getrandbits(32):x}.php']"
        if shape == 5:
            return f"[file:hashes.'SHA-256' = '{self._sha256()}']"
        if shape == 6:
            return (
                f"[file:hashes.MD5 = '{r.getrandbits(128):032x}' OR "
                f"file:name = 'invoice_{r.randint(1000, 9999)}.exe']"
            )
        if shape == 7:
            return (
                f"[network-traffic:dst_ref.type = 'ipv4-addr' AND "
                f"network-traffic:dst_ref.value = '{self._ip()}' AND "
                f"network-traffic:dst_port = {r.choice((443, 4444, 8080, 8443))}]"
            )
        if shape == 8:
            return f"[email-message:from_ref.value = 'billing@{self._domain()}']"
        return (
            f"[domain-name:value = '{self._domain()}'] FOLLOWEDBY "
            f"[ipv4-addr:value = '{self._ip()}'] WITHIN {r.choice((60, 300, 600))} SECONDS"
        )

    def _common(self, kind: str, sender: Sender, marking: str, when: str) -> dict[str, Any]:
        return {
            "type": kind,
            "spec_version": "2.1",
            "id": self._id(kind),
            "created": when,
            "modified": when,
            "created_by_ref": sender.identity,
            "object_marking_refs": [marking],
        }

    def bundle_size(self) -> int:
        """1-200 objects, most reports small: a log-uniform draw."""
        return min(200, max(1, round(2 ** self.rng.uniform(0, 7.65))))

    def incident_bundle(self, size: int | None = None) -> tuple[Sender, list[dict[str, Any]]]:
        """One sender's incident report of `size` objects (drawn when not given)."""
        r = self.rng
        size = size or self.bundle_size()
        sender = r.choice(self.senders)
        tlp = r.choices(list(TLP_WEIGHTS), weights=list(TLP_WEIGHTS.values()))[0]
        marking = TLP2[tlp]
        when = _stamp(r)
        objects: list[dict[str, Any]] = []
        if size >= 6:
            victim = {
                "type": "identity",
                "spec_version": "2.1",
                "id": self._id("identity"),
                "created": when,
                "modified": when,
                "name": f"{r.choice(_SECTORS)} organisation {r.getrandbits(16):04x}",
                "identity_class": "organization",
                "sectors": [r.choice(_SECTORS)],
                "object_marking_refs": [marking],
            }
            incident = self._common("incident", sender, marking, when) | {
                "name": f"{r.choice(_MALWARE)} intrusion at a {victim['sectors'][0]} body",
                "description": "Encrypted file servers and outbound beaconing to the C2 below.",
            }
            malware = self._common("malware", sender, marking, when) | {
                "name": r.choice(_MALWARE),
                "is_family": True,
                "malware_types": ["ransomware"],
            }
            objects += [victim, incident, malware]
            objects.append(self._relationship(sender, marking, when, incident, "uses", malware))
        while len(objects) < size - (2 if size >= 6 else 0):
            roll = r.random()
            if roll < 0.55 or size < 6:
                indicator = self._common("indicator", sender, marking, when) | {
                    "name": "C2 infrastructure",
                    "indicator_types": ["malicious-activity"],
                    "pattern": self._pattern(),
                    "pattern_type": "stix",
                    "valid_from": when,
                    "confidence": r.choice((50, 70, 85, 95)),
                }
                objects.append(indicator)
                if size >= 6 and len(objects) < size - 3:
                    objects.append(
                        self._relationship(sender, marking, when, indicator, "indicates", malware)
                    )
            elif roll < 0.8:
                objects += self._observation(sender, marking, when)
            else:
                indicators = [o for o in objects if o["type"] == "indicator"]
                if indicators:
                    objects.append(
                        self._common("sighting", sender, marking, when)
                        | {
                            "sighting_of_ref": r.choice(indicators)["id"],
                            "where_sighted_refs": [victim["id"]],
                            "count": r.randint(1, 40),
                        }
                    )
        if size >= 6:
            objects = objects[: size - 1]
            objects.append(
                self._common("report", sender, marking, when)
                | {
                    "name": incident["name"],
                    "published": when,
                    "report_types": ["incident"],
                    "object_refs": [o["id"] for o in objects],
                }
            )
        return sender, objects[:size]

    def _relationship(
        self, sender: Sender, marking: str, when: str, source: dict, kind: str, target: dict
    ) -> dict[str, Any]:
        return self._common("relationship", sender, marking, when) | {
            "relationship_type": kind,
            "source_ref": source["id"],
            "target_ref": target["id"],
        }

    def _observation(self, sender: Sender, marking: str, when: str) -> list[dict[str, Any]]:
        """observed-data with the SCOs it saw: a connection to a C2 address, and a file."""
        # Observables carry the report's marking too: unmarked, they would take the sender's
        # default TLP and could hide from readers of the observed-data that names them.
        marks = [marking]
        ip = {"type": "ipv4-addr", "spec_version": "2.1", "id": self._id("ipv4-addr")}
        ip |= {"value": self._ip(), "object_marking_refs": marks}
        traffic = {
            "type": "network-traffic",
            "spec_version": "2.1",
            "id": self._id("network-traffic"),
            "dst_ref": ip["id"],
            "dst_port": self.rng.choice((443, 4444, 8080)),
            "protocols": ["ipv4", "tcp"],
            "object_marking_refs": marks,
        }
        file = {
            "type": "file",
            "spec_version": "2.1",
            "id": self._id("file"),
            "name": f"svc{self.rng.getrandbits(16):04x}.dll",
            "hashes": {"SHA-256": self._sha256()},
            "object_marking_refs": marks,
        }
        observed = self._common("observed-data", sender, marking, when) | {
            "first_observed": when,
            "last_observed": when,
            "number_observed": self.rng.randint(1, 500),
            "object_refs": [ip["id"], traffic["id"], file["id"]],
        }
        return [ip, traffic, file, observed]

    def objects(self, count: int) -> list[dict[str, Any]]:
        """At least `count` objects from whole bundles (for the ceilings on the same mix)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            found += self.incident_bundle()[1]
        return found

    def bodies(self) -> Iterator[tuple[Sender, int, bytes]]:
        """Endless TAXII envelopes: (sender, object count, serialized envelope)."""
        while True:
            sender, objects = self.incident_bundle()
            yield sender, len(objects), orjson.dumps({"objects": objects})


def attack_objects(testdata: Path) -> list[dict[str, Any]]:
    """The shared MITRE ATT&CK for ICS bundle, to replay as one member relaying it."""
    data = orjson.loads((testdata / "mitre-attack" / "ics-attack-18.1.json").read_bytes())
    return list(data["objects"])
