"""What the lookup index holds and what a lookup asks, as keys that compare in SQLite.

An object gives the values its STIX pattern or its cyber-observables name, each as a key
normalised per kind:

- addresses and networks as the range of addresses they cover, big-endian bytes (4 for
  IPv4, 16 for IPv6), so an address inside an indexed network, or an indexed address
  inside a queried network, is found by comparing keys;
- domains with their labels reversed (`org.example.www.`), so a domain's subdomains are the
  keys that start with it;
- URLs as the correlator normalises them (hub.correlate.observables), and their host as a
  domain (or address); e-mail addresses and file hashes lowercased.

From a pattern: `=`, `IN` and `ISSUBSET` on an address, domain, URL or mailbox value or a
file hash, and `LIKE '%.example.org'` on a domain (every subdomain of example.org); a
negated comparison, other operators and other LIKEs give nothing. Patterns are read token
by token as the correlator reads them, at about 1 % of the cost of OASIS's grammar; the
tests hold the two readings to the same keys.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from hub.correlate.observables import normalise
from hub.export.values import well_formed
from hub.stix.object_paths import comparisons

# Index kinds.
IP4, IP6, DOMAIN, URL, EMAIL, HASH = "ip4", "ip6", "domain", "url", "email", "hash"
# How an indexed value covers what it names.
VALUE = "value"  # the value itself (an address or network, a domain, a URL, ...)
SUBDOMAINS = "subdomains"  # every subdomain of the domain (a LIKE '%.domain' pattern)
URL_HOST = "url-host"  # the host of a URL the object names

# Kinds a caller names (`kind=`), and the index kind each reads.
QUERY_KINDS: Mapping[str, str] = {
    "ip": "ip",
    "ipv4": IP4,
    "ipv6": IP6,
    "domain": DOMAIN,
    "url": URL,
    "email": EMAIL,
    "hash": HASH,
    "md5": HASH,
    "sha1": HASH,
    "sha256": HASH,
    "sha512": HASH,
    "text": "text",
}
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-fA-F]+")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_SCO_KINDS = {
    "ipv4-addr": IP4,
    "ipv6-addr": IP6,
    "domain-name": DOMAIN,
    "url": URL,
    "email-addr": EMAIL,
}
# Free text: the properties people write in, the first TEXT_CHARS characters of them.
TEXT_PROPERTIES = ("name", "description", "content", "abstract", "explanation", "labels", "aliases")
TEXT_CHARS = 4096
MAX_VALUE = 2048  # characters of a looked-up value
# Words of a free-text look-up: a phrase reads each word's list of objects, so its cost
# grows with its words (the lists of common words are long).
MAX_WORDS = 16


@dataclass(frozen=True, slots=True)
class Key:
    """One value as the index holds it."""

    kind: str
    first: bytes | str  # the key: a range's first address, a reversed domain, a text
    last: bytes | None  # a range's last address (None for other kinds)
    how: str
    shown: str  # the value as people read it


def reversed_domain(domain: str) -> str:
    """`www.example.org` as `org.example.www.`: its subdomains are the keys it begins."""
    return ".".join(reversed(domain.split("."))) + "."


def _network(text: str) -> Key | None:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    shown = net.compressed.removesuffix("/32" if net.version == 4 else "/128")
    return Key(
        IP4 if net.version == 4 else IP6,
        net.network_address.packed,
        net.broadcast_address.packed,
        VALUE,
        shown,
    )


def _domain(text: str, how: str = VALUE) -> Key | None:
    name = text.strip().rstrip(".").lower()
    if not well_formed("domain", name):
        return None
    return Key(DOMAIN, reversed_domain(name), None, how, name)


def value_key(kind: str, value: object) -> list[Key]:
    """The keys of one value of a STIX type (`ipv4-addr`, ...) or a hash (`file:MD5`)."""
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        return []
    if kind in ("ipv4-addr", "ipv6-addr"):
        found = _network(value)
        return [found] if found and found.kind == _SCO_KINDS[kind] else []
    if kind == "domain-name":
        found = _domain(value)
        return [found] if found else []
    if kind.startswith("file:"):
        hashed = normalise(kind, value)  # the correlator's hash names, value lowercased
        text = hashed[1] if hashed else ""
        if len(text) in _HASH_LENGTHS.values() and _HEX.fullmatch(text):
            return [Key(HASH, text, None, VALUE, text)]
        return []
    normal = normalise(kind, value)
    if normal is None or not well_formed(kind.removesuffix("-addr"), normal[1]):
        return []
    if kind == "url":
        keys = [Key(URL, normal[1], None, VALUE, normal[1])]
        try:
            hostname = (urlsplit(normal[1]).hostname or "").rstrip(".")
        except ValueError:
            hostname = ""
        address = _network(hostname) if "/" not in hostname else None
        host = replace(address, how=URL_HOST) if address else _domain(hostname, URL_HOST)
        return [*keys, host] if host else keys
    return [Key(EMAIL, normal[1], None, VALUE, normal[1])] if kind == "email-addr" else []


def _literal(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return None


def _grammar_comparisons(
    pattern: str,
) -> Iterator[tuple[str, tuple[str, ...], str, list[str | None]]]:
    for comparison in comparisons(pattern) or ():
        if not comparison.negated:
            values = [_literal(literal.text) for literal in comparison.literals]
            yield comparison.object_type, comparison.path, comparison.operator, values


# A STIX pattern read token by token (as hub.correlate.observables reads it): string
# literals are consumed whole, so nothing inside one is taken for a comparison; a comparison
# is a value or hash path, an optional NOT, one of the operators indexed, and its string
# literal(s). Anything else (`!=`, `MATCHES`, numbers, other paths) matches no comparison.
_COMPARISON = re.compile(
    rf"(?<![\w-])(?P<type>[A-Za-z_][\w-]*)\s*:\s*"
    rf"(?:(?P<value>value)|hashes\s*\.\s*(?P<hash>{_STRING.pattern}|[A-Za-z_]\w*))"
    rf"\s*(?P<negated>NOT\s+)?(?P<op>=|LIKE|ISSUBSET|IN)\s*"
    rf"(?P<literals>{_STRING.pattern}|\(\s*{_STRING.pattern}(?:\s*,\s*{_STRING.pattern})*\s*\))"
    rf"|(?:\b[tbh])?{_STRING.pattern}"
)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One comparison of a STIX pattern that is not negated, as the token reading finds it."""

    object_type: str
    path: tuple[str, ...]
    operator: str  # =, LIKE, ISSUBSET or IN
    values: tuple[str | None, ...]  # its literals, unquoted
    listed: bool  # the literals came as a parenthesised list

    def equality(self) -> bool:
        """An `=` on one string literal: the comparisons the correlator reads."""
        return self.operator == "=" and not self.listed


