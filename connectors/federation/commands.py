"""`cirt-hub federate`: bring a peer hub's collections into this hub, once or every N s."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from connectors.client.http import HubClient, Refused
from connectors.client.retry import Backoff, GaveUp
from connectors.federation.federate import FederationReport, federate
from connectors.federation.peer import PeerHub

COMMANDS = ("federate",)
PEER_PASSWORD_ENV = "CIRT_HUB_PEER_PASSWORD"
PASSWORD_ENV = "CIRT_HUB_PASSWORD"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `federate` to the `cirt-hub` parser."""
    cmd = sub.add_parser(
        "federate",
        help="pull a peer hub's collections and submit them here as the peer's member account",
        description="Exit status: 0 done, 1 some objects refused or failing the peer's "
        "signature check, 2 bad arguments, 3 a hub unreachable.",
    )
    cmd.add_argument("--peer", required=True, help="the peer hub's URL")
    cmd.add_argument(
        "--peer-user", required=True, help=f"this hub's reader account there (${PEER_PASSWORD_ENV})"
    )
    cmd.add_argument(
        "--collection", action="append", required=True, help="a peer collection (repeatable)"
    )
    cmd.add_argument("--url", required=True, help="this hub's URL")
    cmd.add_argument(
        "--user", required=True, help=f"the peer's submit account here (${PASSWORD_ENV})"
    )
    cmd.add_argument("--state", type=Path, required=True, help="folder for where each run stopped")
    cmd.add_argument("--every", type=float, help="run again every so many seconds (default once)")
    cmd.add_argument("--page-size", type=int, default=1000)


def _secret(env: str, user: str) -> str:
    value = os.environ.get(env)
    return value if value is not None else getpass.getpass(f"secret for {user}: ")


def _summary(report: FederationReport) -> str:
    return (
        f"{report.read} read, {report.came_back} came back from this hub (not re-imported), "
        f"{len(report.invalid)} failed the peer's signature check, {report.accepted} accepted, "
        f"{len(report.refused)} refused"
    )


async def _run(args: argparse.Namespace) -> int:
    peer = PeerHub(args.peer, args.peer_user, _secret(PEER_PASSWORD_ENV, args.peer_user))
    local_secret = _secret(PASSWORD_ENV, args.user)
    while True:
        async with HubClient(args.url, args.user, local_secret, backoff=Backoff()) as local:
            report = await federate(
                peer,
                local,
                args.collection,
                args.state,
                page_size=args.page_size,
                progress=lambda name, r: print(f"... {name}: {_summary(r)}", file=sys.stderr),
            )
        for verdict in report.invalid:
            print(f"invalid   {verdict.id}: {verdict.reason}: {verdict.message}")
        for outcome in report.refused:
            print(f"refused   {outcome.id}  {outcome.version}: {outcome.message}")
        print(_summary(report), file=sys.stderr, flush=True)
        if args.every is None:
            return 1 if report.invalid or report.refused else 0
        await asyncio.sleep(args.every)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except Refused as exc:
        print(f"cirt-hub federate: refused: {exc}", file=sys.stderr)
        return 1
    except GaveUp as exc:
        print(f"cirt-hub federate: unreachable: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"cirt-hub federate: {exc}", file=sys.stderr)
        return 2
