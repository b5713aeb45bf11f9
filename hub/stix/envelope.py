"""A submission's body → its objects: one check for the API and for Kafka intake alike, so a
member is told the same thing whichever way it sends.

Raises the refusal itself (400 for a body that is not an envelope or is nested deeper than
`hub.limits.max_depth`, 413 for too many objects, 422 for objects that are not objects or
have no id, or integers STIX cannot hold).

The nesting limit is checked here, once, before anything else walks the body: everything
after (orjson's encoder at 254 levels, rfc8785 and the stdlib json at Python's recursion
limit, the stix2 library, the policy walkers) then sees at most `max_depth` levels per
object, which the federation schema keeps far below each of them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from hub.errors import BadRequest, InvalidStix, PayloadTooLarge

# STIX 2.1 integers must fit in a signed 54-bit value; orjson would silently turn integers
# beyond 64 bits into floats, so bodies with long digit runs get an exact check.
_LONG_DIGITS = re.compile(rb"[0-9]{16,}")
_STIX_INT_MAX = 2**53 - 1
# An object sits two levels down in a body: the envelope (or bundle), then its `objects`.
OBJECT_LEVEL = 2
# orjson refuses to decode deeper than this; its message is the only sign that it was depth.
_ORJSON_MAX_DEPTH = 1024
_ORJSON_DEPTH_ERROR = "depth limit exceeded"
_CONTAINERS = (dict, list)
_SHOWN_STEPS = 8  # of a path to a refused level: the first few and the last
_SHOWN_KEY = 40


class TooDeep(BadRequest):
    """A body nested deeper than `hub.limits.max_depth` allows."""


def _exact_int(text: str) -> int:
    # Past 16 digits it is out of range anyway; int() of thousands of digits would refuse.
    value = int(text) if len(text.lstrip("-")) <= 16 else _STIX_INT_MAX + 1
    if abs(value) > _STIX_INT_MAX:
        raise InvalidStix(
            f"the integer {text[:40]} is outside the range STIX allows (±(2^53-1)); "
            "send it as a string"
        )
    return value


def parse_body(body: bytes, max_depth: int) -> Any:
    """The JSON of a body; BadRequest when it is not JSON, TooDeep when an object in it is
    nested more than `max_depth` levels, InvalidStix for huge integers."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith(_ORJSON_DEPTH_ERROR):
            raise TooDeep(
                f"the body is nested more than {_ORJSON_MAX_DEPTH} levels deep (at byte "
                f"{exc.pos}); this hub accepts {max_depth} levels per object "
                "(hub.limits.max_depth)"
            ) from exc
        raise BadRequest(f"the request body is not JSON: {exc}") from exc
    check_depth(data, max_depth)
    if _LONG_DIGITS.search(body):
        # Safe to recurse now: the depth was checked above.
        json.loads(body, parse_int=_exact_int)
    return data


# A container reached while walking a body: itself, the entry it sits in, and its key there.
_Entry = tuple[Any, "_Entry | None", "str | int | None"]


def check_depth(data: Any, max_depth: int) -> None:
    """TooDeep, naming the object and the path, when arrays and objects nest more than
    `max_depth` levels in an object of `data` (the object itself is level 1)."""
    limit = max_depth + OBJECT_LEVEL
    # Level by level, never recursing: the input is what a hostile member chose.
    level, depth = [data], 0
    while level:
        depth += 1
        if depth > limit:
            if any(type(value) in _CONTAINERS for value in level):
                raise TooDeep(_too_deep(data, limit, max_depth))
            return
        below: list[Any] = []
        for value in level:
            kind = type(value)
            if kind is dict:
                below.extend(value.values())
            elif kind is list:
                below.extend(value)
        level = below


def _first_too_deep(data: Any, limit: int) -> list[str | int]:
    """The keys from the top of `data` to its first container below level `limit`."""
    # The same walk as check_depth, remembering how each container was reached.
    level: list[_Entry] = [(data, None, None)]
    for _ in range(limit):
        below: list[_Entry] = []
        for entry in level:
            value = entry[0]
            children = value.items() if type(value) is dict else enumerate(value)
            below.extend((c, entry, key) for key, c in children if type(c) in _CONTAINERS)
        level = below
    keys: list[str | int] = []
    at: _Entry | None = level[0]
    while at is not None and at[2] is not None:
        keys.append(at[2])
        at = at[1]
    return keys[::-1]


def _too_deep(data: Any, limit: int, max_depth: int) -> str:
    keys = _first_too_deep(data, limit)
    where = _path(keys)
    if len(keys) >= OBJECT_LEVEL and keys[0] == "objects" and isinstance(keys[1], int):
        obj = data["objects"][keys[1]]
        name = obj.get("id") if isinstance(obj, dict) else None
        named = f" ({name[:100]})" if isinstance(name, str) else ""
        return (
            f"objects[{keys[1]}]{named} is nested more than {max_depth} levels deep, at "
            f"{where}; this hub accepts {max_depth} (hub.limits.max_depth)"
        )
    return (
        f"the body is nested more than {max_depth + OBJECT_LEVEL} levels deep, at {where}; "
        f"this hub accepts {max_depth} levels per object (hub.limits.max_depth)"
    )


def _path(keys: list[str | int]) -> str:
    """`objects[0].x_tree.down…down` (long paths and keys shortened)."""

    def step(i: int, key: str | int) -> str:
        if isinstance(key, int):
            return f"[{key}]"
        text = key if len(key) <= _SHOWN_KEY else key[:_SHOWN_KEY] + "…"
        return text if i == 0 else f".{text}"

    steps = [step(i, key) for i, key in enumerate(keys)]
    if len(steps) > _SHOWN_STEPS + 1:
        steps = [*steps[:_SHOWN_STEPS], f"…({len(steps) - _SHOWN_STEPS - 1} more)…", steps[-1]]
    return "".join(steps)


def envelope_objects(data: Any, max_objects: int) -> list[dict[str, Any]]:
    """The objects of a TAXII envelope (or, leniently, a STIX bundle), checked for shape."""
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a TAXII envelope: a JSON object")
    objects = data.get("objects")
    if not isinstance(objects, list) or not objects:
        raise BadRequest("the envelope must have an 'objects' array with at least one object")
    if len(objects) > max_objects:
        raise PayloadTooLarge(
            f"the envelope holds {len(objects)} objects; this hub accepts {max_objects} at once"
        )
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise InvalidStix(f"objects[{i}] is not a JSON object")
        if not isinstance(obj.get("id"), str) or not obj["id"]:
            raise InvalidStix(f"objects[{i}] has no 'id' string")
    return objects


def record_objects(data: Any, max_objects: int) -> list[dict[str, Any]]:
    """The objects of a member's Kafka record: a bundle, an envelope, or one STIX object (a
    JSON object with a `type` other than `bundle`). TAXII keeps to envelopes (Add Objects
    takes an envelope, TAXII 2.1 section 5.5)."""
    if isinstance(data, dict) and isinstance(data.get("type"), str) and data["type"] != "bundle":
        if not isinstance(data.get("id"), str) or not data["id"]:
            raise InvalidStix(f"the {data['type'][:100]!r} object has no 'id' string")
        return [data]
    return envelope_objects(data, max_objects)
