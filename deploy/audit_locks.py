"""Known vulnerabilities of every version pinned in the hashed lock files (`bash deploy/audit.sh`).

For each pin, PyPI's JSON API is asked what is known of that exact version
(`/pypi/NAME/VERSION/json`, the data pip-audit's PyPI service reads, from the PyPA advisory
database via OSV). Where only the per-project document answers (`/pypi/NAME/json`, as on this
workplace's package proxy), its vulnerability list is that of the project's latest release: exact
for a pin at the latest release; a pin below it is reported as not audited, with the latest
release, and does not fail the run.

Exit status:
  0  no known vulnerability in the pins that could be audited (those that could not are listed)
  1  a known vulnerability in a pin, not reviewed in the ignore file: the advisory is named
  2  the audit could not be done: no pin could be audited, or bad arguments or ignore file

The verdict depends on what the advisory databases know today, so this is its own command,
run by an operator or a scheduled job; the test command runs it as a report, never as a gate.
Python's standard library only: nothing is installed to run it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements.lock", "requirements-test.lock", "deploy/build-tools.lock")
IGNORE_FILE = "deploy/audit-ignore.txt"
JSON_API = "https://pypi.org/pypi"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    where: str  # "LOCK:LINE" of its first occurrence


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    summary: str

    def ids(self) -> set[str]:
        return {self.id.upper(), *(alias.upper() for alias in self.aliases)}


class Coverage(Enum):
    EXACT = "its own version's data"
    LATEST = "the latest release's data (the pin is the latest release)"
    NONE = "no data"


@dataclass(frozen=True)
class Result:
    pin: Pin
    coverage: Coverage
    advisories: tuple[Advisory, ...] = ()
    latest: str = ""
    reason: str = ""  # why there is no data, when coverage is NONE


@dataclass
class Ignores:
    reasons: dict[str, str] = field(default_factory=dict)  # advisory id (upper case) -> entry


class Unanswered(Exception):
    """The service gave no usable answer (network error, 5xx after retries, bad JSON)."""


def read_pins(paths: Iterable[Path]) -> tuple[list[Pin], list[str]]:
    """Every distinct NAME==VERSION of the locks, and the lines that could not be read."""
    pins: dict[tuple[str, str], Pin] = {}
    errors = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as error:
            errors.append(f"{path}: cannot read it: {error.strerror}")
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if match := PIN.match(line):
                key = (canonical(match[1]), match[2])
                pins.setdefault(key, Pin(*key, f"{_shown(path)}:{number}"))
    return sorted(pins.values(), key=lambda pin: (pin.name, pin.version)), errors


def read_ignores(path: Path) -> tuple[Ignores, list[str]]:
    """The reviewed exceptions: `ID  # reason` per line; an entry without a reason is an error."""
    ignores, errors = Ignores(), []
    if not path.exists():
        return ignores, errors
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        entry, _, reason = raw.partition("#")
        entry, reason = entry.strip(), reason.strip()
        if not entry:
            continue
        where = f"{_shown(path)}:{number}"
        if len(entry.split()) != 1:
            errors.append(f"{where}: expected `ADVISORY-ID  # reason`, found `{entry}`")
        elif not reason:
            errors.append(f"{where}: `{entry}` has no reason after '#' (every entry is reviewed)")
        else:
            ignores.reasons[entry.upper()] = f"{entry}  # {reason}"
    return ignores, errors


class JsonApi:
    """PyPI's JSON API (or a server answering the same paths), with bounded retries."""

    def __init__(self, base: str, timeout: float, attempts: int = 3) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts

    def get(self, path: str) -> dict[str, Any] | None:
        """The JSON document at path, None for a 404; Unanswered when there is no answer."""
        url = f"{self.base}/{path}"
        for attempt in range(1, self.attempts + 1):
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                    document = json.load(answer)
                if not isinstance(document, dict):
                    raise Unanswered(f"{url}: not a JSON object")
                return document
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                cause = f"{url}: HTTP {error.code}"
                if error.code not in RETRIABLE_STATUS:
                    raise Unanswered(cause) from None
            except (urllib.error.URLError, OSError) as error:
                cause = f"{url}: {getattr(error, 'reason', error)}"
            except ValueError:
                raise Unanswered(f"{url}: the answer is not JSON") from None
            if attempt < self.attempts:
                time.sleep(min(2.0 * attempt, self.timeout))
        raise Unanswered(f"{cause} ({self.attempts} tries)")


def advisories(document: dict[str, Any]) -> tuple[Advisory, ...]:
    """The advisories of a JSON API document, withdrawn ones left out."""
    found = []
    for vuln in document.get("vulnerabilities") or ():
        if vuln.get("withdrawn"):
            continue
        found.append(
            Advisory(
                str(vuln["id"]),
                tuple(vuln.get("aliases") or ()),
                tuple(vuln.get("fixed_in") or ()),
                str(vuln.get("summary") or vuln.get("details") or "").strip().split("\n")[0],
            )
        )
    return tuple(found)


