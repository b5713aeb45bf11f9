"""Pages of the console: the reader's language, Jinja2 templates (autoescaped) in it, and
the headers every page carries.

The language is the one the reader chose (a cookie), else the one its browser prefers of
English and French (Accept-Language), else English. Every string comes from the gettext
catalogues of hub.i18n; TLP labels are written as FIRST names them, in every language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from hub.api.sessions import PROTECT
from hub.collections import ALERTS, INBOX, PUBLIC, Collection
from hub.i18n import LANGUAGES, NAMES, duration, negotiate, translations, when
from hub.stix.markings import Tlp

LANGUAGE_COOKIE = "cirt_hub_lang"
ROOT = "/console/"
# No script at all; the stylesheet from this origin; forms post only here; never framed.
POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    **PROTECT,
    "Content-Security-Policy": POLICY,
    "Vary": "Accept-Language, Cookie",
}


def tlp_label(level: int | None) -> str:
    """The TLP label as FIRST writes it ("TLP:AMBER+STRICT"), never translated."""
    if level is None:
        return ""
    return "TLP:" + Tlp(level).name.replace("_", "+")


def tlp_class(level: int | None) -> str:
    return "" if level is None else "tlp-" + Tlp(level).name.lower().replace("_", "-")


@dataclass(frozen=True)
class Language:
    """The language a page is shown in, and its catalogue."""

    code: str

    @property
    def gettext(self) -> Callable[[str], str]:
        return translations(self.code).gettext

    def say(self, message: str, **values: object) -> str:
        """`message` (a msgid) in this language, with its %(name)s values put in."""
        text = translations(self.code).gettext(message)
        return text % values if values else text


def language_of(request: web.Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LANGUAGES:
        return Language(chosen)
    return Language(negotiate(request.headers.get("Accept-Language")))


def collection_title(collection: Collection, language: Language) -> str:
    """A collection's title in the reader's language (TAXII's titles are English)."""
    if collection.alias == PUBLIC:
        return language.say("Public")
    if collection.alias == ALERTS:
        return language.say("Alerts")
    if collection.alias == INBOX:
        return language.say("Inbox")
    if collection.subject:
        return language.say("%(name)s feed", name=collection.subject)
    return collection.title


@cache
def environment(language: str) -> Environment:
    """One environment per language, so concurrent pages never share a catalogue."""
    env = Environment(
        loader=PackageLoader("hub.api.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = lambda stamp: when(stamp, language)
    env.filters["duration"] = lambda seconds: duration(seconds, language)
    env.filters["tlp_label"] = tlp_label
    env.filters["tlp_class"] = tlp_class
    env.filters["collection_title"] = lambda collection: collection_title(
        collection, Language(language)
    )
    env.globals["languages"] = [(code, NAMES[code]) for code in LANGUAGES]
    env.globals["root"] = ROOT
    return env


def page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The template rendered in the reader's language, with the console's headers."""
    language = language_of(request)
    here = request.path_qs if request.method == "GET" else ROOT
    body = (
        environment(language.code)
        .get_template(template)
        .render(lang=language.code, here=here, **context)
    )
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**HEADERS, "Content-Language": language.code, **(headers or {})},
    )
