"""The operators' dashboard: `/dashboard`, its login, and the JSON it polls.

Operators log in once with a form (the session machinery of hub.api.sessions, which the
analysts' console shares); scripts may use Basic or Bearer instead.
The page is one small file and its script (no CDN, no framework); the script polls
`/api/v1/dashboard` every two seconds and draws its charts as SVG. The Content-Security-Policy
allows no inline script, only the page's own style blocks (by hash), and no framing.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import UTC, datetime
from functools import cache
from importlib import resources

import orjson
from aiohttp import web

from hub.api.keys import AUTH, METRICS, SETTINGS, VIEW
from hub.api.metrics import refresh_disk, refresh_lag, refresh_usage, require_operator
from hub.api.reachability import latest_summary
from hub.api.sessions import (
    PROTECT,
    Sessions,
    end_session_cookie,
    from_own_page,
    set_session_cookie,
)
from hub.api.stream import STREAMS
from hub.collections import ALERTS, region_alias
from hub.correlate.alerts import ALERT_PROPERTY, alert_state, rule_windows
from hub.errors import Forbidden, TooManyRequests, Unauthorized
from hub.stix import timestamps

COOKIE = "cirt_hub_session"
# Alert versions read per snapshot (the page polls every two seconds): the open alerts are
# found among them, so the cost stays the same however many alerts the view holds.
ALERT_VERSIONS = 500
SESSIONS = web.AppKey("dashboard_sessions", Sessions)


@cache
def _page(name: str) -> bytes:
    return resources.files("hub.api").joinpath("static", name).read_bytes()


_NONE = "'none'"  # a page without <style> may have no style at all


@cache
def _policy(name: str) -> str:
    """The page's CSP: its script from this origin, its own <style> blocks by hash."""
    styles = re.findall(rb"<style>(.*?)</style>", _page(name), re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(css).digest()).decode()}'" for css in styles
    )
    return (
        f"default-src 'none'; script-src 'self'; style-src {hashes or _NONE}; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def _html(
    name: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**PROTECT, "Content-Security-Policy": _policy(name), **(headers or {})},
    )


async def script(request: web.Request) -> web.Response:
    """The page's script: code only, no data, so it needs no login."""
    return web.Response(
        body=_page("dashboard.js"),
        content_type="text/javascript",
        charset="utf-8",
        headers=PROTECT,
    )


async def is_operator(request: web.Request) -> bool:
    """A logged-in operator (cookie), or an operator's Basic/Bearer credentials."""
    if request.app[SESSIONS].user(request.cookies.get(COOKIE)):
        return True
    if "Authorization" in request.headers:
        await require_operator(request)
        return True
    return False


async def page(request: web.Request) -> web.StreamResponse:
    if not await is_operator(request):
        raise web.HTTPSeeOther("/dashboard/login", headers=PROTECT)
    return _html("dashboard.html", _page("dashboard.html"))


async def login_form(request: web.Request) -> web.Response:
    return _html("login.html", _page("login.html").replace(b"{{message}}", b""))


async def login(request: web.Request) -> web.StreamResponse:
    if not from_own_page(request):
        message = b'<p class="error" role="alert">log in from this hub&#39;s own login page</p>'
        body = _page("login.html").replace(b"{{message}}", message)
        return _html("login.html", body, status=403)
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    try:
        account = await request.app[AUTH].check(username, password, request.remote)
        if not account.can("operate"):
            raise Forbidden("this account lacks the 'operate' role")
    except (Unauthorized, Forbidden, TooManyRequests) as exc:
        message = b'<p class="error" role="alert">' + _escape(exc.description) + b"</p>"
        body = _page("login.html").replace(b"{{message}}", message)
        wait = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return _html("login.html", body, status=exc.status, headers=wait)
    token = request.app[SESSIONS].open(account)
    response = web.HTTPSeeOther("/dashboard", headers=PROTECT)
    set_session_cookie(response, COOKIE, token, "/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].close(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/dashboard/login", headers=PROTECT)
    end_session_cookie(response, COOKIE, "/")
    raise response