def comparisons_of(pattern: str) -> list[Comparison]:
    """The comparisons that are not negated, read once for the index and the exports."""
    found = []
    for match in _COMPARISON.finditer(pattern):
        op = match.group("op")
        if op is None or match.group("negated"):
            continue
        if match.group("value"):
            path: tuple[str, ...] = ("value",)
        else:
            name = match.group("hash")
            path = ("hashes", _literal(name) or name)
        literals = match.group("literals")
        values = tuple(_literal(m.group(0)) for m in _STRING.finditer(literals))
        found.append(Comparison(match.group("type"), path, op, values, literals[0] == "("))
    return found


def _comparisons(
    found: list[Comparison],
) -> Iterator[tuple[str, tuple[str, ...], str, list[str | None]]]:
    for c in found:
        yield c.object_type, c.path, c.operator, list(c.values)


def pattern_keys(
    pattern: str, *, grammar: bool = False, read: list[Comparison] | None = None
) -> Iterator[Key]:
    """The keys of a STIX pattern the hub accepted (its comparisons `read` already, when
    given); with `grammar`, read by OASIS's grammar (about 100 times slower: the tests hold
    the two readings to the same keys)."""
    if grammar:
        found = _grammar_comparisons(pattern)
    else:
        found = _comparisons(comparisons_of(pattern) if read is None else read)
    for kind, path, op, values in found:
        if path == ("value",) and kind in _SCO_KINDS:
            name = kind
        elif kind == "file" and len(path) == 2 and path[0] == "hashes":
            name = f"file:{path[1]}"
        else:
            continue
        if op in ("=", "IN") or (op == "ISSUBSET" and kind in ("ipv4-addr", "ipv6-addr")):
            for value in values:
                yield from value_key(name, value)
        elif op == "LIKE" and kind == "domain-name" and len(values) == 1 and values[0]:
            like = values[0]
            if not any(c in like for c in "%_"):
                yield from value_key(name, like)
            elif like.startswith("%.") and not any(c in like[2:] for c in "%_"):
                below = _domain(like[2:], SUBDOMAINS)
                if below:
                    yield below


