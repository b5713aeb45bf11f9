"""Whether an object is well-formed STIX 2.1, within the hub's limits (the `validate`
stage asks for each object; routing, for each variant it derives).

OASIS's stix2 library checks what it knows (required properties, id formats, reference
types, closed vocabularies, indicator patterns). Around it the hub checks what the library
lets through: timestamps in UTC with `Z`, `modified` ≥ `created`, `confidence` 0-100,
the shape of objects the library does not know, string lengths, and duplicates. (Nesting
depth and object size are checked once, at intake: hub.stix.envelope and decode.)

Building the library's objects costs ~0.3 ms per object (~0.7 ms with a pattern), so an
object first goes through OASIS's JSON Schema for its type and the library's rules read
from its class definitions (`hub.stix.library_rules`, patterns through a cached skeleton
parse). When those vouch for it, the library would accept it and is not asked; otherwise
the library decides as before and words the refusal. `check_object_stix2` always asks it.

Custom content: types and properties defined through STIX 2.1 extension-definitions pass;
legacy `x-` types and `x_` properties (deprecated in 2.1, everywhere in real data such as
MITRE ATT&CK's `x-mitre-*`) pass unless the member's rules say `allow_custom: false`;
any other unknown type is refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import stix2
from stix2 import v21
from stix2.exceptions import ExtraPropertiesError, STIXError

from hub.federation import Limits
from hub.stix import granular, library_rules, patterns, schemas, timestamps

SCO_TYPES = frozenset(v21.OBJ_MAP_OBSERVABLE)
KNOWN_TYPES = frozenset(v21.OBJ_MAP) | SCO_TYPES
NEW_TYPE_EXTENSIONS = frozenset({"new-sdo", "new-sro", "new-sco"})

# RFC 4122 variant (8-b); versions 1-5 of RFC 4122 and 6-8 of its successor RFC 9562.
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
_IDENTIFIER = re.compile(rf"[a-z0-9][a-z0-9-]*[a-z0-9]--{_UUID}")
_CUSTOM_PROPERTY = re.compile(r"[a-z0-9_]{3,250}")
_LANGUAGE = re.compile(r"[a-z]{3}(-[A-Za-z0-9]{2,8})*")
_REGISTRY_HIVES = frozenset(
    {
        "HKEY_CLASSES_ROOT",
        "HKEY_CURRENT_CONFIG",
        "HKEY_CURRENT_USER",
        "HKEY_LOCAL_MACHINE",
        "HKEY_PERFORMANCE_DATA",
        "HKEY_USERS",
        "HKEY_DYN_DATA",
    }
)
_JSON_SCALARS = frozenset({int, float, bool, type(None)})
_STIX_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
_TIMESTAMP_PROPERTIES = frozenset(
    {
        "created",
        "modified",
        "valid_from",
        "valid_until",
        "first_seen",
        "last_seen",
        "first_observed",
        "last_observed",
        "published",
        "start_time",
        "end_time",
    }
)


class Refuse(Exception):
    """An object is not acceptable; `path` names the property, `expected` what was wanted."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Shape:
    """The longest string in an object's JSON, and where it is."""

    longest: int
    longest_at: str


def shape_of(obj: Any) -> Shape:
    """The longest string of a JSON value, without recursion (input may be hostile)."""
    longest, longest_at = 0, ""
    stack: list[tuple[Any, str]] = [(obj, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, Mapping):
            for key, child in value.items():
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(value))
        elif isinstance(value, str) and len(value) > longest:
            longest, longest_at = len(value), path
    return Shape(longest, longest_at)


def _within(obj: Any, limits: Limits) -> bool:
    """True when `obj` surely has no string over the limit: `shape_of` without its paths."""
    level = [obj]
    while level:
        below: list[Any] = []
        for value in level:
            kind = type(value)
            if kind is str:
                if len(value) > limits.max_string_length:
                    return False
            elif kind is dict:
                below.extend(value.values())
            elif kind is list:
                below.extend(value)
            elif kind not in _JSON_SCALARS:
                return False  # not what a JSON decoder makes: let shape_of measure it
        level = below
    return True


