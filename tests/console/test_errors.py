"""What the console answers people when a page cannot be shown: an unknown address gets the
console's not-found page (the same as for what the reader may not open), a failure inside
the hub an HTML page with the error id the hub logs; and collection titles in the reader's
language."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.api.console.errors import console_errors
from tests.console.client import Browser
from tests.hubs import RunningHub

EMBEDDED = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


@EMBEDDED
async def test_an_unknown_console_address_is_the_not_found_page_in_the_readers_language(
    hub: RunningHub,
) -> None:
    browser = Browser(hub, "fr-FR,fr;q=0.9")
    await browser.log_in("sn-cert-read")
    unknown = await browser.get("/console/no/such/page")
    guessed = await browser.get("/console/objects/indicator--00000000-0000-4000-8000-000000000000")
    assert unknown.status == guessed.status == 404
    assert unknown.headers["Content-Type"].startswith("text/html")
    assert '<html lang="fr">' in unknown.text and "Introuvable" in unknown.text
    main = unknown.text.split("<main>", 1)[1]
    assert main == guessed.text.split("<main>", 1)[1]
    # Outside the console, TAXII clients still get TAXII error bodies.
    async with (
        aiohttp.ClientSession() as http,
        http.get(hub.base_url + "/taxii2/no/such/") as answer,
    ):
        assert answer.status == 404 and answer.content_type == "application/taxii+json"


async def test_a_failure_inside_a_page_is_an_html_page_with_the_error_id_it_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The console's error handling on a server of its own whose one page fails as a bug
    # inside the hub would (no way to make the real pages fail from outside is known).
    async def failing_page(request: web.Request) -> web.Response:
        raise RuntimeError("a bug in a console page")

    app = web.Application(middlewares=[console_errors])
    app.router.add_get("/console/broken", failing_page)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        answer = await client.get("/console/broken", headers={"Accept-Language": "fr"})
        text = await answer.text()
    assert answer.status == 500 and answer.content_type == "text/html"
    assert "Une erreur est survenue" in text and "a bug in a console page" not in text
    error_id = re.search(r"<code>([0-9a-f]{32})</code>", text)
    assert error_id, text
    logged = [r for r in caplog.records if error_id.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info, "the error id is logged with its traceback"


@EMBEDDED
async def test_collection_titles_are_in_the_readers_language(hub: RunningHub) -> None:
    french, english = Browser(hub, "fr"), Browser(hub, "en")
    for browser in (french, english):
        await browser.log_in("ng-cert-read")
    home_fr, home_en = await french.get("/console/"), await english.get("/console/")
    assert ">Public</a>" in home_fr.text and ">Alertes</a>" in home_fr.text
    assert "Flux West Africa" in home_fr.text and "West Africa feed" not in home_fr.text
    assert "West Africa feed" in home_en.text and ">Alerts</a>" in home_en.text
    feed = await french.get("/console/collections/region-west-africa/")
    assert "<h1>Flux West Africa</h1>" in feed.text
