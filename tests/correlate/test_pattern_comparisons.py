"""The correlator's fast reading of STIX patterns gives the same observables as OASIS's
pattern grammar (stix2-patterns), on random valid patterns and on every indicator in the
shared test data."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from stix2patterns.v21.pattern import Pattern

from hub.correlate.observables import comparisons, from_pattern
from tests.conftest import TESTDATA

TYPES = ["ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file", "x-acme-thing"]
PATHS = [
    "value",
    "hashes.MD5",
    "hashes.'SHA-256'",
    "hashes . 'SHA-1'",
    "name",
    "dst_ref.value",
    "values[0]",
    "hashes.sha256",
]
OPS = ["=", "!=", "<>", "NOT =", "<", ">=", "LIKE", "MATCHES", "ISSUBSET"]
# Literal contents that could fool a reader: quotes, backslashes, and text that looks like a
# comparison of its own.
FRAGMENTS = ["1.2.3.4", "evil.example", "\\'", "\\\\", " ", "ipv4-addr:value = ", "'", "x:"]


def _space() -> st.SearchStrategy[str]:
    return st.sampled_from(["", " ", "  "])


@st.composite
def literal(draw: st.DrawFn) -> str:
    text = "".join(draw(st.lists(st.sampled_from(FRAGMENTS), max_size=4)))
    # Escape what the grammar requires inside '...'; FRAGMENTS already hold escaped ones.
    escaped, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "'\\":
            escaped.append(text[i : i + 2])
            i += 2
            continue
        escaped.append("\\" + text[i] if text[i] in "'\\" else text[i])
        i += 1
    return "'" + "".join(escaped) + "'"


@st.composite
def comparison(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(OPS))
    value = draw(literal())
    if op in ("<", ">="):
        value = draw(st.sampled_from([value, "5", "t'2026-11-29T10:00:00Z'"]))
    elif op == "=":
        value = draw(st.sampled_from([value, value, "443", "h'ab'", "true"]))
    kind, path = draw(st.sampled_from(TYPES)), draw(st.sampled_from(PATHS))
    sp = draw(_space())
    colon = draw(st.sampled_from([":", " : "]))
    return f"{kind}{colon}{path}{sp} {op} {sp}{value}"


@st.composite
def pattern(draw: st.DrawFn) -> str:
    observations = []
    for _ in range(draw(st.integers(1, 3))):
        tests = draw(st.lists(comparison(), min_size=1, max_size=3))
        joined = draw(st.sampled_from([" AND ", " OR "])).join(tests)
        observations.append(f"[{joined}]")
    text = draw(st.sampled_from([" AND ", " OR ", " FOLLOWEDBY "])).join(observations)
    return text + draw(st.sampled_from(["", " WITHIN 60 SECONDS", " REPEATS 2 TIMES"]))


def relevant_by_grammar(text: str) -> set[tuple[str, tuple[str, ...], str]]:
    """The `=` tests of a value or a hash against a string, as OASIS's inspector reports them."""
    found = Pattern(text).inspect().comparisons
    return {
        (kind, tuple(path), raw)
        for kind, tests in found.items()
        for path, op, raw in tests
        if op == "="
        and raw.startswith("'")
        and (path == ["value"] or (len(path) == 2 and path[0] == "hashes"))
    }


def agree(text: str) -> None:
    fast = {(kind, tuple(path), raw) for kind, path, raw in comparisons(text)}
    assert fast == relevant_by_grammar(text), text
    assert set(from_pattern(text)) == set(from_pattern(text, validated=False)), text


def valid(text: str) -> bool:
    try:
        Pattern(text)
    except Exception:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(pattern())
def test_random_patterns_give_what_the_grammar_gives(text: str) -> None:
    assume(valid(text))
    agree(text)


def test_every_indicator_in_the_shared_data() -> None:
    checked = 0
    for path in sorted(TESTDATA.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        objects = data.get("objects", [data]) if isinstance(data, dict) else data
        for obj in objects if isinstance(objects, list) else []:
            if not isinstance(obj, dict) or obj.get("type") != "indicator":
                continue
            text = obj.get("pattern")
            if obj.get("pattern_type", "stix") != "stix" or not isinstance(text, str):
                continue
            if not valid(text):
                continue
            checked += 1
            agree(text)
    assert checked > 50, f"only {checked} STIX patterns found in the shared data"


def test_observables_inside_literals_are_not_read() -> None:
    text = "[url:value = 'https://a.example/?q=ipv4-addr:value = \\'203.0.113.9\\'']"
    found = set(from_pattern(text))
    assert found == set(from_pattern(text, validated=False))
    assert [kind for kind, _ in found] == ["url"]
