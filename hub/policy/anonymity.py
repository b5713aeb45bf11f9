"""Anonymity: the hub's identity stands in for an anonymous sender in what others receive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _replace(value: Any, sender: str, hub: str) -> Any:
    if isinstance(value, str):
        # Substrings too: an id quoted in a description or a pattern names the sender as well.
        return value.replace(sender, hub)
    if isinstance(value, Mapping):
        return {_replace(k, sender, hub): _replace(v, sender, hub) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, sender, hub) for v in value]
    return value


def anonymised(obj: Mapping[str, Any], sender_identity: str, hub_identity: str) -> dict[str, Any]:
    """`obj` with every mention of the sender's identity id replaced by the hub's."""
    replaced: dict[str, Any] = _replace(obj, sender_identity, hub_identity)
    return replaced
