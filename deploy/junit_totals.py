"""Add up the JUnit reports of the test command's steps into its last line: `N passed, N failed`.

Usage: python deploy/junit_totals.py "LABEL=REPORT.xml" ...
Exit status 1 when a step's report is missing or unreadable (that step did not run to its end).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0  # failures and errors: a test that broke either way
    skipped: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped
        )

    def __str__(self) -> str:
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        return f"{self.passed} passed, {self.failed} failed{skipped}"


def read(report: Path) -> Counts:
    """The counts of one pytest JUnit report (its test suites summed)."""
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = Counts()
    for suite in suites:
        tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        total += Counts(tests - failed - skipped, failed, skipped)
    return total


def main(arguments: list[str]) -> int:
    total, parts, status = Counts(), [], 0
    for argument in arguments:
        label, _, path = argument.partition("=")
        try:
            counts = read(Path(path))
        except (OSError, ElementTree.ParseError) as error:
            print(f"{label}: no report at {path} ({error}): the step did not finish")
            status = 1
            continue
        print(f"{label}: {counts}")
        parts.append(f"{label}: {counts.passed + counts.failed + counts.skipped}")
        total += counts
    print(f"{total} in all ({'; '.join(parts)})")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
