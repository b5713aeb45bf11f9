"""`cirt-hub backup DEST`, `cirt-hub restore SRC` and `cirt-hub retention run`: the operator's
commands for the data dir; and `cirt-hub reachability` (hub.ops.reachability_commands)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from hub.bus.url import EMBEDDED_FILE
from hub.config import default_data_dir
from hub.federation import FederationError, load_federation
from hub.ops import reachability_commands
from hub.ops.backup import BackupError, Locations, Manifest, backup, restore
from hub.ops.retention import prune_data_dir
from hub.topics import Topics

COMMANDS = ("backup", "restore", "retention", "reachability")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    take = sub.add_parser(
        "backup",
        help="copy the data dir and keys, consistent at one point of the log (hub running or not)",
    )
    take.add_argument("dest", type=Path, help="a new or empty folder")
    back = sub.add_parser("restore", help="put a backup into an empty data dir")
    back.add_argument("src", type=Path, help="a folder `cirt-hub backup` wrote")
    for command in (take, back):
        command.add_argument("--data-dir", type=Path, default=None)
        command.add_argument(
            "--keys-dir", type=Path, default=None, help="signing keys (DATA_DIR/keys)"
        )
        command.add_argument(
            "--pseudonym-key", type=Path, default=None, help="(DATA_DIR/pseudonym.key)"
        )
    take.add_argument(
        "--bus",
        default="embedded",
        help="embedded, or kafka://...: on Kafka the topics are not copied (see README)",
    )
    take.add_argument("--topic-prefix", default="cirt-hub.")
    retention = sub.add_parser("retention", help="forget what hub.retention lets the hub forget")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    now = retention_sub.add_parser(
        "run", help="apply the federation file's hub.retention now (the hub may be running)"
    )
    now.add_argument("--config", type=Path, required=True, help="the federation file")
    now.add_argument("--data-dir", type=Path, default=None)
    now.add_argument("--bus", default="embedded", help="embedded, or kafka://... (views only)")
    now.add_argument("--topic-prefix", default="cirt-hub.")
    reachability_commands.register(sub)


def _describe(manifest: Manifest) -> str:
    size = sum(f.size for f in manifest.files)
    lines = [
        f"  {len(manifest.files)} files, {size} bytes, each with its SHA-256 in manifest.json",
        f"  written by cirt-hub {manifest.hub_version} (data format {manifest.data_format})",
    ]
    if manifest.bus == "embedded":
        lines.append(f"  log point: {manifest.records} records on {len(manifest.log_point)} topics")
        if manifest.audit_head:
            lines.append(f"  audit head: {manifest.audit_head}")
    else:
        lines.append("  Kafka bus: the topics are not in this backup (Kafka keeps them)")
    return "\n".join(lines)


def _retention(args: argparse.Namespace) -> int:
    try:
        federation = load_federation(args.config)
    except FederationError as exc:
        print(exc, file=sys.stderr)
        return 2
    retention = federation.hub.retention
    if not retention.any:
        print(f"cirt-hub: {args.config} sets no hub.retention: everything is kept", file=sys.stderr)
        return 2
    data_dir = (args.data_dir or default_data_dir()).resolve()
    embedded = args.bus == "embedded"
    try:
        done = prune_data_dir(
            data_dir,
            retention,
            Topics(args.topic_prefix),
            log_file=data_dir / EMBEDDED_FILE if embedded else None,
            views=sorted(data_dir.glob("view-*.sqlite3")),
        )
    except (OSError, sqlite3.Error) as exc:
        print(f"cirt-hub: retention: {exc}", file=sys.stderr)
        return 1
    for pruned in done:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(pruned.deleted.items())) or "nothing"
        print(f"{pruned.store}: deleted {kinds}; freed {pruned.freed_bytes} bytes in the file")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "reachability":
        return reachability_commands.run(args)
    if args.command == "retention":
        return _retention(args)
    where = Locations(
        data_dir=(args.data_dir or default_data_dir()).resolve(),
        keys_dir=args.keys_dir.resolve() if args.keys_dir else None,
        pseudonym_key=args.pseudonym_key.resolve() if args.pseudonym_key else None,
    )
    try:
        if args.command == "backup":
            manifest = backup(
                where,
                args.dest.resolve(),
                audit_topic=Topics(args.topic_prefix).audit,
                embedded=args.bus == "embedded",
            )
            print(f"backup of {where.data_dir} in {args.dest}:")
        else:
            manifest = restore(args.src.resolve(), where)
            print(f"restored {args.src} into {where.data_dir}:")
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"cirt-hub: {args.command}: {exc}", file=sys.stderr)
        return 1
    print(_describe(manifest))
    return 0
