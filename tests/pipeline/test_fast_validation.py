"""The fast validation path decides as the stix2 library path does.

`check_object` asks the library only about objects that OASIS's JSON Schemas and the
library's own rules (read from its classes) cannot vouch for; `check_object_stix2` asks it
about every object. Both must accept and refuse the same objects of the shared STIX data and
of the bad-input corpus; any difference is listed below with its reason, and the list must
stay exact. Patterns go through a cached skeleton parse, checked against stix2-patterns.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2patterns.validator import run_validator

from hub.federation import Limits, load_federation
from hub.stix import patterns, schemas
from hub.stix.validation import KNOWN_TYPES, Refuse, _vouched, check_object, check_object_stix2
from tests.conftest import ROOT, TESTDATA
from tests.intake.corpus import HTTP_CASES, OBJECT_CASES, resolve
from tests.pipeline.test_shared_corpus import objects_of, stix_files

# (object id, allow_custom) -> why the fast path decides otherwise than the library. None yet.
EXPECTED_DIFFERENCES: dict[tuple[str, bool], str] = {}

Check = Callable[[Any, Limits, bool], None]


def outcome(check: Check, obj: Any, allow_custom: bool) -> str:
    """ "accepted", or the refusal as the validate stage would record it."""
    try:
        check(obj, Limits(), allow_custom)
    except Refuse as exc:
        return f"refused: {exc.path}: {exc}"
    except Exception as exc:  # the stage turns these into "malformed" refusals
        return f"refused: malformed ({type(exc).__name__})"
    return "accepted"


@functools.cache
def corpus() -> list[tuple[str, Any]]:
    """Every object of ../shared/testdata/stix and of tests/intake/corpus.py, with its origin."""
    federation = load_federation(ROOT / "examples" / "federation.yaml")
    identities = {"hub": federation.hub.identity, **{m.id: m.identity for m in federation.members}}
    found: list[tuple[str, Any]] = []
    for path in stix_files():
        where = path.relative_to(TESTDATA).as_posix()
        found += [(where, obj) for obj in objects_of(path) or []]
    for case in OBJECT_CASES:
        found += [(f"intake: {case.name}", obj) for obj in resolve(case.make(), identities)]
    for case in HTTP_CASES:
        try:
            body = json.loads(case.body)
        except (ValueError, RecursionError):
            continue  # not JSON: refused before validation
        if isinstance(body, dict) and isinstance(body.get("objects"), list):
            found += [(f"http: {case.name}", obj) for obj in body["objects"]]
    return found


def name_of(obj: Any) -> str:
    return str(obj.get("id")) if isinstance(obj, dict) else repr(obj)[:60]


@pytest.mark.filterwarnings("ignore::stix2.exceptions.STIXDeprecationWarning")
@pytest.mark.parametrize("allow_custom", [True, False], ids=["custom allowed", "custom refused"])
def test_fast_and_library_paths_decide_alike_on_both_corpora(allow_custom: bool) -> None:
    objects = corpus()
    assert len(objects) > 5000
    differences: dict[tuple[str, bool], tuple[str, str, str]] = {}
    for where, obj in objects:
        fast = outcome(check_object, obj, allow_custom)
        library = outcome(check_object_stix2, obj, allow_custom)
        if fast.startswith("accepted") != library.startswith("accepted"):
            differences[(name_of(obj), allow_custom)] = (where, fast, library)
        else:
            # Same decision, and the same words: the library words every refusal it makes.
            assert fast == library, (where, name_of(obj))
    expected = {k for k in EXPECTED_DIFFERENCES if k[1] == allow_custom}
    assert set(differences) == expected, differences


def test_what_cirts_relay_most_takes_the_fast_path() -> None:
    """OASIS's examples and ATT&CK are vouched for without the library (bar markings)."""
    slow = [
        (where, name_of(obj))
        for where, obj in corpus()
        if where.startswith(("mitre-attack/", "oasis-cti-documentation-examples/"))
        and obj.get("type") in KNOWN_TYPES
        and obj.get("type") != "marking-definition"
        and "granular_markings" not in obj
        and outcome(check_object, obj, True) == "accepted"
        and not _vouched(obj, True)
    ]
    assert slow == []


