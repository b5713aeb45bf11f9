"""Any change to a delivered object, its provenance or its signature makes `cirt-hub verify`
call it invalid: every one-bit flip of every byte that still parses as JSON, a changed value
at every leaf, every property removed, extensions swapped between objects. Reordering keys
changes nothing (canonical form). Objects come through TAXII on both buses; the check runs
offline on a saved file against a saved JWKS."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.hubs import RunningHub
from tests.integration.test_taxii_flow import member_identity, read_all, submit
from tests.signing.support import EXTENSION_ID, get_json, run_verify, verdicts
from tests.stixdata import TLP2, incident_report


def bit_flips(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every object one flipped bit away from `obj`'s JSON text that is still other JSON."""
    raw = json.dumps(obj).encode()
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        try:
            mutant = json.loads(flipped)
        except ValueError:
            continue
        if mutant != obj:
            yield mutant


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every property path in `value`, containers and leaves alike."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("x" if value[-1:] != "x" else "y")
    if isinstance(value, list):
        return [*value, value[0] if value else "extra"]
    return {**value, "x_extra": 1}


def edits(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`obj` with each property's value changed, and with each property removed."""
    for path in paths(obj):
        for op in ("change", "remove"):
            mutant = copy.deepcopy(obj)
            parent = mutant
            for part in path[:-1]:
                parent = parent[part]
            if op == "change":
                parent[path[-1]] = changed(parent[path[-1]])
            else:
                del parent[path[-1]]
            yield mutant


async def test_any_change_to_a_delivered_object_is_reported_invalid(
    hub: RunningHub, tmp_path: Path
) -> None:
    report = incident_report(member_identity(hub, "gh-cert"), "CERT-GH", TLP2["green"])
    assert (await submit(hub, "gh-cert-submit", report)).failure_count == 0
    delivered = await read_all(hub, "region-west-africa", "sn-cert-read")
    assert len(delivered) == 4
    _, _, jwks = await get_json(hub.base_url + "/.well-known/jwks.json")

    controls = [*delivered, *(dict(reversed(list(o.items()))) for o in delivered)]
    mutants: list[dict[str, Any]] = []
    for obj in delivered:
        mutants.extend(bit_flips(obj))
        mutants.extend(edits(obj))
    for a in delivered:
        for b in delivered:
            if a is not b:
                swapped = copy.deepcopy(a)
                swapped["extensions"][EXTENSION_ID] = b["extensions"][EXTENSION_ID]
                mutants.append(swapped)
    assert len(mutants) > 2000

    bundle = tmp_path / "mutants.json"
    bundle.write_text(json.dumps({"type": "bundle", "objects": controls + mutants}))
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    result = await run_verify(str(bundle), "--jwks", str(jwks_file), "--json")
    assert result.returncode == 1, result.stderr
    found = verdicts(result)
    assert len(found) == len(controls) + len(mutants)
    assert all(v["valid"] for v in found[: len(controls)])
    passed = [
        (json.dumps(m)[:300], v)
        for m, v in zip(mutants, found[len(controls) :], strict=True)
        if v["valid"]
    ]
    assert not passed, passed[:3]
    reasons = {v["reason"] for v in found[len(controls) :]}
    assert {"tampered", "bad-signature", "missing-extension", "unknown-kid"} <= reasons