def _check_limits(obj: Mapping[str, Any], limits: Limits) -> None:
    # Nesting depth and object size are checked at intake (hub.stix.envelope, decode).
    if _within(obj, limits):
        return
    shape = shape_of(obj)
    if shape.longest > limits.max_string_length:
        raise Refuse(
            f"a string of {shape.longest} characters; this hub accepts {limits.max_string_length}",
            shape.longest_at,
        )


def _check_pattern(obj: Mapping[str, Any], limits: Limits) -> None:
    """A STIX pattern within the hub's limits, measured before anything parses it: the
    grammar's parser costs about 10 µs a character, and recurses per chained operator."""
    pattern = obj.get("pattern")
    if not isinstance(pattern, str) or obj.get("pattern_type", "stix") != "stix":
        return
    if len(pattern) > limits.max_pattern_length:
        raise Refuse(
            f"the STIX pattern has {len(pattern):,} characters; this hub reads "
            f"{limits.max_pattern_length:,} (hub.limits.max_pattern_length): split it into "
            "several indicators",
            "pattern",
        )
    shape = patterns.structure(pattern)
    if shape.comparisons > limits.max_pattern_comparisons:
        raise Refuse(
            f"the STIX pattern has {shape.comparisons:,} comparisons; this hub reads "
            f"{limits.max_pattern_comparisons:,} (hub.limits.max_pattern_comparisons): split "
            "it into several indicators",
            "pattern",
        )
    if shape.nesting > patterns.MAX_NESTING:
        raise Refuse(
            f"the STIX pattern nests parentheses and brackets {shape.nesting} deep; this hub "
            f"reads {patterns.MAX_NESTING} (its grammar's parser recurses per level)",
            "pattern",
        )


def _new_type_extension(obj: Mapping[str, Any]) -> str | None:
    """The extension_type when an extension-definition defines this object's type."""
    extensions = obj.get("extensions")
    if not isinstance(extensions, Mapping):
        return None
    for key, value in extensions.items():
        if (
            key.startswith("extension-definition--")
            and isinstance(value, Mapping)
            and value.get("extension_type") in NEW_TYPE_EXTENSIONS
        ):
            return str(value["extension_type"])
    return None


def is_identifier(value: object) -> bool:
    """`type--UUID` with an RFC 4122 UUID, as STIX requires of every id and reference."""
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def _check_refs(obj: Mapping[str, Any]) -> None:
    """Every top-level `*_ref` / `*_refs` holds STIX identifiers (custom `x_` ones aside)."""
    for key, value in obj.items():
        if key.startswith("x_"):
            continue  # legacy custom properties mean what their author says (ATT&CK uses "")
        if key.endswith("_ref") and not is_identifier(value):
            raise Refuse(f"{value!r} is not a STIX identifier (type--RFC 4122 UUID)", key)
        if key.endswith("_refs"):
            if not isinstance(value, list):
                raise Refuse("must be a list of STIX identifiers", key)
            for i, ref in enumerate(value):
                if not is_identifier(ref):
                    raise Refuse(
                        f"{ref!r} is not a STIX identifier (type--RFC 4122 UUID)", f"{key}[{i}]"
                    )


def _check_common(obj: Mapping[str, Any], kind: str) -> None:
    """The id of an object the stix2 library does not know."""
    obj_id = obj.get("id")
    if not isinstance(obj_id, str) or not obj_id.startswith(f"{kind}--"):
        raise Refuse(f"id {obj_id!r} must be '{kind}--' followed by a UUID", "id")
    if not is_identifier(obj_id):
        raise Refuse(f"id {obj_id!r} is not '<type>--<RFC 4122 UUID>'", "id")


def _check_required_times(obj: Mapping[str, Any], kind: str, is_sco: bool) -> None:
    # The stix2 library fills a missing `modified` from `created`; STIX 2.1 requires both
    # on SDOs and SROs (a marking-definition has only `created`).
    if is_sco:
        return
    required = ("created",) if kind == "marking-definition" else ("created", "modified")
    for name in required:
        if name not in obj:
            raise Refuse(f"missing required property {name!r}", name)


