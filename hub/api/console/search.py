"""The console's search ("have we seen this?"): the look-up of `GET /api/v1/lookup`
(hub.api.lookup), for the logged-in reader, as a page: each object found with its TLP badge,
how it matched, where and when it was shared, and a link to its page."""

from __future__ import annotations

from aiohttp import web

from hub.api.console.common import LIST_PATHS, Row, reader_of, rows
from hub.api.console.render import Language, language_of, page
from hub.api.lookup import look_up
from hub.store.lookup import Candidate
from hub.store.lookup_values import MAX_VALUE, QUERY_KINDS, NotAValue, kind_name, lookup_query
from hub.store.view import Found

LIMIT = 100


def _how(found: Found, language: Language) -> str:
    """Why an object is in the answer, in the reader's words."""
    if found.refers_to:
        return language.say("refers to what matched")
    return "; ".join(_relation(m, language) for m in found.matched)


def _relation(match: Candidate, language: Language) -> str:
    if match.relation == "contains":
        return language.say("%(value)s contains it", value=match.value)
    if match.relation == "within":
        return language.say("%(value)s is within it", value=match.value)
    if match.relation == "host":
        return language.say("a URL on %(value)s", value=match.value)
    if match.relation == "text":
        return language.say("in its text")
    return language.say("the same value")


async def search_page(request: web.Request) -> web.Response:
    reader = reader_of(request)
    language = language_of(request)
    value = request.query.get("q", "").strip()[: MAX_VALUE + 1]
    kind = request.query.get("kind", "").strip()
    context: dict[str, object] = {
        "reader": reader,
        "q": value,
        "kind": kind,
        "kinds": list(QUERY_KINDS),
        "asked": None,
        "found": [],
        "more": False,
        "error": None,
    }
    if kind and kind not in QUERY_KINDS:
        context["error"] = language.say("%(value)s is not a kind of value.", value=kind)
    elif value:
        try:
            query = lookup_query(value, kind or None)
        except NotAValue:
            context["error"] = language.say(
                "%(value)s cannot be looked up as %(kind)s.",
                value=value[:80],
                kind=kind or language.say("any kind"),
            )
        else:
            answer = await look_up(request, reader.scope, query, LIMIT, LIST_PATHS)
            shown: list[tuple[Row, str]] = list(
                zip(
                    rows(request, [f.arrival for f in answer.found]),
                    [_how(f, language) for f in answer.found],
                    strict=True,
                )
            )
            context.update(
                asked=(query.value, kind_name(query.kind)),
                found=[(row, how, reader.scope.collections[row.collection]) for row, how in shown],
                more=answer.more,
            )
    return page(request, "search.html", context, status=400 if context["error"] else 200)
