"""REFERENCE ONLY, not the hub's router: `Router.route` as it was before routing was computed
per class of object (hub/policy/routing.py at main b431e17, copied unchanged below this note).

tests/policy/test_routing_differential.py asserts the hub's router gives exactly the same
`Routed` results as this one on random federations and submissions, and bench/routing.py
times both on the bench workload. It imports the same helpers (entitlement, dependencies,
terms, pseudonyms) as the hub's router, so it checks the router, not them; only
`references` (hub/policy/redaction.py), since rewritten for speed, is kept here as it was.

The original module docstring:

Routing a submission: for each object, what each collection receives, and why.

Per recipient member: the verdict on the object as a whole (entitlement), the properties
withheld from it (granular markings), and the references it may not follow (default-deny
dependencies: a reference is followed only to an object the recipient receives, received
before, or every member may know). Removing references can leave an object incomplete
(a relationship without its endpoint); such an object is then not delivered to that
recipient, which may in turn hide objects referring to it, so this runs to a fixpoint.

Shared feeds (`public`, `region-*`) carry an object only when every other reader of the
feed is entitled to exactly the same content, so a feed is the same for all its readers
(TAXII and Kafka readers alike); everyone else entitled gets it in its own `member-<id>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

import orjson

from hub.collections import PUBLIC, member_alias, region_alias
from hub.federation import Member
from hub.model import Delivery, Verdict
from hub.policy.anonymity import anonymised
from hub.policy.dependencies import TOO_ENTANGLED, Settled, Shaped, Variants, settle
from hub.policy.entitlement import Policy
from hub.policy.pseudonyms import Pseudonymiser
from hub.policy.rules import Recipient, SharingRules
from hub.policy.terms import REASON as TERMS_REASON
from hub.policy.terms import RULE as TERMS_RULE
from hub.policy.terms import followers, following, gated_markings, marked_by
from hub.policy.tlp import marked_properties, object_tlp
from hub.stix import timestamps
from hub.stix.markings import Tlp

REGION_PREFIX = region_alias("")
MEMBER_PREFIX = member_alias("")


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


@dataclass(frozen=True)
class Router:
    policy: Policy
    pseudonym_key: bytes

    def _readers(self, collection: str) -> set[str]:
        """The members that read a shared feed (`public` or `region-<id>`)."""
        members = self.policy.members
        if collection == PUBLIC:
            return {m.id for m in members}
        return {m.id for m in members for r in m.regions if region_alias(r) == collection}

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
        policy = self.policy
        rules = policy.rules[sender.id]
        others = [m for m in policy.members if m.id != sender.id]
        verdicts: list[dict[str, Verdict]] = []
        for obj in objects:
            per = {m.id: policy.verdict(obj, sender, m) for m in others}
            if obj.get("revoked") is True:
                # A revocation reaches everyone who had the object, whatever the rules now say.
                for holder in history.received(str(obj.get("id"))):
                    if holder in per and not per[holder].allowed:
                        per[holder] = Verdict(
                            holder,
                            True,
                            "revocation",
                            "received an earlier version of the object",
                            overridden=per[holder],
                        )
            verdicts.append(per)
        ids = [str(o.get("id")) for o in objects]
        in_submission = set(ids)
        levels = [object_tlp(o) for o in objects]
        # Granular markings are read once per object, and judged per marking, not selector.
        marked = [policy.judged_markings(marked_properties(o), sender) for o in objects]
        withheld = [
            {
                m.id: frozenset(policy.withheld_marked(marked[i], levels[i], sender, m))
                for m in others
            }
            for i in range(len(objects))
        ]
        refs = [tuple(dict.fromkeys(references(o))) for o in objects]
        # Marking definitions: those without a TLP of their own follow what they mark (placed
        # at the end); those with one gate it, like a reference that cannot be pruned.
        follow = followers(objects)
        gates = gated_markings(objects, follow)
        dependencies = [refs[i] + gates[i] for i in range(len(objects))]
        sizes = [len(orjson.dumps(o)) for o in objects]
        shapes = Variants(objects, levels)

        # TLP:RED reaches named reader accounts only: a reference to it is followed only by
        # an object that reaches no other account (TLP:RED itself, to accounts that have
        # the target), or it would tell the member's other readers that the target exists.
        red_ids = {ids[i] for i, level in enumerate(levels) if level == Tlp.RED}
        red_to = {m.id: set(self._red_accounts(rules, m)) for m in others}

        def foreign(ref: str) -> bool:
            """A reference to an object another member (or the hub) published."""
            if ref in in_submission or policy.always_visible(ref, sender):
                return False
            owner = history.owner(ref)
            return owner is not None and owner != sender.id

        def shaper(mid: str, own_terms: bool = False) -> Callable[[int, set[str]], Shaped]:
            """Object i's shape for member `mid`; with `own_terms`, as if it held every object
            of other members that the submission refers to (the sender's own terms)."""

            def hidden(ref: str, referrer_red: bool, seen: set[str]) -> bool:
                if policy.always_visible(ref, sender) or (own_terms and foreign(ref)):
                    return False
                if ref in in_submission:
                    return ref not in seen or (ref in red_ids and not referrer_red)
                if mid not in history.received(ref):
                    return True
                limited = history.accounts(ref, mid)
                return bool(limited) and not (referrer_red and red_to[mid] <= set(limited))

            def shape(i: int, seen: set[str]) -> Shaped:
                red = levels[i] == Tlp.RED
                for gate in gates[i]:
                    # As for references: a TLP:RED marking definition only marks what goes
                    # to the same named accounts (TLP:RED itself), or others would see it.
                    if gate not in seen or (gate in red_ids and not red):
                        problem = f"marked with {gate}, which this member may not receive"
                        return Shaped((i, frozenset(), (gate,)), {}, frozenset(), problem)
                hiding = tuple(ref for ref in refs[i] if hidden(ref, red, seen))
                return shapes.get(i, withheld[i][mid], hiding)

            return shape

        def settled_verdicts(entitled: list[Verdict], settled: Settled) -> list[Verdict]:
            """Each object's verdict once the recipient's dependencies are settled."""
            out = []
            for current, shaped in zip(entitled, settled.shaped, strict=True):
                problem = (
                    TOO_ENTANGLED if settled.exhausted else (shaped.problem if shaped else None)
                )
                if not current.allowed:
                    out.append(current)
                elif problem is not None:
                    out.append(
                        Verdict(
                            current.member,
                            False,
                            "dependencies",
                            "incomplete without objects or properties this member may not "
                            f"receive ({problem})",
                            overridden=current.overridden,
                        )
                    )
                elif shaped is not None and shaped.touched:
                    out.append(replace(current, withheld=tuple(sorted(shaped.touched))))
                else:
                    out.append(current)
            return out

        # Objects whose outcome depends on other members' objects: a reference to one, or to
        # an object of the submission that depends so. What each recipient got then tells
        # who holds those objects, which is not the sender's to learn: the decision also
        # records the outcome on the sender's own terms, which its explanation shows.
        depends = [any(foreign(ref) for ref in refs[i]) for i in range(len(objects))]
        if any(depends):
            _spread_to_referrers(depends, ids, refs)

        # Default-deny dependencies, to a fixpoint: an object that is incomplete without
        # what the recipient may not see is not delivered to it.
        for m in others:
            entitled = [v[m.id] for v in verdicts]
            allowed = [v.allowed for v in entitled]
            actual = settled_verdicts(
                entitled, settle(ids, dependencies, sizes, allowed, shaper(m.id))
            )
            if any(depends):
                terms = settled_verdicts(
                    entitled,
                    settle(ids, dependencies, sizes, allowed, shaper(m.id, own_terms=True)),
                )
                actual = [
                    replace(a, own_rules=t) if depends[i] else a
                    for i, (a, t) in enumerate(zip(actual, terms, strict=True))
                ]
            for i, verdict in enumerate(actual):
                verdicts[i][m.id] = verdict

        def visible_ids(mid: str) -> set[str]:
            return {ids[i] for i, v in enumerate(verdicts) if v[mid].allowed}

        pseudonymise = Pseudonymiser(self.pseudonym_key, rules.pseudonymise)
        hub_identity = policy.federation.hub.identity
        release_at = release_time(received, rules.embargo)
        seen_by = {m.id: visible_ids(m.id) for m in others}
        out: list[Routed] = []
        for i, obj in enumerate(objects):
            level = object_tlp(obj)
            onward = level not in (Tlp.AMBER_STRICT, Tlp.RED)
            variants: dict[str, dict[str, Any]] = {}
            cache: dict[tuple[int, frozenset[str], tuple[str, ...]], dict[str, Any]] = {}
            for m in others:
                if not verdicts[i][m.id].allowed:
                    continue
                variant = shaper(m.id)(i, seen_by[m.id])
                # Shaped once per distinct variant: recipients share one only when what
                # they may see is the same (the same properties withheld, the same
                # references hidden).
                if variant.key not in cache:
                    content = pseudonymise(variant.content)
                    if rules.anonymous:
                        content = anonymised(content, sender.identity, hub_identity)
                    cache[variant.key] = content
                variants[m.id] = cache[variant.key]
            deliveries = [Delivery(member_alias(sender.id), obj, onward_sharing=onward)]
            covered: set[str] = set()
            shared = self._shared_feeds(level, sender)
            if obj.get("revoked") is True:
                # The revocation goes where earlier versions went, so a reader of a region
                # feed learns of it there too (when the feed may carry it whole).
                earlier = history.collections(str(obj.get("id")))
                listed = {c for c, _ in shared}
                shared += [
                    (c, self._readers(c))
                    for c in sorted(earlier - listed)
                    if c == PUBLIC or c.startswith(REGION_PREFIX)
                ]
            if level != Tlp.RED:
                for collection, readers in shared:
                    readers.discard(sender.id)
                    contents = [variants.get(r) for r in readers]
                    if readers and all(c is not None and c == contents[0] for c in contents):
                        deliveries.append(
                            Delivery(
                                collection,
                                contents[0],  # type: ignore[arg-type]
                                onward_sharing=onward,
                                release_at=release_at,
                                anonymous=rules.anonymous,
                            )
                        )
                        covered |= readers
            for m in others:
                if m.id in covered or m.id not in variants:
                    continue
                accounts: tuple[str, ...] = ()
                if verdicts[i][m.id].rule == "revocation":
                    # As the member had the object: only to the accounts it reached, if any.
                    accounts = history.accounts(str(obj.get("id")), m.id)
                elif level == Tlp.RED:
                    accounts = self._red_accounts(rules, m)
                deliveries.append(
                    Delivery(
                        member_alias(m.id),
                        variants[m.id],
                        accounts=accounts,
                        onward_sharing=onward,
                        release_at=release_at,
                        anonymous=rules.anonymous,
                    )
                )
            own = verdicts[i] | {sender.id: policy.verdict(obj, sender, sender)}
            out.append(Routed(tuple(deliveries), tuple(own[m.id] for m in policy.members)))
        for f in sorted(follow):
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


_MARKING_KEYS = frozenset({"object_marking_refs", "marking_ref", "granular_markings"})


def _is_ref_key(key: str) -> bool:
    return (key.endswith("_ref") or key.endswith("_refs")) and key not in _MARKING_KEYS


def references(value: Any) -> Iterator[str]:
    """Every STIX id the value refers to (`*_ref`, `*_refs` at any depth; markings aside)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _MARKING_KEYS:
                continue
            if _is_ref_key(key):
                if isinstance(item, str):
                    yield item
                elif isinstance(item, list):
                    yield from (r for r in item if isinstance(r, str))
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)
