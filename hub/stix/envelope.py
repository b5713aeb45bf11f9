"""A submission's body → its objects: one check for the API and for Kafka intake alike, so a
member is told the same thing whichever way it sends.

Raises the refusal itself (400 for a body that is not an envelope, 413 for too many
objects, 422 for objects that are not objects or have no id, or integers STIX cannot hold).
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


def _exact_int(text: str) -> int:
    # Past 16 digits it is out of range anyway; int() of thousands of digits would refuse.
    value = int(text) if len(text.lstrip("-")) <= 16 else _STIX_INT_MAX + 1
    if abs(value) > _STIX_INT_MAX:
        raise InvalidStix(
            f"the integer {text[:40]} is outside the range STIX allows (±(2^53-1)); "
            "send it as a string"
        )
    return value


def parse_body(body: bytes) -> Any:
    """The JSON of a body; BadRequest when it is not JSON, InvalidStix for huge integers."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not JSON: {exc}") from exc
    if _LONG_DIGITS.search(body):
        try:
            json.loads(body, parse_int=_exact_int)
        except RecursionError as exc:
            raise BadRequest("the request body is nested too deeply") from exc
    return data


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
