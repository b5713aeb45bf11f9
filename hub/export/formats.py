"""The export formats: each writes a page of selected objects at a time, so an export of any
size streams with one page in memory.

The text formats (txt, csv, suricata) end with a `# cirt-hub export complete: ...` line
that counts what was written and what was left out and why; a file without it was cut
off (`cirt-hub pull --format` installs no such file). A STIX export is one bundle.
"""

from __future__ import annotations

import csv
import io
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from hub.export.dedup import WINDOW_BYTES, Seen
from hub.export.selection import Exported, ExportOptions
from hub.export.suricata import RULE_KINDS, Sids, rules
from hub.policy.tlp import LABELS

COMPLETE = "# cirt-hub export complete:"
CSV_COLUMNS = (
    "value",
    "kind",
    "tlp",
    "first_seen",
    "last_seen",
    "confidence",
    "source",
    "object_id",
)
_SKIP_REASONS = {
    "language": "not in the STIX pattern language",
    "comparison": "without an `=` on a value or hash of an exported kind",
    "malformed": "whose values were all malformed",
}


@dataclass
class Summary:
    """What an export wrote and what it left out."""

    objects: int = 0  # objects that gave at least one line (txt, csv, suricata) or were sent
    lines: int = 0  # values, rows or rules written
    skipped: Counter[str] = field(default_factory=Counter)  # indicators by reason
    malformed: int = 0  # values not well formed for their kind
    no_rule: int = 0  # values Suricata has no rule for
    repeated: int = 0  # values already in this blocklist, left out
    again: int = 0  # values written again: their first line was beyond the dedup window

    def line(self, unit: str) -> str:
        parts = [f"{COMPLETE} {self.lines} {unit} from {self.objects} objects"]
        skipped = sum(self.skipped.values())
        why = ", ".join(f"{n} {_SKIP_REASONS[r]}" for r, n in sorted(self.skipped.items()))
        parts.append(f"{skipped} indicators skipped" + (f" ({why})" if why else ""))
        parts.append(f"{self.malformed} malformed values left out")
        if self.no_rule:
            parts.append(f"{self.no_rule} values with no Suricata rule (file hashes, e-mail)")
        if self.repeated:
            parts.append(f"{self.repeated} repeated values written once")
        if self.again:
            parts.append(f"{self.again} repeated values written again (beyond the export's memory)")
        return "; ".join(parts) + "\n"


class Writer(ABC):
    """One export's format: a head, the pages, a tail."""

    media_type: ClassVar[str]
    extension: ClassVar[str]
    separator: ClassVar[bytes] = b""  # between two pieces (text lines end in their own \n)

    def __init__(self, options: ExportOptions, collection: str, now: str) -> None:
        self.options = options
        self.collection = collection
        self.now = now
        self.summary = Summary()

    def head(self) -> bytes:
        kinds = ",".join(sorted(self.options.kinds)) or "all"
        return (
            f"# cirt-hub export of {self.collection} at {self.now}: format "
            f"{self.options.format}, kinds {kinds}\n"
        ).encode()

    def page(self, items: Sequence[Exported]) -> bytes:
        out: list[bytes] = []
        for item in items:
            reason = item.values.skipped
            if reason:
                self.summary.skipped[reason] += 1
            self.summary.malformed += item.values.malformed
            before = len(out)
            self.write(item, out)
            if len(out) > before:
                self.summary.objects += 1
                self.summary.lines += len(out) - before
        if not out:
            return b""
        # Pieces already went out in earlier pages: this page's first needs its separator.
        lead = self.separator if self.summary.lines > len(out) else b""
        return lead + self.separator.join(out)

    @abstractmethod
    def write(self, item: Exported, out: list[bytes]) -> None:
        """Append the pieces (lines, objects) of `item` to `out`."""

    def tail(self) -> bytes:
        return self.summary.line("values").encode()


class Blocklist(Writer):
    """txt: one value per line, each once within the dedup window (a firewall or DNS
    blocklist; hub.export.dedup)."""

    media_type = "text/plain; charset=utf-8"
    extension = "txt"

    def __init__(
        self, options: ExportOptions, collection: str, now: str, window: int = WINDOW_BYTES
    ) -> None:
        super().__init__(options, collection, now)
        self._seen = Seen(window)

    def write(self, item: Exported, out: list[bytes]) -> None:
        for _, value in item.wanted(self.options.kinds):
            seen = self._seen.check(value)
            if seen == "recent":
                self.summary.repeated += 1
                continue
            if seen == "forgotten":
                self.summary.again += 1
            out.append(f"{value}\n".encode())


class Table(Writer):
    """csv: one row per value of each object, under a header row."""

    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def __init__(self, options: ExportOptions, collection: str, now: str) -> None:
        super().__init__(options, collection, now)
        # One writer for the whole export: making one per object cost a third of its time.
        self._buffer = io.StringIO()
        self._rows = csv.writer(self._buffer, lineterminator="\n")

    def head(self) -> bytes:
        return (",".join(CSV_COLUMNS) + "\n").encode()

    def write(self, item: Exported, out: list[bytes]) -> None:
        wanted = item.wanted(self.options.kinds)
        if not wanted:
            return
        tlp = LABELS[item.tlp] if item.tlp is not None else ""
        confidence = "" if item.confidence is None else str(item.confidence)
        self._rows.writerows(
            (value, kind, tlp, item.first_seen, item.last_seen, confidence, item.source, item.id)
            for kind, value in wanted
        )
        out.extend(row.encode() for row in self._buffer.getvalue().splitlines(keepends=True))
        self._buffer.seek(0)
        self._buffer.truncate()

    def tail(self) -> bytes:
        return self.summary.line("rows").encode()


class Rules(Writer):
    """suricata: rules for addresses, domains and URLs, with stable sids."""

    media_type = "text/plain; charset=utf-8"
    extension = "rules"

    def __init__(self, options: ExportOptions, collection: str, now: str) -> None:
        super().__init__(options, collection, now)
        self._sids = Sids()

    def write(self, item: Exported, out: list[bytes]) -> None:
        for kind, value in item.wanted(self.options.kinds):
            if kind not in RULE_KINDS:
                self.summary.no_rule += 1
                continue
            out.extend(f"{r}\n".encode() for r in rules(self._sids, item.id, item.tlp, kind, value))

    def tail(self) -> bytes:
        return self.summary.line("rules").encode()


class Bundle(Writer):
    """stix: the selected objects as they are, in one bundle."""

    media_type = "application/stix+json;version=2.1"
    extension = "json"
    separator = b","

    def head(self) -> bytes:
        return f'{{"type":"bundle","id":"bundle--{uuid.uuid4()}","objects":['.encode()

    def write(self, item: Exported, out: list[bytes]) -> None:
        if not self.options.kinds or item.wanted(self.options.kinds):
            out.append(item.json)

    def tail(self) -> bytes:
        return b"]}"


WRITERS: dict[str, type[Writer]] = {
    "txt": Blocklist,
    "csv": Table,
    "suricata": Rules,
    "stix": Bundle,
}
