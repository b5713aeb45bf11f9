"""The reader's subscriptions, as a page: what it is told of and where, a form to add one
(no script needed), and a button to delete each. The checks are the API's
(hub.api.subscriptions.create), so the console accepts exactly what the API does."""

from __future__ import annotations

from aiohttp import web

from hub.api.console.common import reader_of
from hub.api.console.render import HEADERS, ROOT, language_of, page
from hub.api.keys import NOTIFY, SUBSCRIPTIONS
from hub.api.sessions import from_own_page
from hub.api.subscriptions import create
from hub.errors import HubError
from hub.notify.store import tlp_label
from hub.stix.markings import Tlp
from hub.store.lookup_values import MAX_VALUE, QUERY_KINDS

PATH = ROOT + "subscriptions"


async def _show(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    reader = reader_of(request)
    own = await request.app[SUBSCRIPTIONS].of_account(reader.username)
    settings = request.app[NOTIFY]
    context = {
        "reader": reader,
        "subscriptions": own,
        "collections": sorted(reader.scope.collections.values(), key=lambda c: c.alias),
        "tlp_choices": [(tlp_label(level), level.name.lower().replace("_", "+")) for level in Tlp],
        "label": tlp_label,
        "kinds": list(QUERY_KINDS),
        "email": settings.smtp is not None,
        "webhooks": bool(settings.webhook_prefixes),
        "error": error,
    }
    return page(request, "subscriptions.html", context, status=status)


async def subscriptions_page(request: web.Request) -> web.Response:
    return await _show(request)


async def subscribe(request: web.Request) -> web.StreamResponse:
    reader = reader_of(request)
    say = language_of(request).say
    if not from_own_page(request):
        return await _show(request, say("Send this form from the console's own page."), 403)
    form = await request.post()
    kind = str(form.get("kind", ""))[:20]
    fields: dict[str, object] = {"kind": kind}
    for name in ("email", "webhook"):
        value = str(form.get(name, "")).strip()[:2100]
        if value:
            fields[name] = value
    if kind == "alert":
        fields["alert"] = str(form.get("alert", "")).strip()[:200]
    if kind == "collection":
        fields["collection"] = str(form.get("collection", ""))[:200]
        types = [t.strip() for t in str(form.get("types", ""))[:2000].split(",") if t.strip()]
        if types:
            fields["types"] = types
        confidence = str(form.get("min_confidence", "")).strip()[:10]
        if confidence:
            fields["min_confidence"] = int(confidence) if confidence.isdigit() else confidence
        if form.get("max_tlp"):
            fields["max_tlp"] = str(form.get("max_tlp"))[:30]
        value = str(form.get("value", "")).strip()[: MAX_VALUE + 1]
        if value:
            fields["value"] = value
            if form.get("value_kind"):
                fields["value_kind"] = str(form.get("value_kind"))[:20]
    try:
        await create(request, reader.account, fields)
    except HubError as exc:
        message = say("The subscription was not made: %(reason)s", reason=str(exc))
        return await _show(request, message, exc.status)
    raise web.HTTPSeeOther(PATH, headers=HEADERS)


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    reader = reader_of(request)
    if not from_own_page(request):
        say = language_of(request).say
        return await _show(request, say("Send this form from the console's own page."), 403)
    subscription_id = request.match_info["subscription_id"][:100]
    await request.app[SUBSCRIPTIONS].remove(reader.username, subscription_id)
    raise web.HTTPSeeOther(PATH, headers=HEADERS)
