"""Suricata rules for exported values: addresses as IP rules, domains as DNS query and TLS SNI
rules, URLs as HTTP host and URI rules; file hashes and e-mail addresses get none (Suricata
matches hashes only against list files of its own).

Every rule's sid is derived from the object id, the value and the rule's protocol, so the
same object gives the same sids in every export and a SIEM keeps its alert history. Sids
lie in [SID_FIRST, SID_FIRST + SID_COUNT), above the ranges public rule sets allocate; two
rules of one export that hash to the same sid (about five in 100,000) are told apart by
taking the next free one, in export order (the collection's order, which only grows).
An export remembers the sids it gave in a fixed 4 MiB (`Sids`), whatever its size.
Every literal goes in as hex where it is not plain text, so a value can never end a content
string or a rule.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hub.export.dedup import Bloom
from hub.stix.markings import Tlp

SID_FIRST = 1_000_000_000
SID_COUNT = 1_000_000_000
SIDS_BYTES = 4 * 2**20  # the sids an export gave, as a Bloom filter
RULE_KINDS = frozenset({"ipv4", "ipv6", "domain", "url"})
_PLAIN = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/?=&%+,@!*()[]:#$'"
)
_TLP_NAMES = {
    Tlp.CLEAR: "clear",
    Tlp.GREEN: "green",
    Tlp.AMBER: "amber",
    Tlp.AMBER_STRICT: "amber-strict",
    Tlp.RED: "red",
}


_ALL_PLAIN = re.compile(r"[A-Za-z0-9\-._~/?=&%+,@!*()\[\]:#$']*")
_PLAIN_MSG = re.compile(r"[ -~]*")  # printable ASCII


def content(text: str) -> str:
    """`text` as a Suricata content string: plain characters as they are, others as hex."""
    if _ALL_PLAIN.fullmatch(text):
        return text  # most values: nothing to escape
    out: list[str] = []
    hexed: list[str] = []
    for byte in text.encode():
        if byte in _PLAIN:
            if hexed:
                out.append(f"|{' '.join(hexed)}|")
                hexed = []
            out.append(chr(byte))
        else:
            hexed.append(f"{byte:02X}")
    if hexed:
        out.append(f"|{' '.join(hexed)}|")
    return "".join(out)


def _msg(kind: str, value: str) -> str:
    shown = value if len(value) <= 100 else value[:99] + "~"
    if not _PLAIN_MSG.fullmatch(shown):
        shown = "".join(c if c.isascii() and c.isprintable() else "?" for c in shown)
    shown = shown.replace("\\", "\\\\").replace('"', '\\"').replace(";", "\\;")
    return f"cirt-hub {kind} {shown}"


@dataclass
class Sids:
    """The sids of one export: stable per (object, value, protocol), never twice.

    The sids given are kept in a fixed-size Bloom filter, not a set, so the memory of an
    export does not grow with its rules: a sid it wrongly takes for given is skipped like a
    collision (under 2 in 10,000 rules at a million, none expected at 100,000)."""

    used: Bloom = field(default_factory=lambda: Bloom(SIDS_BYTES))

    def __call__(self, object_id: str, kind: str, value: str, protocol: str) -> int:
        digest = hashlib.sha256(f"{object_id}\0{kind}\0{value}\0{protocol}".encode()).digest()
        offset = int.from_bytes(digest[:8], "big") % SID_COUNT
        while self.used.add(SID_FIRST + offset):  # given already (or taken for it)
            offset = (offset + 1) % SID_COUNT
        return SID_FIRST + offset


def rules(sids: Sids, object_id: str, tlp: Tlp | None, kind: str, value: str) -> list[str]:
    """The rules for one value of one object; none for a kind Suricata cannot match."""
    found: list[tuple[str, str, str]] = []  # (protocol, header, detection options)
    if kind in ("ipv4", "ipv6"):
        found.append(("ip", f"ip any any <> [{value}] any", ""))
    elif kind == "domain":
        match = f'content:"{content(value)}"; nocase; startswith; endswith; '
        found.append(("dns", "dns any any -> any any", f"dns.query; {match}"))
        found.append(("tls", "tls any any -> any any", f"tls.sni; {match}"))
    elif kind == "url":
        parts = urlsplit(value)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        found.append(
            (
                "http",
                "http any any -> any any",
                f'http.host; content:"{content(parts.hostname or "")}"; startswith; endswith; '
                f'http.uri; content:"{content(uri)}"; startswith; endswith; ',
            )
        )
    level = _TLP_NAMES[tlp] if tlp is not None else "none"
    metadata = f"metadata:cirt_hub_object {object_id}, cirt_hub_kind {kind}, cirt_hub_tlp {level};"
    return [
        f'alert {header} (msg:"{_msg(kind, value)}"; {detection}{metadata}'
        f" sid:{sids(object_id, kind, value, protocol)}; rev:1;)"
        for protocol, header, detection in found
    ]
