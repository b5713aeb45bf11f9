"""Reload: the federation file read again without a restart (SIGHUP, or `cirt-hub reload`).

Applied at once: accounts (new ones, new secrets, roles, certificates, `disabled`; a removed
member's accounts are refused) and members' `rate_limits`. Nothing verified before is kept,
so a revoked secret fails its next request, and revoked operators' dashboard sessions end.
Everything else (members added, regions, sharing rules, the hub's own settings, correlation)
is read at start: the log line names what changed that waits for a restart. A file that does
not validate is refused with its problems logged, and the running federation stays.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from hub.api.dashboard import SESSIONS
from hub.api.keys import AUTH, SETTINGS
from hub.api.ratelimit import RATE_LIMITS
from hub.federation import Account, Federation, FederationError, RateLimits, load_federation

log = logging.getLogger(__name__)


def _accounts(federation: Federation) -> dict[str, Account]:
    return {a.username: a for a in federation.accounts()}


def _applied(running: Federation, new: Federation) -> Federation:
    """`running` with `new`'s accounts and rate limits for the members it already has."""
    found = {m.id: m for m in new.members}
    members = tuple(
        replace(m, accounts=found[m.id].accounts, rate_limits=found[m.id].rate_limits)
        if m.id in found
        else replace(m, accounts=())  # removed from the file: nobody logs in as it
        for m in running.members
    )
    return replace(running, hub=replace(running.hub, accounts=new.hub.accounts), members=members)


def _rest(f: Federation) -> Federation:
    """`f` without what a reload applies (and without its file name)."""
    return replace(
        f,
        source="",
        hub=replace(f.hub, accounts=()),
        members=tuple(replace(m, accounts=(), rate_limits=RateLimits()) for m in f.members),
    )


def _waiting_for_restart(running: Federation, new: Federation) -> list[str]:
    """What differs between the two files beyond what a reload applies, in words."""
    before, after = _rest(running), _rest(new)
    changes = []
    if before.hub != after.hub:
        changes.append("the hub's own settings")
    if before.regions != after.regions:
        changes.append("regions")
    old_members = {m.id: m for m in before.members}
    new_members = {m.id: m for m in after.members}
    if added := sorted(new_members.keys() - old_members.keys()):
        changes.append(f"new members {', '.join(added)}")
    if removed := sorted(old_members.keys() - new_members.keys()):
        changes.append(f"removed members {', '.join(removed)} (their logins are refused now)")
    if changed := sorted(
        k for k in old_members.keys() & new_members.keys() if old_members[k] != new_members[k]
    ):
        changes.append(f"members {', '.join(changed)} (rules, keys or details)")
    if before.correlation != after.correlation:
        changes.append("correlation")
    if before.notify != after.notify:
        changes.append("notify")
    return changes


class Reloader:
    """Reloads `path` into the running app, one reload at a time."""

    def __init__(self, app: web.Application, path: Path | None) -> None:
        self._app = app
        self._path = path
        self._applied = app[SETTINGS].federation
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()

    def signal(self) -> None:
        """The SIGHUP handler: start a reload (signal handlers cannot wait)."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> bool:
        """Read and apply the federation file; False (and logged) if it was refused."""
        if self._path is None:
            log.warning("reload: the built-in demo federation has no file to read; unchanged")
            return False
        async with self._lock:
            try:
                new = await asyncio.to_thread(load_federation, self._path)
            except FederationError as exc:
                log.error("reload refused, the running federation stays: %s", exc)
                return False
            self._apply(new)
            return True

    def _apply(self, new: Federation) -> None:
        running = self._app[SETTINGS].federation
        applied = _applied(running, new)
        before, after = _accounts(self._applied), _accounts(applied)
        changed = sorted(u for u in before.keys() | after.keys() if before.get(u) != after.get(u))
        self._app[AUTH].use(applied)
        self._app[RATE_LIMITS].use(applied)
        self._app[SESSIONS].close_for(changed)
        self._applied = applied
        waiting = _waiting_for_restart(running, new)
        log.info(
            "reload: %s applied (accounts and rate limits; changed accounts: %s)%s",
            self._path,
            ", ".join(changed) or "none",
            f"; needs a restart, not applied: {'; '.join(waiting)}" if waiting else "",
        )
