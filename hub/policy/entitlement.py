"""Who may receive an object, and which of its properties, under the federation's rules.

One `Policy` per federation file. `verdict()` decides one (object, recipient) pair on the
object as a whole, checking in order: a TLP marking at all, the sender's type rules, the
sender's recipients for the level, the sender's rules for other markings, the recipient's
own filter. The first rule that refuses decides, and the verdict names it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.federation import Federation, Member
from hub.model import Verdict
from hub.policy.rules import Audience, SharingRules, parse_rules
from hub.policy.tlp import LABELS, object_markings, object_tlp
from hub.stix.markings import Tlp, tlp_by_marking_id


def _allow(member: Member, rule: str, reason: str) -> Verdict:
    return Verdict(member.id, True, rule, reason)


def _deny(member: Member, rule: str, reason: str) -> Verdict:
    return Verdict(member.id, False, rule, reason)


@dataclass(frozen=True)
class Policy:
    """The federation's sharing rules, parsed once, and the decisions they imply."""

    federation: Federation
    rules: Mapping[str, SharingRules] = field(init=False)

    named: frozenset[str] = field(init=False)  # identities of members not anonymous
    # The highest `receive.min_confidence` of any member: a confidence at or above it is
    # below no one's minimum (None: no member sets one).
    confidence_floor: int | None = field(init=False)

    def __post_init__(self) -> None:
        rules = {m.id: parse_rules(m.sharing, m.regions) for m in self.federation.members}
        object.__setattr__(self, "rules", rules)
        named = frozenset(m.identity for m in self.federation.members if not rules[m.id].anonymous)
        object.__setattr__(self, "named", named)
        floors = [r.receive.min_confidence for r in rules.values()]
        found = [f for f in floors if f is not None]
        object.__setattr__(self, "confidence_floor", max(found) if found else None)

    @property
    def members(self) -> tuple[Member, ...]:
        return self.federation.members

    def level_match(self, level: Tlp, sender: Member, member: Member) -> tuple[bool, str, str]:
        """Whether `member` may receive `level` content from `sender`: (ok, rule, reason)."""
        label = LABELS[level]
        if level == Tlp.CLEAR:
            return True, "tlp.clear", f"{label} reaches every member"
        audience: Audience = self.rules[sender.id].levels[level]
        found = audience.match(member)
        if found is not None:
            return True, audience.rule, f"{label}: {audience.rule} names {found}"
        if not audience.recipients:
            return False, audience.rule, f"{label}: {audience.rule} names nobody"
        return False, audience.rule, f"{label}: {audience} does not include {member.id}"

    def _marking_match(self, mid: str, sender: Member, member: Member) -> tuple[bool, str]:
        audience = self.rules[sender.id].markings.get(mid)
        if audience is None or audience.match(member) is not None:
            return True, ""
        return False, audience.rule

    def verdict(self, obj: Mapping[str, Any], sender: Member, member: Member) -> Verdict:
        """May `member` receive `obj` (from `sender`) at all? Properties aside."""
        if member.id == sender.id:
            return _allow(member, "own", "the sender's own object")
        rules = self.rules[sender.id]
        kind = str(obj.get("type", ""))
        if rules.anonymous and obj.get("id") == sender.identity:
            return _deny(member, "sharing.anonymous", "the sender is anonymous: not its identity")
        level = object_tlp(obj)
        if level is None:
            return _deny(member, "tlp", "no TLP marking on the object: it stays with the sender")
        if kind in rules.deny_types:
            return _deny(member, "sharing.types.deny", f"the sender does not share {kind!r}")
        if rules.allow_types is not None and kind not in rules.allow_types:
            return _deny(member, "sharing.types.allow", f"{kind!r} is not in the sender's allow")
        ok, rule, reason = self.level_match(level, sender, member)
        if not ok:
            return _deny(member, rule, reason)
        for mid in object_markings(obj):
            allowed, marking_rule = self._marking_match(mid, sender, member)
            if not allowed:
                return _deny(member, marking_rule, f"{marking_rule} does not include {member.id}")
        want = self.rules[member.id].receive
        if want.types is not None and kind not in want.types:
            return _deny(member, "sharing.receive.types", f"{member.id} does not want {kind!r}")
        if want.regions is not None and (
            rules.anonymous or not want.regions.intersection(sender.regions)
        ):
            return _deny(
                member,
                "sharing.receive.regions",
                f"{member.id} wants content only from senders in {sorted(want.regions)}",
            )
        confidence = obj.get("confidence")
        if (
            want.min_confidence is not None
            and isinstance(confidence, int)
            and confidence < want.min_confidence
        ):
            return _deny(
                member,
                "sharing.receive.min_confidence",
                f"confidence {confidence} is below {member.id}'s minimum {want.min_confidence}",
            )
        return _allow(member, rule, reason)

    def verdict_class(self, obj: Mapping[str, Any], sender: Member, anonymous: bool) -> Hashable:
        """Everything `verdict` reads of `obj`: objects of one class get the same verdicts
        from `sender` (whose rules say `anonymous`). Kept beside `verdict`, in step with it."""
        confidence = obj.get("confidence")
        floor = self.confidence_floor
        return (
            str(obj.get("type", "")),
            anonymous and obj.get("id") == sender.identity,
            tuple(object_markings(obj)),
            # Only a confidence below some member's minimum is read (and named in the
            # reason); a bool is an int to that check, and True == 1: the type tells them apart.
            (type(confidence), confidence)
            if isinstance(confidence, int) and floor is not None and confidence < floor
            else None,
        )

    def judged_markings(
        self, marked: Mapping[str, frozenset[str]], sender: Member
    ) -> dict[str, frozenset[str]]:
        """The part of `marked` that can withhold anything: TLP markings and the markings
        the sender's rules name (any other marking reaches whoever receives the object)."""
        table, named = tlp_by_marking_id(), self.rules[sender.id].markings
        return {mid: props for mid, props in marked.items() if mid in table or mid in named}

    def withheld_marked(
        self,
        marked: Mapping[str, frozenset[str]],
        floor: Tlp | None,
        sender: Member,
        member: Member,
    ) -> set[str]:
        """Top-level properties under granular markings `member` is not entitled to, from the
        object's `marked_properties` and TLP level (read once per object)."""
        if member.id == sender.id:
            return set()
        table = tlp_by_marking_id()
        out: set[str] = set()
        for mid, properties in marked.items():
            level = table.get(mid)
            if level is not None and floor is not None and level <= floor:
                ok = True
            elif level == Tlp.RED:
                # RED reaches named accounts only, and an object is delivered per member: a
                # RED property inside a less restricted object goes to nobody but the sender.
                ok = False
            elif level is not None:
                ok = self.level_match(level, sender, member)[0]
            else:
                ok = self._marking_match(mid, sender, member)[0]
            if not ok:
                out |= properties
        return out

    def always_visible(self, ref: str, sender: Member) -> bool:
        """References every member may follow: markings, the hub and member identities.

        An anonymous sender's identity counts too: every mention of it is replaced by the
        hub's identity before anyone else receives the object.
        """
        if ref.startswith("marking-definition--") or ref == self.federation.hub.identity:
            return True
        return ref == sender.identity or ref in self.named
