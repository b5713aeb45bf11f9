"""Major-incident alerts as STIX 2.1: one `grouping` per observable cluster and recipient.

A grouping (context `suspicious-activity`) rather than an incident, because it can refer to
the reports behind it (`object_refs`), which an incident cannot. Each member gets its own
alert object for a cluster (its id is derived from the cluster and the member), referring
only to the contributing objects that member received, under the ids it received them by;
counts of members and countries are given to all, never who they are. Each new report
that changes the counts gives every recipient a new version of its alert, as does every
response that changes the counts per state (hub.correlate.responses): how many recipients
acknowledged, are investigating, are affected or not, have mitigated; never who, unless
the responder chose to be named.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.correlate.english import counted
from hub.correlate.rules import CorrelationRule, parse_rules
from hub.stix import timestamps
from hub.stix.markings import Tlp, tlp2_id

_NAMESPACE = uuid.UUID("2f6b9c1e-8f4a-4d8e-9b1a-3c5d7e9f0a12")
ALERT_PROPERTY = "x_cirt_hub_alert"
_KIND_WORDS = {
    "ipv4-addr": "IPv4 address",
    "ipv6-addr": "IPv6 address",
    "domain-name": "domain",
    "url": "URL",
    "email-addr": "e-mail address",
    "vulnerability": "vulnerability",
    "malware": "malware",
    "attack-pattern": "attack pattern",
    "attack-pattern-id": "ATT&CK technique",
}


@dataclass(frozen=True, slots=True, order=True)
class NamedMember:
    """A member that chose to be named to an alert's recipients, and what it said."""

    identity: str
    name: str
    sighted: bool  # it sighted what the alert is about
    state: str | None  # its latest response, if it gave one named


@dataclass(frozen=True, slots=True)
class ClusterState:
    """What every recipient's alert for one cluster says, at one version."""

    rule: CorrelationRule
    key: str  # the keyed observable ("kind:hmac")
    members: int
    countries: int
    first_seen: datetime
    last_seen: datetime
    created: datetime
    modified: datetime
    sighted: int = 0  # members that sighted it
    responses: tuple[tuple[str, int], ...] = ()  # (state, how many recipients are in it)
    named: tuple[NamedMember, ...] = ()
    first_response: datetime | None = None

    @property
    def kind(self) -> str:
        return self.key.rsplit(":", 1)[0]


def alert_id(rule: CorrelationRule, key: str, member: str) -> str:
    return f"grouping--{uuid.uuid5(_NAMESPACE, f'{rule.scope}|{key}|{member}')}"


def alert(
    state: ClusterState, member: str, refs: Iterable[str], hub_identity: str
) -> dict[str, Any]:
    """The alert object `member` receives (unsigned)."""
    kind = state.kind
    words = _KIND_WORDS.get(kind, "file hash" if kind.startswith("file:") else kind)
    first, last = (timestamps.format_micros(t) for t in (state.first_seen, state.last_seen))
    members = counted(state.members, "member", "members")
    countries = counted(state.countries, "country", "countries")
    return {
        "type": "grouping",
        "spec_version": "2.1",
        "id": alert_id(state.rule, state.key, member),
        "created": timestamps.format_micros(state.created),
        "modified": timestamps.format_micros(state.modified),
        "created_by_ref": hub_identity,
        "name": (f"Major incident: the same {words} reported by {members} in {countries}"),
        "description": (
            f"{counted(state.members, 'member CIRT', 'member CIRTs')} in {countries} "
            f"reported the same {words} between {first} and {last} "
            f"(rule: {state.rule.describe()}). The references are the reports you received; "
            "the value is in them."
        ),
        "context": "suspicious-activity",
        "object_refs": sorted(refs),
        "object_marking_refs": [tlp2_id(Tlp.AMBER)],
        ALERT_PROPERTY: {
            "observable": state.key,
            "kind": kind,
            "members": state.members,
            "countries": state.countries,
            "first_seen": first,
            "last_seen": last,
            "scope": state.rule.scope,
            **_response_fields(state),
        },
    }


def _response_fields(state: ClusterState) -> dict[str, Any]:
    """Sightings and responses as every recipient sees them: counts, and the names offered."""
    since = int((state.modified - state.first_seen).total_seconds())
    fields: dict[str, Any] = {
        "sighted": state.sighted,
        "responses": dict(state.responses),
        "seconds_since_first_report": max(since, 0),
    }
    if state.first_response is not None:
        fields["first_acknowledged"] = timestamps.format_micros(state.first_response)
        waited = int((state.first_response - state.created).total_seconds())
        fields["seconds_to_first_acknowledgement"] = max(waited, 0)
    if state.named:
        fields["named"] = [
            {
                "identity": n.identity,
                "name": n.name,
                "sighted": n.sighted,
                **({"state": n.state} if n.state else {}),
            }
            for n in state.named
        ]
    return fields


def alert_state(alert: Mapping[str, object], revoked: bool, windows: dict[str, float]) -> str:
    """revoked; active while reports keep coming within the rule's window; else quiet."""
    if revoked:
        return "revoked"
    last = alert.get("last_seen")
    window = windows.get(str(alert.get("scope")), 24 * 3600.0)
    try:
        seen = timestamps.parse(str(last))
    except ValueError:
        return "quiet"
    return "active" if (datetime.now(UTC) - seen).total_seconds() <= window else "quiet"


def rule_windows(correlation: Mapping[str, Any]) -> dict[str, float]:
    """Each rule scope's window in seconds, from the federation file's `correlation`."""
    return {rule.scope: rule.window.total_seconds() for rule in parse_rules(correlation)}
