"""Pseudonymisation finds a victim's values wherever STIX carries them: the observable, a
pattern reaching it through an e-mail message, deprecated embedded observables, message
headers and account extensions; and it is stable: one mailbox, one pseudonym."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2patterns.validator import run_validator

from hub.policy.pseudonyms import Pseudonymiser

VICTIM = "minister.office@finance.example.gov"
pseudonymise = Pseudonymiser(b"federation key 16+", frozenset({"email-addr", "user-account"}))


def leaks(obj: dict) -> bool:
    raw = orjson.dumps(pseudonymise(obj)).decode().lower()
    return "minister.office" in raw or "avictim" in raw


@pytest.mark.parametrize(
    "pattern",
    [
        f"[email-addr:value = '{VICTIM}']",
        f"[email-message:from_ref.value = '{VICTIM}']",
        f"[email-message:sender_ref.value = '{VICTIM}']",
        f"[email-message:to_refs[*].value = '{VICTIM}']",
        f"[email-message:cc_refs[0].value = '{VICTIM}'] AND [ipv4-addr:value = '203.0.113.9']",
        f"[email-message:bcc_refs[*].value IN ('a@b.example', '{VICTIM}')]",
        "[user-account:user_id = 'avictim']",
    ],
)
def test_patterns_reaching_personal_values_by_any_path_are_rewritten(pattern: str) -> None:
    indicator = {"type": "indicator", "id": "indicator--1", "pattern": pattern}
    assert not leaks(indicator)
    assert "'203.0.113.9'" in pseudonymise(indicator)["pattern"] or "ipv4" not in pattern


def test_the_same_mailbox_gets_the_same_pseudonym_by_every_path() -> None:
    direct = pseudonymise({"type": "indicator", "pattern": f"[email-addr:value = '{VICTIM}']"})
    via = pseudonymise(
        {"type": "indicator", "pattern": f"[email-message:to_refs[3].value = '{VICTIM.upper()}']"}
    )
    observable = pseudonymise({"type": "email-addr", "id": "email-addr--x", "value": VICTIM})
    value = observable["value"]
    assert value.endswith("@pseudonymised.invalid")
    assert direct["pattern"] == f"[email-addr:value = '{value}']"
    assert via["pattern"] == f"[email-message:to_refs[3].value = '{value}']"


def test_embedded_observables_headers_and_account_extensions_lose_personal_values() -> None:
    observed = {
        "type": "observed-data",
        "id": "observed-data--1",
        "objects": {"0": {"type": "email-addr", "value": VICTIM}, "1": {"type": "file"}},
    }
    message = {
        "type": "email-message",
        "id": "email-message--1",
        "is_multipart": False,
        "subject": "Invoice",
        "additional_header_fields": {"Reply-To": [VICTIM]},
    }
    account = {
        "type": "user-account",
        "id": "user-account--1",
        "user_id": "avictim",
        "credential": "hunter2",
        "extensions": {"unix-account-ext": {"home_dir": "/home/avictim"}, "x-other": {"a": 1}},
    }
    for obj in (observed, message, account):
        assert not leaks(obj), obj["type"]
    assert pseudonymise(message)["subject"] == "Invoice"
    assert pseudonymise(observed)["objects"]["1"] == {"type": "file"}
    shaped = pseudonymise(account)
    assert "credential" not in shaped and shaped["extensions"] == {"x-other": {"a": 1}}


def valid(pattern: str) -> bool:
    return run_validator(pattern, stix_version="2.1") == []


@pytest.mark.parametrize(
    ("pattern", "delivered"),
    [
        # Through references, to a hashed value: the value is rewritten, the test kept.
        (
            "[process:creator_user_ref.account_login = 'avictim']",
            "[process:creator_user_ref.account_login = '{account_login=avictim}']",
        ),
        (
            "[email-addr:belongs_to_ref.account_login = 'avictim']",
            "[email-addr:belongs_to_ref.account_login = '{account_login=avictim}']",
        ),
        (
            "[process:parent_ref.parent_ref.creator_user_ref.user_id != 'avictim']",
            "[process:parent_ref.parent_ref.creator_user_ref.user_id != '{user_id=avictim}']",
        ),
        (
            "[windows-registry-key:creator_user_ref.display_name IN ('avictim', 'x')]",
            "[windows-registry-key:creator_user_ref.display_name IN "
            "('{display_name=avictim}', '{display_name=x}')]",
        ),
        (
            "[user-account:user_id = 1001]",
            "[user-account:user_id = '{user_id=1001}']",
        ),
        # Values that are not rewritten in objects (dropped there), or tests a pseudonym
        # cannot answer: the comparison becomes EXISTS on the same path.
        (
            "[email-message:additional_header_fields.From = 'Minister <avictim@gov.example>']",
            "[EXISTS email-message:additional_header_fields.From]",
        ),
        (
            "[user-account:extensions.'unix-account-ext'.home_dir = '/home/avictim']",
            "[EXISTS user-account:extensions.'unix-account-ext'.home_dir]",
        ),
        ("[user-account:credential = 'avictim']", "[EXISTS user-account:credential]"),
        (
            "[email-addr:value LIKE '%avictim%' AND file:name = 'a.doc']",
            "[EXISTS email-addr:value AND file:name = 'a.doc']",
        ),
        (
            "[x-acme-login:owner_ref.account_login = 'avictim']",
            "[EXISTS x-acme-login:owner_ref.account_login]",
        ),
    ],
)
def test_every_path_to_a_personal_value_is_rewritten_or_becomes_exists(
    pattern: str, delivered: str
) -> None:
    shaped = pseudonymise({"type": "indicator", "pattern_type": "stix", "pattern": pattern})
    account = {"type": "user-account", "id": "user-account--1"}

    def pseudonym(match: re.Match[str]) -> str:
        prop, _, value = match[1].partition("=")
        return pseudonymise({**account, prop: value})[prop]

    assert shaped["pattern"] == re.sub(r"\{([^}]*)\}", pseudonym, delivered)
    assert valid(pattern) and valid(shaped["pattern"])
    assert not leaks({"type": "indicator", "pattern_type": "stix", "pattern": pattern})


def test_patterns_of_other_languages_are_left_as_they_are() -> None:
    sigma = {"type": "indicator", "pattern_type": "sigma", "pattern": "title: 'avictim'"}
    assert pseudonymise(sigma) == sigma


# Paths through the reference graph to a personal value, as (object type, path text) steps.
_TO_PERSONAL = {
    "email-addr": [("value", None), ("display_name", None), ("belongs_to_ref", "user-account")],
    "user-account": [
        ("user_id", None),
        ("account_login", None),
        ("display_name", None),
        ("credential", None),
        ("extensions.'unix-account-ext'.home_dir", None),
        ("extensions.'unix-account-ext'.groups[*]", None),
    ],
    "email-message": [
        ("from_ref", "email-addr"),
        ("sender_ref", "email-addr"),
        ("to_refs[*]", "email-addr"),
        ("cc_refs[0]", "email-addr"),
        ("bcc_refs[*]", "email-addr"),
        ("additional_header_fields.'Reply-To'", None),
        ("additional_header_fields.From", None),
    ],
    "process": [
        ("creator_user_ref", "user-account"),
        ("parent_ref", "process"),
        ("child_refs[*]", "process"),
        ("x_acme_owner_ref.account_login", None),
    ],
    "windows-registry-key": [("creator_user_ref", "user-account")],
    "file": [("contains_refs[*]", "email-addr"), ("contains_refs[1]", "user-account")],
    "x-acme-login": [("owner_ref.user_id", None)],
}


@st.composite
def personal_path(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(_TO_PERSONAL)))
    path, current = [], kind
    for _ in range(6):
        options = (
            _TO_PERSONAL[current]
            if len(path) < 5
            else [o for o in _TO_PERSONAL[current] if o[1] is None]
            or [("belongs_to_ref", "user-account")]
        )
        step, target = draw(st.sampled_from(options))
        path.append(step)
        if target is None:
            break
        current = target
    else:
        path.append("user_id")
    return f"{kind}:{'.'.join(path)}"


_SECRETS = st.integers(0, 10**6).map(lambda n: f"zq{n}-victim")


@st.composite
def comparison(draw: st.DrawFn) -> tuple[str, list[str]]:
    path = draw(personal_path())
    values = draw(st.lists(_SECRETS, min_size=1, max_size=3))
    op = draw(st.sampled_from(["=", "!=", "NOT =", "IN", "NOT IN", "LIKE", "MATCHES", ">", "<="]))
    if op.endswith("IN"):
        literal = "(" + ", ".join(f"'{v}'" for v in values) + ")"
    else:
        values = values[:1]
        literal = f"'{values[0]}'"
    return f"{path} {op} {literal}", values


@st.composite
def pattern_with_secrets(draw: st.DrawFn) -> tuple[str, list[str]]:
    observations, secrets = [], []
    for _ in range(draw(st.integers(1, 3))):
        tests = draw(st.lists(comparison(), min_size=1, max_size=3))
        joined = draw(st.sampled_from([" AND ", " OR "])).join(t for t, _ in tests)
        observations.append(f"[{joined}]")
        secrets += [v for _, values in tests for v in values]
    observations.append("[ipv4-addr:value = '203.0.113.9']")
    glue = draw(st.sampled_from([" AND ", " OR ", " FOLLOWEDBY "]))
    return glue.join(observations), secrets


@settings(max_examples=300, deadline=None)
@given(pattern_with_secrets())
def test_no_personal_value_survives_in_any_pattern_and_every_pattern_stays_valid(
    case: tuple[str, list[str]],
) -> None:
    pattern, secrets = case
    assert valid(pattern), pattern
    indicator = {"type": "indicator", "pattern_type": "stix", "pattern": pattern}
    delivered = orjson.dumps(pseudonymise(indicator)).decode()
    survivors = [s for s in secrets if s in delivered]
    assert not survivors, (pattern, delivered)
    shaped = pseudonymise(indicator)["pattern"]
    assert valid(shaped), shaped
    assert "[ipv4-addr:value = '203.0.113.9']" in shaped  # what is not personal stays


def test_a_path_too_long_to_follow_becomes_exists() -> None:
    path = "process:" + "parent_ref." * 100 + "creator_user_ref.user_id"
    pattern = f"[{path} = 'avictim']"
    assert valid(pattern)
    shaped = pseudonymise({"type": "indicator", "pattern_type": "stix", "pattern": pattern})
    assert shaped["pattern"] == f"[EXISTS {path}]"
