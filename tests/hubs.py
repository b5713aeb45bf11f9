"""Start a whole hub node in-process on a free loopback port, as a test would use it."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web
from taxii2client.v21 import Collection, Server, as_pages

from connectors.client import MemberKey
from hub.api.keys import COLLECTIONS
from hub.api.server import HubRunner
from hub.bus import Bus
from hub.config import Role, Settings
from hub.credentials import hash_secret, new_secret
from hub.demo import DEMO_ACCOUNTS_FILE, DemoAccount, demo_federation
from hub.federation import Account, Federation, schema
from hub.node import create_app
from hub.signing.provenance import without_extension
from hub.stix.predefined import predefined
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


def with_sharing(federation: Federation, sharing: Mapping[str, dict[str, Any]]) -> Federation:
    """`federation` with these members' `sharing` blocks, each checked against the schema."""
    block = {"$defs": schema()["$defs"], "$ref": "#/$defs/sharing"}
    for rules in sharing.values():
        jsonschema.validate(rules, block)
    return replace(
        federation,
        members=tuple(replace(m, sharing=sharing.get(m.id, m.sharing)) for m in federation.members),
    )


def with_member_key(member_id: str, key: MemberKey) -> Callable[[Federation], Federation]:
    """A federation change: `member_id` lists `key` (a connectors.client MemberKey)."""

    def adjust(federation: Federation) -> Federation:
        return replace(
            federation,
            members=tuple(
                replace(m, public_keys=(key.public_jwk(),)) if m.id == member_id else m
                for m in federation.members
            ),
        )

    return adjust


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
    sharing: Mapping[str, dict[str, Any]] | None = None,
    extra_readers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    bus: Bus | None = None,
    **tuning: Any,
) -> AsyncIterator[RunningHub]:
    """The demo federation (secrets from `secrets_file`) served on 127.0.0.1:<free port>,
    with the members' sharing rules replaced by `sharing` where given, and reader accounts
    added as `extra_readers` (username → member id) says, then changed by `adjust`;
    `tuning` sets other Settings fields; over HTTPS as `serving` says; on `bus` when given
    (made for `bus_url`, which the hub's settings still name)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(secrets_file, data_dir / DEMO_ACCOUNTS_FILE)
    federation, accounts = demo_federation(data_dir)
    for username, member_id in (extra_readers or {}).items():
        secret = new_secret()
        account = Account(username, frozenset({"read"}), hash_secret(secret), member_id)
        federation = replace(
            federation,
            members=tuple(
                replace(m, accounts=(*m.accounts, account)) if m.id == member_id else m
                for m in federation.members
            ),
        )
        accounts.append(DemoAccount(username, secret, member_id, ["read"]))
    federation = with_sharing(federation, sharing or {})
    if adjust is not None:
        federation = adjust(federation)
    async with serving(
        federation,
        {a.username: a.password for a in accounts},
        bus_url,
        data_dir,
        topic_prefix=topic_prefix,
        role=role,
        node_id=node_id,
        keys_dir=keys_dir,
        ssl_context=ssl_context,
        bus=bus,
        **tuning,
    ) as running:
        yield replace(running, accounts={a.username: a for a in accounts})


@asynccontextmanager
async def serving(
    federation: Federation,
    passwords: Mapping[str, str],
    bus_url: str,
    data_dir: Path,
    *,
    topic_prefix: str = "cirt-hub.",
    role: Role = "all",
    node_id: str = "node-test",
    keys_dir: Path | None = None,
    port: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
    bus: Bus | None = None,
    **tuning: Any,
) -> AsyncIterator[RunningHub]:
    """Any federation served on 127.0.0.1:`port` (default: a free one); `passwords` by
    username. HTTPS with `ssl_context`, or with the one `tuning`'s `tls` files make."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
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
        **tuning,
    )
    if ssl_context is None and settings.tls is not None:
        ssl_context = settings.tls.context()
    app = create_app(settings, bus=bus)
    runner = HubRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
        accounts = {
            a.username: DemoAccount(a.username, passwords[a.username], a.member or "", [])
            for a in federation.accounts()
            if a.username in passwords
        }
        scheme = "https" if ssl_context else "http"
        yield RunningHub(f"{scheme}://127.0.0.1:{port}", settings, accounts, app)
    finally:
        await runner.cleanup()


def collection(hub: RunningHub, alias: str, username: str) -> Collection:
    return Collection(hub.collection_url(alias), user=username, password=hub.password(username))


async def submit(hub: RunningHub, username: str, objects: list[dict[str, Any]]):
    """POST through taxii2-client and wait on the status resource until it is complete."""
    inbox = collection(hub, "inbox", username)
    return await asyncio.to_thread(
        inbox.add_objects,
        {"objects": objects},
        wait_for_completion=True,
        poll_interval=0.05,
        timeout=60,
    )


async def read_all(
    hub: RunningHub, alias: str, username: str, **filters: Any
) -> list[dict[str, Any]]:
    """The first page (1,000 objects) of a collection as `username` reads it, as sent."""
    feed = collection(hub, alias, username)
    envelope = await asyncio.to_thread(feed.get_objects, limit=1000, **filters)
    return envelope.get("objects", [])


def member_identity(hub: RunningHub, member_id: str) -> str:
    return hub.settings.federation.member(member_id).identity


async def visible_to(hub: RunningHub, username: str) -> dict[str, list[dict[str, Any]]]:
    """Every object `username` can read, per collection alias, found as a TAXII client would
    (discovery, then each readable collection), over real HTTP; the hub's signature and its
    published definitions (in `public`) set aside, so what is left is what members sent."""
    server = Server(f"{hub.base_url}/taxii2/", user=username, password=hub.password(username))

    def read() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for feed in server.default.collections:
            if feed.can_read:
                found[feed.alias] = [
                    without_extension(obj)
                    for page in as_pages(feed.get_objects, per_request=500)
                    for obj in page.get("objects", [])
                    if obj["id"] not in predefined()
                ]

        return found

    return await asyncio.to_thread(read)
