"""Pseudonymisation finds a victim's values wherever STIX carries them: the observable, a
pattern reaching it through an e-mail message, deprecated embedded observables, message
headers and account extensions; and it is stable: one mailbox, one pseudonym."""

from __future__ import annotations

import orjson
import pytest

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