def _escape(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


async def snapshot(request: web.Request) -> web.Response:
    """What the page shows, now; the page works out rates from successive snapshots."""
    if not await is_operator(request):
        raise Unauthorized("log in at /dashboard/login, or send an operator's credentials")
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    await refresh_lag(app)
    federation = settings.federation
    received = metrics.totals("cirt_hub_objects_received_total", "member")
    accepted = metrics.totals("cirt_hub_objects_accepted_total", "member")
    refused = metrics.totals("cirt_hub_objects_refused_total", "member")
    routed = metrics.totals("cirt_hub_objects_routed_total", "collection")
    body = {
        "node": settings.node_id,
        "role": settings.role,
        "time": time.time(),
        "totals": {
            "received": sum(received.values()),
            "accepted": sum(accepted.values()),
            "refused": sum(refused.values()),
            "submissions": sum(metrics.totals("cirt_hub_submissions_total", "member").values()),
        },
        "members": [
            {
                "member": m.id,
                "name": m.name,
                "country": m.country,
                "received": received.get(m.id, 0),
                "accepted": accepted.get(m.id, 0),
                "refused": refused.get(m.id, 0),
            }
            for m in federation.members
        ],
        "regions": [
            {"region": r.id, "name": r.name, "routed": routed.get(region_alias(r.id), 0)}
            for r in federation.regions
        ],
        "refusals": [
            {"reason": reason, "count": count}
            for reason, count in sorted(
                metrics.totals("cirt_hub_objects_refused_total", "reason").items(),
                key=lambda pair: -pair[1],
            )
        ],
        "latency": metrics.percentiles("cirt_hub_end_to_end_seconds"),
        "stages": metrics.stage_percentiles(),
        "lag": metrics.lag_rows(),
        "streams": app[STREAMS].clients,
        "alerts": await _recent_alerts(app),
        "open_alerts": await _open_alerts(app),
        "notifications": {
            "sent": metrics.total("cirt_hub_notify_sent_total"),
            "failures": metrics.total("cirt_hub_notify_failures_total"),
            "pending": metrics.total("cirt_hub_notify_pending"),
            "given_up": metrics.total("cirt_hub_notify_given_up"),
        },
        "reachability": await latest_summary(request),
        "disk": {
            **await refresh_disk(app),
            "refusals": metrics.total("cirt_hub_disk_full_refusals_total"),
            **await refresh_usage(app),
        },
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=PROTECT)


async def _recent_alerts(app: web.Application) -> list[dict[str, object]]:
    """The latest major-incident alerts in this node's view (none on a pipeline-only node)."""
    if VIEW not in app:
        return []
    latest = [orjson.loads(raw) for raw in await app[VIEW].latest(ALERTS, 10)]
    return [
        {
            "id": a.get("id"),
            "name": a.get("name", a.get("id")),
            "created": a.get("created"),
            "description": a.get("description", ""),
        }
        for a in latest
    ]


async def _open_alerts(app: web.Application) -> list[dict[str, object]]:
    """Each active alert once (what it counts is the same in every recipient's copy: the
    newest version has it), with its responses and age, the oldest first."""
    if VIEW not in app:
        return []
    windows = rule_windows(app[SETTINGS].federation.correlation)
    newest: dict[tuple[str, str], dict[str, object]] = {}
    revoked: set[tuple[str, str]] = set()
    for raw in await app[VIEW].latest(ALERTS, ALERT_VERSIONS):
        alert = orjson.loads(raw)
        fields = alert.get(ALERT_PROPERTY)
        if not isinstance(fields, dict):
            continue
        key = (str(fields.get("scope")), str(fields.get("observable")))
        if alert.get("revoked") is True:
            revoked.add(key)
        newest.setdefault(key, fields)
    now = datetime.now(UTC)
    found: list[tuple[float, dict[str, object]]] = []
    for key, fields in newest.items():
        if key in revoked or alert_state(fields, False, windows) != "active":
            continue
        try:
            age = (now - timestamps.parse(str(fields.get("first_seen")))).total_seconds()
        except ValueError:
            continue
        found.append(
            (
                age,
                {
                    "kind": fields.get("kind"),
                    "scope": fields.get("scope"),
                    "members": fields.get("members"),
                    "countries": fields.get("countries"),
                    "responses": fields.get("responses", {}),
                    "sighted": fields.get("sighted", 0),
                    "first_seen": fields.get("first_seen"),
                    "age_seconds": int(max(age, 0)),
                    "seconds_to_first_acknowledgement": fields.get(
                        "seconds_to_first_acknowledgement"
                    ),
                },
            )
        )
    return [alert for _, alert in sorted(found, key=lambda pair: -pair[0])]


def add_routes(app: web.Application) -> None:
    app[SESSIONS] = Sessions()
    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/dashboard.js", script)
    app.router.add_get("/dashboard/login", login_form)
    app.router.add_post("/dashboard/login", login)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get("/api/v1/dashboard", snapshot)
