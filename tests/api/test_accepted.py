"""The node's memory of submissions it answered 202 while its view is behind: bounded, and
one member posting fast pushes out its own statuses, never another member's."""

from __future__ import annotations

from collections.abc import Sequence

from hub.api.accepted import Accepted, AcceptedSubmissions
from hub.bus import Position


def view_behind(positions: Sequence[Position]) -> bool:
    return False  # a stopped view: nothing accepted is in it yet


def accepted(member: str, offset: int, size: int = 1_000) -> Accepted:
    return Accepted(member, b"x" * size, Position("cirt-hub.status", 0, offset))


def test_a_member_flooding_the_node_pushes_out_its_own_statuses_not_others() -> None:
    held = AcceptedSubmissions(view_behind, max_bytes=10_000)
    held.add("quiet-1", accepted("sn-cert", 0))
    for n in range(50):  # far past the bound
        held.add(f"flood-{n}", accepted("gh-cert", n + 1))
    assert held.get("quiet-1") is not None, "another member's status was pushed out"
    assert held.get("flood-0") is None and held.get("flood-49") is not None
    assert len(held) <= 10  # 10,000 bytes at 1,000 each


def test_once_the_view_has_a_status_it_is_forgotten() -> None:
    seen: set[int] = set()
    held = AcceptedSubmissions(lambda ps: all(p.offset in seen for p in ps))
    held.add("a", accepted("ng-cert", 0))
    seen.add(0)
    held.add("b", accepted("ng-cert", 1))
    assert held.get("a") is None and held.get("b") is not None
