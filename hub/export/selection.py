"""Which objects an export holds: current ones (not revoked, inside their validity at the
time of the request; the view gives the latest version the reader may read), that pass the
reader's options (types, TLP at most, a minimum confidence, kinds of value)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from hub.export.values import NO_VALUES, Values, values_of
from hub.signing.provenance import extension_of
from hub.stix import timestamps
from hub.stix.markings import Tlp, strictest_tlp

FORMATS = ("txt", "csv", "suricata", "stix")
# The types that carry values, exported unless `types` names others.
DEFAULT_TYPES = (
    "indicator",
    "observed-data",
    "ipv4-addr",
    "ipv6-addr",
    "domain-name",
    "url",
    "email-addr",
    "file",
)


@dataclass(frozen=True)
class ExportOptions:
    """An export request, already checked."""

    format: str
    kinds: frozenset[str] = frozenset()  # export kinds (hub.export.values); empty: all
    types: tuple[str, ...] = DEFAULT_TYPES
    since: str | None = None  # only objects added to the collection after this time
    min_confidence: int | None = None
    tlp: Tlp | None = None  # at most this level


@dataclass(slots=True)  # not frozen: every object of an export makes one
class Exported:
    """One current object as the export shows it."""

    id: str
    tlp: Tlp | None  # the strictest TLP anywhere on the object
    confidence: int | None
    source: str  # the submitting member, "anonymous", or "" (the hub's own objects)
    first_seen: str
    last_seen: str
    values: Values
    json: bytes  # the object as the reader may read it

    def wanted(self, kinds: frozenset[str]) -> tuple[tuple[str, str], ...]:
        """Its values of `kinds` (all when empty)."""
        if not kinds:
            return self.values.found
        return tuple(v for v in self.values.found if v[0] in kinds)


def _key(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return timestamps.sort_key(value)
    except ValueError:
        return None


def current(obj: Mapping[str, Any], now_key: str) -> bool:
    """Not revoked, and inside [valid_from, valid_until) at `now_key` (a sort key)."""
    return facts_of(obj, NO_VALUES).current(now_key)


def _timestamp(obj: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    # Validation let only RFC 3339 timestamps into the view: no need to parse them again.
    for name in names:
        value = obj.get(name)
        if isinstance(value, str) and value.isprintable():
            return value
    return None


def _source(obj: Mapping[str, Any]) -> str:
    ext = extension_of(obj)
    submitter = ext.get("submitter") if isinstance(ext, Mapping) else None
    return submitter if isinstance(submitter, str) and submitter.isprintable() else ""


_TLPS = tuple(Tlp)  # by value: Tlp(n) costs more than the rest of reading the facts


@dataclass(frozen=True, slots=True)
class Facts:
    """What an export needs of one object version besides its JSON: found once, when the
    view applies it (hub.store.export_facts), so an export reads them instead of parsing
    every object again."""

    revoked: bool
    valid_from: str | None  # sort keys (hub.stix.timestamps)
    valid_until: str | None
    tlp: Tlp | None  # the strictest TLP anywhere on the object
    confidence: int | None
    source: str
    first_seen: str | None  # None: when the collection received it
    last_seen: str | None
    values: Values

    def current(self, now_key: str) -> bool:
        """Not revoked, and inside [valid_from, valid_until) at `now_key` (a sort key)."""
        start, end = self.valid_from, self.valid_until
        return (
            not self.revoked
            and (start is None or start <= now_key)
            and (end is None or now_key < end)
        )

    def to_bytes(self) -> bytes:
        v = self.values
        return orjson.dumps(
            [
                self.revoked,
                self.valid_from,
                self.valid_until,
                None if self.tlp is None else int(self.tlp),
                self.confidence,
                self.source,
                self.first_seen,
                self.last_seen,
                v.found,
                v.malformed,
                v.skipped,
            ]
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Facts:
        r, start, end, tlp, conf, source, first, last, found, malformed, skipped = orjson.loads(raw)
        pairs = tuple(map(tuple, found))
        values = Values(pairs, malformed, skipped) if pairs or malformed or skipped else NO_VALUES
        return cls(
            r, start, end, None if tlp is None else _TLPS[tlp], conf, source, first, last, values
        )


def facts_of(obj: Mapping[str, Any], values: Values | None = None) -> Facts:
    """The facts of `obj`, with its export `values` (found from `obj` when not given)."""
    confidence = obj.get("confidence")
    if not isinstance(confidence, int) or isinstance(confidence, bool):
        confidence = None
    return Facts(
        revoked=obj.get("revoked") is True,
        valid_from=_key(obj.get("valid_from")),
        valid_until=_key(obj.get("valid_until")),
        tlp=strictest_tlp(obj),
        confidence=confidence,
        source=_source(obj),
        # Cyber-observables carry no time of their own: when the hub made them readable.
        first_seen=_timestamp(obj, ("first_observed", "valid_from", "created")),
        last_seen=_timestamp(obj, ("last_observed", "modified", "created")),
        values=values_of(obj) if values is None else values,
    )


def choose(
    facts: Facts, object_id: str, raw: bytes, added: str, options: ExportOptions, now_key: str
) -> Exported | None:
    """The object `object_id` (its `facts`, its JSON `raw`, added to the collection at
    `added`) as the export shows it, or None when it is not current or not wanted."""
    if not facts.current(now_key):
        return None
    tlp = facts.tlp
    if options.tlp is not None and (tlp is None or tlp > options.tlp):
        return None
    confidence = facts.confidence
    if options.min_confidence is not None and (
        confidence is None or confidence < options.min_confidence
    ):
        return None
    return Exported(
        id=object_id,
        tlp=tlp,
        confidence=confidence,
        source=facts.source,
        first_seen=added if facts.first_seen is None else facts.first_seen,
        last_seen=added if facts.last_seen is None else facts.last_seen,
        values=facts.values,
        json=raw,
    )


def choose_stored(
    stored: bytes, object_id: str, raw: bytes, added: str, options: ExportOptions, now_key: str
) -> Exported | None:
    """`choose`, from the facts as `Facts.to_bytes` stored them: the loop of every export,
    so it makes no Facts on the way (a frozen dataclass costs a microsecond to make)."""
    revoked, start, end, tlp, confidence, source, first, last, found, malformed, skipped = (
        orjson.loads(stored)
    )
    if revoked or (start is not None and start > now_key) or (end is not None and now_key >= end):
        return None
    if options.tlp is not None and (tlp is None or tlp > options.tlp):
        return None
    if options.min_confidence is not None and (
        confidence is None or confidence < options.min_confidence
    ):
        return None
    return Exported(
        object_id,
        None if tlp is None else _TLPS[tlp],
        confidence,
        source,
        added if first is None else first,
        added if last is None else last,
        Values(tuple(map(tuple, found)), malformed, skipped)
        if found or malformed or skipped
        else NO_VALUES,
        raw,
    )


def select(
    obj: Mapping[str, Any], raw: bytes, added: str, options: ExportOptions, now_key: str
) -> Exported | None:
    """`obj` (its JSON `raw`, added to the collection at `added`) as the export shows it,
    or None when it is not current or not wanted."""
    # A whole-object bundle of every kind looks at no value: it skips the extraction.
    values = None if options.format != "stix" or options.kinds else NO_VALUES
    return choose(facts_of(obj, values), str(obj.get("id", "")), raw, added, options, now_key)
