"""Correlation rules: how many members, from how many countries, within what time, make a
major incident. From the federation file's `correlation` block (schema-checked)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hub.correlate.english import counted
from hub.policy.rules import parse_duration

DEFAULT_RULE = {"scope": "all", "min_members": 3, "min_countries": 2, "window": "PT24H"}
DEFAULT_SIGHTINGS = "count"  # "count": a sighting reaches the threshold as a report does


@dataclass(frozen=True, slots=True)
class CorrelationRule:
    scope: str  # "all", or "region:<id>"
    min_members: int
    min_countries: int
    window: timedelta
    sightings_count: bool = True  # False: sightings are counted apart, never toward the threshold

    @property
    def region(self) -> str | None:
        return self.scope.partition(":")[2] or None

    def covers(self, regions: tuple[str, ...] | list[str]) -> bool:
        """Whether a report from a member in `regions` counts under this rule."""
        return self.region is None or self.region in regions

    def describe(self) -> str:
        where = "the federation" if self.region is None else f"region {self.region}"
        return (
            f"{counted(self.min_members, 'member', 'members')} from "
            f"{counted(self.min_countries, 'country', 'countries')} of {where} within {self.window}"
        )


def parse_rules(correlation: Mapping[str, Any]) -> tuple[CorrelationRule, ...]:
    """The rules of a (schema-valid) `correlation` block; the default rule when none."""
    rules = correlation.get("rules") or [DEFAULT_RULE]
    return tuple(
        CorrelationRule(
            scope=rule["scope"],
            min_members=rule.get("min_members", DEFAULT_RULE["min_members"]),
            min_countries=rule.get("min_countries", DEFAULT_RULE["min_countries"]),
            window=parse_duration(rule.get("window", DEFAULT_RULE["window"])),
            sightings_count=rule.get("sightings", DEFAULT_SIGHTINGS) == "count",
        )
        for rule in rules
    )
