"""Liveness and readiness. Anyone (a load balancer) learns whether the node is ready and, if
not, which kind of check failed; the details (lag, key id, background tasks and their last
errors) only an operator does: a dashboard session, or an operator's Basic or Bearer login."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.api.dashboard import is_operator
from hub.api.keys import BUS, FOLLOWER, INTAKE_KEYS, RUNNERS, SETTINGS, SIGNING_KEYS, VIEW
from hub.api.metrics import refresh_disk
from hub.bus import BusError
from hub.signing.intake import IntakeKeyError


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the bus answers, (on API nodes) the view is caught up within
    `max_view_lag`, the hub's signing and intake keys are there, and every background
    runner runs; the checks' details for operators only."""
    settings = request.app[SETTINGS]
    checks: dict[str, dict[str, object]] = {}
    ends = None
    try:
        topics = [settings.topics.intake]
        if VIEW in request.app:
            topics += request.app[VIEW].topics
        async with asyncio.timeout(3):
            ends = await request.app[BUS].end_offsets(topics)
        checks["bus"] = {"ok": True}
    except (BusError, TimeoutError) as exc:
        checks["bus"] = {"ok": False, "error": str(exc) or "no answer within 3 s"}
    if FOLLOWER in request.app:
        if ends is None:
            checks["view"] = {"ok": False, "error": "bus unreachable, lag unknown"}
        else:
            view_ends = {tp: off for tp, off in ends.items() if tp.topic != settings.topics.intake}
            lag = request.app[FOLLOWER].lag(view_ends)
            checks["view"] = {"ok": lag <= settings.max_view_lag, "lag": lag}
    try:
        current = await asyncio.to_thread(request.app[SIGNING_KEYS].current)
        checks["keys"] = (
            {"ok": True, "kid": current.kid}
            if current is not None
            else {"ok": False, "error": "no signing key yet (a pipeline node makes it)"}
        )
    except (OSError, ValueError) as exc:
        checks["keys"] = {"ok": False, "error": f"signing keys unreadable: {exc}"}
    try:
        intake = await asyncio.to_thread(request.app[INTAKE_KEYS].read)
        checks["intake-key"] = (
            {"ok": True, "kid": intake.current.kid}
            if intake is not None
            else {"ok": False, "error": "no intake key yet (a pipeline node makes it)"}
        )
    except (OSError, IntakeKeyError) as exc:
        checks["intake-key"] = {"ok": False, "error": f"intake key unreadable: {exc}"}
    waiting = []
    for runner in request.app[RUNNERS]:
        # A runner down for lack of room is the full disk's doing, reported as the disk.
        down_for_disk = not runner.running and runner.waiting_for_disk
        checks[runner.name] = {"ok": runner.running or down_for_disk, "restarts": runner.restarts}
        if runner.last_error:
            checks[runner.name]["last_error"] = runner.last_error
        if down_for_disk:
            checks[runner.name]["waiting_for_disk"] = True
            waiting.append(runner.name)
    ready = all(c["ok"] for c in checks.values())
    # A full disk stops submissions, not reads: the node stays in its load balancer (it
    # still serves every read) and says it is degraded, naming the disk.
    checks["disk"] = await refresh_disk(request.app)
    if waiting:
        checks["disk"] = {**checks["disk"], "ok": False, "waiting": waiting}
    degraded = ready and not checks["disk"]["ok"]
    body: dict[str, object] = {
        "status": "degraded" if degraded else "ready" if ready else "not ready"
    }
    if await is_operator(request):
        body["checks"] = checks
    elif degraded:
        body["degraded"] = ["disk"]
    elif not ready:
        runners = {runner.name for runner in request.app[RUNNERS]}
        failing = {"background" if n in runners else n for n, c in checks.items() if not c["ok"]}
        body["failing"] = sorted(failing)
    return web.json_response(body, status=200 if ready else 503)