def test_schemas_are_read_from_the_wheel_and_never_fetched() -> None:
    with pytest.raises(schemas.UnknownSchema):
        schemas._local("https://example.org/evil.json")
    for kind in KNOWN_TYPES:
        if schemas.schema_url(kind) is not None:
            assert schemas.validator(kind) is not None, kind
    assert schemas.schema_url("bundle") is None  # refuses valid bundles: never used


def test_the_rewritten_schemas_still_refuse_what_the_originals_refuse() -> None:
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-20T08:00:00.000Z",
        "modified": "2026-11-20T08:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
    }
    assert schemas.conforms(base)
    assert schemas.conforms({**base, "x_acme_list": ["a"], "x_acme_obj": {"a": 1}})
    for change in (
        {"severity": "high"},  # not: anyOf required -> properties: false
        {"x_acme_list": []},  # anyOf of types, minItems kept
        {"x_acme_null": None},  # anyOf of types: null is none of them
        {"x_acme_bin": "not base64!"},
        {"confidence": 101},
        {"created": "2026-11-20 08:00:00.000Z"},  # not an RFC 3339 timestamp
    ):
        assert not schemas.conforms({**base, **change}), change
    # Whole seconds, which the schema's millisecond pattern refuses but the library (whose
    # decisions the fast path repeats) accepts: the rewrite drops that pattern.
    assert schemas.conforms({**base, "created": "2026-11-20T08:00:00Z"})
    cpe = "cpe:2.3:a:microsoft:internet_explorer:8.0.6001:beta:*:*:*:*:*:*"
    software = {"type": "software", "id": f"software--{uuid.uuid4()}", "name": "ie", "cpe": cpe}
    assert schemas.conforms(software)
    assert schemas.conforms({**software, "cpe": cpe.replace("microsoft", "micro\\$oft")})
    assert not schemas.conforms({**software, "cpe": "cpe:2.3:a:micro$oft"})


# --- patterns -------------------------------------------------------------------------


def library_accepts(pattern: str) -> bool:
    try:
        return not run_validator(pattern, "2.1")
    except Exception:
        return False  # stix2 lets these escape; the stage refuses the object


def shared_patterns() -> list[str]:
    return sorted(
        {
            obj["pattern"]
            for _, obj in corpus()
            if isinstance(obj, dict) and isinstance(obj.get("pattern"), str)
        }
    )


def test_every_shared_pattern_gets_the_library_verdict() -> None:
    found = shared_patterns()
    assert len(found) > 100
    # What real senders wrote must mostly take the fast path; the intake corpus's crafted
    # cases (a pattern nested past the parser's recursion) may leave it to the library.
    crafted = {
        obj["pattern"]
        for origin, obj in corpus()
        if origin.startswith("intake: ") and isinstance(obj, dict) and "pattern" in obj
    }
    unsure = []
    for pattern in found:
        verdict = patterns.is_valid(pattern)
        if verdict is None:
            unsure.append(pattern)
        else:
            assert verdict == library_accepts(pattern), pattern
    real = [pattern for pattern in unsure if pattern not in crafted]
    assert len(real) < len(set(found) - crafted) / 50, real


# Mostly well-formed, so that valid patterns are common; odd pieces now and then.
_TYPES = st.sampled_from(["ipv4-addr", "domain-name", "url", "file", "x-acme-thing", "file", "1x"])
_PATHS = st.sampled_from(
    [
        "value",
        "name",
        "hashes.MD5",
        "hashes.'SHA-256'",
        "hashes.'SHA-1'",
        "hashes.SSDEEP",
        "hashes.'x'",
        "hashes[0]",
        "hashes[*]",
        "'quoted'.x",
        "extensions.'windows-pebinary-ext'.sections[*].hashes.MD5",
        "value",
        "x-y",
    ]
)
_STRING_TEXT = st.lists(
    st.sampled_from([*'abcAB09 -:./%_"()[]', "\\'", "\\\\", "é", "\n", "/*", "//"]),
    max_size=12,
).map("".join)
_HASHES = st.sampled_from(
    [
        "d41d8cd98f00b204e9800998ecf8427e",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
        "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C",
        "xyz",
    ]
)


