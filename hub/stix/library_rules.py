"""What OASIS's stix2 library checks beyond the JSON Schemas, checked on the JSON itself.

`stix2.parse` builds an object per property (~0.3 ms per object, more with a pattern). Here
the same rules are read from the library's own class definitions (each property's kind,
vocabulary, bounds, reference types) and the cross-property constraints its classes add
(`_check_object_constraints`) are restated, so an object can be vouched for without
building it. The verdict is one-sided on purpose: `custom_content` answers only when the
library would accept the object; anything unusual (values the library would coerce or drop,
granular markings, predefined extensions, marking definitions, a constraint not restated
here) answers None and the library itself decides, in its own words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from stix2 import properties as p
from stix2 import v21
from stix2.base import _STIXBase
from stix2.utils import PREFIX_21_REGEX

from hub.stix import patterns

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
# One `--` only: the library splits an identifier at its first `--`.
_REFERENCE = re.compile(rf"([a-z0-9]+(?:-[a-z0-9]+)*)--{_UUID}")
_UUID_ONLY = re.compile(_UUID)
_EXTENSION_DEFINITION = re.compile(rf"extension-definition--{_UUID}")
# What `datetime.strptime` in the library reads: at most six fractional digits.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")
_HEX = re.compile(r"(?:[a-fA-F0-9]{2})+")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# Keyword names of the library's constructors: as JSON properties they would collide.
_RESERVED = frozenset({"self", "allow_custom", "interoperability", "custom_properties"})
# Types whose construction does more than properties and constraints say (marking
# definitions build their definition object; the others carry their own special rules).
_LIBRARY_ONLY = frozenset({"marking-definition", "language-content", "extension-definition"})
TYPES: dict[str, type[_STIXBase]] = {
    kind: cls
    for kind, cls in {**v21.OBJ_MAP, **v21.OBJ_MAP_OBSERVABLE}.items()
    if kind not in _LIBRARY_ONLY and kind != "bundle"
}


class _Unsure(Exception):
    """The library must decide (it may refuse, coerce, or check what is not restated here)."""


def _instant(value: str) -> str:
    """A key that sorts as the timestamps do (all checked against _TIMESTAMP)."""
    seconds, _, fraction = value[:-1].partition(".")
    return seconds + fraction.ljust(6, "0")


def _not_before(obj: Mapping[str, Any], first: str, last: str, strictly: bool = False) -> bool:
    if first not in obj or last not in obj:
        return True
    start, end = _instant(obj[first]), _instant(obj[last])
    return end > start if strictly else end >= start


def _seen(obj: Mapping[str, Any]) -> bool:
    return _not_before(obj, "first_seen", "last_seen")


def _indicator(obj: Mapping[str, Any]) -> bool:
    if "valid_from" not in obj or not _not_before(obj, "valid_from", "valid_until", True):
        return False
    if obj["pattern_type"] != "stix":
        return True
    # The library defaults pattern_version to 2.1 and picks the 2.0 grammar for any other.
    if obj.get("pattern_version", "2.1") != "2.1" or not obj["pattern"]:
        return False
    return patterns.is_valid(obj["pattern"]) is True


def _location(obj: Mapping[str, Any]) -> bool:
    has_point = "latitude" in obj and "longitude" in obj
    return (
        ("latitude" in obj) == ("longitude" in obj)
        and ("precision" not in obj or has_point)
        and ("region" in obj or "country" in obj or has_point)
    )


def _malware(obj: Mapping[str, Any]) -> bool:
    return _seen(obj) and (obj["is_family"] is not True or "name" in obj)


def _external_reference(obj: Mapping[str, Any]) -> bool:
    legal = v21.ExternalReference._LEGAL_HASHES
    return bool({"description", "external_id", "url"} & obj.keys()) and all(
        name in legal for name in obj.get("hashes", ())
    )


def _network_traffic(obj: Mapping[str, Any]) -> bool:
    if not {"src_ref", "dst_ref"} & obj.keys():
        return False
    if "end" in obj and obj.get("is_active") is not False:
        return False
    return _not_before(obj, "start", "end")


def _email_message(obj: Mapping[str, Any]) -> bool:
    multipart = obj["is_multipart"]
    return not ("body_multipart" in obj and multipart is False) and not (
        multipart is True and obj.get("body")
    )


_PROCESS_ANY = frozenset(v21.Process._properties) - {
    "extensions",
    "type",
    "id",
    "defanged",
    "spec_version",
}
_X509_ANY = frozenset(
    {
        "is_self_signed",
        "hashes",
        "version",
        "serial_number",
        "signature_algorithm",
        "issuer",
        "validity_not_before",
        "validity_not_after",
        "subject",
        "subject_public_key_algorithm",
        "subject_public_key_modulus",
        "subject_public_key_exponent",
        "x509_v3_extensions",
    }
)

# Each class's `_check_object_constraints`, restated. A class that has its own and is not
# listed here is left to the library.
CONSTRAINTS: dict[type[_STIXBase], Callable[[Mapping[str, Any]], bool]] = {
    v21.Campaign: _seen,
    v21.Infrastructure: _seen,
    v21.IntrusionSet: _seen,
    v21.ThreatActor: _seen,
    v21.Sighting: _seen,
    v21.Malware: _malware,
    v21.Indicator: _indicator,
    v21.Location: _location,
    v21.MalwareAnalysis: lambda o: bool({"result", "analysis_sco_refs"} & o.keys()),
    v21.ObservedData: lambda o: (
        "objects" not in o
        and "object_refs" in o
        and _not_before(o, "first_observed", "last_observed")
    ),
    v21.Relationship: lambda o: _not_before(o, "start_time", "stop_time", True),
    v21.ExternalReference: _external_reference,
    v21.Artifact: lambda o: (
        ("payload_bin" in o) != ("url" in o) and ("url" not in o or "hashes" in o)
    ),
    v21.EmailMIMEComponent: lambda o: bool({"body", "body_raw_ref"} & o.keys()),
    v21.EmailMessage: _email_message,
    v21.File: lambda o: bool({"hashes", "name"} & o.keys()),
    v21.NetworkTraffic: _network_traffic,
    v21.Process: lambda o: bool(_PROCESS_ANY & o.keys()) or "extensions" in o,
    v21.X509Certificate: lambda o: bool(_X509_ANY & o.keys()),
}


@functools.cache
def _reference_types(prop: p.ReferenceProperty, kind: str) -> tuple[bool, bool]:
    """Whether the library takes a `kind` reference here: leniently, and strictly."""
    sample = f"{kind}--00000000-0000-4000-8000-000000000000"
    verdicts = []
    for allow_custom in (True, False):
        try:
            prop.clean(sample, allow_custom)
            verdicts.append(True)
        except Exception:
            verdicts.append(False)
    return verdicts[0], verdicts[1]


Checker = Callable[[Any], bool]


def _strings(value: Any) -> bool:
    if not isinstance(value, str):
        raise _Unsure
    return False


def _timestamps(value: Any) -> bool:
    if not (isinstance(value, str) and _TIMESTAMP.fullmatch(value)):
        raise _Unsure
    try:
        datetime.fromisoformat(value[:19])
    except ValueError as exc:
        raise _Unsure from exc
    return False


def _booleans(value: Any) -> bool:
    if type(value) is not bool:
        raise _Unsure
    return False


def _matching(regex: re.Pattern[str]) -> Checker:
    def check(value: Any) -> bool:
        if not (isinstance(value, str) and regex.fullmatch(value)):
            raise _Unsure
        return False

    return check


def _fixed(expected: str) -> Checker:
    def check(value: Any) -> bool:
        if not (isinstance(value, str) and value == expected):
            raise _Unsure
        return False

    return check


def _enum(allowed: frozenset[str]) -> Checker:
    def check(value: Any) -> bool:
        if not (isinstance(value, str) and value in allowed):
            raise _Unsure
        return False

    return check


def _identifier(prefix: str) -> Checker:
    def check(value: Any) -> bool:
        if not (
            isinstance(value, str)
            and value.startswith(prefix)
            and _UUID_ONLY.fullmatch(value, len(prefix))
        ):
            raise _Unsure
        return False

    return check


def _reference(prop: p.ReferenceProperty) -> Checker:
    def check(value: Any) -> bool:
        match = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise _Unsure
        lenient, strict = _reference_types(prop, match.group(1))
        if not lenient:
            raise _Unsure
        return not strict

    return check


def _number(prop: p.IntegerProperty | p.FloatProperty, numeric: tuple[type, ...]) -> Checker:
    low, high = prop.min, prop.max

    def check(value: Any) -> bool:
        if type(value) not in numeric:
            raise _Unsure
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Unsure
        return False

    return check


def _list(contained: Any) -> Checker:
    item_check = _checker(contained) if isinstance(contained, p.Property) else None

    def check(value: Any) -> bool:
        if type(value) is not list:
            raise _Unsure
        custom = False
        for item in value:
            if item_check is not None:
                if item is None or item == []:
                    raise _Unsure
                custom |= item_check(item)
            elif type(item) is dict:
                custom |= _object(contained, item)
            else:
                raise _Unsure
        return custom

    return check


def _embedded(cls: type[_STIXBase]) -> Checker:
    def check(value: Any) -> bool:
        if type(value) is not dict:
            raise _Unsure
        return _object(cls, value)

    return check


def _dictionary(prop: p.DictionaryProperty) -> Checker:
    def check(value: Any) -> bool:
        if type(value) is not dict:
            raise _Unsure
        try:
            # Pure and cheap: key rules, hash formats, and whether an algorithm is custom.
            return bool(prop.clean(value, True)[1])
        except Exception as exc:
            raise _Unsure from exc

    return check


def _extensions(value: Any) -> bool:
    # Only extension-definition property extensions: the library checks their ids and
    # nothing inside. Predefined SCO extensions and new-type or top-level property
    # extensions change what the rest of the object may hold.
    if type(value) is not dict or not value:
        raise _Unsure
    for key, extension in value.items():
        if not _EXTENSION_DEFINITION.fullmatch(key) or type(extension) is not dict:
            raise _Unsure
        if extension.get("extension_type") != "property-extension":
            raise _Unsure
    return False


def _unsure(value: Any) -> bool:
    raise _Unsure  # observables (deprecated `objects`), selectors, markings, anything new


def _checker(prop: p.Property) -> Checker:
    """A check of one property value as the library's `clean` would do it, minus coercion.

    The check returns whether the value is custom content (which only a lenient parse
    takes) and raises _Unsure when the library might refuse or change it.
    """
    if hasattr(prop, "_fixed_value"):
        return _fixed(prop._fixed_value)
    kind = type(prop)
    if kind in (p.StringProperty, p.PatternProperty, p.OpenVocabProperty):
        return _strings
    if kind is p.EnumProperty:
        return _enum(frozenset(prop.allowed))
    if kind is p.IDProperty:
        return _identifier(prop.required_prefix)
    if kind is p.ReferenceProperty:
        return _reference(prop)
    if kind is p.TimestampProperty:
        return _timestamps
    if kind is p.IntegerProperty:
        return _number(prop, (int,))
    if kind is p.FloatProperty:
        return _number(prop, (int, float))
    if kind is p.BooleanProperty:
        return _booleans
    if kind is p.ListProperty:
        return _list(prop.contained)
    if kind is p.EmbeddedObjectProperty:
        return _embedded(prop.type)
    if kind is p.HashesProperty or kind is p.DictionaryProperty:
        return _dictionary(prop)
    if kind is p.HexProperty:
        return _matching(_HEX)
    if kind is p.BinaryProperty:
        return _matching(_BASE64)
    if kind is p.ExtensionsProperty:
        return _extensions
    return _unsure


@functools.cache
def _rules(
    cls: Any,  # a stix2 class (the library is untyped: its classes are Any here)
) -> tuple[dict[str, Checker], frozenset[str], Callable[[Mapping[str, Any]], bool] | None]:
    """Per class, once: a check per property, the required ones, the constraints."""
    checks = {name: _checker(prop) for name, prop in cls._properties.items()}
    required = frozenset(name for name, prop in cls._properties.items() if prop.required)
    constraint = CONSTRAINTS.get(cls)
    if constraint is None and (
        cls is v21.GranularMarking  # selectors must point into the object
        or cls._check_object_constraints is not _STIXBase._check_object_constraints
    ):
        constraint = _refused
    return checks, required, constraint


def _refused(obj: Mapping[str, Any]) -> bool:
    return False


def _object(cls: Any, obj: Mapping[str, Any]) -> bool:
    """Check a STIX object or embedded type; returns whether it holds custom content."""
    checks, required, constraint = _rules(cls)
    custom = False
    for name, value in obj.items():
        check = checks.get(name)
        if value is None or value == []:
            raise _Unsure  # the library silently drops these
        if check is not None:
            custom |= check(value)
        elif name in _RESERVED or not PREFIX_21_REGEX.match(name):
            raise _Unsure
        else:
            custom = True
    if not required <= obj.keys():
        raise _Unsure
    if constraint is not None and not constraint(obj):
        raise _Unsure
    return custom


def custom_content(obj: Mapping[str, Any]) -> bool | None:
    """Whether the library takes `obj` only leniently (custom content): False when it takes
    it strictly, None when it may refuse it or when only the library can tell."""
    cls = TYPES.get(str(obj.get("type")))
    if cls is None:
        return None
    try:
        return _object(cls, obj)
    except _Unsure:
        return None


def extra_properties(obj: Mapping[str, Any]) -> set[str]:
    """The top-level properties the library does not define for this object's type."""
    return set(obj.keys() - TYPES[str(obj["type"])]._properties.keys())
