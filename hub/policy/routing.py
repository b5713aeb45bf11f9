"""Routing a submission: for each object, what each collection receives, and why.

Per recipient member: the verdict on the object as a whole (entitlement), the properties
withheld from it (granular markings), and the references it may not follow (default-deny
dependencies: a reference is followed only to an object the recipient receives, received
before, or every member may know). Removing references can leave an object incomplete
(a relationship without its endpoint); such an object is then not delivered to that
recipient, which may in turn hide objects referring to it, so this runs to a fixpoint.

Shared feeds (`public`, `region-*`) carry an object only when every other reader of the
feed is entitled to exactly the same content, so a feed is the same for all its readers
(TAXII and Kafka readers alike); everyone else entitled gets it in its own `member-<id>`.

The work is done per class, not per object and recipient: the objects of a report share
sender, markings and type, so each recipient's verdict is decided once per class of object
(`Policy.verdict_class`), and recipients that the submission's objects reach alike (same
verdicts, same properties withheld, same earlier objects held) form one audience whose
dependencies are settled and variants shaped once. Only what an object brings itself is
looked at per object: its references, granular markings, a revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cached_property
from typing import Any, Protocol

import orjson

from hub.collections import PUBLIC, member_alias, region_alias
from hub.federation import Member
from hub.model import Delivery, Verdict
from hub.policy.anonymity import anonymised
from hub.policy.dependencies import TOO_ENTANGLED, Settled, Shaped, Variants, settle
from hub.policy.entitlement import Policy
from hub.policy.pseudonyms import Pseudonymiser
from hub.policy.redaction import references
from hub.policy.rules import Recipient, SharingRules
from hub.policy.terms import REASON as TERMS_REASON
from hub.policy.terms import RULE as TERMS_RULE
from hub.policy.terms import followers, following, gated_markings, marked_by
from hub.policy.tlp import marked_properties, object_tlp
from hub.stix import timestamps
from hub.stix.markings import Tlp

REGION_PREFIX = region_alias("")
MEMBER_PREFIX = member_alias("")
NOTHING: frozenset[str] = frozenset()


class History(Protocol):
    """What was delivered before: the members that received any version of an object."""

    def received(self, object_id: str) -> frozenset[str]: ...

    def accounts(self, object_id: str, member: str) -> tuple[str, ...]:
        """The reader accounts of `member` an earlier version was limited to (TLP:RED);
        () when it went to all of them."""

    def collections(self, object_id: str) -> frozenset[str]:
        """The collections any earlier version was delivered to."""

    def owner(self, object_id: str) -> str | None:
        """The member that first published the id (None: nobody yet, or the hub)."""


class NoHistory:
    def received(self, object_id: str) -> frozenset[str]:
        return frozenset()

    def collections(self, object_id: str) -> frozenset[str]:
        return frozenset()

    def accounts(self, object_id: str, member: str) -> tuple[str, ...]:
        return ()

    def owner(self, object_id: str) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Routed:
    deliveries: tuple[Delivery, ...]
    verdicts: tuple[Verdict, ...]


def release_time(received: str, embargo: timedelta | None) -> str | None:
    if embargo is None:
        return None
    return timestamps.format_micros(timestamps.parse(received) + embargo)


class _Objects:
    """What routing reads of each object of one submission, read once."""

    def __init__(self, policy: Policy, sender: Member, objects: Sequence[Mapping[str, Any]]):
        self.objects = objects
        self.ids = [str(o.get("id")) for o in objects]
        self.in_submission = frozenset(self.ids)
        self.levels = [object_tlp(o) for o in objects]
        self.revoked = [o.get("revoked") is True for o in objects]
        refs = [tuple(dict.fromkeys(references(o))) for o in objects]
        self.refs = refs
        # Per object, the references that some recipient might not follow (every member
        # may follow markings and identities): the only ones dependency settling looks at.
        visible = policy.always_visible
        self.checked = [tuple(r for r in rs if not visible(r, sender)) for rs in refs]
        # References to objects outside the submission that not every member may follow.
        self.outside = tuple(
            dict.fromkeys(r for rs in self.checked for r in rs if r not in self.in_submission)
        )
        # Granular markings are read once per object, and judged per marking, not selector.
        self.marked = [policy.judged_markings(marked_properties(o), sender) for o in objects]
        self.granular = [i for i, marked in enumerate(self.marked) if marked]
        # Marking definitions: those without a TLP of their own follow what they mark (placed
        # at the end); those with one gate it, like a reference that cannot be pruned.
        self.follow = followers(objects)
        self.gates = gated_markings(objects, self.follow)
        self.dependencies = [refs[i] + self.gates[i] for i in range(len(objects))]
        self.red_ids = {self.ids[i] for i, level in enumerate(self.levels) if level == Tlp.RED}
        self.shapes = Variants(objects, self.levels)

    @cached_property
    def sizes(self) -> list[int]:
        """Each object's size, the unit of the fixpoint's work cap (only a fixpoint that
        denies something needs it)."""
        return [len(orjson.dumps(o)) for o in self.objects]


@dataclass(frozen=True, slots=True)
class _Decided:
    """Each object's verdicts for the other members, on the object alone: `columns` holds one
    tuple of verdicts (one per other member) per class of object, `column` says whose."""

    columns: list[tuple[Verdict, ...]]
    column: list[int]

    def of(self, i: int) -> tuple[Verdict, ...]:
        return self.columns[self.column[i]]


@dataclass
class _Audience:
    """Other members the submission reaches alike: what each may receive on the object alone,
    the properties withheld from it, and per reference outside the submission whether it is
    hidden from a TLP:RED referrer and from any other. Settled once for all of them."""

    members: list[int]  # indexes into the other members
    allowed: list[bool]
    withheld: dict[int, frozenset[str]]
    outside: dict[str, tuple[bool, bool]]
    settled: Settled = field(default_factory=lambda: Settled(()))
    terms: Settled | None = None  # on the sender's own terms, where objects depend on others'
    received: list[bool] = field(default_factory=list)  # after settling
    variants: list[Shaped | None] = field(default_factory=list)


@dataclass(frozen=True)
class Router:
    policy: Policy
    pseudonym_key: bytes

    @cached_property
    def _region_readers(self) -> dict[str, frozenset[str]]:
        """Each region feed's readers, by collection."""
        found: dict[str, set[str]] = {}
        for m in self.policy.members:
            for r in m.regions:
                found.setdefault(region_alias(r), set()).add(m.id)
        return {collection: frozenset(readers) for collection, readers in found.items()}

    def _readers(self, collection: str) -> set[str]:
        """The members that read a shared feed (`public` or `region-<id>`)."""
        if collection == PUBLIC:
            return {m.id for m in self.policy.members}
        return set(self._region_readers.get(collection, NOTHING))

    def _members_of(self, collection: str) -> set[str]:
        """The members that read a collection: a shared feed's readers, or a member's own."""
        if collection == PUBLIC or collection.startswith(REGION_PREFIX):
            return self._readers(collection)
        return {collection.removeprefix(MEMBER_PREFIX)}

    def _shared_feeds(self, level: Tlp | None, sender: Member) -> list[tuple[str, set[str]]]:
        """(collection, its readers) that may carry an object of `level` from `sender`."""
        members = self.policy.members
        if level == Tlp.CLEAR:
            return [(PUBLIC, {m.id for m in members})]
        if level != Tlp.GREEN:
            return []
        named: list[Recipient] = list(self.policy.rules[sender.id].levels[Tlp.GREEN].recipients)
        regions = (
            [r.id for r in self.policy.federation.regions]
            if any(r.kind == "all" for r in named)
            else [r.value for r in named if r.kind == "region"]
        )
        return [(region_alias(r), {m.id for m in members if r in m.regions}) for r in regions]

    @staticmethod
    def _red_accounts(rules: SharingRules, member: Member) -> tuple[str, ...]:
        """The reader accounts of `member` the sender's rules name for TLP:RED."""
        red = rules.levels[Tlp.RED].recipients
        return tuple(
            a.username
            for a in member.accounts
            if a.can("read") and Recipient("account", a.username) in red
        )

    def route(
        self,
        sender: Member,
        objects: Sequence[Mapping[str, Any]],
        received: str,
        history: History,
    ) -> list[Routed]:
        """The deliveries and verdicts of each of `objects` (one accepted submission)."""
        if not objects:
            return []
        others = [m for m in self.policy.members if m.id != sender.id]
        facts = _Objects(self.policy, sender, objects)
        decided = self._decide(sender, others, facts, history)
        # Objects whose outcome depends on other members' objects: a reference to one, or to
        # an object of the submission that depends so. What each recipient got then tells
        # who holds those objects, which is not the sender's to learn: the decision also
        # records the outcome on the sender's own terms, which its explanation shows.
        foreign = frozenset(r for r in facts.outside if _foreign(r, sender, history))
        depends = [any(r in foreign for r in facts.checked[i]) for i in range(len(objects))]
        if foreign:
            _spread_to_referrers(depends, facts.ids, facts.refs)
        audiences = self._audiences(sender, others, facts, decided, history)
        for audience in audiences:
            self._prune(facts, audience, foreign if any(depends) else None)
        verdicts = self._settled_verdicts(facts, decided, audiences, depends)
        out = self._place(sender, others, facts, audiences, verdicts, received, history)
        return self._follow_terms(sender, facts, out)

    def _decide(
        self, sender: Member, others: list[Member], facts: _Objects, history: History
    ) -> _Decided:
        """Each object's verdict per other member on the object alone: decided once per class
        of object; a revocation then reaches whoever had the object, whatever the rules."""
        policy = self.policy
        anonymous = policy.rules[sender.id].anonymous
        columns: list[tuple[Verdict, ...]] = []
        column: list[int] = []
        classes: dict[Hashable, int] = {}
        for i, obj in enumerate(facts.objects):
            key = policy.verdict_class(obj, sender, anonymous)
            found = classes.get(key)
            if found is None:
                found = classes[key] = len(columns)
                columns.append(tuple(policy.verdict(obj, sender, m) for m in others))
            if facts.revoked[i]:
                holders = history.received(facts.ids[i])
                if holders:
                    columns.append(_revoked(columns[found], holders))
                    found = len(columns) - 1
            column.append(found)
        return _Decided(columns, column)

    def _audiences(
        self,
        sender: Member,
        others: list[Member],
        facts: _Objects,
        decided: _Decided,
        history: History,
    ) -> list[_Audience]:
        """The other members grouped by everything dependency settling and shaping read of a
        recipient, in work per class and per marked object or outside reference, not per
        object; members the submission reaches alike settle together."""
        policy = self.policy
        rules = policy.rules[sender.id]
        holders = {ref: history.received(ref) for ref in facts.outside}
        groups: dict[Hashable, _Audience] = {}
        for k, member in enumerate(others):
            entitled = tuple(column[k].allowed for column in decided.columns)
            withheld = {
                i: frozenset(
                    policy.withheld_marked(facts.marked[i], facts.levels[i], sender, member)
                )
                for i in facts.granular
            }
            outside: dict[str, tuple[bool, bool]] = {}
            for ref in facts.outside:
                if member.id not in holders[ref]:
                    outside[ref] = (True, True)
                    continue
                # TLP:RED reaches named reader accounts only: a reference to it is followed
                # only by an object that reaches no other account (TLP:RED itself, to accounts
                # that have the target), or it would tell the member's other readers that the
                # target exists.
                limited = history.accounts(ref, member.id)
                red_to = set(self._red_accounts(rules, member)) if limited else NOTHING
                outside[ref] = (bool(limited) and not red_to <= set(limited), bool(limited))
            key = (entitled, tuple(withheld.values()), tuple(outside.values()))
            group = groups.get(key)
            if group is None:
                allowed = [decided.of(i)[k].allowed for i in range(len(facts.objects))]
                groups[key] = _Audience([k], allowed, withheld, outside)
            else:
                group.members.append(k)
        return list(groups.values())

    def _shaper(
        self, facts: _Objects, audience: _Audience, foreign: frozenset[str] | None
    ) -> Callable[[int, set[str]], Shaped]:
        """Object i's shape for `audience` when the submission's objects it may follow are
        `seen`; with `foreign`, as if it held every object of other members that the
        submission refers to (the sender's own terms)."""
        in_submission, red_ids = facts.in_submission, facts.red_ids
        outside, checked, gates, levels = audience.outside, facts.checked, facts.gates, facts.levels
        withheld, shapes = audience.withheld, facts.shapes

        def hidden(ref: str, referrer_red: bool, seen: set[str]) -> bool:
            if ref in in_submission:
                return ref not in seen or (ref in red_ids and not referrer_red)
            if foreign is not None and ref in foreign:
                return False
            return outside[ref][0 if referrer_red else 1]

        def shape(i: int, seen: set[str]) -> Shaped:
            red = levels[i] == Tlp.RED
            for gate in gates[i]:
                # As for references: a TLP:RED marking definition only marks what goes
                # to the same named accounts (TLP:RED itself), or others would see it.
                if gate not in seen or (gate in red_ids and not red):
                    problem = f"marked with {gate}, which this member may not receive"
                    return Shaped((i, frozenset(), (gate,)), {}, frozenset(), problem)
            hiding = tuple(ref for ref in checked[i] if hidden(ref, red, seen))
            return shapes.get(i, withheld.get(i, NOTHING), hiding)

        return shape

    def _prune(self, facts: _Objects, audience: _Audience, foreign: frozenset[str] | None) -> None:
        """Default-deny dependencies for one audience, to a fixpoint (and, with `foreign`,
        again on the sender's own terms); then each object's variant for it.

        Most submissions deny nothing here: every object is shaped once against what the
        audience may receive, and only when one of them is incomplete does the fixpoint run.
        """
        if not any(audience.allowed):
            audience.settled = Settled((None,) * len(audience.allowed))
            audience.terms = audience.settled if foreign is not None else None
            audience.received = audience.allowed
            audience.variants = [None] * len(audience.allowed)
            return
        shape = self._shaper(facts, audience, None)
        audience.settled = self._settle(facts, audience.allowed, shape)
        if foreign is not None:
            own_terms = self._shaper(facts, audience, foreign)
            audience.terms = self._settle(facts, audience.allowed, own_terms)
        settled = audience.settled
        audience.received = [
            allowed and not settled.exhausted and (shaped is None or shaped.problem is None)
            for allowed, shaped in zip(audience.allowed, settled.shaped, strict=True)
        ]
        if audience.received == audience.allowed:
            # Nothing denied: each object was shaped against what the audience receives.
            audience.variants = list(settled.shaped)
            return
        seen = {facts.ids[i] for i, ok in enumerate(audience.received) if ok}
        audience.variants = [
            shape(i, seen) if ok else None for i, ok in enumerate(audience.received)
        ]

    @staticmethod
    def _settle(
        facts: _Objects, allowed: list[bool], shape: Callable[[int, set[str]], Shaped]
    ) -> Settled:
        """The fixpoint of hub/policy/dependencies.py, run only when an object is incomplete
        against everything the audience may receive on the objects alone."""
        visible = {facts.ids[i] for i, ok in enumerate(allowed) if ok}
        first = [shape(i, visible) if ok else None for i, ok in enumerate(allowed)]
        if all(s is None or s.problem is None for s in first):
            return Settled(tuple(first))
        return settle(facts.ids, facts.dependencies, facts.sizes, allowed, shape)

    def _settled_verdicts(
        self,
        facts: _Objects,
        decided: _Decided,
        audiences: list[_Audience],
        depends: list[bool],
    ) -> list[tuple[Verdict, ...]]:
        """Each object's verdicts per other member once dependencies are settled: the class's
        own tuple where settling changed nothing, else rebuilt for that object."""
        out = [decided.of(i) for i in range(len(facts.objects))]
        rows: dict[int, list[Verdict]] = {}
        for audience in audiences:
            settled, terms = audience.settled, audience.terms
            for i, entitled in enumerate(audience.allowed):
                shaped = settled.shaped[i] if entitled else None
                changed = entitled and (
                    settled.exhausted
                    or (shaped is not None and (shaped.problem is not None or shaped.touched))
                )
                if not (changed or depends[i]):
                    continue
                row = rows.setdefault(i, list(out[i]))
                for k in audience.members:
                    verdict = _after_settling(row[k], settled, i)
                    if depends[i] and terms is not None:
                        verdict = replace(verdict, own_rules=_after_settling(row[k], terms, i))
                    row[k] = verdict
        for i, row in rows.items():
            out[i] = tuple(row)
        return out

    def _variants(
        self, sender: Member, facts: _Objects, audiences: list[_Audience]
    ) -> list[list[dict[str, Any] | None]]:
        """Per object, the content each audience receives (None: it receives none): made once
        per distinct variant, pseudonymised and, for an anonymous sender, anonymised."""
        rules = self.policy.rules[sender.id]
        pseudonymise = Pseudonymiser(self.pseudonym_key, rules.pseudonymise)
        hub_identity = self.policy.federation.hub.identity
        out: list[list[dict[str, Any] | None]] = []
        for i in range(len(facts.objects)):
            # Audiences share one only when what they may see is the same (the same
            # properties withheld, the same references hidden).
            made: dict[tuple[int, frozenset[str], tuple[str, ...]], dict[str, Any]] = {}
            contents: list[dict[str, Any] | None] = []
            for audience in audiences:
                variant = audience.variants[i]
                if variant is None:
                    contents.append(None)
                    continue
                content = made.get(variant.key)
                if content is None:
                    content = pseudonymise(variant.content)
                    if rules.anonymous:
                        content = anonymised(content, sender.identity, hub_identity)
                    made[variant.key] = content
                contents.append(content)
            out.append(contents)
        return out

    def _place(
        self,
        sender: Member,
        others: list[Member],
        facts: _Objects,
        audiences: list[_Audience],
        verdicts: list[tuple[Verdict, ...]],
        received: str,
        history: History,
    ) -> list[Routed]:
        """Each object in the feeds, with its verdicts (the sender's own put in)."""
        policy = self.policy
        variants = self._variants(sender, facts, audiences)
        audience_of = [0] * len(others)
        for n, audience in enumerate(audiences):
            for k in audience.members:
                audience_of[k] = n
        release_at = release_time(received, policy.rules[sender.id].embargo)
        own = policy.verdict(facts.objects[0], sender, sender)
        at = next((n for n, m in enumerate(policy.members) if m.id == sender.id), None)
        # The sender's verdict put in, once per tuple: objects of one class share theirs
        # (keyed by identity: every tuple lives as long as this call).
        full: dict[int, tuple[Verdict, ...]] = {}

        def with_own(row: tuple[Verdict, ...]) -> tuple[Verdict, ...]:
            if at is None:
                return row  # not a member (the callers look it up first)
            found = full.get(id(row))
            if found is None:
                found = full[id(row)] = (*row[:at], own, *row[at:])
            return found

        # Where an object goes depends on its content only through which audiences receive
        # it, when all of them receive the same variant: placed once per such class (its
        # level, who receives it), then each object of the class the same way. Revocations
        # and objects shaped differently per audience are placed one by one.
        plans: dict[Hashable, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        anonymous = policy.rules[sender.id].anonymous
        out: list[Routed] = []
        for i, obj in enumerate(facts.objects):
            row = variants[i]
            content = next((c for c in row if c is not None), None)
            alike = not facts.revoked[i] and all(c is None or c is content for c in row)
            key = (facts.levels[i], tuple(c is not None for c in row)) if alike else None
            plan = plans.get(key) if key is not None else None
            if plan is None or content is None:
                per_member = [row[n] for n in audience_of]
                deliveries = self._deliveries(
                    sender, others, facts, i, per_member, verdicts[i], release_at, history
                )
                if key is not None:
                    plans[key] = tuple((d.collection, d.accounts) for d in deliveries[1:])
            else:
                onward = facts.levels[i] not in (Tlp.AMBER_STRICT, Tlp.RED)
                deliveries = (
                    Delivery(member_alias(sender.id), obj, onward_sharing=onward),
                    *(
                        Delivery(
                            collection,
                            content,
                            accounts=accounts,
                            onward_sharing=onward,
                            release_at=release_at,
                            anonymous=anonymous,
                        )
                        for collection, accounts in plan
                    ),
                )
            out.append(Routed(deliveries, with_own(verdicts[i])))
        return out

    def _deliveries(
        self,
        sender: Member,
        others: list[Member],
        facts: _Objects,
        i: int,
        contents: list[dict[str, Any] | None],
        verdicts: tuple[Verdict, ...],
        release_at: str | None,
        history: History,
    ) -> tuple[Delivery, ...]:
        """Object i in the feeds: the sender's own, a shared feed where all its other readers
        receive the same content, each other recipient's own feed otherwise."""
        rules = self.policy.rules[sender.id]
        level = facts.levels[i]
        onward = level not in (Tlp.AMBER_STRICT, Tlp.RED)
        deliveries = [Delivery(member_alias(sender.id), facts.objects[i], onward_sharing=onward)]
        covered: set[str] = set()
        shared = self._shared_feeds(level, sender) if level != Tlp.RED else []
        if facts.revoked[i] and level != Tlp.RED:
            # The revocation goes where earlier versions went, so a reader of a region
            # feed learns of it there too (when the feed may carry it whole).
            earlier = history.collections(facts.ids[i])
            listed = {c for c, _ in shared}
            shared += [
                (c, self._readers(c))
                for c in sorted(earlier - listed)
                if c == PUBLIC or c.startswith(REGION_PREFIX)
            ]
        position = {m.id: k for k, m in enumerate(others)} if shared else {}
        for collection, readers in shared:
            readers.discard(sender.id)
            if not readers:
                continue
            found = [contents[position[r]] for r in readers]
            first = found[0]
            if first is not None and all(c is first or c == first for c in found):
                deliveries.append(
                    Delivery(
                        collection,
                        first,
                        onward_sharing=onward,
                        release_at=release_at,
                        anonymous=rules.anonymous,
                    )
                )
                covered |= readers
        for k, member in enumerate(others):
            content = contents[k]
            if content is None or member.id in covered:
                continue
            accounts: tuple[str, ...] = ()
            if verdicts[k].rule == "revocation":
                # As the member had the object: only to the accounts it reached, if any.
                accounts = history.accounts(facts.ids[i], member.id)
            elif level == Tlp.RED:
                accounts = self._red_accounts(rules, member)
            deliveries.append(
                Delivery(
                    member_alias(member.id),
                    content,
                    accounts=accounts,
                    onward_sharing=onward,
                    release_at=release_at,
                    anonymous=rules.anonymous,
                )
            )
        return tuple(deliveries)

    def _follow_terms(self, sender: Member, facts: _Objects, out: list[Routed]) -> list[Routed]:
        """Marking definitions without a TLP of their own go where what they mark goes."""
        rules = self.policy.rules[sender.id]
        pseudonymise = Pseudonymiser(self.pseudonym_key, rules.pseudonymise)
        hub_identity = self.policy.federation.hub.identity
        objects, ids = facts.objects, facts.ids
        for f in sorted(facts.follow):
            content = pseudonymise(dict(objects[f]))
            if rules.anonymous:
                content = anonymised(content, sender.identity, hub_identity)
            own_feed = out[f].deliveries[0].collection
            carried = following(
                (d for j in marked_by(objects, ids[f]) for d in out[j].deliveries), content
            )
            extra = [d for d in carried if d.collection != own_feed]
            reached = {m for d in extra for m in self._members_of(d.collection)}
            decided = tuple(
                Verdict(v.member, True, TERMS_RULE, TERMS_REASON)
                if v.member in reached and not v.allowed
                else v
                for v in out[f].verdicts
            )
            out[f] = Routed((out[f].deliveries[0], *extra), decided)
        return out


def _revoked(column: tuple[Verdict, ...], holders: frozenset[str]) -> tuple[Verdict, ...]:
    """A revocation's verdicts: it reaches everyone who had the object, whatever the rules
    now say (what they say is kept, as `overridden`)."""
    return tuple(
        Verdict(
            v.member,
            True,
            "revocation",
            "received an earlier version of the object",
            overridden=v,
        )
        if v.member in holders and not v.allowed
        else v
        for v in column
    )


def _after_settling(current: Verdict, settled: Settled, i: int) -> Verdict:
    """Object i's verdict once the recipient's dependencies are `settled`."""
    if not current.allowed:
        return current
    shaped = settled.shaped[i]
    problem = TOO_ENTANGLED if settled.exhausted else (shaped.problem if shaped else None)
    if problem is not None:
        return Verdict(
            current.member,
            False,
            "dependencies",
            f"incomplete without objects or properties this member may not receive ({problem})",
            overridden=current.overridden,
        )
    if shaped is not None and shaped.touched:
        return replace(current, withheld=tuple(sorted(shaped.touched)))
    return current


def _foreign(ref: str, sender: Member, history: History) -> bool:
    """A reference (outside the submission) to an object another member or the hub published."""
    owner = history.owner(ref)
    return owner is not None and owner != sender.id


def _spread_to_referrers(
    marked: list[bool], ids: Sequence[str], refs: Sequence[tuple[str, ...]]
) -> None:
    """Mark, in place, every object that refers (directly or through others of the
    submission) to a marked one; linear in the references."""
    by_id: dict[str, list[int]] = {}
    for i, ident in enumerate(ids):
        by_id.setdefault(ident, []).append(i)
    referrers: dict[int, list[int]] = {}
    for i, targets in enumerate(refs):
        for ref in targets:
            for j in by_id.get(ref, ()):
                referrers.setdefault(j, []).append(i)
    pending = [i for i, flag in enumerate(marked) if flag]
    while pending:
        for i in referrers.get(pending.pop(), ()):
            if not marked[i]:
                marked[i] = True
                pending.append(i)
