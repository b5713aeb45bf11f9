"""`cirt-hub audit verify|export`: check the hash chain; a member's records for the member."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from hub.audit.chain import verify
from hub.audit.log import audit_records
from hub.bus import BusError
from hub.bus.url import BusUrlError, open_bus, validate_bus_url
from hub.config import default_data_dir
from hub.topics import Topics


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the hash-chained record of routing decisions")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    check = commands.add_parser("verify", help="recompute the chain; name the first bad record")
    export = commands.add_parser("export", help="one member's records, as JSON lines")
    export.add_argument("--member", required=True, help="the sending member's id")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    check.add_argument(
        "--head",
        metavar="SEQ:HASH",
        help="a head noted earlier (printed by verify): the chain must still hold it as it was",
    )
    for command in (check, export):
        command.add_argument("--bus", default="embedded", help="embedded, or kafka://HOST:PORT")
        command.add_argument("--data-dir", type=Path, default=None)
        command.add_argument("--topic-prefix", default="cirt-hub.")


async def _records(args: argparse.Namespace) -> list[Any]:
    data_dir = (args.data_dir or default_data_dir()).resolve()
    bus = open_bus(args.bus, data_dir)
    await bus.start()
    try:
        return await audit_records(bus, Topics(args.topic_prefix).audit)
    finally:
        await bus.stop()


def _anchor_problem(records: list[Any], head: str) -> str | None:
    """Why the chain no longer holds a head noted earlier (None if it does)."""
    seq_text, _, digest = head.partition(":")
    if not seq_text.isdigit() or len(digest) != 64:
        return f"--head {head!r} is not SEQ:HASH as verify prints it"
    seq = int(seq_text)
    found = next((r for r in records if isinstance(r, dict) and r.get("seq") == seq), None)
    if found is None:
        last = records[-1]["seq"] if records else 0
        return (
            f"the chain ends at seq {last}, before the noted head seq {seq}: "
            "records were removed from its end"
        )
    if found.get("hash") != digest:
        return f"record seq {seq} is not the noted head: the chain was rewritten from there on"
    return None


def run(args: argparse.Namespace) -> int:
    try:
        validate_bus_url(args.bus)
        records = asyncio.run(_records(args))
    except (BusError, BusUrlError) as exc:
        print(f"cirt-hub: cannot read the audit log: {exc}", file=sys.stderr)
        return 2
    if args.audit_command == "verify":
        checked, broken = verify(records)
        if broken is not None:
            print(
                f"audit chain BROKEN at record {broken.position + 1} of {len(records)}: "
                f"{broken.message} ({broken.kind})"
            )
            return 1
        anchored = _anchor_problem(records, args.head) if args.head else None
        if anchored:
            print(f"audit chain BROKEN: {anchored}")
            return 1
        print(f"audit chain ok: {checked} records, each linked to the one before")
        if records:
            # Kept somewhere else (a ticket, another hub), it shows later whether records
            # were cut from the end or the chain was rewritten from some point on.
            print(f"head: {records[-1]['seq']}:{records[-1]['hash']}")
        return 0
    lines = b"".join(
        orjson.dumps(r) + b"\n"
        for r in records
        if isinstance(r, dict) and r.get("sender") == args.member
    )
    if args.out:
        args.out.write_bytes(lines)
    else:
        sys.stdout.buffer.write(lines)
    return 0
