"""Debian's Chromium, headless, driven over the Chrome DevTools Protocol with aiohttp's
websocket client: enough to load a page, type into it, read it, and take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import free_port
from tests.processes import stop

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine's network is closed: without these Chromium keeps trying to reach Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The browser's path; a missing browser fails the test (deploy/test.sh installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    return found


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call = next(self._ids)
        await self._ws.send_json({"id": call, "method": method, "params": params})
        async for message in self._ws:
            data = message.json()
            if data.get("id") == call:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
        raise RuntimeError(f"{method}: the browser closed the connection")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def wait_for(self, condition: str, timeout: float = 20.0) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # mid-navigation the context is gone
                value = await self.evaluate(condition)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for: {condition}")
            await asyncio.sleep(0.2)

    async def screenshot(self, path: Path, width: int, height: int, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )
        await asyncio.sleep(0.5)  # let the layout settle at the new size
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def browser_page(profile: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium with one blank page; stopped (by its PID) afterwards."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 (starts at once; waited for below)
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            targets: list[dict[str, Any]] = []
            deadline = time.monotonic() + 30
            while not targets:
                assert process.poll() is None, "chromium exited at start"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                        targets = [t for t in await r.json() if t.get("type") == "page"]
                if not targets:
                    assert time.monotonic() < deadline, "chromium's DevTools never answered"
                    await asyncio.sleep(0.2)
            url = targets[0]["webSocketDebuggerUrl"]
            async with session.ws_connect(url, max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                yield page
    finally:
        stop(process)
