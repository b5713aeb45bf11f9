"""The federation file: the hub's identity, its regions, member CIRTs, accounts and keys.

Loaded once at startup. A file that does not hold stops startup with every problem named
by file, line and field (`examples/federation.yaml:41: members[2].regions[0]: ...`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import rfc8785
import yaml

from hub.tls import normal_fingerprint

Path_ = tuple[str | int, ...]
ROLES = ("submit", "read", "operate")


@dataclass(frozen=True)
class Problem:
    line: int | None
    field: str
    message: str


class FederationError(Exception):
    """The federation file does not hold; `problems` says where and why."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"invalid federation file {self.source}:"]
        for p in self.problems:
            where = f"{self.source}:{p.line}" if p.line else self.source
            lines.append(f"  {where}: {p.field or '(top level)'}: {p.message}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Account:
    username: str
    roles: frozenset[str]
    secret_hash: str = field(repr=False)
    member: str | None  # None for the hub's own staff
    # Fingerprints (`sha256:<hex>`) of client certificates that log in as this account.
    certificates: frozenset[str] = frozenset()
    # Revoked: refused on every path (secret, token, certificate) until set back to false.
    disabled: bool = False

    def can(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Region:
    id: str
    name: str


@dataclass(frozen=True)
class RateLimits:
    """What one member may post to the inbox (its `rate_limits`); None is unlimited."""

    requests_per_second: float | None = None
    objects_per_second: float | None = None
    bytes_per_day: int | None = None


@dataclass(frozen=True)
class ContactKey:
    """The key to encrypt to a point of contact: OpenPGP or S/MIME."""

    kind: str  # "pgp" or "smime"
    fingerprint: str
    url: str = ""


@dataclass(frozen=True)
class Contact:
    """One of a member's 24/7 incident points of contact (its `contacts`)."""

    role: str
    name: str
    email: str
    phone: str = ""
    languages: tuple[str, ...] = ()
    key: ContactKey | None = None


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    country: str
    regions: tuple[str, ...]
    identity: str
    accounts: tuple[Account, ...]
    public_keys: tuple[dict[str, str], ...] = ()
    sharing: dict[str, Any] = field(default_factory=dict)
    rate_limits: RateLimits = RateLimits()
    language: str = "en"  # of its notifications (hub.notify): "en" or "fr"
    contacts: tuple[Contact, ...] = ()
    email_domains: tuple[str, ...] = ()  # lowercase; see mails_to

    def mails_to(self, address: str) -> bool:
        """Whether the hub may e-mail `address` for this member's accounts: its domain is, or
        is under, one of `email_domains` or of the member's contacts' addresses."""
        domain = address.rpartition("@")[2].lower().rstrip(".")
        allowed = {
            *self.email_domains,
            *(c.email.rpartition("@")[2].lower() for c in self.contacts),
        }
        return any(domain == d or domain.endswith("." + d) for d in allowed)


@dataclass(frozen=True)
class Limits:
    """What one submission may hold, and one read answer (the federation file's `hub.limits`)."""

    max_content_length: int = 10 * 1024 * 1024
    max_objects: int = 10_000
    # Bytes of one object as compact JSON. 4 MiB: room for an incident report carrying a few
    # MB of log excerpts (the suite sends a 3 MB one), twenty times the largest object of the
    # real-world corpus the tests read (ATT&CK for ICS's x-mitre-collection, 209 KB; the
    # median is 563 bytes), and no more than a reader's page budget (page_bytes), so such an
    # object fills a page alone; bigger artifacts travel by `url` with `hashes`.
    max_object_bytes: int = 4 * 1024 * 1024
    # Arrays and objects inside one another in one object (the object is level 1); checked
    # once, on the body, before anything else walks it (hub.stix.envelope).
    max_depth: int = 32
    max_string_length: int = 8 * 1024 * 1024
    # A STIX pattern, checked before its grammar reads it (about 10 µs a character; it
    # recurses once per chained operator and gives up at ~970). The real-world data the tests
    # read holds at most 17,121 characters (a MISP attachment in base64) and 29 comparisons.
    max_pattern_length: int = 64 * 1024
    max_pattern_comparisons: int = 512
    # Bytes of objects in one TAXII page or one read of a live stream.
    page_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class Retention:
    """How long the hub keeps what it may forget (the federation file's `hub.retention`);
    None keeps it for ever. The latest version of an object, a revocation and the audit
    chain are always kept."""

    superseded_versions_days: int | None = None
    intake_days: int | None = None
    rejected_days: int | None = None
    interval_hours: float = 1.0

    @property
    def any(self) -> bool:
        days = (self.superseded_versions_days, self.intake_days, self.rejected_days)
        return any(d is not None for d in days)


@dataclass(frozen=True)
class HubInfo:
    id: str
    name: str
    identity: str
    contact: str = ""
    accounts: tuple[Account, ...] = ()
    limits: Limits = field(default_factory=Limits)
    retention: Retention = field(default_factory=Retention)


@dataclass(frozen=True)
class Federation:
    hub: HubInfo
    regions: tuple[Region, ...]
    members: tuple[Member, ...]
    source: str = "<memory>"
    correlation: Mapping[str, Any] = field(default_factory=dict)  # the `correlation` block
    notify: Mapping[str, Any] = field(default_factory=dict)  # the `notify` block (hub.notify)

    @cached_property
    def policy_version(self) -> str:
        """A short hash of everything routing depends on (regions, members, their rules).

        Recorded with every routed object, so a decision can be traced to the rules in force.
        """
        rules: dict[str, Any] = {
            "regions": [r.id for r in self.regions],
            "members": {
                m.id: {"regions": list(m.regions), "sharing": m.sharing} for m in self.members
            },
        }
        return hashlib.sha256(rfc8785.dumps(rules)).hexdigest()[:16]

    def member(self, member_id: str) -> Member:
        return next(m for m in self.members if m.id == member_id)

    @cached_property
    def _by_id(self) -> dict[str, Member]:
        return {m.id: m for m in self.members}

    def find_member(self, member_id: str) -> Member | None:
        """The member with this id; None if there is none."""
        return self._by_id.get(member_id)

    def accounts(self) -> Iterator[Account]:
        yield from self.hub.accounts
        for m in self.members:
            yield from m.accounts

    def account(self, username: str) -> Account | None:
        return next((a for a in self.accounts() if a.username == username), None)

    def members_of(self, region_id: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if region_id in m.regions)

    def member_by_identity(self, identity: str) -> Member | None:
        return next((m for m in self.members if m.identity == identity), None)


@cache
def schema() -> dict[str, Any]:
    text = resources.files("hub").joinpath("schemas/federation.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _field(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(root: yaml.Node | None, path: Path_) -> int | None:
    """1-based line of the YAML node at `path` (or of its nearest existing parent)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _schema_problems(data: Any, root: yaml.Node | None) -> list[Problem]:
    # Imported here: jsonschema's import costs a second or more, which commands that never
    # read a federation file should not pay. Where the optional rfc3987-syntax is installed
    # (stix2-validator pulls it in), jsonschema's import compiles ~40 grammars for it (6 s
    # on our machines) to check "iri" formats, which the federation schema does not use:
    # keep it out unless something imported it already.
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    pasted = _pasted_secrets(data)
    for error in validator.iter_errors(data):
        path = tuple(error.absolute_path)
        message = error.message
        hint = error.schema.get("description") if isinstance(error.schema, dict) else None
        if error.validator == "pattern" and hint:
            message = f"{message} ({hint})"
        for secret in pasted:
            message = message.replace(secret, "<not shown>")
        problems.append(Problem(_line_of(root, path), _field(path), message))
    return sorted(problems, key=lambda p: (p.line or 0, p.field))


def _pasted_secrets(data: Any) -> list[str]:
    """`secret_hash` values that are not hashes: perhaps a secret pasted in by mistake, so
    problems (which reach logs and terminals) never repeat them."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "secret_hash" and isinstance(value, str) and not value.startswith("scrypt$"):
                found.append(value)
            else:
                found.extend(_pasted_secrets(value))
    elif isinstance(data, list):
        for value in data:
            found.extend(_pasted_secrets(value))
    # Longest first, so a secret that contains another is hidden whole.
    return sorted({f for f in found if f}, key=len, reverse=True)


def _meaning_problems(data: dict[str, Any], root: yaml.Node | None) -> list[Problem]:
    """What the schema cannot say: uniqueness and references between parts of the file."""
    problems: list[Problem] = []

    def problem(path: Path_, message: str) -> None:
        problems.append(Problem(_line_of(root, path), _field(path), message))

    regions: set[str] = set()
    for i, region in enumerate(data["regions"]):
        if region["id"] in regions:
            problem(("regions", i, "id"), f"region {region['id']!r} is declared twice")
        regions.add(region["id"])

    usernames: set[str] = set()
    certificates: dict[str, str] = {}

    def check_accounts(base: Path_, accounts: list[dict[str, Any]], member: bool) -> None:
        for j, account in enumerate(accounts):
            name = account["username"]
            if name in usernames:
                problem((*base, j, "username"), f"username {name!r} is used twice in the file")
            usernames.add(name)
            if member and "operate" in account["roles"]:
                problem(
                    (*base, j, "roles", account["roles"].index("operate")),
                    "'operate' is for the hub's own accounts (hub.accounts): metrics and the "
                    "dashboard count every member's deliveries, which a member may not see",
                )
            seen: set[str] = set()
            for k, text in enumerate(account.get("certificates", [])):
                key = normal_fingerprint(text)
                owner = certificates.setdefault(key, name)
                if owner != name or key in seen:
                    where = (*base, j, "certificates", k)
                    problem(where, f"this certificate is already mapped to account {owner!r}")
                seen.add(key)

    check_accounts(("hub", "accounts"), data["hub"].get("accounts", []), member=False)
    identities = {data["hub"]["identity"]: "the hub"}
    # Records name a submitter by member id, and use these for others: a member by one of
    # them would pass its objects off as unattributed, or as the hub's own.
    reserved = {
        "anonymous": "what records name a sender that chose not to be named",
        "hub": "what alerts of earlier releases name as their submitter",
        data["hub"]["id"]: "the hub's own id (hub.id)",
    }
    members: set[str] = set()
    for i, member in enumerate(data["members"]):
        base: Path_ = ("members", i)
        if member["id"] in reserved:
            problem(
                (*base, "id"),
                f"{member['id']!r} cannot be a member id: it is {reserved[member['id']]}",
            )
        if member["id"] in members:
            problem((*base, "id"), f"member {member['id']!r} is declared twice")
        members.add(member["id"])
        if member["identity"] in identities:
            problem(
                (*base, "identity"),
                f"{member['identity']} is already the identity of {identities[member['identity']]}",
            )
        identities[member["identity"]] = f"member {member['id']!r}"
        for j, region in enumerate(member["regions"]):
            if region not in regions:
                problem((*base, "regions", j), f"{region!r} is not a region declared in regions")
        kids = [k["kid"] for k in member.get("public_keys", [])]
        for j, kid in enumerate(kids):
            if kids.index(kid) != j:
                problem((*base, "public_keys", j, "kid"), f"key id {kid!r} is used twice")
        check_accounts((*base, "accounts"), member["accounts"], member=True)
    for path, message in sharing_problems(data, ("members",)):
        problem(path, message)
    correlation = data.get("correlation", {})
    for i, rule in enumerate(correlation.get("rules", [])):
        region = rule["scope"].partition(":")[2]
        if region and region not in regions:
            where: Path_ = ("correlation", "rules", i, "scope")
            problem(where, f"{region!r} is not a region declared in regions")
    for member_id in correlation.get("webhooks", {}):
        if member_id not in members:
            where = ("correlation", "webhooks", member_id)
            problem(where, f"{member_id!r} is not a member declared in members")
    return problems


def sharing_problems(
    data: Mapping[str, Any], federation_path: tuple[str | int, ...]
) -> Iterable[tuple[tuple[str | int, ...], str]]:
    """(path, message) for each sharing rule that names something the file does not declare.

    `data` is the whole (schema-valid) federation file; paths are relative to its root.
    """
    regions = {r["id"] for r in data["regions"]}
    members = {m["id"]: m for m in data["members"]}
    readers = {
        a["username"]: m["id"]
        for m in data["members"]
        for a in m["accounts"]
        if "read" in a["roles"]
    }
    for i, member in enumerate(data["members"]):
        sharing = member.get("sharing", {})
        lists: list[tuple[tuple[str | int, ...], list[str]]] = [
            (("recipients", key), entries) for key, entries in sharing.get("recipients", {}).items()
        ]
        lists += [(("markings", mid), e) for mid, e in sharing.get("markings", {}).items()]
        for path, entries in lists:
            for j, entry in enumerate(entries):
                where = (*federation_path, i, "sharing", *path, j)
                kind, _, value = entry.partition(":")
                if kind == "region" and value not in regions:
                    yield where, f"{value!r} is not a region declared in regions"
                elif kind == "member" and value not in members:
                    yield where, f"{value!r} is not a member declared in members"
                elif kind == "account" and value not in readers:
                    yield where, f"{value!r} is not a member account with the read role"
        for j, region in enumerate(sharing.get("receive", {}).get("regions", [])):
            if region not in regions:
                where = (*federation_path, i, "sharing", "receive", "regions", j)
                yield where, f"{region!r} is not a region declared in regions"


def _accounts(items: list[dict[str, Any]], member: str | None) -> tuple[Account, ...]:
    return tuple(
        Account(
            a["username"],
            frozenset(a["roles"]),
            a["secret_hash"],
            member,
            frozenset(normal_fingerprint(f) for f in a.get("certificates", [])),
            disabled=a.get("disabled", False),
        )
        for a in items
    )


def _contacts(items: list[dict[str, Any]]) -> tuple[Contact, ...]:
    return tuple(
        Contact(
            role=c["role"],
            name=c["name"],
            email=c["email"],
            phone=c.get("phone", ""),
            languages=tuple(c.get("languages", [])),
            key=ContactKey(**c["key"]) if "key" in c else None,
        )
        for c in items
    )


def _build(data: dict[str, Any], source: str) -> Federation:
    hub = data["hub"]
    return Federation(
        hub=HubInfo(
            id=hub["id"],
            name=hub["name"],
            identity=hub["identity"],
            contact=hub.get("contact", ""),
            accounts=_accounts(hub.get("accounts", []), None),
            limits=Limits(**hub.get("limits", {})),
            retention=Retention(**hub.get("retention", {})),
        ),
        regions=tuple(Region(r["id"], r["name"]) for r in data["regions"]),
        members=tuple(
            Member(
                id=m["id"],
                name=m["name"],
                country=m["country"],
                regions=tuple(m["regions"]),
                identity=m["identity"],
                accounts=_accounts(m["accounts"], m["id"]),
                public_keys=tuple(m.get("public_keys", [])),
                sharing=dict(m.get("sharing", {})),
                rate_limits=RateLimits(**m.get("rate_limits", {})),
                language=m.get("language", "en"),
                contacts=_contacts(m.get("contacts", [])),
                email_domains=tuple(d.lower() for d in m.get("email_domains", [])),
            )
            for m in data["members"]
        ),
        source=source,
        correlation=dict(data.get("correlation", {})),
        notify=dict(data.get("notify", {})),
    )


# libyaml's safe loader when PyYAML was built with it: the same documents and line marks,
# about ten times faster than the pure-Python one (a hub parses the file at each start).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_federation(text: str, source: str) -> Federation:
    """Validate and build a federation from YAML `text`; `source` names it in errors."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader either way
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise FederationError(source, [Problem(line, "", f"not valid YAML: {exc}")]) from exc
    problems = _schema_problems(data, root)
    if not problems:
        problems = _meaning_problems(data, root)
    if problems:
        raise FederationError(source, problems)
    return _build(data, source)


def load_federation(path: Path) -> Federation:
    """Read and validate the federation file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FederationError(str(path), [Problem(None, "", f"cannot read: {exc}")]) from exc
    return parse_federation(text, str(path))
