"""A member's sharing rules (the `sharing` block of the federation file), as typed values.

The rules narrow the TLP table, never widen it: TLP:CLEAR reaches every member; GREEN the
communities named (default: the sender's regions); AMBER, AMBER+STRICT and RED nobody but
the sender unless named. Unknown block properties belong to other stages (`default_tlp`,
`allow_custom`, `require_signature`) and are ignored here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hub.federation import Member
from hub.stix.markings import Tlp

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?)"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes, seconds (`PT6H`, `P1D`, `P2W`)."""
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT6H or P1D")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One entry of a recipients list: `all`, `region:<id>`, `member:<id>`, `account:<name>`."""

    kind: str
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> Recipient:
        kind, _, value = text.partition(":")
        return cls(kind, value)

    def __str__(self) -> str:
        return self.kind if self.kind == "all" else f"{self.kind}:{self.value}"

    def includes(self, member: Member) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "region":
            return self.value in member.regions
        if self.kind == "member":
            return self.value == member.id
        return any(a.username == self.value for a in member.accounts)


@dataclass(frozen=True, slots=True)
class Audience:
    """A recipients list and where it came from, so a decision can name the rule."""

    recipients: tuple[Recipient, ...]
    rule: str  # e.g. "sharing.recipients.amber"

    def match(self, member: Member) -> Recipient | None:
        return next((r for r in self.recipients if r.includes(member)), None)

    def __str__(self) -> str:
        return f"{self.rule} = [{', '.join(map(str, self.recipients))}]"


@dataclass(frozen=True, slots=True)
class ReceiveFilter:
    """What a member wants to receive (recipient side); it only ever narrows."""

    types: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    min_confidence: int | None = None


@dataclass(frozen=True, slots=True)
class SharingRules:
    levels: Mapping[Tlp, Audience]  # GREEN, AMBER, AMBER_STRICT, RED
    allow_types: frozenset[str] | None
    deny_types: frozenset[str]
    markings: Mapping[str, Audience]  # non-TLP marking-definition id → who may receive it
    anonymous: bool
    embargo: timedelta | None
    pseudonymise: frozenset[str]
    receive: ReceiveFilter


_LEVEL_KEYS = {Tlp.GREEN: "green", Tlp.AMBER: "amber", Tlp.AMBER_STRICT: "amber+strict"}


def _audience(entries: Iterable[str], rule: str) -> Audience:
    return Audience(tuple(Recipient.parse(e) for e in entries), rule)


def parse_rules(sharing: Mapping[str, Any], regions: Iterable[str]) -> SharingRules:
    """The rules of one member's (schema-checked) `sharing` block; `regions` are its own."""
    recipients = sharing.get("recipients", {})
    levels = {
        level: _audience(
            recipients.get(key, [f"region:{r}" for r in regions] if level == Tlp.GREEN else []),
            f"sharing.recipients.{key}",
        )
        for level, key in _LEVEL_KEYS.items()
    }
    levels[Tlp.RED] = _audience(recipients.get("red", []), "sharing.recipients.red")
    types = sharing.get("types", {})
    receive = sharing.get("receive", {})
    return SharingRules(
        levels=levels,
        allow_types=frozenset(types["allow"]) if "allow" in types else None,
        deny_types=frozenset(types.get("deny", [])),
        markings={
            mid: _audience(entries, f"sharing.markings.{mid}")
            for mid, entries in sharing.get("markings", {}).items()
        },
        anonymous=bool(sharing.get("anonymous", False)),
        embargo=parse_duration(sharing["embargo"]) if "embargo" in sharing else None,
        pseudonymise=frozenset(sharing.get("pseudonymise", [])),
        receive=ReceiveFilter(
            types=frozenset(receive["types"]) if "types" in receive else None,
            regions=frozenset(receive["regions"]) if "regions" in receive else None,
            min_confidence=receive.get("min_confidence"),
        ),
    )
