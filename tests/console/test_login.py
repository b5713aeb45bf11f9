"""Logging in to the analysts' console: a member's read account only, a protected session,
strict headers, and the login page in the browser's language (English or French)."""

from __future__ import annotations

import re

import pytest

from hub.i18n import negotiate
from tests.console.client import Browser
from tests.hubs import RunningHub

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


def html_lang(text: str) -> str:
    match = re.search(r'<html lang="([a-z]+)">', text)
    assert match, text[:200]
    return match.group(1)


async def test_a_reader_logs_in_to_a_session_cookie_no_page_can_read_or_forge(
    hub: RunningHub,
) -> None:
    browser = Browser(hub)
    # Without a session every page sends the browser to the login page.
    for path in ("/console/", "/console/collections/public/", "/console/alerts/"):
        answer = await browser.get(path)
        assert (answer.status, answer.location) == (303, "/console/login"), path
    form = await browser.get("/console/login")
    assert form.status == 200
    policy = form.headers["Content-Security-Policy"]
    assert "script-src" not in policy and "'unsafe-inline'" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert form.headers["X-Frame-Options"] == "DENY"
    assert form.headers["Cache-Control"] == "no-store"
    assert "<script" not in form.text and "style=" not in form.text

    # A page elsewhere cannot log the browser in (login CSRF).
    forged = await browser.post(
        "/console/login",
        {"username": "gh-cert-read", "password": hub.password("gh-cert-read")},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status == 403 and "own login page" in forged.text
    assert not browser.cookies

    wrong = await browser.post("/console/login", {"username": "gh-cert-read", "password": "x"})
    assert wrong.status == 401 and "Unknown account or wrong secret." in wrong.text
    # An operator, or a submit-only account, reads no feed: refused, saying why.
    for username in ("hub-operator", "gh-cert-submit"):
        refused = await browser.post(
            "/console/login", {"username": username, "password": hub.password(username)}
        )
        assert refused.status == 403 and "cannot read feeds" in refused.text, username
    assert not browser.cookies

    answer = await browser.log_in("gh-cert-read")
    assert answer.location == "/console/"
    morsel = answer.cookies["cirt_hub_console"]
    assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Strict"
    assert morsel["path"] == "/console/"
    home = await browser.get("/console/")
    assert home.status == 200 and "gh-cert-read" in home.text and "West Africa feed" in home.text
    # The console's session is not the operators' dashboard's.
    dashboard = await browser.get("/dashboard")
    assert dashboard.status == 303

    # Logging out from a page elsewhere does nothing; from the console's own, ends it.
    await browser.post("/console/logout", {}, headers={"Sec-Fetch-Site": "cross-site"})
    assert (await browser.get("/console/")).status == 200
    token = browser.cookies["cirt_hub_console"]
    await browser.post("/console/logout", {})
    assert "cirt_hub_console" not in browser.cookies
    stolen = Browser(hub, cookies={"cirt_hub_console": token})
    assert (await stolen.get("/console/")).status == 303


async def test_the_console_speaks_the_browsers_language_and_remembers_a_choice(
    hub: RunningHub,
) -> None:
    english, french = Browser(hub, "en-GB,en;q=0.9"), Browser(hub, "fr-SN,fr;q=0.9,en;q=0.5")
    page = await english.get("/console/login")
    assert html_lang(page.text) == "en" and "Log in" in page.text
    assert page.headers["Content-Language"] == "en"
    page = await french.get("/console/login")
    assert html_lang(page.text) == "fr" and "Se connecter" in page.text
    assert page.headers["Content-Language"] == "fr"
    refused = await french.post("/console/login", {"username": "gh-cert-read", "password": "x"})
    assert "Compte inconnu ou secret erroné." in refused.text

    # The reader switches to French on an English browser: remembered, on every page.
    await english.log_in("gh-cert-read")
    switched = await english.post("/console/language", {"lang": "fr", "next": "/console/alerts/"})
    assert (switched.status, switched.location) == (303, "/console/alerts/")
    assert switched.cookies["cirt_hub_lang"]["path"] == "/console/"
    alerts = await english.get("/console/alerts/")
    assert html_lang(alerts.text) == "fr" and "incident majeur" in alerts.text
    home = await english.get("/console/")
    assert html_lang(home.text) == "fr" and "Vos collections" in home.text
    # A form post elsewhere cannot change it; nor can `next` lead off the console.
    await english.post(
        "/console/language", {"lang": "en"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert html_lang((await english.get("/console/")).text) == "fr"
    away = await english.post("/console/language", {"lang": "en", "next": "//evil.example/"})
    assert away.location == "/console/"
    assert html_lang((await english.get("/console/")).text) == "en"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("de-DE,de;q=0.9,fr;q=0.5", "fr"),
        ("de, en;q=0.1, fr;q=0.2", "fr"),
        ("fr;q=0", "en"),
        ("", "en"),
        ("*", "en"),
        ("fr;q=abc, ,;;,", "en"),
        ("x" * 5000, "en"),
    ],
)
def test_accept_language_picks_the_preferred_of_english_and_french(
    header: str, language: str, bus_url: str
) -> None:
    assert negotiate(header) == language
