"""validate: each object must be well-formed STIX 2.1, within the hub's limits; the checks
and why they are made so are hub/stix/validation.py. Two objects of one submission with
the same id and version are one too many."""

from __future__ import annotations

from dataclasses import dataclass

from hub.federation import Federation
from hub.model import Item, RefusalCode, Submission
from hub.stix import schemas
from hub.stix.validation import Refuse, check_object


@dataclass(frozen=True)
class Validate:
    """Refuse each object that is not valid STIX 2.1, saying what is wrong and where."""

    federation: Federation

    def __post_init__(self) -> None:
        # The fast path needs the shipped schemas; without them every object would take the
        # library's ~5x slower path unseen: stop here instead (SchemasMissing says why).
        schemas.check_shipped()

    def _refuse(self, item: Item, exc: Refuse) -> Item:
        where = f" property '{exc.path}':" if exc.path else ""
        name = item.id or "no id"
        return item.refuse(
            RefusalCode.INVALID_STIX, f"objects[{item.index}] ({name}):{where} {exc}"
        )

    def __call__(self, submission: Submission) -> Submission:
        limits = self.federation.hub.limits
        member = submission.sender
        allow_custom = bool(member.sharing.get("allow_custom", True)) if member else False
        seen: dict[tuple[str, str], int] = {}

        def check(item: Item) -> Item:
            try:
                check_object(item.obj, limits, allow_custom)
            except Refuse as exc:
                return self._refuse(item, exc)
            except RecursionError:
                # JSON nesting is bounded at intake; what still recurses this far is the STIX
                # pattern grammar, once per parenthesis and per chained operator.
                return self._refuse(
                    item,
                    Refuse(
                        "nested too deeply to be parsed: a STIX pattern's parentheses, or a "
                        "long chain of its AND/OR/FOLLOWEDBY, go past what its grammar can read"
                    ),
                )
            except Exception as exc:
                # stix2 trips over some malformed shapes (e.g. "extensions": 5) with other
                # errors; they are still this object's fault, not the hub's.
                return self._refuse(item, Refuse(f"malformed ({type(exc).__name__}: {exc})"))
            key = (item.id, item.version or "")
            if key in seen:
                return self._refuse(
                    item, Refuse(f"duplicate of objects[{seen[key]}] (same id and version)")
                )
            seen[key] = item.index
            return item

        return submission.map_accepted(check)
