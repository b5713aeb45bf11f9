"""The member client speaks the user's language: French from the locale environment as
gettext reads it, English with `--lang en`, against a real hub; its JSON output and exit
codes do not change with the language."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson

from tests.conftest import free_port
from tests.connectors.test_client import report_bundles
from tests.hubs import member_identity, running_hub

CLI = [sys.executable, "-m", "hub"]
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


async def run_in(locale: dict[str, str], *args: str, password: str = "") -> tuple[int, str, str]:
    """`cirt-hub ARGS` with only `locale`'s locale variables set; (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in LOCALE_VARIABLES}
    env.update(locale, CIRT_HUB_PASSWORD=password)
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


FRENCH = {"LANG": "fr_FR.UTF-8"}


async def test_submit_and_pull_speak_french_from_the_locale_and_english_with_lang_en(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        ids = report_bundles(tmp_path / "reports", member_identity(hub, "ng-cert"), 3)
        files = sorted(str(p) for p in (tmp_path / "reports").glob("*.json"))
        sender = ("--url", hub.base_url, "--user", "ng-cert-submit")
        secret = hub.password("ng-cert-submit")

        status, out, err = await run_in(FRENCH, "submit", files[0], *sender, password=secret)
        assert status == 0, err
        assert {line.split()[1] for line in out.splitlines()} == set(ids[:2])
        assert all(line.startswith("accepté   ") for line in out.splitlines()), out
        assert "2 accepté(s), 0 refusé(s) (envoyé " in err, err

        status, out, err = await run_in(
            FRENCH, "submit", files[1], *sender, "--lang", "en", password=secret
        )
        assert status == 0, err
        assert all(line.startswith("accepted  ") for line in out.splitlines()), out
        assert "2 accepted, 0 refused (sent " in err, err

        # Machine-readable output is the same in every language.
        json_lines = {}
        for locale in (FRENCH, {"LANG": "en_GB.UTF-8"}):
            status, out, err = await run_in(
                locale, "submit", files[2], *sender, "--json", password=secret
            )
            assert status == 0, err
            json_lines[locale["LANG"]] = [orjson.loads(line) for line in out.splitlines()]
        assert json_lines["fr_FR.UTF-8"] == json_lines["en_GB.UTF-8"]
        assert {o["id"] for o in json_lines["fr_FR.UTF-8"]} == set(ids[4:])

        reader = ("--url", hub.base_url, "--user", "gh-cert-read")
        pull = ("pull", "region-west-africa", *reader, "--out", str(tmp_path / "feed"))
        status, _, err = await run_in(
            {"LC_MESSAGES": "fr_CA.UTF-8"}, *pull, password=hub.password("gh-cert-read")
        )
        assert status == 0, err
        assert "6 nouveaux objets, 6 écrits dans 1 fichier(s) dans " in err, err
        assert "0 en échec à la vérification de signature" in err, err

        status, out, err = await run_in(FRENCH, "submit", files[0], *sender, password="wrong")
        assert status == 1, err
        assert "cirt-hub submit : le hub a refusé : " in err and "HTTP 401" in err, err
        assert "accept" not in out


async def test_an_unreachable_hub_is_said_in_french_and_in_english_with_lang_en(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        ids = report_bundles(tmp_path / "reports", member_identity(hub, "ng-cert"), 1)
    bundle = str(next((tmp_path / "reports").glob("*.json")))
    # Nothing listens on this port (the hub above is gone too).
    nowhere = ("--url", f"http://127.0.0.1:{free_port()}", "--user", "ng-cert-submit")
    quick = ("--retry-for", "1")

    status, out, err = await run_in(FRENCH, "submit", bundle, *nowhere, *quick, password="x")
    assert status == 3, err
    assert "cirt-hub submit : le hub est injoignable : abandon après " in err, err
    assert "connexion impossible à 127.0.0.1:" in err, err

    status, out, err = await run_in(
        FRENCH, "submit", bundle, *nowhere, *quick, "--lang", "en", password="x"
    )
    assert status == 3, err
    assert "cirt-hub submit: the hub is unreachable: gave up after " in err, err
    assert "cannot connect to 127.0.0.1:" in err, err
    assert ids and not out


async def test_the_language_follows_gettexts_order_of_locale_variables(tmp_path: Path) -> None:
    missing = ("queue", "status", str(tmp_path / "no-queue"))
    english = f"cirt-hub queue: {tmp_path / 'no-queue'} holds no queue"
    french = f"cirt-hub queue : {tmp_path / 'no-queue'} ne contient pas de file"
    for locale, said in (
        ({"LANG": "fr_BE.UTF-8"}, french),
        ({"LC_ALL": "fr_FR.UTF-8", "LANG": "en_US.UTF-8"}, french),
        ({"LANGUAGE": "de:fr", "LANG": "en_US.UTF-8"}, french),
        ({"LC_ALL": "C", "LANG": "fr_FR.UTF-8"}, english),
        ({"LANG": "de_DE.UTF-8"}, english),
        ({}, english),
    ):
        status, _, err = await run_in(locale, *missing)
        assert status == 2 and err.strip() == said, (locale, err)
    status, _, err = await run_in({"LANG": "en_US.UTF-8"}, *missing, "--lang", "fr")
    assert err.strip() == french
