"""The documentation site, as a reader meets it: it builds strict, every page in the nav is
there, it loads nothing from elsewhere, and the HTTP API page lists every route the hub
serves outside TAXII (a new endpoint without docs fails here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from hub.config import Settings
from hub.demo import demo_federation
from hub.node import create_app
from tests.conftest import ROOT

OPENAPI = ROOT / "schemas" / "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


class _Headings(HTMLParser):
    """The text of a page's h1-h3 headings, and every src/href it loads or links."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.loads: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._in = tag
            self.headings.append("")
        if tag in ("script", "img", "iframe") and found.get("src"):
            self.loads.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.loads.append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.headings[-1] += data


def _read(page: Path) -> _Headings:
    parsed = _Headings()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict`, as deploy/test.sh runs it: any warning (a broken link or
    anchor, a page left out of the nav) fails the build."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    return out


def _nav_pages(nav: list[Any]) -> list[str]:
    pages = []
    for entry in nav:
        target = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(target) if isinstance(target, list) else [target]
    return pages


def test_every_page_in_the_nav_is_built_with_a_title(site: Path) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = _nav_pages(config["nav"])
    sources = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(pages) == sources, "every page in docs/ is in the nav, and only those"
    for page in pages:
        # use_directory_urls: a/b.md is built as a/b/index.html, a/index.md as a/index.html
        name = page.removesuffix(".md")
        folder = name.removesuffix("index") if name.endswith("index") else name + "/"
        built = site / folder / "index.html"
        assert built.is_file(), f"{page} was not built"
        parsed = _read(built)
        titles = [h for h in parsed.headings if h.strip()]
        assert titles, f"{page} has no heading"


def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    """Readable offline and behind a CIRT's firewall: no script, style or image from
    another host (the default theme would take highlight.js from a CDN)."""
    remote = {
        str(page.relative_to(site)): load
        for page in site.rglob("*.html")
        for load in _read(page).loads
        if re.match(r"(https?:)?//", load)
    }
    assert remote == {}


def _served_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) of every route a node with every role serves, TAXII set aside."""
    federation, _ = demo_federation(tmp_path)
    app = create_app(Settings(federation=federation, data_dir=tmp_path))
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith("/taxii2/")
    }


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_the_openapi_document_has_every_route_and_no_other(tmp_path: Path) -> None:
    doc = json.loads(OPENAPI.read_text())
    validate(doc)  # OpenAPI 3.1, as any OpenAPI tool reads it
    served = _served_routes(tmp_path)
    documented = _documented(doc)
    assert served - documented == set(), "routes the hub serves that schemas/openapi.json lacks"
    assert documented - served == set(), "schemas/openapi.json documents routes the hub lacks"


def test_the_http_api_page_shows_every_route(site: Path, tmp_path: Path) -> None:
    headings = {
        h.strip().removesuffix("¶").strip()
        for h in _read(site / "reference" / "http-api" / "index.html").headings
    }
    missing = {
        f"{method.upper()} {path}"
        for method, path in _served_routes(tmp_path)
        if f"{method.upper()} {path}" not in headings
    }
    assert missing == set()


def test_the_benchmark_page_holds_the_harness_readme(site: Path) -> None:
    page = (site / "benchmark" / "index.html").read_text(encoding="utf-8")
    for line in (ROOT / "bench" / "README.md").read_text().splitlines():
        if line.startswith("## "):
            assert line.removeprefix("## ").split("`")[0] in page


def test_the_readmes_links_reach_pages_of_the_site() -> None:
    """The README is read on its own (a repository's front page): its links into docs/
    must name pages that exist, in the nav."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = set(_nav_pages(config["nav"]))
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert links, "the README points to the documentation"
    assert {link.removeprefix("docs/") for link in links} <= pages
