"""Browser sessions of the hub's own pages (the operators' dashboard, the analysts' console).

A browser cannot answer an HTTP Basic prompt from a script, so people log in once with a
form; the session is a random token in an HttpOnly, Secure, SameSite=Strict cookie, held in
this node's memory only (a restart logs everyone out). Every page answers with the headers
in `PROTECT` and a Content-Security-Policy that allows no inline script; every form post is
checked to come from the hub's own pages (`from_own_page`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from hub.api.keys import SETTINGS
from hub.federation import Account

SESSION_SECONDS = 8 * 3600

# Every answer of a page: no MIME sniffing, no referrer, never in a frame, never cached.
PROTECT = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Cache-Control": "no-store",
}


@dataclass
class Sessions:
    """Logged-in people of this node: token → (account as it logged in, expiry)."""

    _open: dict[str, tuple[Account, float]] = field(default_factory=dict)

    def open(self, account: Account) -> str:
        now = time.monotonic()
        self._open = {t: s for t, s in self._open.items() if s[1] > now}
        token = secrets.token_urlsafe(32)
        self._open[token] = (account, now + SESSION_SECONDS)
        return token

    def account(self, token: str | None) -> Account | None:
        """The account of a live session; None for none, an expired or a closed one."""
        found = self._open.get(token or "")
        return found[0] if found and found[1] > time.monotonic() else None

    def user(self, token: str | None) -> str | None:
        account = self.account(token)
        return account.username if account else None

    def close(self, token: str | None) -> None:
        self._open.pop(token or "", None)

    def close_for(self, usernames: Iterable[str]) -> None:
        """End these people's sessions (their accounts were revoked or changed)."""
        gone = set(usernames)
        self._open = {t: s for t, s in self._open.items() if s[0].username not in gone}


def from_own_page(request: web.Request) -> bool:
    """Whether a form post comes from the hub's own pages (login CSRF: a page elsewhere
    must not log a browser in, into an account of that page's choosing). Browsers say
    where a post comes from (Sec-Fetch-Site, else Origin); a page cannot forge either."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")  # none: the user typed or bookmarked it
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (scripts log in with Basic or Bearer anyway)
    public = request.app[SETTINGS].public_url
    # The Host header is the hub's own name as the browser reached it: a page elsewhere
    # cannot make the browser send another.
    own = {request.host.lower(), urlsplit(public).netloc.lower() if public else ""}
    return urlsplit(origin).netloc.lower() in own - {""}


def set_session_cookie(response: web.StreamResponse, name: str, token: str, path: str) -> None:
    # Secure even over plain HTTP: browsers treat http://localhost and 127.0.0.1 as secure
    # contexts and keep the cookie there; anywhere else these pages need HTTPS anyway.
    response.set_cookie(
        name,
        token,
        max_age=SESSION_SECONDS,
        path=path,
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def end_session_cookie(response: web.StreamResponse, name: str, path: str) -> None:
    response.del_cookie(name, path=path, secure=True, httponly=True, samesite="Strict")
