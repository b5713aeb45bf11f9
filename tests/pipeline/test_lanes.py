"""The pipeline's lanes (hub.pipeline.lanes): each member's records in order, one unit out per
lane at a time, lanes taking turns, and nothing taken twice when the consumer rewinds."""

from __future__ import annotations

from hub.bus import Record
from hub.pipeline.lanes import Lanes


def records(topic: str, offsets: range, size: int = 10) -> list[Record]:
    return [Record(topic, 0, o, None, b"x" * size, (), 0) for o in offsets]


def offsets(unit: list[Record]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for r in unit]


def test_a_lane_hands_out_its_oldest_records_one_unit_at_a_time() -> None:
    lanes = Lanes(unit_records=3, unit_bytes=1000)
    lanes.add(records("a", range(5)))
    [first] = lanes.take(4)
    assert offsets(first) == [("a", 0), ("a", 1), ("a", 2)]
    assert lanes.take(4) == []  # the lane's unit is out: nothing more of it until it is done
    lanes.done(first[0].tp)
    [second] = lanes.take(4)
    assert offsets(second) == [("a", 3), ("a", 4)]


def test_a_large_record_is_a_unit_alone() -> None:
    lanes = Lanes(unit_records=64, unit_bytes=100)
    lanes.add([*records("a", range(1), size=10), *records("a", range(1, 2), size=500)])
    assert [len(u) for u in lanes.take(1)] == [1]
    lanes.done(records("a", range(1))[0].tp)
    assert [len(u) for u in lanes.take(1)] == [1]


def test_lanes_take_turns_longest_waiting_first() -> None:
    lanes = Lanes(unit_records=1, unit_bytes=1000)
    lanes.add([*records("a", range(3)), *records("b", range(1))])
    first = lanes.take(1)
    lanes.add(records("c", range(1)))
    second = lanes.take(2)
    assert [offsets(u) for u in first + second] == [[("a", 0)], [("b", 0)], [("c", 0)]]
    lanes.done(first[0][0].tp)
    assert offsets(lanes.take(1)[0]) == [("a", 1)]


def test_records_fetched_again_after_a_rewind_are_not_taken_twice() -> None:
    lanes = Lanes(unit_records=2, unit_bytes=1000)
    lanes.add([*records("a", range(4)), *records("b", range(2))])
    out = lanes.take(2)
    # Another lane's unit failed: the consumer went back to every committed offset.
    lanes.add([*records("a", range(4)), *records("b", range(3))])
    for unit in out:
        lanes.done(unit[0].tp)
    rest = lanes.take(2)
    assert sorted(offsets(u) for u in rest) == [[("a", 2), ("a", 3)], [("b", 2)]]


def test_a_unit_that_did_not_commit_starts_its_lane_again_from_what_comes_next() -> None:
    lanes = Lanes(unit_records=2, unit_bytes=1000)
    lanes.add(records("a", range(4)))
    [unit] = lanes.take(1)
    lanes.done(unit[0].tp, rewound=True)
    assert lanes.take(1) == []  # what it held was dropped: it comes again from the bus
    lanes.add(records("a", range(4)))
    assert offsets(lanes.take(1)[0]) == [("a", 0), ("a", 1)]


def test_a_full_lane_is_paused_and_a_rebalance_drops_everything_held() -> None:
    lanes = Lanes(unit_records=2, unit_bytes=1000)
    lanes.add([*records("a", range(4)), *records("b", range(1))])
    assert {tp.topic for tp in lanes.full()} == {"a"}
    [unit] = lanes.take(1)
    lanes.reset()
    assert lanes.full() == set() and lanes.take(2) == []
    lanes.add(records("b", range(1)))  # fetched again from the committed offset
    assert offsets(lanes.take(2)[0]) == [("b", 0)]
    lanes.done(unit[0].tp)  # the unit fetched before the rebalance is over, not committed
    lanes.add(records("a", range(2)))
    assert offsets(lanes.take(2)[0]) == [("a", 0), ("a", 1)]
