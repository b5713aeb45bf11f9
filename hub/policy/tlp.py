"""Where an object may go, by its TLP marking and the sender's place in the federation.

Until the sharing-rules work lands, the rule is deliberately narrow: TLP:CLEAR/WHITE and
TLP:GREEN go to the sender's regions; everything else, unmarked content included, goes
only to the sender's own collection. Never wider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.collections import member_alias, region_alias
from hub.federation import Member
from hub.stix.markings import Tlp, strictest_tlp

_COMMUNITY_LEVELS = (Tlp.CLEAR, Tlp.GREEN)


def destinations(obj: Mapping[str, Any], sender: Member) -> tuple[str, ...]:
    """The collections (by alias) that `obj` from `sender` is routed to."""
    level = strictest_tlp(obj)
    if level in _COMMUNITY_LEVELS:
        return tuple(region_alias(r) for r in sender.regions)
    return (member_alias(sender.id),)
