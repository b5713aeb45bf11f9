"""What other tools receive is standard STIX: the shared test data through a real hub.

MITRE ATT&CK for ICS (marked TLP:CLEAR, as a member relaying it would, its copyright
statement left as MITRE wrote it), the OASIS documentation examples, the MISP conversions
and the TLP definitions are posted; then every member's reader reads every collection it
may read, as a TAXII client does (paging to the end). What it receives must:
- pass OASIS's stix2-validator (non-strict) wherever the object as sent passes it, and the
  stix2 library's `parse(allow_custom=False)` wherever the object as sent parses so: the
  hub's additions (its declared provenance extension, a default marking, a creator) never
  make a standard object non-standard;
- leave no marking reference dangling: every marking an object carries is an object the
  same reader can read (TLP definitions as published in `public`, MITRE's statement with
  what it marks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import stix2
from taxii2client.v21 import Server, as_pages

from hub.stix.markings import marking_refs
from tests.hubs import RunningHub, submit
from tests.stixdata import TLP2, oasis_errors_of_all, shared_objects

pytestmark = [
    pytest.mark.parametrize("bus_url", ["embedded"], indirect=True),
    pytest.mark.timeout(600),
]

SENDER = "ng-cert-submit"
READERS = ("gh-cert-read", "sn-cert-read", "ke-cirt-read", "rw-csirt-read", "tz-cert-read")
CHUNK = 1000
SOURCES = (
    "oasis-cti-documentation-examples/apt1.json",
    "oasis-cti-documentation-examples/poisonivy.json",
    "oasis-cti-documentation-examples/sighting-of-an-indicator.json",
    "oasis-cti-documentation-examples/using-granular-markings.json",
    "oasis-cti-documentation-examples/using-marking-definitions.json",
    "misp-stix-converted/test_events_collection_1_misp2stix21.json",
    "misp-stix-converted/test_objects_collection_1_misp2stix21.json",
    "tlp2/tlp2_all_markings_bundle.json",
    "tlp2/tlp1_markings_from_stix2_lib.json",
)


def attack_as_relayed() -> list[dict[str, Any]]:
    """ATT&CK for ICS with TLP:CLEAR added to what MITRE marked, its statement as it is."""
    relayed = []
    for obj in shared_objects("mitre-attack/ics-attack-18.1.json"):
        if obj["type"] != "marking-definition":
            obj = {
                **obj,
                "object_marking_refs": [*obj.get("object_marking_refs", []), TLP2["clear"]],
            }
        relayed.append(obj)
    return relayed


def parses(obj: dict[str, Any]) -> bool:
    try:
        stix2.parse(obj, allow_custom=False, version="2.1")
    except Exception:  # the library raises many kinds for what it refuses
        return False
    return True


def everything_read(hub: RunningHub, username: str) -> dict[str, list[dict[str, Any]]]:
    """Every object of every collection `username` may read, paged to the end."""
    server = Server(f"{hub.base_url}/taxii2/", user=username, password=hub.password(username))
    found = {}
    for feed in server.default.collections:
        if feed.can_read:
            found[feed.alias] = [
                obj
                for page in as_pages(feed.get_objects, per_request=500)
                for obj in page.get("objects", [])
            ]
    return found


def distinct(objects: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({orjson.dumps(o, option=orjson.OPT_SORT_KEYS): o for o in objects}.values())


def without_provenance(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as sent: what the hub added to it taken off again, for comparison."""
    extensions = {
        k: v for k, v in obj.get("extensions", {}).items() if not k.endswith("b86b19be051f")
    }
    plain = {k: v for k, v in obj.items() if k != "extensions"}
    return {**plain, "extensions": extensions} if extensions else plain


async def test_what_readers_receive_is_standard_stix_and_its_markings_resolve(
    hub: RunningHub,
) -> None:
    sent = attack_as_relayed() + [o for path in SOURCES for o in shared_objects(path)]
    for start in range(0, len(sent), CHUNK):
        status = await submit(hub, SENDER, sent[start : start + CHUNK])
        assert status.status == "complete"

    read = {reader: await asyncio.to_thread(everything_read, hub, reader) for reader in READERS}
    delivered = distinct(o for seen in read.values() for objs in seen.values() for o in objs)
    statement = "marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168"  # MITRE's
    assert len(delivered) > 1500
    assert statement in {o["id"] for o in delivered}

    # Markings resolve, per reader, to what that reader can read.
    dangling = []
    for reader, seen in read.items():
        readable = {o["id"] for objs in seen.values() for o in objs}
        for alias, objs in seen.items():
            for obj in objs:
                missing = set(marking_refs(obj)) - readable
                if missing:
                    dangling.append(f"{reader} {alias} {obj['id']}: {sorted(missing)}")
    assert not dangling, dangling[:10]

    # The hub never makes a standard object non-standard.
    originals = {(o["id"], o.get("modified") or o.get("created")): o for o in sent}
    compared = [
        (obj, originals.get((obj["id"], obj.get("modified") or obj.get("created"))))
        for obj in delivered
    ]
    broke_parse = [
        obj["id"]
        for obj, original in compared
        if (original is None or parses(original)) and not parses(obj)
    ]
    assert not broke_parse, broke_parse[:10]
    as_sent = [original or without_provenance(obj) for obj, original in compared]
    before = await asyncio.to_thread(oasis_errors_of_all, as_sent)
    after = await asyncio.to_thread(oasis_errors_of_all, [obj for obj, _ in compared])
    broke_validator = [
        f"{obj['id']}: {error}"
        for (obj, _), valid_before, error in zip(compared, before, after, strict=True)
        if not valid_before and error
    ]
    assert not broke_validator, broke_validator[:10]
