"""`cirt-hub submit | pull | export | member-key`: the member side of the hub, for CIRTs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

import orjson

from connectors.client import bundles
from connectors.client.export import export, sign_all
from connectors.client.http import HubClient, Outcome, Refused
from connectors.client.keys import KEY_PASSPHRASE_ENV, MemberKey, MemberKeyError
from connectors.client.progress import Progress
from connectors.client.pull import PullReport, pull
from connectors.client.queue import QueueBusy, SubmitQueue
from connectors.client.retry import Backoff, GaveUp

COMMANDS = ("submit", "pull", "export", "member-key")
PASSWORD_ENV = "CIRT_HUB_PASSWORD"
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def _hub_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the hub (http://host:port) or its TAXII URL")
    parser.add_argument("--user", required=True, help=f"account (secret from ${PASSWORD_ENV})")
    parser.add_argument(
        "--retry-for",
        type=float,
        default=None,
        help="seconds to keep retrying an unreachable hub (default 300; with --queue: forever)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the member commands to the `cirt-hub` parser."""
    submit = sub.add_parser(
        "submit",
        help="send STIX bundles to a hub and print what became of each object",
        description="Exit status: 0 all accepted, 1 some refused, 2 bad input, 3 hub unreachable.",
    )
    submit.add_argument("inputs", nargs="*", metavar="FILE|DIR|-")
    _hub_options(submit)
    submit.add_argument("--key", type=Path, help="sign each object with this member key (PEM)")
    submit.add_argument("--queue", type=Path, help="store-and-forward through this folder")
    submit.add_argument("--max-objects", type=int, default=1000, help="objects per request")
    submit.add_argument("--no-compress", action="store_true", help="do not gzip request bodies")
    submit.add_argument("--json", action="store_true", help="one JSON line per object outcome")

    pulling = sub.add_parser(
        "pull",
        help="fetch a feed into bundle files, every hub signature checked; resumes",
        description="Exit status: 0 all valid, 1 some object failed its signature check.",
    )
    pulling.add_argument("collection", help="alias, id or title, e.g. member-ke-cirt")
    _hub_options(pulling)
    pulling.add_argument("--out", type=Path, required=True, help="folder for bundles and state")
    pulling.add_argument("--since", help="a cursor the hub gave (next) or an RFC 3339 time")
    pulling.add_argument("--page-size", type=int, default=1000)

    exporting = sub.add_parser("export", help="sign objects into one bundle file for later")
    exporting.add_argument("inputs", nargs="+", metavar="FILE|DIR|-")
    exporting.add_argument("--key", type=Path, required=True, help="the member key (PEM)")
    exporting.add_argument("--out", type=Path, required=True, help="the bundle file to write")

    member_key = sub.add_parser("member-key", help="a member's own signing key")
    key_sub = member_key.add_subparsers(dest="key_command", required=True)
    new = key_sub.add_parser("new", help="make a key; print the federation-file entry")
    new.add_argument("out", type=Path, help=f"PEM file to write (encrypted: ${KEY_PASSPHRASE_ENV})")
    new.add_argument(
        "--unencrypted", action="store_true", help="store it without a passphrase (tests only)"
    )
    show = key_sub.add_parser("show", help="print the public key entry for the federation file")
    show.add_argument("key", type=Path)


def _password(user: str) -> str:
    secret = os.environ.get(PASSWORD_ENV)
    return secret if secret is not None else getpass.getpass(f"secret for {user}: ")


def _client(args: argparse.Namespace, *, forever: bool = False) -> HubClient:
    deadline = args.retry_for if args.retry_for is not None else (None if forever else 300.0)
    return HubClient(
        args.url,
        args.user,
        _password(args.user),
        backoff=Backoff(deadline=deadline or None),
        compress=not getattr(args, "no_compress", False),
        max_objects=getattr(args, "max_objects", 1000),
    )


def _print_outcomes(found: list[Outcome], as_json: bool) -> None:
    for o in found:
        if as_json:
            print(orjson.dumps(o.__dict__).decode())
        elif o.ok:
            print(f"accepted  {o.id}  {o.version}")
        else:
            print(f"refused   {o.id}  {o.version}: {o.message}")
    sys.stdout.flush()


def _load_key(path: Path | None) -> MemberKey | None:
    return MemberKey.load(path) if path is not None else None