def _check_observables(obj: Mapping[str, Any], kind: str) -> None:
    """SCO rules the stix2 library lets through but the STIX 2.1 text makes MUSTs."""
    if kind == "process" and uuid.UUID(str(obj["id"]).rsplit("--", 1)[1]).version != 4:
        raise Refuse("a process has no ID contributing properties, so its id MUST be UUIDv4", "id")
    if kind == "artifact" and ("payload_bin" in obj) == ("url" in obj):
        raise Refuse("an artifact carries its content in payload_bin or by url: one of them")
    if kind == "artifact" and "decryption_key" in obj and "encryption_algorithm" not in obj:
        raise Refuse("decryption_key needs encryption_algorithm", "decryption_key")
    if kind == "artifact" and "payload_bin" in obj:
        try:
            base64.b64decode(str(obj["payload_bin"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Refuse("must be base64-encoded binary", "payload_bin") from exc
    if kind == "software":
        for i, language in enumerate(obj.get("languages") or []):
            if not (isinstance(language, str) and _LANGUAGE.fullmatch(language)):
                raise Refuse(
                    f"{language!r} is not an ISO 639-2 language code (e.g. 'eng')",
                    f"languages[{i}]",
                )
    if kind == "windows-registry-key":
        key = str(obj.get("key", ""))
        hive = key.split("\\", 1)[0].upper()
        if key and hive not in _REGISTRY_HIVES:
            raise Refuse(
                f"the hive {hive!r} must be written in full (e.g. HKEY_LOCAL_MACHINE)", "key"
            )


def _check_not_coerced(obj: Mapping[str, Any], parsed: Any) -> None:
    """The stix2 library quietly turns "x" into ["x"] and "3" into 3; STIX JSON may not."""
    if not isinstance(parsed, Mapping):
        return
    for key, raw in obj.items():
        value = parsed.get(key)
        if isinstance(value, list) and not isinstance(raw, list):
            raise Refuse("must be a JSON array", key)
        if isinstance(value, bool) and not isinstance(raw, bool):
            raise Refuse("must be true or false", key)
        if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(raw, str):
            raise Refuse("must be a number, not a string", key)


def _check_stix(obj: Mapping[str, Any], allow_custom: bool) -> None:
    """Parse with the stix2 library; custom content only where the member allows it.

    What fails a strict parse but passes a lenient one is custom content: custom properties,
    extensions, hash algorithms (an open vocabulary), references to custom objects.
    """
    try:
        _check_not_coerced(obj, stix2.parse(dict(obj), allow_custom=False, version="2.1"))
        return
    except (STIXError, ValueError, TypeError) as exc:
        strict_error = exc
    try:
        parsed = stix2.parse(dict(obj), allow_custom=True, version="2.1")
    except (STIXError, ValueError, TypeError) as exc:
        raise Refuse(str(exc)) from exc
    _check_not_coerced(obj, parsed)
    if not allow_custom:
        raise Refuse(f"custom content is not accepted from this member ({strict_error})")
    if isinstance(strict_error, ExtraPropertiesError):
        for name in strict_error.properties:
            if not _CUSTOM_PROPERTY.fullmatch(name):
                raise Refuse(
                    "custom property names must be 3-250 characters of a-z, 0-9 and _", name
                ) from strict_error


def _check_values(obj: Mapping[str, Any]) -> None:
    """Timestamps in UTC with `Z`, modified ≥ created, confidence 0-100."""
    keys: dict[str, str] = {}
    for key in _TIMESTAMP_PROPERTIES & obj.keys():
        value = obj[key]
        if not (isinstance(value, str) and _STIX_TIMESTAMP.fullmatch(value)):
            raise Refuse(f"{value!r} is not a STIX timestamp (UTC, e.g. 2026-11-20T08:00:00Z)", key)
        keys[key] = timestamps.sort_key(value)  # and a real date and time, not 2026-13-45
    created, modified = obj.get("created"), obj.get("modified")
    if created and modified and keys["modified"] < keys["created"]:
        raise Refuse(f"modified ({modified}) is earlier than created ({created})", "modified")
    confidence = obj.get("confidence")
    if confidence is not None and not (
        isinstance(confidence, int) and not isinstance(confidence, bool) and 0 <= confidence <= 100
    ):
        raise Refuse(f"{confidence!r} is not an integer from 0 to 100", "confidence")


def _vouched(obj: Mapping[str, Any], allow_custom: bool) -> bool:
    """True when the schema and the library's rules show that `_check_stix` would pass."""
    try:
        if schemas.conforms(obj) is not True:
            return False
        custom = library_rules.custom_content(obj)
    except Exception:
        return False  # a shape the fast checks did not expect: the library decides
    if custom is None or (custom and not allow_custom):
        return False
    return not custom or all(
        _CUSTOM_PROPERTY.fullmatch(name) for name in library_rules.extra_properties(obj)
    )


def _check_stix_fast(obj: Mapping[str, Any], allow_custom: bool) -> None:
    if not _vouched(obj, allow_custom):
        _check_stix(obj, allow_custom)


def check_object(obj: Any, limits: Limits, allow_custom: bool = True) -> None:
    """Raise Refuse saying what makes `obj` unacceptable STIX 2.1 for this hub."""
    _check_object(obj, limits, allow_custom, _check_stix_fast)


def check_object_stix2(obj: Any, limits: Limits, allow_custom: bool = True) -> None:
    """`check_object` asking the stix2 library about every object: the reference it matches."""
    _check_object(obj, limits, allow_custom, _check_stix)


def _check_object(
    obj: Any,
    limits: Limits,
    allow_custom: bool,
    check_stix: Callable[[Mapping[str, Any], bool], None],
) -> None:
    if not isinstance(obj, Mapping):
        raise Refuse("is not a JSON object")
    _check_limits(obj, limits)
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        raise Refuse("has no 'type'", "type")
    if kind == "bundle":
        raise Refuse("is a bundle; send its objects, not a bundle inside the envelope", "type")
    legacy_custom = kind.startswith("x-")
    defined_by = _new_type_extension(obj)
    if kind not in KNOWN_TYPES and not legacy_custom and defined_by is None:
        raise Refuse(
            f"type {kind!r} is not a STIX 2.1 type; custom types need an extension-definition "
            "(extension_type new-sdo/new-sro/new-sco) or the legacy 'x-' prefix",
            "type",
        )
    if legacy_custom and not allow_custom:
        raise Refuse(f"custom type {kind!r} is not accepted from this member", "type")
    if kind == "indicator":
        _check_pattern(obj, limits)
    is_sco = kind in SCO_TYPES or defined_by == "new-sco"
    if not is_sco and obj.get("spec_version") != "2.1":
        found = obj.get("spec_version")
        raise Refuse(
            f"spec_version is {found!r}; only STIX 2.1 is accepted"
            if found is not None
            else "has no spec_version (STIX 2.0 content?); only STIX 2.1 is accepted",
            "spec_version",
        )
    try:
        granular.check(obj, allow_custom)
    except granular.BadGranularMarking as exc:
        raise Refuse(str(exc), exc.path) from exc
    if kind in KNOWN_TYPES:
        if not is_identifier(obj.get("id")):
            raise Refuse(f"id {obj.get('id')!r} is not '<type>--<RFC 4122 UUID>'", "id")
        # The library would check the selectors again, in time cubic in the object's size.
        check_stix(granular.without_granular(obj), allow_custom)
    else:
        _check_common(obj, kind)
    _check_required_times(obj, kind, is_sco)
    _check_refs(obj)
    _check_observables(obj, kind)
    _check_values(obj)


def problem_with(obj: Any) -> str | None:
    """Why `obj` is not valid STIX 2.1 (custom content allowed), or None.

    For content the hub itself derives (a redacted variant), which must still be valid.
    """
    try:
        check_object(obj, Limits(), allow_custom=True)
    except Refuse as exc:
        return f"property '{exc.path}': {exc}" if exc.path else str(exc)
    return None
