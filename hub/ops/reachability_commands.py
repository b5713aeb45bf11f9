"""`cirt-hub reachability start | show`: the operator's reachability checks, through a
running hub's API (any API node: the checks are on the bus)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import aiohttp
import orjson

PASSWORD_ENV = "CIRT_HUB_PASSWORD"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    checks = sub.add_parser(
        "reachability", help="check that every member's points of contact answer"
    )
    actions = checks.add_subparsers(dest="reachability_command", required=True)
    start = actions.add_parser(
        "start",
        help="start a check: each contact gets a one-time link, each member a console banner",
    )
    show = actions.add_parser("show", help="the latest check: who answered, how fast, who not")
    for command in (start, show):
        command.add_argument("--url", required=True, help="the hub (http(s)://host:port)")
        command.add_argument(
            "--user", required=True, help=f"an operator account (secret from ${PASSWORD_ENV})"
        )
        command.add_argument("--json", action="store_true", help="the API's answer as JSON")
    start.add_argument(
        "--overdue-days",
        type=float,
        default=3.0,
        help="members that have not answered after this many days are shown as overdue (3)",
    )
    start.add_argument(
        "--expires-days", type=float, default=7.0, help="the links stop working after (7)"
    )
    start.add_argument(
        "--links",
        action="store_true",
        help="print each contact's link, to send by hand where the hub sends no e-mail",
    )


async def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise ValueError(f"set ${PASSWORD_ENV} to the secret of {args.user!r}")
    auth = {"Authorization": aiohttp.BasicAuth(args.user, password).encode()}
    url = args.url.rstrip("/") + path
    data = orjson.dumps(body) if body is not None else None
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.request(method, url, data=data, headers=auth) as response,
    ):
        answer = await response.json(content_type=None)
        if response.status >= 400:
            raise ValueError(f"{response.status}: {answer.get('description', answer)}")
        return answer


def _print_check(check: dict[str, Any] | None) -> None:
    if check is None:
        print("no reachability check has been started")
        return
    state = "open" if check["open"] else "ended"
    print(
        f"check {check['id']} started {check['started']} by {check['by']} ({state}, links "
        f"until {check['expires']}): {check['answered']} of {len(check['members'])} answered"
    )
    for row in check["members"]:
        if row["answered"]:
            print(
                f"  answered  {row['member']:<20} in {row['seconds']} s, by {row['by']} "
                f"({row['via']})"
            )
        else:
            late = f"overdue (over {check['overdue_days']:g} days)" if row["overdue"] else "waiting"
            print(f"  {late:<9} {row['member']}")


async def _run(args: argparse.Namespace) -> int:
    if args.reachability_command == "start":
        body = {
            "overdue_days": args.overdue_days,
            "expires_days": args.expires_days,
            "links": args.links,
        }
        answer = await _call(args, "POST", "/api/v1/reachability/checks", body)
    else:
        answer = await _call(args, "GET", "/api/v1/reachability")
    if args.json:
        print(orjson.dumps(answer).decode())
        return 0
    _print_check(answer["check"])
    for link in answer.get("links", []):
        print(f"  link for {link['member']} ({link['contact']}): {link['link']}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (ValueError, aiohttp.ClientError, TimeoutError) as exc:
        print(f"cirt-hub reachability: {exc}", file=sys.stderr)
        return 1