@st.composite
def _literal(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(["string", "string", "hash", "int", "float", "bool", "hex", "bin", "ts"])
    )
    if kind == "string":
        text = draw(_STRING_TEXT)
        broken = draw(st.sampled_from(["", "", "", "", "'", "\\"]))  # an unescaped one
        return f"'{text}{broken}'"
    if kind == "hash":
        return f"'{draw(_HASHES)}'"
    if kind == "int":
        return str(draw(st.integers(-1000, 100000)))
    if kind == "float":
        return draw(st.sampled_from(["1.5", "-0.5", ".5", "1.", "+2.0"]))
    if kind == "bool":
        return draw(st.sampled_from(["true", "false", "True"]))
    if kind == "hex":
        return "h'" + draw(st.sampled_from(["", "00", "0a1B", "abcdef", "0", "0g"])) + "'"
    if kind == "bin":
        return "b'" + draw(st.sampled_from(["AAAA", "QUJD", "QQ==", "QUI=", "Q", "", "!!"])) + "'"
    day = draw(st.sampled_from(["2026-11-20", "2026-11-20", "2026-13-01", "2026-02-30"]))
    clock = draw(st.sampled_from(["08:00:00", "08:00:00.5", "08:00:60", "24:00:00"]))
    return f"t'{day}T{clock}Z'"


@st.composite
def _comparison(draw: st.DrawFn) -> str:
    path = f"{draw(_TYPES)}:{draw(_PATHS)}"
    operator = draw(
        st.sampled_from(
            ["=", "!=", "==", "<>", "<", ">=", "NOT =", "LIKE", "MATCHES", "ISSUBSET", "IN"]
        )
    )
    if operator == "IN":
        items = draw(st.lists(_literal(), max_size=3))
        return f"{path} IN ({', '.join(items)})"
    return f"{path} {operator} {draw(_literal())}"


@st.composite
def _observation(draw: st.DrawFn) -> str:
    comparisons = draw(st.lists(_comparison(), min_size=1, max_size=3))
    joined = draw(st.sampled_from([" AND ", " OR "])).join(comparisons)
    observation = f"[{joined}]"
    for _ in range(draw(st.integers(0, 2))):
        observation += draw(
            st.sampled_from(
                [
                    " WITHIN 300 SECONDS",
                    " REPEATS 5 TIMES",
                    " START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'",
                    " WITHIN -1 SECONDS",
                ]
            )
        )
    return observation


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    observations = draw(st.lists(_observation(), min_size=1, max_size=3))
    glue = draw(st.sampled_from([" AND ", " OR ", " FOLLOWEDBY "]))
    pattern = glue.join(observations)
    if draw(st.booleans()):
        pattern = f"({pattern})"
    # Broken ones too: a character dropped or inserted somewhere.
    edit = draw(st.sampled_from(["none", "none", "none", "drop", "insert"]))
    if edit != "none" and pattern:
        at = draw(st.integers(0, len(pattern) - 1))
        extra = draw(st.sampled_from(["'", "\\", "[", "]", "(", "/", "/*", "//", " ", "x", "h"]))
        pattern = pattern[:at] + (extra if edit == "insert" else "") + pattern[at + 1 :]
    return pattern


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pattern())
def test_skeleton_verdicts_match_stix2_patterns(pattern: str) -> None:
    verdict = patterns.is_valid(pattern)
    if verdict is not None:
        assert verdict == library_accepts(pattern)


def test_the_skeleton_keeps_structure_and_hides_values() -> None:
    one = "[file:hashes.'SHA-256' = 'aa'] AND [ipv4-addr:value = '198.51.100.7']"
    two = "[file:hashes.'SHA-256' = 'bb'] AND [ipv4-addr:value = '203.0.113.9']"
    assert patterns.split(one) is not None and patterns.split(two) is not None
    assert patterns.split(one)[0] == patterns.split(two)[0]
    assert "'SHA-256'" in patterns.split(one)[0]  # a path component, not a value
    assert patterns.split("[a:b = 'x' /* 'y' */]") is None


# --- objects near the edges -------------------------------------------------------------


@functools.cache
def vouched_bases() -> list[dict[str, Any]]:
    return [
        obj
        for _, obj in corpus()
        if isinstance(obj, dict) and obj.get("type") in KNOWN_TYPES and _vouched(obj, True)
    ]


