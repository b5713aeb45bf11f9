"""`cirt-hub misp import`: MISP events, from files or a MISP's REST API, into the hub as STIX.

Exit status: 0 when every event was converted (or skipped as its sharing says) and every
object accepted; 1 when an event could not be converted or the hub refused an object;
2 when the command line, a source or the hub could not be used at all.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from connectors.misp.sources import MispApi, MispEvent, MispSourceError, files, read_file

PASSWORD_ENV = "CIRT_HUB_PASSWORD"
MISP_KEY_ENV = "MISP_KEY"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `misp import` to the cirt-hub command line."""
    misp = sub.add_parser("misp", help="import MISP events as STIX 2.1")
    commands = misp.add_subparsers(dest="misp_command", required=True)
    command = commands.add_parser(
        "import",
        help="convert MISP events to STIX 2.1 and submit them (or write bundles)",
        description="MISP TLP tags become the standard TLP 2.0 markings; distribution levels "
        "narrow them (0: not imported). See README, 'MISP import'.",
    )
    command.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="MISP event JSON files, or folders of them"
    )
    misp_api = command.add_argument_group("a MISP instance's REST API")
    misp_api.add_argument("--misp-url", help="the MISP instance, e.g. https://misp.example")
    misp_api.add_argument("--misp-key", help=f"its automation key (default: ${MISP_KEY_ENV})")
    misp_api.add_argument(
        "--event",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="event ids or uuids (GET /events/view/ID)",
    )
    misp_api.add_argument(
        "--last", metavar="AGE", help="events published in the last AGE (restSearch), e.g. 1d"
    )
    target = command.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the hub to submit to (its address or TAXII URL)")
    target.add_argument(
        "--out", type=Path, metavar="DIR", help="only write one STIX bundle per event here"
    )
    command.add_argument("--user", help=f"the submitting account (password: ${PASSWORD_ENV})")


def run(args: argparse.Namespace) -> int:
    """Run `misp import` as parsed by register's parser; the exit status."""
    return asyncio.run(import_events(args))


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not args.sources and not args.misp_url:
        return "give MISP event files (SOURCE) or --misp-url"
    if args.misp_url and not (args.event or args.last):
        return "with --misp-url, say which events: --event ID ... or --last AGE"
    if (args.event or args.last) and not args.misp_url:
        return "--event and --last need --misp-url"
    if args.misp_url and not (args.misp_key or os.environ.get(MISP_KEY_ENV)):
        return f"--misp-url needs --misp-key or ${MISP_KEY_ENV}"
    if args.url and not args.user:
        return "--url needs --user (the member account that submits)"
    return None


def _password() -> str | None:
    password = os.environ.get(PASSWORD_ENV)
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("hub password: ")
    return password


async def _events(args: argparse.Namespace) -> list[MispEvent]:
    found = [event for path in files(args.sources) for event in read_file(path)]
    if args.misp_url:
        key = args.misp_key or os.environ[MISP_KEY_ENV]
        async with MispApi(args.misp_url, key) as misp:
            for event_id in args.event:
                found.append(await misp.event(event_id))
            if args.last:
                found.extend(await misp.search({"last": args.last}))
    # An event named by --event may be found again by --last: convert each version once.
    versions: set[tuple[str, str]] = set()
    unique: list[MispEvent] = []
    for event in found:
        version = (event.uuid, str(event.data.get("timestamp")))
        if version not in versions:
            versions.add(version)
            unique.append(event)
    return unique


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def import_events(args: argparse.Namespace) -> int:
    """`misp import` inside a running event loop; the exit status."""
    problem = _usage_problem(args)
    password = _password() if args.url and problem is None else ""
    if problem is None and password is None:
        problem = f"no hub password: set ${PASSWORD_ENV}"
    if problem:
        _say(f"cirt-hub misp import: {problem}")
        return 2
    try:
        events = await _events(args)
    except MispSourceError as exc:
        _say(f"cirt-hub misp import: {exc}")
        return 2
    # Only now: misp-stix takes a second to import, and usage errors should not wait for it.
    from connectors.misp.conversion import Conversion, ConversionError, convert_event, merged
    from connectors.misp.sharing import MispFormatError, tlp_name

    conversions: list[Conversion] = []
    failed = 0
    for number, event in enumerate(events, 1):
        head = f"[{number}/{len(events)}] {event.origin}: event {event.uuid}"
        try:
            conversion = convert_event(event.data, event.origin)
        except (ConversionError, MispFormatError) as exc:
            failed += 1
            _say(f"{head}: not converted: {exc}")
            continue
        if conversion.skipped:
            _say(f"{head}: skipped: {conversion.skipped}")
            continue
        level = f"TLP:{tlp_name(conversion.level).upper()}" if conversion.level else "no TLP"
        _say(f"{head} {conversion.info!r}: {len(conversion.objects)} STIX objects, {level}")
        for line in (*conversion.left_out, *conversion.notes):
            _say(f"  {line}")
        if not conversion.objects:
            failed += 1
            continue
        conversions.append(conversion)

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for conversion in conversions:
            path = args.out / f"{conversion.uuid}.json"
            path.write_text(json.dumps(conversion.bundle(), indent=2), encoding="utf-8")
            print(path)
        return 1 if failed else 0
    objects = merged(conversions)
    if not objects:
        _say("nothing to submit")
        return 1 if failed else 0
    refused = await _submit(args.url, args.user, password or "", objects)
    return 2 if refused is None else 1 if failed or refused else 0


async def _submit(url: str, user: str, password: str, objects: list[dict[str, Any]]) -> int | None:
    """Submit and print each refusal; how many objects were refused (None: no hub)."""
    from connectors.client import GaveUp, HubClient, Refused

    _say(f"submitting {len(objects)} STIX objects to {url} as {user}")
    try:
        async with HubClient(url, user, password) as client:
            result = await client.submit(objects)
    except (Refused, GaveUp) as exc:
        _say(f"cirt-hub misp import: {url}: {exc}")
        return None
    refused = [outcome for outcome in result.outcomes if not outcome.ok]
    for outcome in refused:
        print(f"refused {outcome.id}: {outcome.message}")
    print(f"{len(result.outcomes) - len(refused)} accepted, {len(refused)} refused")
    return len(refused)
