"""validate: each object must be STIX 2.1 that OASIS's stix2 library accepts.

Custom content in the deprecated-but-everywhere `x-`/`x_` style (MITRE ATT&CK's
`x-mitre-*`) passes; any other type the library does not know is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stix2
from stix2 import v21
from stix2.exceptions import STIXError

from hub.pipeline.submission import Item, Submission

_SCO_TYPES = frozenset(v21.OBJ_MAP_OBSERVABLE)
_KNOWN_TYPES = frozenset(v21.OBJ_MAP) | _SCO_TYPES


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def problem_with(obj: Mapping[str, Any]) -> str | None:
    """What makes `obj` unacceptable STIX 2.1, or None."""
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        return "has no 'type'"
    if kind == "bundle":
        return "is a bundle; send its objects, not a bundle inside the envelope"
    custom = kind.startswith("x-")
    if not custom and kind not in _KNOWN_TYPES:
        return f"type {kind!r} is not a STIX 2.1 type (custom types must start with 'x-')"
    if kind not in _SCO_TYPES and obj.get("spec_version") != "2.1":
        found = obj.get("spec_version")
        return (
            f"spec_version is {found!r}; only STIX 2.1 is accepted"
            if found is not None
            else "has no spec_version (STIX 2.0 content?); only STIX 2.1 is accepted"
        )
    try:
        stix2.parse(dict(obj), allow_custom=True, version="2.1")
    except (STIXError, ValueError, TypeError) as exc:
        return str(exc)
    except Exception as exc:
        # stix2 trips over some malformed shapes (e.g. "extensions": 5) with other errors;
        # they are still this object's fault, not the hub's.
        return f"malformed object ({type(exc).__name__}: {exc})"
    if custom and not str(obj.get("id", "")).startswith(f"{kind}--"):
        return f"id {obj.get('id')!r} does not start with its type {kind!r}"
    created, modified = _timestamp(obj.get("created")), _timestamp(obj.get("modified"))
    if created and modified and modified < created:
        return f"modified ({obj['modified']}) is earlier than created ({obj['created']})"
    return None


def _check(item: Item) -> Item:
    if not isinstance(item.obj, Mapping):
        return item.refuse("invalid-stix", f"objects[{item.index}] is not a JSON object")
    problem = problem_with(item.obj)
    if problem is None:
        return item
    return item.refuse("invalid-stix", f"objects[{item.index}] ({item.id or 'no id'}): {problem}")


def validate(submission: Submission) -> Submission:
    """Refuse each object that is not valid STIX 2.1, saying what is wrong and where."""
    return submission.map_accepted(_check)
