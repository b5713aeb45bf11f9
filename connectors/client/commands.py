"""`cirt-hub submit | pull | queue | export | member-key | sight | respond | mitigate |
lookup`: the member side of the hub."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from connectors.client import bundles
from connectors.client.export import export, sign_all
from connectors.client.exports import FORMATS as EXPORT_FORMATS
from connectors.client.exports import ExportRequest, pull_export
from connectors.client.http import HubClient, Outcome, Refused
from connectors.client.keys import KEY_PASSPHRASE_ENV, MemberKey, MemberKeyError
from connectors.client.link import Link, parse_rate
from connectors.client.progress import Progress, link_note
from connectors.client.pull import DISCOVERY_FILE, PullReport, pull
from connectors.client.queue import DISCOVERY_FILE as QUEUE_DISCOVERY_FILE
from connectors.client.queue import QueueBusy, SubmitQueue
from connectors.client.retry import Backoff, GaveUp
from hub.correlate.responses import STATES, sighting_of
from hub.i18n import cli as messages
from hub.i18n.cli import number, say
from hub.stix.markings import Tlp, tlp2_id

COMMANDS = (
    "submit",
    "pull",
    "queue",
    "export",
    "member-key",
    "sight",
    "respond",
    "mitigate",
    "lookup",
)
IDENTITY_ENV = "CIRT_HUB_IDENTITY"
QUEUE_STATES = ("queued", "sent", "accepted", "refused")
T = TypeVar("T")
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
    parser.add_argument(
        "--max-rate",
        type=parse_rate,
        default=None,
        help="bandwidth cap in bytes per second, k or m for x1024 (e.g. 6k on a 64 kbit link)",
    )
    messages.add_option(parser)


def _export_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "exports", "with --format: the collection's current values as one file, replaced whole"
    )
    group.add_argument("--format", choices=EXPORT_FORMATS, help="blocklist, table or rules")
    group.add_argument("--kind", action="append", help="ipv4, ipv6, domain, url, email, md5, ...")
    group.add_argument(
        "--types", action="append", help="STIX object types (default: those with values)"
    )
    group.add_argument("--min-confidence", type=int, help="only objects stating at least this")
    group.add_argument("--tlp", help="at most this TLP level (clear, green, amber, amber+strict)")


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
    submit.add_argument(
        "--no-compress", action="store_true", help="do not compress request bodies (zstd or gzip)"
    )
    submit.add_argument("--json", action="store_true", help="one JSON line per object outcome")

    sight = sub.add_parser(
        "sight",
        help="report 'seen here too': a STIX sighting of an object you received",
        description="A sighting of ID by your CIRT (created_by_ref and where_sighted_refs: "
        "your member identity), sent like `submit`; it counts in the alerts about what it "
        "sights. Exit status: 0 accepted, 1 refused, 2 bad input, 3 hub unreachable.",
    )
    sight.add_argument("object_id", metavar="ID", help="the indicator, malware or observed-data")
    _hub_options(sight)
    sight.add_argument(
        "--identity",
        default=os.environ.get(IDENTITY_ENV),
        help=f"your member's identity id (default ${IDENTITY_ENV})",
    )
    sight.add_argument("--count", type=int, default=1, help="how many times it was seen")
    sight.add_argument("--where", help="where it was seen, in words (the sighting's description)")
    sight.add_argument(
        "--tlp", default="amber", help="the sighting's TLP 2.0 level (default amber)"
    )
    sight.add_argument(
        "--named", action="store_true", help="let the alerts it counts in name your CIRT"
    )
    sight.add_argument("--key", type=Path, help="sign it with this member key (PEM)")

    respond = sub.add_parser(
        "respond",
        help="record your CIRT's state on an alert it received",
        description="Exit status: 0 recorded, 1 refused, 2 bad input, 3 hub unreachable.",
    )
    respond.add_argument("alert_id", metavar="ALERT_ID")
    respond.add_argument("state", metavar="STATE", choices=STATES, help=", ".join(STATES))
    _hub_options(respond)
    respond.add_argument("--note", help="a line for your own records (stays in your collection)")
    respond.add_argument(
        "--named", action="store_true", help="name your CIRT to the alert's other recipients"
    )

    looking = sub.add_parser(
        "lookup",
        help="have we seen this? what your CIRT may read that mentions a value",
        description="An IP address or network, domain, URL, e-mail address, file hash or "
        "words: the indicators and observables that name it and what refers to them, one line "
        "each (TLP, type, how it matched, collection, arrival, id). Exit status: 0 found, "
        "4 nothing found, 1 refused (a value not of its kind), 3 hub unreachable.",
    )
    looking.add_argument("value", metavar="VALUE")
    _hub_options(looking)
    looking.add_argument(
        "--kind", help="ip, ipv4, ipv6, domain, url, email, hash, md5, sha1, sha256, text"
    )
    looking.add_argument("--limit", type=int, default=100, help="at most this many (1-500)")
    looking.add_argument("--json", action="store_true", help="the hub's answer as it is")
    mitigate = sub.add_parser(
        "mitigate",
        help="share a mitigation of an alert your CIRT received (a STIX course-of-action)",
        description="A course-of-action in your member's name and a `mitigates` relationship "
        "to what the alert refers to (its indicators, malware, ...), shared under your own "
        "sharing rules for its TLP. Exit status: 0 accepted, 1 refused, 2 bad input, "
        "3 hub unreachable.",
    )
    mitigate.add_argument("alert_id", metavar="ALERT_ID")
    _hub_options(mitigate)
    mitigate.add_argument("--name", required=True, help="what the mitigation is, in a line")
    mitigate.add_argument("--description", help="what to do")
    mitigate.add_argument(
        "--tlp", default="green", help="its TLP 2.0 level (default green): who gets it"
    )
    mitigate.add_argument(
        "--target",
        action="append",
        help="only this object of the alert (repeatable; default: all it may mitigate)",
    )

    pulling = sub.add_parser(
        "pull",
        help="fetch a feed into bundle files, every hub signature checked; resumes",
        description="Exit status: 0 all valid, 1 some object failed its signature check.",
    )
    pulling.add_argument("collection", help="alias, id or title, e.g. member-ke-cirt")
    _hub_options(pulling)
    pulling.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for bundles and state; with --format, the file to write",
    )
    pulling.add_argument("--since", help="a cursor the hub gave (next) or an RFC 3339 time")
    pulling.add_argument(
        "--page-size", type=int, default=1000, help="most objects per page (fewer on a slow link)"
    )
    _export_options(pulling)

    queue = sub.add_parser("queue", help="what a --queue folder holds and what became of it")
    queue_sub = queue.add_subparsers(dest="queue_command", required=True)
    status = queue_sub.add_parser("status", help="counts over the whole queue and its journal")
    listing = queue_sub.add_parser("list", help="one line per object version")
    listing.add_argument(
        "--state",
        choices=QUEUE_STATES,
        action="append",
        help="only these (repeatable; default all)",
    )
    again = queue_sub.add_parser("retry", help="queue refused objects again (sent by submit)")
    again.add_argument("ids", nargs="*", metavar="ID", help="only these objects (default all)")
    for each in (status, listing, again):
        each.add_argument("folder", type=Path, metavar="DIR", help="the --queue folder")
        messages.add_option(each)

    exporting = sub.add_parser("export", help="sign objects into one bundle file for later")
    exporting.add_argument("inputs", nargs="+", metavar="FILE|DIR|-")
    exporting.add_argument("--key", type=Path, required=True, help="the member key (PEM)")
    exporting.add_argument("--out", type=Path, required=True, help="the bundle file to write")
    messages.add_option(exporting)

    member_key = sub.add_parser("member-key", help="a member's own signing key")
    key_sub = member_key.add_subparsers(dest="key_command", required=True)
    new = key_sub.add_parser("new", help="make a key; print the federation-file entry")
    new.add_argument("out", type=Path, help=f"PEM file to write (encrypted: ${KEY_PASSPHRASE_ENV})")
    new.add_argument(
        "--unencrypted", action="store_true", help="store it without a passphrase (tests only)"
    )
    show = key_sub.add_parser("show", help="print the public key entry for the federation file")
    show.add_argument("key", type=Path)
    for each in (new, show):
        messages.add_option(each)


def _password(user: str) -> str:
    secret = os.environ.get(PASSWORD_ENV)
    return (
        secret if secret is not None else getpass.getpass(say("secret for %(user)s: ", user=user))
    )


def _client(
    args: argparse.Namespace, *, forever: bool = False, cache: Path | None = None
) -> HubClient:
    deadline = args.retry_for if args.retry_for is not None else (None if forever else 300.0)
    return HubClient(
        args.url,
        args.user,
        _password(args.user),
        backoff=Backoff(deadline=deadline or None),
        compress=not getattr(args, "no_compress", False),
        max_objects=getattr(args, "max_objects", 1000),
        cache=cache,
        link=Link(max_rate=args.max_rate),
    )


@contextlib.asynccontextmanager
async def _showing(progress: Progress) -> AsyncIterator[Progress]:
    """`progress` redrawn while the block runs (the link's state, a countdown), closed after."""
    ticker = asyncio.ensure_future(progress.ticking())
    try:
        yield progress
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        progress.close()


async def _run(client: HubClient, work: Awaitable[T]) -> T:
    """`work`, with a GaveUp that says whether the hub ever answered on this link."""
    try:
        return await work
    except GaveUp as exc:
        exc.hub_answered = client.link.answered
        raise


def _print_outcomes(found: list[Outcome], as_json: bool) -> None:
    for o in found:
        if as_json:
            print(orjson.dumps(o.__dict__).decode())
        elif o.ok:
            print(say("accepted  %(id)s  %(version)s", id=o.id, version=o.version))
        else:
            print(
                say(
                    "refused   %(id)s  %(version)s: %(reason)s",
                    id=o.id,
                    version=o.version,
                    reason=o.message,
                )
            )
    sys.stdout.flush()


def _load_key(path: Path | None) -> MemberKey | None:
    return MemberKey.load(path) if path is not None else None


async def _submit(args: argparse.Namespace) -> int:
    key = _load_key(args.key)
    files = bundles.paths(args.inputs)
    if args.queue is None and not files:
        print(
            say("cirt-hub submit: name at least one FILE, DIR or - (or --queue DIR)"),
            file=sys.stderr,
        )
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

    reading = Progress(len(files), say("files read"))
    if args.queue is not None:
        queue = SubmitQueue(args.queue)
        try:
            for name in files:
                put = queue.put(sign_all(bundles.read(name).objects, key))
                reading.advance(
                    note=say(
                        "%(file)s: %(new)s new, %(known)s known",
                        file=name,
                        new=number(put.added),
                        known=number(put.already_queued_or_sent),
                    )
                )
            reading.close()
            before = queue.totals()
            client = _client(args, forever=True, cache=args.queue / QUEUE_DISCOVERY_FILE)
            sending = Progress(
                before.total,
                say("objects in the queue settled"),
                link=client.link,
                done=before.accepted + before.refused,
            )
            async with client, _showing(sending):
                await _run(client, queue.drain(client, report))
            after = queue.totals()
        finally:
            queue.close()
        print(
            say(
                "%(accepted)s accepted, %(refused)s refused in this run; the whole queue: "
                "%(all_accepted)s accepted, %(all_refused)s refused, %(waiting)s waiting "
                "(%(link)s)",
                accepted=number(accepted),
                refused=number(refused),
                all_accepted=number(after.accepted),
                all_refused=number(after.refused),
                waiting=number(after.queued + after.awaiting),
                link=link_note(client.link.state()),
            ),
            file=sys.stderr,
        )
        return EXIT_REFUSED if refused else 0
    objects = []
    for name in files:
        objects.extend(sign_all(bundles.read(name).objects, key))
        reading.advance(note=name)
    reading.close()
    client = _client(args)
    sending = Progress(len(objects), say("objects sent"), link=client.link)
    async with client, _showing(sending):
        await _run(client, client.submit(objects, report))
    print(
        say(
            "%(accepted)s accepted, %(refused)s refused (%(link)s)",
            accepted=number(accepted),
            refused=number(refused),
            link=link_note(client.link.state()),
        ),
        file=sys.stderr,
    )
    return EXIT_REFUSED if refused else 0


async def _sight(args: argparse.Namespace) -> int:
    if not args.identity:
        raise ValueError(
            say("give your member's identity id: --identity or $%(env)s", env=IDENTITY_ENV)
        )
    if not 1 <= args.count <= 999_999_999:  # STIX's bounds for a sighting's count
        raise ValueError(say("--count: from 1 to 999999999"))
    try:
        marking = tlp2_id(Tlp.named(args.tlp))
    except KeyError:
        raise ValueError(say("--tlp: %(level)r is not a TLP level", level=args.tlp)) from None
    sighting = sighting_of(
        args.object_id,
        args.identity,
        count=args.count,
        where=args.where,
        named=args.named,
        marking=marking,
    )
    [signed] = sign_all([sighting], _load_key(args.key))
    client = _client(args)
    async with client:
        result = await _run(client, client.submit([signed]))
    _print_outcomes(result.outcomes, as_json=False)
    return EXIT_REFUSED if result.refused else 0


def _refusals(status: dict[str, Any]) -> bool:
    """Print each object the hub refused in `status`; whether there was any."""
    for failure in status.get("failures", []):
        print(
            say(
                "refused   %(id)s: %(reason)s",
                id=failure.get("id"),
                reason=failure.get("message"),
            )
        )
    return bool(status.get("failure_count"))


async def _respond(args: argparse.Namespace) -> int:
    client = _client(args)
    async with client:
        pending = await _run(
            client, client.respond(args.alert_id, args.state, args.note, args.named)
        )
        status = await _run(client, client.wait(pending["id"]))
    if _refusals(status):
        return EXIT_REFUSED
    print(
        say(
            "recorded  %(state)s on %(alert)s (status %(status)s)",
            state=args.state,
            alert=args.alert_id,
            status=pending["id"],
        )
    )
    return 0


EXIT_NOT_FOUND = 4


def _how(entry: dict[str, object]) -> str:
    """How an object of a look-up's answer mentions the value, in the user's language."""
    if "refers_to" in entry:
        return say("refers to what matched")
    words = {
        "equal": say("the same value"),
        "contains": say("%(value)s contains it"),
        "within": say("%(value)s is within it"),
        "host": say("a URL on %(value)s"),
        "text": say("in its text"),
    }
    matched = entry.get("matched")
    return "; ".join(
        words.get(str(m.get("relation")), str(m.get("relation"))) % {"value": m.get("value")}
        for m in (matched if isinstance(matched, list) else [])
        if isinstance(m, dict)
    )


async def _lookup(args: argparse.Namespace) -> int:
    client = _client(args)
    async with client:
        answer = await _run(client, client.lookup(args.value, args.kind, args.limit))
    found = answer.get("objects", [])
    if args.json:
        print(orjson.dumps(answer).decode())
        return 0 if found else EXIT_NOT_FOUND
    query = answer.get("query", {})
    if not found:
        print(
            say(
                "%(value)s (%(kind)s): nothing you may read mentions it",
                value=query.get("value"),
                kind=query.get("kind"),
            )
        )
        return EXIT_NOT_FOUND
    for entry in found:
        print(
            "  ".join(
                str(part)
                for part in (
                    entry.get("tlp") or "-",
                    entry.get("type"),
                    _how(entry),
                    entry.get("collection"),
                    entry.get("date_added"),
                    entry.get("id"),
                    entry.get("name") or "",
                )
            ).rstrip()
        )
    if answer.get("more"):
        print(say("more objects match than are shown: ask for a narrower value"), file=sys.stderr)
    return 0


async def _mitigate(args: argparse.Namespace) -> int:
    client = _client(args)
    async with client:
        pending = await _run(
            client,
            client.mitigate(args.alert_id, args.name, args.description, args.tlp, args.target),
        )
        status = await _run(client, client.wait(pending["id"]))
    if _refusals(status):
        return EXIT_REFUSED
    action = next(
        (s.get("id") for s in status.get("successes", []) if "course-of-action" in str(s)), None
    )
    print(
        say(
            "shared    %(id)s on %(alert)s (status %(status)s)",
            id=action or args.name,
            alert=args.alert_id,
            status=pending["id"],
        )
    )
    return 0


async def _pull_export(args: argparse.Namespace) -> int:
    since = args.since
    request = ExportRequest(
        collection=args.collection,
        format=args.format,
        kinds=tuple(k for given in args.kind or [] for k in given.split(",") if k),
        types=tuple(t for given in args.types or [] for t in given.split(",") if t),
        since=since,
        min_confidence=args.min_confidence,
        tlp=args.tlp,
    )
    deadline = args.retry_for if args.retry_for is not None else 300.0
    written = await pull_export(
        args.url,
        args.user,
        _password(args.user),
        request,
        args.out,
        backoff=Backoff(deadline=deadline or None),
        link=Link(max_rate=args.max_rate),
    )
    print(
        say(
            "%(file)s: %(bytes)s bytes; %(summary)s",
            file=written.path,
            bytes=number(written.bytes),
            summary=written.summary,
        ),
        file=sys.stderr,
    )
    return 0


async def _pull(args: argparse.Namespace) -> int:
    if args.format is not None:
        return await _pull_export(args)
    args.out.mkdir(parents=True, exist_ok=True)
    client = _client(args, cache=args.out / DISCOVERY_FILE)
    # The total is not known before the end: the line counts pages and objects.
    pulling = Progress(0, say("objects"), link=client.link, every=0.0)

    def progress(report: PullReport) -> None:
        pulling.advance(
            report.objects - pulling.done,
            note=say(
                "page %(page)s, %(written)s written, %(invalid)s invalid",
                page=number(report.pages),
                written=number(report.written),
                invalid=number(len(report.invalid)),
            ),
        )

    async with client, _showing(pulling):
        report = await _run(
            client,
            pull(
                client,
                args.collection,
                args.out,
                since=args.since,
                page_size=args.page_size,
                progress=progress,
            ),
        )
    for verdict in report.invalid:
        print(
            say(
                "invalid  %(id)s: %(reason)s: %(message)s",
                id=verdict.id,
                reason=verdict.reason,
                message=verdict.message,
            ),
            file=sys.stderr,
        )
    print(
        say(
            "%(objects)s new objects, %(written)s written in %(files)s file(s) in %(folder)s, "
            "%(invalid)s failed the signature check (%(pages)s page(s); %(link)s)",
            objects=number(report.objects),
            written=number(report.written),
            files=number(len(report.files)),
            folder=args.out,
            invalid=number(len(report.invalid)),
            pages=number(report.pages),
            link=link_note(client.link.state()),
        ),
        file=sys.stderr,
    )
    return EXIT_REFUSED if report.invalid else 0


def _queue(args: argparse.Namespace) -> int:
    if not (args.folder / "queue.sqlite").exists():
        print(say("cirt-hub queue: %(folder)s holds no queue", folder=args.folder), file=sys.stderr)
        return EXIT_USAGE
    queue = SubmitQueue(args.folder)
    try:
        if args.queue_command == "status":
            t = queue.totals()
            print(
                say(
                    "%(folder)s: %(total)s object versions: %(queued)s queued, %(awaiting)s sent "
                    "and awaiting the hub's outcome, %(accepted)s accepted, %(refused)s refused",
                    folder=args.folder,
                    total=number(t.total),
                    queued=number(t.queued),
                    awaiting=number(t.awaiting),
                    accepted=number(t.accepted),
                    refused=number(t.refused),
                )
            )
            if queue.meta("rate"):
                rate = number(int(queue.meta("rate") or 0))
                print(say("link rate last measured: %(rate)s bytes/s", rate=rate))
        elif args.queue_command == "list":
            for e in queue.entries(args.state or QUEUE_STATES):
                line = f"{e.state:<9} {e.id}  {e.version}"
                line += f"  {e.when}" if e.when else ""
                print(f"{line}: {e.message}" if e.message else line)
        else:
            again, lost = queue.retry(args.ids)
            print(
                say(
                    "%(count)s refused object version(s) queued again; "
                    "`cirt-hub submit --queue %(folder)s` sends them",
                    count=number(again),
                    folder=args.folder,
                )
            )
            if lost:
                print(
                    say(
                        "%(count)s refused before this version kept their content: submit "
                        "them again from their files",
                        count=number(lost),
                    ),
                    file=sys.stderr,
                )
    finally:
        queue.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    key = MemberKey.load(args.key)
    objects = [obj for name in bundles.paths(args.inputs) for obj in bundles.read(name).objects]
    done = export(objects, key, args.out)
    print(
        say(
            "%(file)s: %(objects)s objects (%(signed)s signed now, key %(kid)s); sha256 %(sha256)s",
            file=done.path,
            objects=number(done.objects),
            signed=number(done.signed_now),
            kid=key.kid,
            sha256=done.sha256,
        ),
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
                say(
                    "cirt-hub member-key new: set %(variable)s (the key is stored encrypted), "
                    "or give --unencrypted",
                    variable=KEY_PASSPHRASE_ENV,
                ),
                file=sys.stderr,
            )
            return EXIT_USAGE
        key = MemberKey.generate()
        try:
            key.save(args.out, passphrase)
        except FileExistsError:
            print(
                say("cirt-hub member-key new: %(file)s exists; not overwritten", file=args.out),
                file=sys.stderr,
            )
            return EXIT_USAGE
        print(say("wrote %(file)s (kid %(kid)s)", file=args.out, kid=key.kid), file=sys.stderr)
    print(say("add to the member's public_keys in the federation file:"))
    print(f"  - {orjson.dumps(key.public_jwk()).decode()}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one member command, its messages in the language asked for; its exit status."""
    messages.use(getattr(args, "lang", None))
    try:
        if args.command == "submit":
            return asyncio.run(_submit(args))
        if args.command == "pull":
            return asyncio.run(_pull(args))
        if args.command == "export":
            return _export(args)
        if args.command == "queue":
            return _queue(args)
        if args.command == "sight":
            return asyncio.run(_sight(args))
        if args.command == "respond":
            return asyncio.run(_respond(args))
        if args.command == "lookup":
            return asyncio.run(_lookup(args))
        if args.command == "mitigate":
            return asyncio.run(_mitigate(args))
        return _member_key(args)
    except (bundles.InputError, MemberKeyError, ValueError) as exc:
        print(
            say("cirt-hub %(command)s: %(error)s", command=args.command, error=exc), file=sys.stderr
        )
        return EXIT_USAGE
    except QueueBusy as exc:
        print(
            say("cirt-hub %(command)s: %(error)s", command=args.command, error=exc), file=sys.stderr
        )
        return 0
    except Refused as exc:
        print(
            say(
                "cirt-hub %(command)s: the hub refused: %(error)s", command=args.command, error=exc
            ),
            file=sys.stderr,
        )
        return EXIT_REFUSED
    except GaveUp as exc:
        if exc.hub_answered:
            line = say(
                "cirt-hub %(command)s: the hub answered, but the link failed every try since: "
                "%(error)s",
                command=args.command,
                error=exc,
            )
        else:
            line = say(
                "cirt-hub %(command)s: the hub is unreachable: %(error)s",
                command=args.command,
                error=exc,
            )
        print(line, file=sys.stderr)
        return EXIT_UNREACHABLE
