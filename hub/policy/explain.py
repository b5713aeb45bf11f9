"""Explaining the rules: per object and recipient, per member and level, and between files.

What `cirt-hub policy explain|check|diff` print. Explanations come from the same Router the
pipeline runs, so what they say is what routing does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hub.federation import Federation, Member
from hub.model import Item
from hub.policy.entitlement import Policy
from hub.policy.marking import marked
from hub.policy.routing import NoHistory, Router
from hub.policy.tlp import LABELS, object_tlp
from hub.stix.markings import Tlp
from hub.stix.timestamps import rfc3339_now

RULED_LEVELS = (Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


def explain_objects(
    federation: Federation,
    sender: Member,
    objects: Sequence[Mapping[str, Any]],
    to: str | None = None,
) -> Iterator[str]:
    """Lines saying, per object and recipient, allowed or denied and the rule that decided.

    Objects are marked as the pipeline marks them (the sender's `default_tlp`), then routed
    as one submission (references between them count), with no history of earlier
    deliveries and a throwaway pseudonymisation key (values are not shown).
    """
    received = rfc3339_now()
    default = sender.sharing.get("default_tlp")
    items = [marked(Item(i, obj), sender.id, default) for i, obj in enumerate(objects)]
    for item in items:
        if item.refusal is not None:
            yield f"{item.id or 'an object'}: refused: {item.refusal.message}"
    accepted = [item.obj for item in items if item.refusal is None]
    routed = Router(Policy(federation), b"explain").route(sender, accepted, received, NoHistory())
    width = max(len(m.id) for m in federation.members)
    for obj, result in zip(accepted, routed, strict=True):
        level = object_tlp(obj)
        label = LABELS[level] if level is not None else "no TLP marking"
        yield f"{obj.get('id')} ({label}) from {sender.id}:"
        for verdict in result.verdicts:
            if to is not None and verdict.member != to:
                continue
            decided = "allowed" if verdict.allowed else "denied "
            line = f"  {verdict.member:<{width}}  {decided}  {verdict.rule}: {verdict.reason}"
            if verdict.withheld:
                line += f" (without {', '.join(verdict.withheld)})"
            yield line
        collections = list(dict.fromkeys(d.collection for d in result.deliveries))
        embargo = next((d.release_at for d in result.deliveries if d.release_at), None)
        yield f"  delivered to: {', '.join(collections)}" + (
            f" (others after the embargo, {embargo})" if embargo else ""
        )


def _receivers(policy: Policy, level: Tlp, sender: Member) -> list[str]:
    return [
        m.id
        for m in policy.members
        if m.id != sender.id and policy.level_match(level, sender, m)[0]
    ]


def summary(federation: Federation) -> Iterator[str]:
    """Per member, who receives each TLP level from it, and its other rules."""
    policy = Policy(federation)
    for member in federation.members:
        rules = policy.rules[member.id]
        yield f"{member.id}:"
        yield "  TLP:CLEAR → every member and public"
        for level in RULED_LEVELS:
            audience = rules.levels[level]
            named = ", ".join(map(str, audience.recipients)) or "nobody"
            who = ", ".join(_receivers(policy, level, member)) or "no other member"
            yield f"  {LABELS[level]} → {named} ({who})"
        extras = []
        if rules.anonymous:
            extras.append("anonymous")
        if rules.embargo:
            extras.append(f"embargo {rules.embargo}")
        if rules.pseudonymise:
            extras.append(f"pseudonymises {', '.join(sorted(rules.pseudonymise))}")
        if rules.deny_types:
            extras.append(f"never shares {', '.join(sorted(rules.deny_types))}")
        if rules.allow_types is not None:
            extras.append(f"shares only {', '.join(sorted(rules.allow_types))}")
        want = rules.receive
        if want.types is not None:
            extras.append(f"receives only {', '.join(sorted(want.types))}")
        if want.regions is not None:
            extras.append(f"receives only from {', '.join(sorted(want.regions))}")
        if want.min_confidence is not None:
            extras.append(f"receives only confidence ≥ {want.min_confidence}")
        if extras:
            yield "  " + "; ".join(extras)


def access(federation: Federation) -> set[tuple[str, str, Tlp]]:
    """(sender, recipient, level) for every level a recipient may receive from a sender."""
    policy = Policy(federation)
    return {
        (sender.id, member.id, level)
        for sender in policy.members
        for member in policy.members
        if member.id != sender.id
        for level in Tlp
        if policy.level_match(level, sender, member)[0]
    }


def diff(old: Federation, new: Federation) -> Iterator[str]:
    """Which member pairs gain or lose access to which TLP levels, from `old` to `new`."""
    before, after = access(old), access(new)
    changes = [("+", t, "gains") for t in after - before] + [
        ("-", t, "loses") for t in before - after
    ]
    for sign, (sender, member, level), verb in sorted(
        changes, key=lambda c: (c[1][0], c[1][1], c[1][2], c[0])
    ):
        yield f"{sign} {member} {verb} {LABELS[level]} from {sender}"