def audit(api: JsonApi, pin: Pin) -> Result:
    """What is known of one pin."""
    try:
        exact = api.get(f"{pin.name}/{pin.version}/json")
        if exact is not None:
            return Result(pin, Coverage.EXACT, advisories(exact))
        project = api.get(f"{pin.name}/json")
        if project is None:
            return Result(pin, Coverage.NONE, reason="the project is unknown to the service")
        latest = str(project["info"]["version"])
    except Unanswered as error:
        return Result(pin, Coverage.NONE, reason=str(error))
    except (KeyError, TypeError):
        return Result(pin, Coverage.NONE, reason="the project document has no info.version")
    if latest == pin.version:
        return Result(pin, Coverage.LATEST, advisories(project), latest)
    return Result(
        pin,
        Coverage.NONE,
        latest=latest,
        reason=f"below its latest release {latest}; the service has no per-version data",
    )


def audit_all(api: JsonApi, pins: list[Pin], workers: int, deadline: float) -> Iterator[Result]:
    """Every pin's result, as they come; pins still unanswered at the deadline get no data."""
    pool = ThreadPoolExecutor(workers)
    futures = {pool.submit(audit, api, pin): pin for pin in pins}
    done = 0
    try:
        for future in as_completed(futures, timeout=max(deadline - time.monotonic(), 0)):
            done += 1
            _progress(done, len(pins))
            yield future.result()
    except TimeoutError:
        for future, pin in futures.items():
            if not future.done():
                future.cancel()
                yield Result(pin, Coverage.NONE, reason="no answer before the audit's deadline")
    finally:
        _progress(done, len(pins), end=True)
        pool.shutdown(wait=False, cancel_futures=True)


def report(results: list[Result], ignores: Ignores) -> int:
    """Print the verdict; the exit status."""
    vulnerable, ignored = [], []
    for result in results:
        for advisory in result.advisories:
            reviewed = sorted(advisory.ids() & ignores.reasons.keys())
            (ignored if reviewed else vulnerable).append((result, advisory, reviewed))
    for result, advisory, _ in vulnerable:
        aliases = f" ({', '.join(advisory.aliases)})" if advisory.aliases else ""
        fixed = ", ".join(advisory.fixed_in) or "no fixed version known"
        print(
            f"VULNERABLE {result.pin.name}=={result.pin.version} ({result.pin.where}):"
            f" {advisory.id}{aliases}; fixed in: {fixed}; from {result.coverage.value}"
            + (f"\n    {advisory.summary}" if advisory.summary else "")
        )
    for result, advisory, reviewed in ignored:
        print(
            f"ignored, reviewed in {IGNORE_FILE}: {result.pin.name}=={result.pin.version}"
            f" {advisory.id}: {ignores.reasons[reviewed[0]]}"
        )
    unaudited = [result for result in results if result.coverage is Coverage.NONE]
    for result in unaudited:
        print(f"not audited: {result.pin.name}=={result.pin.version}: {result.reason}")
    audited = len(results) - len(unaudited)
    print(
        f"audited {audited} of {len(results)} pinned versions"
        f" ({sum(r.coverage is Coverage.EXACT for r in results)} with their own version's data,"
        f" {sum(r.coverage is Coverage.LATEST for r in results)} as the latest release);"
        f" {len(unaudited)} not audited; {len(vulnerable)} known vulnerabilities;"
        f" {len(ignored)} reviewed and ignored"
    )
    if vulnerable:
        print(
            "Upgrade the pin when a fixed version exists (`bash deploy/lock.sh --upgrade-package"
            " NAME`); otherwise, once reviewed, add `ID  # NAME VERSION: why it does not apply /"
            f" what we do` to {IGNORE_FILE}."
        )
        return 1
    if results and not audited:
        print("AUDIT NOT DONE: no pinned version could be audited (see the reasons above).")
        return 2
    return 0


def _progress(done: int, total: int, *, end: bool = False) -> None:
    if sys.stderr.isatty():
        print(f"\raudit: {done}/{total} pins", end="\n" if end else "", file=sys.stderr)
    elif end or done % 25 == 0:
        print(f"audit: {done}/{total} pins", file=sys.stderr)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lock",
        action="append",
        type=Path,
        metavar="FILE",
        help=f"a lock file to audit (repeatable; default: {', '.join(LOCKS)})",
    )
    parser.add_argument("--ignore-file", type=Path, default=ROOT / IGNORE_FILE)
    parser.add_argument("--json-api", default=JSON_API, metavar="URL", help=f"default: {JSON_API}")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds for the whole audit")
    parser.add_argument("--workers", type=int, default=8, help="requests in flight")
    args = parser.parse_args(argv)
    started = time.monotonic()

    locks = args.lock or [ROOT / lock for lock in LOCKS]
    pins, errors = read_pins(locks)
    ignores, ignore_errors = read_ignores(args.ignore_file)
    if errors or ignore_errors:
        print(*errors, *ignore_errors, sep="\n")
        return 2
    print(f"audit: {len(pins)} pinned versions in {', '.join(_shown(lock) for lock in locks)}")
    print(f"audit: vulnerability data from {args.json_api}")
    api = JsonApi(args.json_api, args.timeout)
    results = list(audit_all(api, pins, args.workers, started + args.deadline))
    results.sort(key=lambda result: (result.pin.name, result.pin.version))
    found = {id for result in results for advisory in result.advisories for id in advisory.ids()}
    for stale in sorted(ignores.reasons.keys() - found):
        print(f"note: {IGNORE_FILE} lists {stale}, found in no pin audited today")
    return report(results, ignores)


if __name__ == "__main__":
    sys.exit(main())
