"""The data dir's format: which release wrote it, and the forward-only steps that bring a data
dir written by an earlier release to this one's format.

    DATA_DIR/data-format.json  {"format": N, "written_by": "<cirt-hub version>"}

A data dir without the file was written before formats were recorded (format 1) or is new.
`upgrade` runs at every start, before anything opens the data dir: it applies each step from
the recorded format to this release's, one at a time under a lock, recording the format after
each, so a step interrupted is simply run again at the next start (every step is written to
be run again safely). A data dir of a later format than this release knows is refused: an
older release could misread or damage what a newer one wrote.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson

from hub.bus.url import EMBEDDED_FILE

log = logging.getLogger(__name__)

FORMAT_FILE = "data-format.json"
_LOCK_FILE = ".upgrade.lock"


def hub_version() -> str:
    try:
        return version("cirt-hub")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class DataDirError(Exception):
    """The data dir cannot be used by this release; the message says what to do."""


@dataclass(frozen=True)
class DataFormat:
    format: int
    written_by: str


@dataclass(frozen=True)
class Step:
    """One forward-only migration, from `to - 1` to `to`."""

    to: int
    what: str
    run: Callable[[Path], None]


def _nothing_to_move(data_dir: Path) -> None:
    """Format 2 only starts recording the format; format 1 data dirs are read as they are."""


STEPS: tuple[Step, ...] = (Step(2, "record the data format", _nothing_to_move),)
CURRENT_FORMAT = STEPS[-1].to


def read_format(data_dir: Path) -> DataFormat | None:
    """The recorded format, or None where none is recorded."""
    path = data_dir / FORMAT_FILE
    try:
        raw = orjson.loads(path.read_bytes())
        return DataFormat(int(raw["format"]), str(raw.get("written_by", "unknown")))
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataDirError(f"{path} is damaged ({exc}); restore it from a backup") from exc


def _write_format(data_dir: Path, data_format: int) -> None:
    path = data_dir / FORMAT_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps({"format": data_format, "written_by": hub_version()}) + b"\n")
    os.replace(tmp, path)


def _holds_hub_data(data_dir: Path) -> bool:
    return any((data_dir / name).exists() for name in (EMBEDDED_FILE, "node-id", "keys")) or any(
        data_dir.glob("view-*.sqlite3")
    )


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def too_new_message(data_dir: Path, found: DataFormat) -> str:
    return (
        f"the data dir {data_dir} was written by cirt-hub {found.written_by} (data format "
        f"{found.format}); this is cirt-hub {hub_version()}, which reads data format "
        f"{CURRENT_FORMAT} at most and will not start on it: run cirt-hub {found.written_by} "
        "or later, or restore a backup made by this release into an empty data dir"
    )


def upgrade(data_dir: Path) -> list[Step]:
    """Bring `data_dir` to this release's format; the steps that ran (none if current)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(data_dir):
        found = read_format(data_dir)
        if found is None:
            if not _holds_hub_data(data_dir):
                _write_format(data_dir, CURRENT_FORMAT)  # a new data dir
                return []
            found = DataFormat(1, "an earlier release")
        if found.format > CURRENT_FORMAT:
            raise DataDirError(too_new_message(data_dir, found))
        ran = []
        for step in STEPS:
            if step.to <= found.format:
                continue
            log.info("data dir upgrade", extra={"to_format": step.to, "step": step.what})
            step.run(data_dir)
            _write_format(data_dir, step.to)
            ran.append(step)
        if not ran and found.written_by != hub_version():
            _write_format(data_dir, found.format)  # note the release that writes it now
        return ran
