"""A reader's browser as far as the console is concerned: cookies kept by hand (the session
cookie is Secure, which a plain-HTTP test client would otherwise not send back), the page's
status, headers and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import aiohttp

from tests.hubs import RunningHub


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    cookies: SimpleCookie
    location: str = ""


@dataclass
class Browser:
    hub: RunningHub
    language: str = ""  # Accept-Language to send
    cookies: dict[str, str] = field(default_factory=dict)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Accept-Language": self.language} if self.language else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {**headers, **(extra or {})}

    async def _send(
        self, method: str, path: str, form: dict[str, str] | None, headers: dict[str, str] | None
    ) -> Answer:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method,
                self.hub.base_url + path,
                data=form,
                headers=self._headers(headers),
                allow_redirects=False,
            ) as response,
        ):
            jar: SimpleCookie = SimpleCookie()
            for value in response.headers.getall("Set-Cookie", []):
                jar.load(value)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
            return Answer(
                response.status,
                dict(response.headers),
                await response.text(),
                jar,
                response.headers.get("Location", ""),
            )

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return await self._send("GET", path, None, headers)

    async def post(
        self, path: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> Answer:
        return await self._send(
            "POST", path, form, {"Sec-Fetch-Site": "same-origin", **(headers or {})}
        )

    async def log_in(self, username: str) -> Answer:
        answer = await self.post(
            "/console/login", {"username": username, "password": self.hub.password(username)}
        )
        assert answer.status == 303, answer.text
        return answer
