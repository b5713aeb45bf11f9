"""`cirt-hub keys list|rotate` and `cirt-hub verify`: the signing commands of the CLI."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path

import orjson

from hub.config import default_data_dir
from hub.signing.intake import RETIRED_GRACE, IntakeKeyError, IntakeKeyFile
from hub.signing.keyring import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    KeyringError,
    KeyStore,
    passphrase_from_environment,
)
from hub.signing.members import MemberKeys
from hub.signing.sources import Credentials, SourceError, pages, read_json
from hub.signing.verify import Verdict, Verifier, hub_keys

COMMANDS = ("keys", "verify")
PASSWORD_ENV = "CIRT_HUB_PASSWORD"
INSECURE_WARNING = (
    "WARNING: INSECURE DEV KEYS: the hub's private signing key is stored UNENCRYPTED in {dir}. "
    "Anyone who can read that folder can sign as this hub. For real use set "
    f"{PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}."
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `keys` and `verify` subcommands, added to the `cirt-hub` parser."""
    keys = sub.add_parser("keys", help="the hub's signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (
        ("list", "list the keys: current, retired, how each is protected"),
        (
            "rotate",
            "make a new current signing key (the old ones stay published as retired) and a "
            "new intake key",
        ),
    ):
        cmd = keys_sub.add_parser(name, help=text)
        cmd.add_argument("--data-dir", type=Path, default=None)
        cmd.add_argument("--keys-dir", type=Path, default=None, help="default: DATA_DIR/keys")
        if name == "rotate":
            cmd.add_argument(
                "--insecure-dev-keys",
                action="store_true",
                help="without a passphrase, store the new key unencrypted (demo only)",
            )

    verify = sub.add_parser(
        "verify",
        help="check the hub signatures of delivered objects, offline if given files",
        description="Exit status: 0 every object valid, 1 some object invalid, 2 unusable input.",
    )
    verify.add_argument("source", help="bundle/envelope file, TAXII objects URL, collection URL")
    verify.add_argument("--jwks", required=True, help="the hub's JWKS: file or URL")
    verify.add_argument("--member-keys", help="GET /api/v1/member-keys, saved or as a URL")
    verify.add_argument("--user", help=f"account for URLs that need one (password ${PASSWORD_ENV})")
    verify.add_argument("--json", action="store_true", help="one JSON line per object")
    verify.add_argument("--page-size", type=int, default=1000, help="objects per TAXII request")
    verify.add_argument(
        "--progress-every", type=float, default=2.0, help="seconds between progress lines"
    )


def keys_dir(args: argparse.Namespace) -> Path:
    if args.keys_dir is not None:
        given: Path = args.keys_dir
        return given.resolve()
    return (args.data_dir or default_data_dir()).resolve() / "keys"


def _keys(args: argparse.Namespace) -> int:
    store = KeyStore(keys_dir(args))
    if args.keys_command == "list":
        records = store.records()
        if not records:
            print(f"no keys in {store.path} (the first pipeline start makes one)")
            return 0
        current = store.current()
        print(f"{'kid':<44} {'status':<8} {'created':<28} protection")
        for record in reversed(records):
            status = "current" if record is current else "retired"
            print(f"{record.kid:<44} {status:<8} {record.created:<28} {record.protection}")
        intake = IntakeKeyFile(store.path).read()
        if intake is not None:
            for key in intake.keys:
                status = "current" if key is intake.current else "retired"
                print(f"{'intake ' + key.kid:<44} {status:<8} {key.created:<28} hub nodes only")
        return 0
    passphrase = passphrase_from_environment()
    if passphrase is None and not args.insecure_dev_keys:
        print(
            f"cirt-hub: set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV} (the one the pipeline "
            "nodes use), or give --insecure-dev-keys for a demo hub",
            file=sys.stderr,
        )
        return 2
    record = store.rotate(passphrase)
    if passphrase is None:
        print(INSECURE_WARNING.format(dir=store.path), file=sys.stderr)
    retired = len(store.records()) - 1
    print(f"new current key {record.kid}; {retired} retired key(s) stay in the JWKS")
    print("running pipeline nodes sign with it from their next submission on")
    rotated = IntakeKeyFile(store.path).rotate()
    if rotated is not None:
        keys, counting = rotated
        print(
            f"new intake key {keys.current.kid}; API nodes use it from their next submission "
            f"on; the {counting} before it still count for {RETIRED_GRACE.seconds // 60} min"
        )
    return 0


def _credentials(user: str | None) -> Credentials | None:
    if user is None:
        return None
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass(f"password for {user}: ")
    return Credentials(user, password)


def _line(verdict: Verdict) -> str:
    if verdict.valid and verdict.kid is None:
        return f"valid    {verdict.id}  ({verdict.reason}: {verdict.message})"
    if verdict.valid:
        return f"valid    {verdict.id}  ({verdict.message}; key {verdict.kid})"
    return f"invalid  {verdict.id or '(no id)'}: {verdict.reason}: {verdict.message}"


def _verify(args: argparse.Namespace) -> int:
    credentials = _credentials(args.user)
    try:
        members = None
        if args.member_keys:
            members = MemberKeys.from_jwks(read_json(args.member_keys, credentials))
        verifier = Verifier(hub_keys(read_json(args.jwks)), members)
        total = invalid = 0
        started = last_report = time.monotonic()
        for page_no, page in enumerate(pages(args.source, credentials, args.page_size), 1):
            for obj in page:
                verdict = verifier.verify(obj)
                total += 1
                invalid += not verdict.valid
                print(orjson.dumps(verdict.as_dict()).decode() if args.json else _line(verdict))
            if time.monotonic() - last_report >= args.progress_every:
                last_report = time.monotonic()
                rate = total / max(last_report - started, 1e-9)
                print(
                    f"... {total:,} objects checked ({page_no} pages, {rate:,.0f}/s), "
                    f"{invalid} invalid",
                    file=sys.stderr,
                    flush=True,
                )
    except (SourceError, KeyError, TypeError, ValueError) as exc:
        print(f"cirt-hub verify: {exc}", file=sys.stderr)
        return 2
    print(f"{total} objects: {total - invalid} valid, {invalid} invalid", file=sys.stderr)
    return 1 if invalid else 0


def run(args: argparse.Namespace) -> int:
    """Run `keys` or `verify`; the exit status."""
    try:
        return _keys(args) if args.command == "keys" else _verify(args)
    except (KeyringError, IntakeKeyError) as exc:
        print(f"cirt-hub: {exc}", file=sys.stderr)
        return 2
