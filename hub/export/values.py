"""The values an object gives an export: the correlator's observables, in export kinds.

The extraction is hub.correlate.observables (equality comparisons on `value` and `hashes` in
STIX patterns; cyber-observables, standalone or embedded in observed-data), so an export
and correlation never disagree on what an object says. A value must also be well formed
for its kind before it goes into a line-based file: a member's `domain-name` holding a
newline or a spreadsheet formula must not become a second blocklist line, a Suricata rule
or a formula in an analyst's spreadsheet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.correlate.observables import from_equalities, observables

if TYPE_CHECKING:  # lookup_values imports this module's well_formed
    from hub.store.lookup_values import Comparison

# Observable kinds (hub.correlate.observables) → the names an export uses for them.
KINDS: Mapping[str, str] = {
    "ipv4-addr": "ipv4",
    "ipv6-addr": "ipv6",
    "domain-name": "domain",
    "url": "url",
    "email-addr": "email",
    "file:MD5": "md5",
    "file:SHA-1": "sha1",
    "file:SHA-256": "sha256",
    "file:SHA-512": "sha512",
}
EXPORT_KINDS = tuple(KINDS.values())

_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOMAIN = re.compile(rf"(?:_?{_LABEL}\.)*{_LABEL}", re.UNICODE)
_EMAIL_LOCAL = re.compile(r"[\w!#$%&'*/=?^`{|}~.+-]{1,64}", re.UNICODE)
_HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
# Characters that start a formula in a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@")


def well_formed(kind: str, value: str) -> bool:
    """Whether `value` (normalised by the correlator) is a sound value of export `kind`:
    one line of printable text, no formula start, in the shape of its kind."""
    if not value or not value.isprintable() or value.startswith(_FORMULA_START):
        return False
    if kind in ("ipv4", "ipv6"):
        return True  # the correlator parsed it as an address or a network
    if kind == "domain":
        return len(value) <= 253 and _DOMAIN.fullmatch(value) is not None
    if kind == "email":
        local, at, domain = value.rpartition("@")
        return (
            bool(at) and _EMAIL_LOCAL.fullmatch(local) is not None and well_formed("domain", domain)
        )
    if kind == "url":
        return " " not in value and len(value) <= 2048  # scheme and host: the correlator's
    length = _HEX_LENGTH.get(kind)
    return length is not None and len(value) == length and _HEX.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Values:
    """What one object gives: its well-formed values, and why an indicator gives none."""

    found: tuple[tuple[str, str], ...]  # (export kind, value), sorted
    malformed: int  # values of an export kind that were not well formed
    # For an indicator that gives no value at all: "language" (not a STIX pattern),
    # "comparison" (no `=` on a value or hash of an export kind) or "malformed" (only
    # values that are not well formed); "" otherwise.
    skipped: str


NO_VALUES = Values((), 0, "")


def values_of(obj: Mapping[str, Any], read: Sequence[Comparison] | None = None) -> Values:
    """The export values of `obj`, as the correlator reads it; from an indicator's pattern
    comparisons `read` already (hub.store.lookup_values.comparisons_of), when given: its
    `=` comparisons are the ones the correlator reads (the tests hold the two to the same
    values)."""
    found, malformed = [], 0
    if read is not None and obj.get("type") == "indicator" and obj.get("pattern_type") == "stix":
        seen = set(
            from_equalities((c.object_type, c.path, c.values[0]) for c in read if c.equality())
        )
    else:
        seen = observables(obj)
    for kind, value in seen:
        name = KINDS.get(kind)
        if name is None:
            continue
        if well_formed(name, value):
            found.append((name, value))
        else:
            malformed += 1
    skipped = ""
    if obj.get("type") == "indicator" and not found:
        if obj.get("pattern_type") != "stix":
            skipped = "language"
        else:
            skipped = "malformed" if malformed else "comparison"
    return Values(tuple(sorted(found)), malformed, skipped)