async def _submit(args: argparse.Namespace) -> int:
    key = _load_key(args.key)
    files = bundles.paths(args.inputs)
    if args.queue is None and not files:
        print("cirt-hub submit: name at least one FILE, DIR or - (or --queue DIR)", file=sys.stderr)
        return EXIT_USAGE
    accepted = refused = 0
    sending: Progress | None = None

    def report(found: list[Outcome]) -> None:
        nonlocal accepted, refused
        _print_outcomes(found, args.json)
        accepted += sum(o.ok for o in found)
        refused += sum(not o.ok for o in found)
        if sending is not None:
            sending.advance(len(found))

    reading = Progress(len(files), "files read")
    if args.queue is not None:
        queue = SubmitQueue(args.queue)
        try:
            for name in files:
                put = queue.put(sign_all(bundles.read(name).objects, key))
                reading.advance(note=f"{name}: {put.added} new, {put.already_queued_or_sent} known")
            reading.close()
            sending = Progress(queue.pending(), "objects sent")
            async with _client(args, forever=True) as client:
                await queue.drain(client, report)
        finally:
            queue.close()
    else:
        objects = []
        for name in files:
            objects.extend(sign_all(bundles.read(name).objects, key))
            reading.advance(note=name)
        reading.close()
        sending = Progress(len(objects), "objects sent")
        async with _client(args) as client:
            await client.submit(objects, report)
    sending.close()
    print(f"{accepted} accepted, {refused} refused", file=sys.stderr)
    return EXIT_REFUSED if refused else 0


async def _pull(args: argparse.Namespace) -> int:
    def progress(report: PullReport) -> None:
        print(
            f"... page {report.pages}: {report.objects} objects, {report.written} written, "
            f"{len(report.invalid)} invalid",
            file=sys.stderr,
            flush=True,
        )

    async with _client(args) as client:
        report = await pull(
            client,
            args.collection,
            args.out,
            since=args.since,
            page_size=args.page_size,
            progress=progress,
        )
    for verdict in report.invalid:
        print(f"invalid  {verdict.id}: {verdict.reason}: {verdict.message}", file=sys.stderr)
    print(
        f"{report.objects} new objects, {report.written} written in {len(report.files)} "
        f"file(s) in {args.out}, {len(report.invalid)} failed the signature check",
        file=sys.stderr,
    )
    return EXIT_REFUSED if report.invalid else 0


def _export(args: argparse.Namespace) -> int:
    key = MemberKey.load(args.key)
    objects = [obj for name in bundles.paths(args.inputs) for obj in bundles.read(name).objects]
    done = export(objects, key, args.out)
    print(
        f"{done.path}: {done.objects} objects ({done.signed_now} signed now, key {key.kid}); "
        f"sha256 {done.sha256}",
        file=sys.stderr,
    )
    return 0


def _member_key(args: argparse.Namespace) -> int:
    if args.key_command == "show":
        key = MemberKey.load(args.key)
    else:
        passphrase = os.environ.get(KEY_PASSPHRASE_ENV)
        if not passphrase and not args.unencrypted:
            print(
                f"cirt-hub member-key new: set {KEY_PASSPHRASE_ENV} (the key is stored "
                "encrypted), or give --unencrypted",
                file=sys.stderr,
            )
            return EXIT_USAGE
        key = MemberKey.generate()
        try:
            key.save(args.out, passphrase)
        except FileExistsError:
            print(f"cirt-hub member-key new: {args.out} exists; not overwritten", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {args.out} (kid {key.kid})", file=sys.stderr)
    print("add to the member's public_keys in the federation file:")
    print(f"  - {orjson.dumps(key.public_jwk()).decode()}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one member command; its exit status."""
    try:
        if args.command == "submit":
            return asyncio.run(_submit(args))
        if args.command == "pull":
            return asyncio.run(_pull(args))
        if args.command == "export":
            return _export(args)
        return _member_key(args)
    except (bundles.InputError, MemberKeyError, ValueError) as exc:
        print(f"cirt-hub {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QueueBusy as exc:
        print(f"cirt-hub {args.command}: {exc}", file=sys.stderr)
        return 0
    except Refused as exc:
        print(f"cirt-hub {args.command}: the hub refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except GaveUp as exc:
        print(f"cirt-hub {args.command}: the hub is unreachable: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
