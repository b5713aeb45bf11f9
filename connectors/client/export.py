"""Offline bundles: objects signed with the member's key, in one bundle file that can travel
by any means (a USB stick, e-mail) and be submitted days later with its signatures intact."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from connectors.client.bundles import bundle
from connectors.client.files import write_atomically
from connectors.client.keys import MemberKey, is_signed


@dataclass(frozen=True)
class Exported:
    path: Path
    objects: int
    signed_now: int
    sha256: str


def sign_all(objects: Iterable[dict[str, Any]], key: MemberKey | None) -> list[dict[str, Any]]:
    """Each object signed with `key`, unless it already carries a member signature."""
    if key is None:
        return list(objects)
    return [obj if is_signed(obj) else key.sign(obj) for obj in objects]


def export(objects: list[dict[str, Any]], key: MemberKey, out: Path) -> Exported:
    """Write one bundle of `objects`, each signed by `key`, to `out`; its SHA-256 to quote."""
    signed = sign_all(objects, key)
    data = orjson.dumps(bundle(signed), option=orjson.OPT_INDENT_2)
    write_atomically(out, data)
    fresh = sum(1 for a, b in zip(objects, signed, strict=True) if a is not b)
    return Exported(out, len(signed), fresh, hashlib.sha256(data).hexdigest())
