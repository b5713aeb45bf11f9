"""Pseudonymisation: personal data replaced by a keyed hash that is stable in the federation.

The same value under the same federation key gives the same pseudonym whoever sends it, so
recipients can still correlate ("the same mailbox was phished in three countries") without
learning whose mailbox it was. An SCO's id is derived from its values, so a pseudonymised
SCO gets a new id derived from the old one by the same keyed hash, and every reference to
it is rewritten: no id that could be recomputed from a guessed address is delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.policy.personal_paths import DROP, Reach, personal_data, reach
from hub.policy.redaction import references
from hub.stix.object_paths import Comparison, P, comparisons

_PSEUDONYM_DOMAIN = "pseudonymised.invalid"
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")


def _may_reach(pattern: str, types: frozenset[str]) -> bool:
    """Whether a comparison in `pattern` can reach personal data of `types`: only through
    one of their own types, a type that repeats their values, or a reference."""
    names = (*types, *(k for t in types for k in personal_data()[t]["drop_elsewhere"]))
    return "_ref" in pattern or any(name in pattern for name in names)


def load_key(path: Path) -> bytes:
    """The pseudonymisation key in `path` (hex), made (owner-only) at first use.

    Pseudonyms are stable only under one key: copy this file to every pipeline node.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 16:
        raise ValueError(f"{path}: the pseudonymisation key must be at least 16 bytes (hex)")
    return key


@dataclass(frozen=True)
class Pseudonymiser:
    key: bytes
    types: frozenset[str]

    def _digest(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def value(self, kind: str, prop: str, value: str) -> str:
        """The pseudonym of `value`; e-mail addresses stay shaped like addresses."""
        # Addresses compare case-insensitively in practice; one mailbox, one pseudonym.
        normal = value.lower() if kind == "email-addr" and prop == "value" else value
        digest = self._digest(f"{kind}:{prop}:{normal}")[:24]
        if kind == "email-addr" and prop == "value":
            return f"pseudonym-{digest}@{_PSEUDONYM_DOMAIN}"
        return f"pseudonym-{digest}"

    def object_id(self, stix_id: str) -> str:
        kind = stix_id.split("--", 1)[0]
        raw = hmac.new(self.key, stix_id.encode(), hashlib.sha256).digest()[:16]
        return f"{kind}--{uuid.UUID(bytes=raw, version=5)}"

    def _maps_id(self, value: str) -> bool:
        return value.split("--", 1)[0] in self.types

    def _rewrite_refs(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: self._rewrite_refs(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._rewrite_refs(v) for v in value]
        if isinstance(value, str) and "--" in value and self._maps_id(value):
            return self.object_id(value)
        return value

    def _pattern(self, pattern: str) -> str:
        """`pattern` with every comparison that can reach a personal value rewritten (its
        values pseudonymised) or, where that cannot be done safely, turned into `EXISTS`."""
        if not _may_reach(pattern, self.types):
            return pattern
        found = comparisons(pattern)
        if found is None:
            # Not STIX (validation lets none through): no string in it is delivered.
            return _STRING.sub(lambda m: f"'{self.value('pattern', 'string', m[0])}'", pattern)
        edits: list[tuple[int, int, str]] = []
        for comparison in found:
            outcome = reach(self.types, comparison.object_type, comparison.path)
            if outcome is None:
                continue
            rewritten = self._literals(comparison, outcome)
            if rewritten is None:
                edits.append((comparison.start, comparison.end, f"EXISTS {comparison.path_text}"))
            else:
                edits.extend(rewritten)
        for start, end, text in reversed(edits):
            pattern = pattern[:start] + text + pattern[end:]
        return pattern

    def _literals(
        self, comparison: Comparison, outcome: Reach
    ) -> list[tuple[int, int, str]] | None:
        """New literals for an (in)equality or set test on a personal value; None when the
        comparison cannot keep its meaning with pseudonyms (LIKE, MATCHES, order, ...)."""
        if outcome == DROP or comparison.operator not in ("=", "!=", "IN"):
            return None
        edits: list[tuple[int, int, str]] = []
        for literal in comparison.literals:
            if literal.token == P.StringLiteral:
                text = literal.text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
            elif literal.token in (P.IntPosLiteral, P.IntNegLiteral):
                text = literal.text  # a numeric uid compares as the string of its digits
            else:
                return None
            if isinstance(outcome, tuple):
                new = self.value(outcome[0], outcome[1], text)
            else:  # ID: the comparison is on an object's id
                new = self.object_id(text) if self._maps_id(text) else text
            edits.append((literal.start, literal.end, f"'{new}'"))
        return edits

    def _personal(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """`obj` with its own personal values hashed or dropped (references untouched)."""
        out: dict[str, Any] = dict(obj)
        kind = out.get("type")
        if kind in self.types:
            table = personal_data()[kind]
            for prop in table["drop"]:
                _drop(out, prop)
            for prop in table["hash"]:
                if isinstance(out.get(prop), str):
                    out[prop] = self.value(kind, prop, out[prop])
        for personal in self.types:
            for prop in personal_data()[personal]["drop_elsewhere"].get(str(kind), []):
                out.pop(prop, None)
        return out

    def __call__(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """`obj` with the personal data of the configured types replaced."""
        if not self.types:
            return dict(obj)
        kind = obj.get("type")
        out = self._personal(obj)
        embedded = out.get("objects")
        if kind == "observed-data" and isinstance(embedded, Mapping):
            # STIX 2.0-style observables embedded in observed-data (deprecated, still sent).
            out["objects"] = {
                k: self._personal(v) if isinstance(v, Mapping) else v for k, v in embedded.items()
            }
        if any(self._maps_id(r) for r in references(out)) or kind in self.types:
            ident = out.get("id")
            out = self._rewrite_refs(out)
            if isinstance(ident, str) and kind not in self.types:
                out["id"] = ident
        if (
            kind == "indicator"
            and isinstance(out.get("pattern"), str)
            and out.get("pattern_type", "stix") == "stix"
        ):
            out["pattern"] = self._pattern(out["pattern"])
        return out


def _drop(obj: dict[str, Any], name: str) -> None:
    """Remove a property, or with a dotted name one key inside it (dropping it if emptied)."""
    head, _, key = name.partition(".")
    if not key:
        obj.pop(head, None)
        return
    inner = obj.get(head)
    if isinstance(inner, Mapping) and key in inner:
        rest = {k: v for k, v in inner.items() if k != key}
        if rest:
            obj[head] = rest
        else:
            obj.pop(head)
