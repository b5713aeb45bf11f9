"""What two reports can have in common: observables taken from STIX objects, normalised, and
then keyed with the federation's key so that the correlator holds no raw value.

From an indicator, the equality comparisons of its STIX pattern on addresses, domains,
URLs, mailboxes and file hashes (parsed with OASIS's pattern grammar, `stix2-patterns`);
from cyber-observables, standalone or embedded in observed-data, the same properties; from
a vulnerability its CVE id; from malware and attack-patterns their names and external ids.
A sighting reports whatever the object it sights carries (the correlator looks that up).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from stix2patterns.v21.pattern import Pattern

Observable = tuple[str, str]  # (kind, normalised value)

# Pattern object paths, and observable properties, that name the same thing.
_SCO_VALUES = {"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr"}
_HASH_NAMES = {
    "md5": "MD5",
    "sha-1": "SHA-1",
    "sha1": "SHA-1",
    "sha-256": "SHA-256",
    "sha256": "SHA-256",
    "sha-512": "SHA-512",
    "sha512": "SHA-512",
}
_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


# A canonical dotted-quad IPv4 address (no leading zeros, ASCII digits): what
# `ipaddress.ip_network` gives back unchanged, at a small part of its cost (the common
# value in an export of 100,000 indicators).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _ip(value: str) -> str | None:
    if _CANONICAL_IPV4.fullmatch(value):
        return value
    return _ip_parsed(value)


def _ip_parsed(value: str) -> str | None:
    """`value` as `ipaddress` reads an address or network, in its compressed form."""
    try:
        return (
            ipaddress.ip_network(value.strip(), strict=False)
            .compressed.removesuffix("/32")
            .removesuffix("/128")
        )
    except ValueError:
        return None


def _url(value: str) -> str | None:
    try:
        parts = urlsplit(value.strip())
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    scheme = parts.scheme.lower()
    if ":" in host:
        # An IPv6 host keeps its brackets: without them its last group reads as a port.
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def normalise(kind: str, value: object) -> Observable | None:
    """One observable as comparable text, or None when it is not one (or not valid)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if kind in ("ipv4-addr", "ipv6-addr"):
        found = _ip(text)
        return (kind, found) if found else None
    if kind == "domain-name":
        return (kind, text.rstrip(".").lower())
    if kind == "email-addr":
        return (kind, text.lower())
    if kind == "url":
        found = _url(text)
        return (kind, found) if found else None
    if kind.startswith("file:"):
        name = _HASH_NAMES.get(kind[5:].lower())
        return (f"file:{name}", text.lower()) if name else None
    if kind == "vulnerability":
        match = _CVE.fullmatch(text)
        return (kind, match.group(0).upper()) if match else None
    if kind in ("malware", "attack-pattern", "attack-pattern-id"):
        return (kind, " ".join(text.lower().split()))
    return None


def _literal(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return None


# A STIX pattern read token by token as far as correlation needs: string literals (also
# t'', b'', h'' ones) are consumed whole, so nothing inside one is taken for a comparison,
# and `TYPE:value = '...'` / `TYPE:hashes.NAME = '...'` are the equality tests wanted
# (`!=` and `NOT =` do not match: something stands between the path and `=`).
_STRING = r"'(?:[^'\\]|\\.)*'"
_TOKENS = re.compile(
    rf"(?<![\w-])(?P<type>[A-Za-z_][\w-]*)\s*:\s*"
    rf"(?:(?P<value>value)|hashes\s*\.\s*(?P<hash>{_STRING}|[A-Za-z_]\w*))"
    rf"\s*=\s*(?P<literal>{_STRING})"
    rf"|(?:\b[tbh])?{_STRING}"
)


def comparisons(pattern: str) -> Iterator[tuple[str, list[str], str]]:
    """(object type, path, string literal) of each `=` on a value or a hash in a pattern the
    validation stage accepted; the same as the OASIS grammar's inspector reports for them."""
    for match in _TOKENS.finditer(pattern):
        literal = match.group("literal")
        if literal is None:
            continue  # a string literal outside such a comparison
        if match.group("value"):
            yield match.group("type"), ["value"], literal
        else:
            name = match.group("hash")
            yield match.group("type"), ["hashes", _literal(name) or name], literal


def _comparisons_by_grammar(pattern: str) -> Iterator[tuple[str, list[str], str]]:
    """The same, from OASIS's pattern grammar (stix2-patterns): for patterns not validated."""
    try:
        found = Pattern(pattern).inspect().comparisons
    except Exception:
        return
    for kind, tests in found.items():
        for path, op, raw in tests:
            if op == "=":
                yield kind, path, raw


def from_pattern(pattern: str, *, validated: bool = True) -> Iterator[Observable]:
    """Equality comparisons in a STIX pattern (other languages and operators give none).

    A pattern the hub has validated is read with `comparisons`, which costs about 1 % of
    parsing it with the grammar again; the tests hold the two to the same answers."""
    found = comparisons(pattern) if validated else _comparisons_by_grammar(pattern)
    return from_equalities((kind, path, _literal(raw)) for kind, path, raw in found)


def from_equalities(
    found: Iterable[tuple[str, Sequence[str], str | None]],
) -> Iterator[Observable]:
    """The observables of a pattern's `=` comparisons already read: (object type, path,
    unquoted literal), as `comparisons` gives them."""
    for kind, path, value in found:
        if value is None:
            continue
        if kind in _SCO_VALUES and len(path) == 1 and path[0] == "value":
            hit = normalise(kind, value)
        elif kind == "file" and len(path) == 2 and path[0] == "hashes":
            hit = normalise(f"file:{path[1]}", value)
        else:
            hit = None
        if hit:
            yield hit


def _from_sco(obj: Mapping[str, Any]) -> Iterator[Observable]:
    kind = obj.get("type")
    if kind in _SCO_VALUES:
        hit = normalise(str(kind), obj.get("value"))
        if hit:
            yield hit
    elif kind == "file" and isinstance(obj.get("hashes"), Mapping):
        for name, value in obj["hashes"].items():
            hit = normalise(f"file:{name}", value)
            if hit:
                yield hit


def _external_ids(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    refs = obj.get("external_references")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and isinstance(ref.get("external_id"), str):
            yield str(ref.get("source_name", "")), ref["external_id"]


def observables(obj: Mapping[str, Any]) -> set[Observable]:
    """The observables an object reports by itself (a sighting's come from what it sights)."""
    kind = obj.get("type")
    found: Iterable[Observable | None] = ()
    if kind == "indicator" and obj.get("pattern_type") == "stix":
        found = from_pattern(str(obj.get("pattern", "")))
    elif kind == "observed-data" and isinstance(obj.get("objects"), Mapping):
        found = (
            hit
            for sco in obj["objects"].values()
            if isinstance(sco, Mapping)
            for hit in _from_sco(sco)
        )
    elif kind == "vulnerability":
        names = [obj.get("name"), *(x for s, x in _external_ids(obj) if s.lower() == "cve")]
        found = (normalise("vulnerability", n) for n in names)
    elif kind in ("malware", "attack-pattern"):
        found = [normalise(str(kind), obj.get("name"))]
        found += [
            normalise("attack-pattern-id", x)
            for s, x in _external_ids(obj)
            if s.startswith("mitre-") and kind == "attack-pattern"
        ]
    else:
        found = _from_sco(obj)
    return {hit for hit in found if hit}


def keyed(observable: Observable, key: bytes) -> str:
    """The observable as the correlator keeps it: a federation-keyed HMAC, no raw value."""
    kind, value = observable
    digest = hmac.new(key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:32]}"