_TIMES = [
    "2026-11-20T08:00:00.000Z",
    "2026-11-20T08:00:00Z",
    "2026-11-20T07:59:59.999999Z",
    "2026-11-20T08:00:00.0000001Z",
    "2026-11-20T08:00:60Z",
    "2026-02-30T08:00:00Z",
    "0999-01-01T00:00:00.000Z",
]
_VALUES = st.one_of(
    st.sampled_from(_TIMES),
    st.sampled_from(["x", "", "stix", "2.1", "2.0", "malicious-activity", "true", "3"]),
    st.sampled_from([0, 1, -1, 100, 101, 65536, 1.5, True, False, None]),
    st.sampled_from([[], {}, ["x"], [1], {"a": 1}, {"MD5": "abc"}, {"sha256": "a" * 64}]),
    st.builds(
        lambda kind, version: f"{kind}--{uuid.UUID(int=uuid.uuid4().int, version=version)}",
        st.sampled_from(["identity", "indicator", "ipv4-addr", "x-acme", "marking-definition"]),
        st.sampled_from([1, 4, 5]),
    ),
    st.builds(lambda kind: [f"{kind}--{uuid.uuid4()}"], st.sampled_from(["file", "x-a", "note"])),
    st.sampled_from(["[ipv4-addr:value = '1.2.3.4']", "[file:hashes.MD5 = 'abc']", "[x"]),
)
_NAMES = st.sampled_from(
    [
        "x_acme",
        "X_Acme",
        "ab",
        "allow_custom",
        "self",
        "extensions",
        "granular_markings",
        "valid_until",
        "first_seen",
        "last_seen",
        "end",
        "is_active",
        "object_refs",
        "created_by_ref",
        "pattern_version",
        "labels",
        "kill_chain_phases",
        "external_references",
        "hashes",
        "name",
        "is_family",
        "latitude",
        "region",
    ]
)


@st.composite
def _mutant(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(vouched_bases())))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "set", "add", "nested"]))
        keys = sorted(obj)
        if action == "drop":
            obj.pop(draw(st.sampled_from(keys)))
        elif action == "set":
            obj[draw(st.sampled_from(keys))] = draw(_VALUES)
        elif action == "add":
            obj[draw(_NAMES)] = draw(_VALUES)
        else:
            nested = [k for k in keys if isinstance(obj[k], list) and obj[k]]
            nested = [k for k in nested if isinstance(obj[k][0], dict)]
            if nested:
                item = obj[draw(st.sampled_from(nested))][0]
                name = draw(st.sampled_from(["source_name", "url", "hashes", "x_a", "Aa", "self"]))
                item[name] = draw(_VALUES)
    return obj


@pytest.mark.filterwarnings("ignore::stix2.exceptions.STIXDeprecationWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutant(), st.booleans())
def test_mutated_objects_get_the_library_decision(obj: dict[str, Any], allow_custom: bool) -> None:
    fast = outcome(check_object, obj, allow_custom)
    assert fast == outcome(check_object_stix2, obj, allow_custom)


def test_the_shipped_schemas_are_the_oasis_schemas_the_validator_ships() -> None:
    """hub/stix/oasis_schemas is stix2-validator's copy of OASIS's schemas, file for file."""
    spec = importlib.util.find_spec("stix2validator")
    assert spec is not None and spec.submodule_search_locations
    theirs = Path(spec.submodule_search_locations[0]) / "schemas-2.1" / "schemas"
    ours = schemas.schema_folder()
    names = sorted(p.relative_to(theirs).as_posix() for p in theirs.rglob("*.json"))
    assert names == sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*.json"))
    for name in names:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    assert schemas.check_shipped() == len(names)


def test_validation_takes_the_fast_path_without_the_test_tools() -> None:
    """An install from requirements.lock has no stix2-validator: the schemas still compile,
    so objects are vouched by them rather than all sent down the library's slow path."""
    probe = (
        "import sys; sys.modules['stix2validator'] = None\n"
        "from hub.stix import schemas\n"
        "good = {'type': 'indicator', 'spec_version': '2.1',"
        " 'id': 'indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f',"
        " 'created': '2026-01-01T00:00:00.000Z', 'modified': '2026-01-01T00:00:00.000Z',"
        " 'pattern': \"[ipv4-addr:value = '203.0.113.5']\", 'pattern_type': 'stix',"
        " 'valid_from': '2026-01-01T00:00:00Z'}\n"
        "assert schemas.conforms(good) is True\n"
        "assert schemas.conforms({**good, 'pattern_type': 7}) is False\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
