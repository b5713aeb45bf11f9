"""`cirt-hub`: serve the hub, show the demo accounts, make account secrets, check a config,
manage the signing keys, verify signed objects."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from connectors.client import commands as client_commands
from connectors.federation import commands as federation_commands
from connectors.misp import commands as misp_commands
from hub import control
from hub.arenas import limit_arenas
from hub.audit import commands as audit_commands
from hub.bus import BusError
from hub.bus.url import BusUrlError, open_bus, validate_bus_url
from hub.config import ROLES, Settings, SettingsError, default_data_dir, node_id
from hub.credentials import hash_secret, new_secret
from hub.demo import DemoAccount, demo_accounts_json, demo_federation
from hub.federation import FederationError, load_federation
from hub.logs import configure as configure_logs
from hub.notify.config import notify_settings
from hub.ops import commands as ops_commands
from hub.ops.datadir import DataDirError, upgrade
from hub.policy import commands as policy_commands
from hub.signing import commands as signing_commands
from hub.signing.keyring import KeyringError, KeyStore, passphrase_from_environment
from hub.signing.provenance import HubSigner
from hub.tls import KEY_PASSWORD_ENV, TlsError, tls_files
from hub.topics import Topics
from hub.workers import WorkerProcesses, stop_when_orphaned, worker_command

log = logging.getLogger("cirt_hub")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cirt-hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a hub node (TAXII API, pipeline, or both)")
    serve.add_argument("--config", type=Path, help="federation file (default: built-in demo)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="log lines on standard error: JSON objects (default) or plain text",
    )
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", type=Path, default=None)
    serve.add_argument("--bus", default="embedded", help="embedded, or kafka://HOST:PORT")
    serve.add_argument("--role", choices=ROLES, default="all")
    serve.add_argument("--topic-prefix", default="cirt-hub.")
    serve.add_argument("--partitions", type=int, default=None, help="partitions per topic")
    serve.add_argument("--keys-dir", type=Path, default=None, help="signing keys (DATA_DIR/keys)")
    serve.add_argument(
        "--insecure-dev-keys",
        action="store_true",
        help="run without a key passphrase: the signing key is stored unencrypted (demo only)",
    )
    serve.add_argument(
        "--pseudonym-key", type=Path, help="pseudonymisation key file, the same on every node"
    )
    serve.add_argument(
        "--tls-cert", type=Path, help="serve HTTPS: the certificate (PEM, its chain after it)"
    )
    serve.add_argument(
        "--tls-key",
        type=Path,
        help=f"its private key (PEM; if encrypted, the password in {KEY_PASSWORD_ENV})",
    )
    serve.add_argument(
        "--tls-client-ca",
        type=Path,
        help="mutual TLS: CA certificates (PEM) whose client certificates log in, "
        "as the federation file's `certificates` map them to accounts",
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds a stop (SIGTERM) waits for open requests and work in hand (default 10)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=0,
        help="pipeline worker processes (one per core is a good start): this process serves "
        "the API, each worker runs in its own process; 0 (default): all in this process",
    )
    # Set by --workers on each child: the worker's place, which names its Kafka
    # transactional producer and its static group membership.
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--node-pid", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--public-url",
        help="https://HOST[:PORT][/PATH] where clients reach the hub (a TLS-terminating proxy): "
        "the API root address discovery gives; default: a relative address",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=30.0,
        help="seconds a connection has to send a request's headers, from its opening or its "
        "last answer (also how long an idle connection stays open; default 30)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds a request body has before it must keep arriving at 8 KiB/s (default 30)",
    )
    serve.add_argument(
        "--max-connections-per-address",
        type=int,
        default=64,
        help="open connections one source address (IPv6: its /64) may hold; 0: no limit "
        "(behind a reverse proxy every caller has the proxy's address; default 64)",
    )
    serve.add_argument(
        "--max-intake-lag",
        type=int,
        default=10_000,
        help="answer 503 to a member's submissions while the pipeline is this many of them "
        "behind (0: never)",
    )
    serve.add_argument(
        "--shared-intake",
        action="store_true",
        help="write TAXII submissions to <prefix>intake as releases before per-member intake "
        "did: for API nodes upgraded while pipeline nodes of such a release still run",
    )
    serve.add_argument(
        "--min-free-mb",
        type=int,
        default=256,
        help="answer 503 to submissions while the data dir's disk has less free (default 256)",
    )

    demo = sub.add_parser("demo", help="the built-in demo federation")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    accounts = demo_sub.add_parser("accounts", help="print the demo accounts and secrets")
    accounts.add_argument("--data-dir", type=Path, default=None)
    accounts.add_argument("--json", action="store_true")

    token = sub.add_parser("token", help="account secrets")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    new = token_sub.add_parser("new", help="a new random secret and its federation-file line")
    new.add_argument("--username", default="NAME")
    new.add_argument("--roles", default="read", help="comma-separated: submit, read, operate")

    check = sub.add_parser("check-config", help="validate a federation file")
    check.add_argument("file", type=Path)

    rejected = sub.add_parser("rejected", help="what intake refused, and why")
    rejected_sub = rejected.add_subparsers(dest="rejected_command", required=True)
    listing = rejected_sub.add_parser("list", help="list refusals, oldest first")
    listing.add_argument("--data-dir", type=Path, default=None)
    listing.add_argument("--bus", default="embedded", help="embedded, or kafka://HOST:PORT")
    listing.add_argument("--topic-prefix", default="cirt-hub.")
    listing.add_argument("--member", help="only this member's refusals")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    signing_commands.add_parsers(sub)
    policy_commands.register(sub)
    control.register(sub)
    audit_commands.register(sub)
    ops_commands.register(sub)
    client_commands.register(sub)
    federation_commands.register(sub)
    misp_commands.register(sub)
    return parser


def _print_accounts(accounts: list[DemoAccount]) -> None:
    width = max(len(a.username) for a in accounts)
    for a in accounts:
        print(f"  {a.username:<{width}}  {a.cirt:<10} {','.join(a.roles):<8} {a.password}")


async def _serve(
    settings: Settings,
    demo: list[DemoAccount] | None,
    tls: ssl.SSLContext | None,
    workers: WorkerProcesses | None = None,
    parent: int | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or, for a worker, until `parent`, its node, is gone)."""
    from hub.api.reload import Reloader
    from hub.api.server import HubRunner
    from hub.node import create_app

    # shutdown_timeout bounds how long a stop waits for open requests to finish.
    runner = HubRunner(
        create_app(settings),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.drain_seconds,
    )
    try:
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls)
        await site.start()
    except (BusError, OSError, KeyringError) as exc:
        print(f"cirt-hub: cannot start: {exc}", file=sys.stderr)
        await runner.cleanup()
        return 1
    base = f"{'https' if tls else 'http'}://{settings.host}:{settings.port}"
    print(f"cirt-hub {settings.role} node {settings.node_id} on {settings.bus_url} bus")
    print(f"  data dir:        {settings.data_dir}")
    if settings.runs_api:
        print(f"  TAXII discovery: {base}/taxii2/")
        if settings.public_url:
            print(f"  public address:  {settings.public_url} (the API root discovery gives)")
        print(f"  inbox:           {base}/taxii2/hub/collections/inbox/objects/")
    print(f"  health:          {base}/healthz  {base}/readyz")
    if settings.runs_api:
        print(f"  hub keys (JWKS): {base}/.well-known/jwks.json")
    if settings.runs_pipeline and settings.key_passphrase is None:
        print(signing_commands.INSECURE_WARNING.format(dir=settings.signing_keys_dir))
    if demo:
        print("DEMO federation with generated secrets (username, cirt, roles, secret):")
        _print_accounts(demo)
        print(f"  (also: cirt-hub demo accounts --data-dir {settings.data_dir} --json)")
    if workers is not None:
        # The signing key is made here, once, before workers that would race to make it.
        await asyncio.to_thread(
            HubSigner(KeyStore(settings.signing_keys_dir), settings.key_passphrase).refresh
        )
        await workers.start()
        print(f"  pipeline workers: {workers.count} (pids {', '.join(map(str, workers.pids()))})")
    sys.stdout.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP re-reads the federation file (its path is the federation's source; the demo
    # has none). The pid file is written after, so `cirt-hub reload` never hits a hub
    # that SIGHUP would still kill.
    config = None if demo else Path(settings.federation.source)
    loop.add_signal_handler(signal.SIGHUP, Reloader(runner.app, config).signal)
    if parent is None:
        # The node's own file: `cirt-hub reload` signals the node, never one of its workers.
        control.write_pid_file(settings.data_dir, config)
    orphaned = None if parent is None else asyncio.create_task(stop_when_orphaned(parent, stop))
    await stop.wait()
    if orphaned is not None:
        orphaned.cancel()
    print("cirt-hub: stopping (finishing in-flight work)", file=sys.stderr)
    await asyncio.gather(runner.cleanup(), *([workers.stop()] if workers else []))
    if parent is None:
        control.remove_pid_file(settings.data_dir)
    return 0


async def _list_rejected(args: argparse.Namespace) -> int:
    from hub.rejections import describe, rejections

    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        validate_bus_url(args.bus)
    except BusUrlError as exc:
        print(f"cirt-hub: {exc}", file=sys.stderr)
        return 2
    bus = open_bus(args.bus, data_dir)
    try:
        await bus.start()
        count = 0
        async for entry in rejections(bus, Topics(args.topic_prefix), member=args.member):
            count += 1
            print(json.dumps(entry) if args.json else describe(entry), flush=True)
        print(f"{count} refusal(s)", file=sys.stderr)
    except BusError as exc:
        print(f"cirt-hub: cannot read the bus: {exc}", file=sys.stderr)
        return 1
    finally:
        await bus.stop()
    return 0


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run under uvloop, a dependency wherever the hub runs (not on Windows): a missing
    uvloop stops the command instead of falling back to a slower loop unseen."""
    if sys.platform == "win32":
        return asyncio.run(coro)
    import uvloop

    return uvloop.run(coro)


def serve(args: argparse.Namespace) -> int:
    # The data dir holds TLP:RED content, statuses and demo secrets: owner-only files.
    os.umask(0o077)
    data_dir = (args.data_dir or default_data_dir()).resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # Before anything opens the data dir: one written by a later release stops here.
        upgrade(data_dir)
        validate_bus_url(args.bus)
        # Before the federation file: a bad TLS file is found in a moment, not after it.
        tls = tls_files(args.tls_cert, args.tls_key, args.tls_client_ca)
        tls_context = tls.context() if tls else None
        demo = None
        if args.config is None:
            federation, demo = demo_federation(data_dir)
        else:
            federation = load_federation(args.config)
        passphrase = passphrase_from_environment()
        # The demo falls back to dev keys (and says so); a real federation needs the passphrase.
        if passphrase is None and args.role != "api" and not (args.insecure_dev_keys or demo):
            print(
                "cirt-hub: the hub's signing key needs a passphrase: set "
                "CIRT_HUB_KEY_PASSPHRASE or CIRT_HUB_KEY_PASSPHRASE_FILE "
                "(or, for a throwaway demo only, give --insecure-dev-keys)",
                file=sys.stderr,
            )
            return 2
        embedded = args.bus == "embedded"
        if args.workers < 0 or (args.workers and args.role != "all"):
            raise SettingsError(
                "workers: give a number of pipeline processes (0 or more) with --role all"
            )
        # Each worker consumes its own partitions of intake: at least one each.
        partitions = args.partitions or max(args.workers, 1 if embedded else 3)
        node = node_id(data_dir)
        if args.worker_index is not None:
            node = f"{node}-w{args.worker_index}"
        settings = Settings(
            federation=federation,
            data_dir=data_dir,
            host=args.host,
            port=args.port,
            bus_url=args.bus,
            role="api" if args.workers else args.role,
            topic_prefix=args.topic_prefix,
            partitions=partitions,
            node_id=node,
            keys_dir=args.keys_dir.resolve() if args.keys_dir else None,
            key_passphrase=passphrase,
            pseudonym_key_file=args.pseudonym_key,
            tls=tls,
            drain_seconds=args.drain_timeout,
            max_intake_lag=args.max_intake_lag or None,
            shared_intake=args.shared_intake,
            min_free_bytes=args.min_free_mb * 1024 * 1024,
            public_url=args.public_url,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            max_connections_per_address=args.max_connections_per_address,
        )
        notify_settings(federation.notify)  # an SMTP password that cannot be read stops here
    except (
        FederationError,
        SettingsError,
        BusUrlError,
        KeyringError,
        TlsError,
        DataDirError,
    ) as exc:
        print(f"cirt-hub: {exc}", file=sys.stderr)
        return 2
    workers = None
    if args.workers:
        workers = WorkerProcesses(
            worker_command(args, data_dir, partitions), args.workers, args.drain_timeout
        )
    return _run(_serve(settings, demo, tls_context, workers, args.node_pid))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logs(json_lines=getattr(args, "log_format", "text") == "json")
    if args.command == "serve":
        limit_arenas()  # before the node starts any thread
        return serve(args)
    if args.command == "demo":
        _, accounts = demo_federation((args.data_dir or default_data_dir()).resolve())
        if args.json:
            print(demo_accounts_json(accounts))
        else:
            _print_accounts(accounts)
        return 0
    if args.command == "token":
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        secret = new_secret()
        print(f"secret (give it to the account holder; it is not stored): {secret}")
        print("federation file lines:")
        print(f"  - username: {args.username}")
        print(f"    roles: [{', '.join(roles)}]")
        print(f'    secret_hash: "{hash_secret(secret)}"')
        return 0
    if args.command == "reload":
        return control.run(args)
    if args.command == "rejected":
        return _run(_list_rejected(args))
    if args.command in signing_commands.COMMANDS:
        return signing_commands.run(args)
    if args.command == "policy":
        return policy_commands.run(args)
    if args.command == "audit":
        return audit_commands.run(args)
    if args.command in ops_commands.COMMANDS:
        return ops_commands.run(args)
    if args.command in client_commands.COMMANDS:
        return client_commands.run(args)
    if args.command in federation_commands.COMMANDS:
        return federation_commands.run(args)
    if args.command == "misp":
        return misp_commands.run(args)
    if args.command == "check-config":
        try:
            federation = load_federation(args.file)
        except FederationError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(
            f"{args.file}: ok ({len(federation.members)} members, "
            f"{len(federation.regions)} regions)"
        )
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
