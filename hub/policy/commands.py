"""`cirt-hub policy explain|check|diff`: the sharing rules, explained from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from hub.federation import Federation, FederationError, load_federation, parse_federation
from hub.policy.explain import diff, explain_objects, summary


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="explain, check and compare sharing rules")
    commands = policy.add_subparsers(dest="policy_command", required=True)
    explain = commands.add_parser("explain", help="who would receive these objects, and why")
    explain.add_argument("objects", type=Path, help="a STIX object, bundle or TAXII envelope")
    explain.add_argument("--sender", required=True, help="the sending member's id")
    explain.add_argument("--to", help="only this recipient member")
    explain.add_argument("--config", type=Path, help="federation file (default: built-in demo)")
    check = commands.add_parser("check", help="validate a federation file and summarise its rules")
    check.add_argument("file", type=Path)
    compare = commands.add_parser("diff", help="member pairs that gain or lose TLP levels")
    compare.add_argument("old", type=Path)
    compare.add_argument("new", type=Path)


def _federation(path: Path | None) -> Federation:
    if path is not None:
        return load_federation(path)
    text = resources.files("hub").joinpath("demo/federation.yaml").read_text()
    return parse_federation(text, "built-in demo federation")


def _objects(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("objects"), list):
        objects: list[dict[str, Any]] = data["objects"]
        return objects
    return [data]


def run(args: argparse.Namespace) -> int:
    try:
        if args.policy_command == "explain":
            federation = _federation(args.config)
            known = {m.id: m for m in federation.members}
            if args.sender not in known or (args.to and args.to not in known):
                name = args.sender if args.sender not in known else args.to
                print(f"cirt-hub: {name!r} is not a member of {federation.source}", file=sys.stderr)
                return 2
            try:
                objects = _objects(args.objects)
            except (OSError, ValueError) as exc:
                print(f"cirt-hub: cannot read {args.objects}: {exc}", file=sys.stderr)
                return 2
            lines = explain_objects(federation, known[args.sender], objects, args.to)
        elif args.policy_command == "check":
            lines = summary(load_federation(args.file))
            print(f"{args.file}: ok")
        else:
            lines = diff(load_federation(args.old), load_federation(args.new))
        for line in lines:
            print(line)
    except FederationError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
