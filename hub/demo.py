"""The built-in demo federation: examples/federation.yaml with random secrets of its own.

At first start every demo account gets a fresh random secret, kept (with its hash) in the
data dir, readable by the owner only, so the demo never runs on shared default passwords.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

from hub.credentials import hash_secret, new_secret
from hub.federation import Account, Federation, parse_federation

DEMO_ACCOUNTS_FILE = "demo-accounts.json"
DEMO_SOURCE = "built-in demo federation (examples/federation.yaml)"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    cirt: str
    roles: list[str]


def _base() -> Federation:
    text = resources.files("hub").joinpath("demo/federation.yaml").read_text()
    return parse_federation(text, DEMO_SOURCE)


def _secrets(path: Path, usernames: list[str]) -> dict[str, dict[str, str]]:
    """username → {password, secret_hash}; made (and written 0600) for missing accounts."""
    known: dict[str, dict[str, str]] = {}
    if path.exists():
        known = json.loads(path.read_text())["secrets"]
    missing = [u for u in usernames if u not in known]
    if missing:
        for username in missing:
            secret = new_secret()
            known[username] = {"password": secret, "secret_hash": hash_secret(secret)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"secrets": known}, out, indent=2)
        os.replace(tmp, path)
    return known


def demo_federation(data_dir: Path) -> tuple[Federation, list[DemoAccount]]:
    """The demo federation with this data dir's secrets, and the accounts to print."""
    base = _base()
    secrets = _secrets(data_dir / DEMO_ACCOUNTS_FILE, [a.username for a in base.accounts()])

    def with_secret(account: Account) -> Account:
        return replace(account, secret_hash=secrets[account.username]["secret_hash"])

    federation = replace(
        base,
        hub=replace(base.hub, accounts=tuple(map(with_secret, base.hub.accounts))),
        members=tuple(
            replace(m, accounts=tuple(map(with_secret, m.accounts))) for m in base.members
        ),
    )
    accounts = [
        DemoAccount(
            username=a.username,
            password=secrets[a.username]["password"],
            cirt=a.member or federation.hub.id,
            roles=sorted(a.roles),
        )
        for a in federation.accounts()
    ]
    return federation, accounts


def demo_accounts_json(accounts: list[DemoAccount]) -> str:
    return json.dumps([asdict(a) for a in accounts], indent=2)