def _sco_keys(obj: Mapping[str, Any]) -> Iterator[Key]:
    kind = obj.get("type")
    if kind in _SCO_KINDS:
        yield from value_key(str(kind), obj.get("value"))
    hashes = obj.get("hashes")
    if isinstance(hashes, Mapping):
        for name, value in hashes.items():
            yield from value_key(f"file:{name}", value)


def stix_pattern(obj: Mapping[str, Any]) -> str | None:
    """An indicator's pattern when it is in the STIX pattern language."""
    pattern = obj.get("pattern")
    if obj.get("type") == "indicator" and obj.get("pattern_type") == "stix":
        return pattern if isinstance(pattern, str) else None
    return None


def keys_of(obj: Mapping[str, Any], read: list[Comparison] | None = None) -> list[Key]:
    """Every key an object gives the index, once each (none for a revoked version); an
    indicator's comparisons as `comparisons_of` read them, when given."""
    if obj.get("revoked") is True:
        return []
    kind = obj.get("type")
    found: Iterator[Key]
    if kind == "indicator":
        pattern = stix_pattern(obj)
        found = pattern_keys(pattern, read=read) if pattern is not None else iter(())
    elif kind == "observed-data" and isinstance(obj.get("objects"), Mapping):
        found = (
            k for sco in obj["objects"].values() if isinstance(sco, Mapping) for k in _sco_keys(sco)
        )
    else:
        found = _sco_keys(obj)
    return list(dict.fromkeys(found))


def text_of(obj: Mapping[str, Any]) -> str:
    """The free text of an object, at most TEXT_CHARS characters ('' for a revoked one)."""
    if obj.get("revoked") is True:
        return ""
    parts: list[str] = []
    for name in TEXT_PROPERTIES:
        value = obj.get(name)
        items = value if isinstance(value, list) else [value]
        parts += [item for item in items if isinstance(item, str)]
    return " ".join(parts)[:TEXT_CHARS]


@dataclass(frozen=True, slots=True)
class LookupQuery:
    """One value to look up: its index kind ("text" for free text) and its key."""

    kind: str
    value: str  # as normalised (shown back to the caller)
    first: bytes | str
    last: bytes | None = None


def kind_name(kind: str) -> str:
    """An index kind as callers name it (`ipv4` for `ip4`)."""
    return {IP4: "ipv4", IP6: "ipv6"}.get(kind, kind)


class NotAValue(ValueError):
    """The value is not one of the kind asked (or of any kind); the message says why."""


def _guess(text: str) -> str:
    if _network(text):
        return "ip"
    if _HEX.fullmatch(text) and len(text) in _HASH_LENGTHS.values():
        return "hash"
    if "://" in text:
        return "url"
    if "@" in text and " " not in text:
        return "email"
    if "." in text and _domain(text):
        return "domain"
    return "text"


def lookup_query(value: str, kind: str | None = None) -> LookupQuery:
    """What `value` asks (of `kind`, a key of QUERY_KINDS, or guessed from its shape)."""
    text = value.strip()
    if not text:
        raise NotAValue("give the value to look up")
    if len(text) > MAX_VALUE:
        raise NotAValue(f"the value is {len(text)} characters long; at most {MAX_VALUE}")
    asked = kind or _guess(text)
    wanted = QUERY_KINDS[asked]
    if wanted == "text":
        if len(text.split()) > MAX_WORDS:
            raise NotAValue(f"free text is looked up as a phrase of at most {MAX_WORDS} words")
        return LookupQuery("text", text, text)
    if wanted in ("ip", IP4, IP6):
        found = _network(text)
        if found is None or (wanted != "ip" and found.kind != wanted):
            raise NotAValue(f"{text!r} is not an {asked} address or network")
        return LookupQuery(found.kind, found.shown, found.first, found.last)
    if wanted == HASH:
        lowered = text.lower()
        lengths = [_HASH_LENGTHS[asked]] if asked in _HASH_LENGTHS else _HASH_LENGTHS.values()
        if len(lowered) not in lengths or not _HEX.fullmatch(lowered):
            digits = "/".join(map(str, lengths))
            raise NotAValue(f"{text!r} is not an {asked} hash (hexadecimal, {digits} digits)")
        return LookupQuery(HASH, lowered, lowered)
    stix = {DOMAIN: "domain-name", URL: "url", EMAIL: "email-addr"}[wanted]
    keys = [k for k in value_key(stix, text) if k.how == VALUE]
    if not keys:
        raise NotAValue(f"{text!r} is not a{'n' if asked in ('url', 'email') else ''} {asked}")
    return LookupQuery(wanted, keys[0].shown, keys[0].first)
