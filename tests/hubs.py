"""Start a whole hub node in-process on a free loopback port, as a test would use it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from hub.api.app import create_app
from hub.api.keys import COLLECTIONS
from hub.config import Role, Settings
from hub.demo import DEMO_ACCOUNTS_FILE, DemoAccount, demo_federation
from hub.federation import Federation
from tests.conftest import free_port

# Test hubs keep their signing keys encrypted, as a real hub does.
KEY_PASSPHRASE = "test-only passphrase: correct horse battery staple"


@dataclass(frozen=True)
class RunningHub:
    base_url: str
    settings: Settings
    accounts: dict[str, DemoAccount]
    app: web.Application

    @property
    def api_root(self) -> str:
        return f"{self.base_url}/taxii2/hub/"

    def collection_url(self, alias: str) -> str:
        """The URL a TAXII client finds by discovery: the collection's id, not its alias."""
        return f"{self.api_root}collections/{self.app[COLLECTIONS][alias].id}/"

    def password(self, username: str) -> str:
        return self.accounts[username].password


@asynccontextmanager
async def running_hub(
    bus_url: str,
    data_dir: Path,
    secrets_file: Path,
    *,
    topic_prefix: str = "cirt-hub.",
    role: Role = "all",
    node_id: str = "node-test",
    adjust: Callable[[Federation], Federation] | None = None,
    keys_dir: Path | None = None,
) -> AsyncIterator[RunningHub]:
    """The demo federation (secrets from `secrets_file`, changed by `adjust` if given)
    served on 127.0.0.1:<free port>."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(secrets_file, data_dir / DEMO_ACCOUNTS_FILE)
    federation, accounts = demo_federation(data_dir)
    if adjust is not None:
        federation = adjust(federation)
    port = free_port()
    settings = Settings(
        federation=federation,
        data_dir=data_dir,
        port=port,
        bus_url=bus_url,
        role=role,
        topic_prefix=topic_prefix,
        partitions=1 if bus_url == "embedded" else 2,
        node_id=node_id,
        keys_dir=keys_dir,
        key_passphrase=KEY_PASSPHRASE,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield RunningHub(
            f"http://127.0.0.1:{port}", settings, {a.username: a for a in accounts}, app
        )
    finally:
        await runner.cleanup()
