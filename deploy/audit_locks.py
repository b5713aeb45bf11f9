"""Supply-chain checks of the hashed lock files, run by deploy/test.sh before anything is installed.

1. The locks still cover pyproject.toml: every dependency (and the `test` extra, and the
   [build-system] requires) is pinned at a version it accepts, and the locks that go into .venv
   agree on the pins they share. Otherwise: run `bash deploy/lock.sh`.
2. pip-audit over every pinned version (PyPI's vulnerability data, `--vulnerability-service
   pypi`). A known vulnerability fails the run unless deploy/pip-audit-ignore.txt lists its id
   (or an alias) with a reviewed reason.

Where pip-audit cannot audit a pin because PyPI's per-version JSON API does not answer (this
workplace's package proxy serves only the per-project JSON, and OSV is out of reach), the pin
is audited with the per-project JSON instead, whose vulnerability list is that of the project's
latest release: exact for a pin that is the latest release. A pin held below the latest cannot
be audited that way and fails the run unless the ignore file lists it (`unaudited NAME==VERSION
# why`) after review. On a network where pip-audit can query PyPI or OSV, that fallback and those
entries go unused.

No silent pass: when the vulnerability service cannot be reached the run fails and says so.
Exit status: 0 clean, 1 known vulnerabilities, 2 the checks could not be completed (lock out of
date, service unreachable, unaudited pins, malformed ignore file).

Usage (with the python of the pip-audit venv, deploy/pip-audit.lock):
    .venv-audit/bin/python deploy/audit_locks.py
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = "requirements.lock"
TEST_LOCK = "requirements-test.lock"
BUILD_LOCK = "deploy/build-tools.lock"
AUDIT_LOCK = "deploy/pip-audit.lock"
LOCKS = (RUNTIME_LOCK, TEST_LOCK, BUILD_LOCK, AUDIT_LOCK)
IGNORE_FILE = "deploy/pip-audit-ignore.txt"
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
TIMEOUT = 20
ATTEMPTS = 3
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
UNREACHABLE = ("ConnectionError", "ProxyError", "Timeout", "NameResolution", "SSLError")


@dataclass
class Ignores:
    vulns: dict[str, str] = field(default_factory=dict)  # ID (upper case) -> entry and reason
    unaudited: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, version) -> reason


@dataclass(frozen=True)
class Finding:
    name: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    note: str = ""


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if m := PIN.match(line):
            pins[canonicalize_name(m[1])] = m[2]
    return pins


def read_ignores(path: Path) -> tuple[Ignores, list[str]]:
    ignores, errors = Ignores(), []
    if not path.exists():
        return ignores, errors
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        entry, _, reason = raw.partition("#")
        entry, reason = entry.strip(), reason.strip()
        if not entry:
            continue
        where = f"{IGNORE_FILE}:{number}"
        words = entry.split()
        if not reason:
            errors.append(f"{where}: `{entry}` has no reason after '#' (every entry is reviewed)")
        elif words[0] == "unaudited" and len(words) == 2 and "==" in words[1]:
            name, version = words[1].split("==", 1)
            ignores.unaudited[(canonicalize_name(name), version)] = reason
        elif len(words) == 1 and words[0] != "unaudited":
            ignores.vulns[words[0].upper()] = f"{words[0]}  # {reason}"
        else:
            errors.append(
                f"{where}: expected `ID  # reason` or `unaudited NAME==VERSION  # reason`"
            )
    return ignores, errors


def check_coverage(pins: dict[str, dict[str, str]]) -> list[str]:
    """pyproject.toml's requirements against the locks that install them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = project["project"]["dependencies"]
    test = project["project"]["optional-dependencies"]["test"]
    build = project["build-system"]["requires"]
    wanted = {
        RUNTIME_LOCK: [*runtime, *build],
        TEST_LOCK: [*runtime, *test, *build],
        BUILD_LOCK: build,
    }
    problems = []
    for lock, requirements in wanted.items():
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            pin = pins[lock].get(canonicalize_name(requirement.name))
            if pin is None:
                problems.append(f"{lock} lacks {requirement} (pyproject.toml)")
            elif not requirement.specifier.contains(Version(pin), prereleases=True):
                problems.append(f"{lock} pins {requirement.name}=={pin}, outside {requirement}")
    # .venv gets the build tools, then the test lock; command 1's .venv gets the runtime lock.
    venv_locks = (RUNTIME_LOCK, TEST_LOCK, BUILD_LOCK)
    for name in sorted(set().union(*(pins[lock] for lock in venv_locks))):
        versions = {lock: pins[lock][name] for lock in venv_locks if name in pins[lock]}
        if len(set(versions.values())) > 1:
            problems.append(f"{name} pinned differently: {versions}")
    return problems


def run_pip_audit(ignores: Ignores) -> tuple[dict[tuple[str, str], list[Finding]], list[str], str]:
    """What pip-audit audited, by (name, version); its skip reasons; why it did not run, if so."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "pip-audit.json"
        command = [sys.executable, "-m", "pip_audit"]
        for lock in LOCKS:
            command += ["-r", lock]
        command += ["--require-hashes", "--disable-pip", "--vulnerability-service", "pypi"]
        command += ["--progress-spinner", "off", "--timeout", str(TIMEOUT)]
        command += ["--format", "json", "--output", str(output)]
        for vuln in sorted(ignores.vulns):
            command += ["--ignore-vuln", vuln]
        for attempt in range(1, ATTEMPTS + 1):  # a network blip is not a verdict
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
            try:
                report = json.loads(output.read_text())
                break
            except (OSError, ValueError):
                if attempt < ATTEMPTS:
                    time.sleep(5 * attempt)
        else:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            cause = "pip-audit did not complete"
            if any(word in done.stderr for word in UNREACHABLE):
                cause = "the vulnerability service (PyPI's JSON API) could not be reached"
            return {}, [], f"{cause} ({ATTEMPTS} tries); pip-audit exited {done.returncode}: {tail}"
    audited, skipped = {}, []
    for dependency in report["dependencies"]:
        if "version" not in dependency:  # skipped: {"name", "skip_reason"}
            skipped.append(dependency.get("skip_reason", ""))
            continue
        name, version = canonicalize_name(dependency["name"]), dependency["version"]
        audited[(name, version)] = [
            Finding(
                name,
                version,
                vuln["id"],
                tuple(vuln.get("aliases", ())),
                tuple(vuln.get("fix_versions", ())),
            )
            for vuln in dependency["vulns"]
        ]
    return audited, skipped, ""


def fallback(session: requests.Session, name: str, version: str) -> tuple[list[Finding], str]:
    """Audit one pin with PyPI's per-project JSON: (findings, latest release) or raise."""
    answer = session.get(PROJECT_JSON.format(name=name), timeout=TIMEOUT)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    latest = data["info"]["version"]
    note = "" if latest == version else f"listed for the latest release {latest}"
    findings = [
        Finding(
            name,
            version,
            vuln["id"],
            tuple(vuln.get("aliases") or ()),
            tuple(vuln.get("fixed_in") or ()),
            note,
        )
        for vuln in data.get("vulnerabilities") or ()
        if not vuln.get("withdrawn")
    ]
    return findings, latest


def distinct(findings: list[Finding]) -> list[Finding]:
    """One finding per advisory and pin: PyPI lists one advisory under its PYSEC and GHSA ids."""
    kept: list[Finding] = []
    for finding in findings:
        ids = {finding.id, *finding.aliases}
        if not any(
            (k.name, k.version) == (finding.name, finding.version) and ids & {k.id, *k.aliases}
            for k in kept
        ):
            kept.append(finding)
    return kept


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()

    pins = {lock: read_pins(ROOT / lock) for lock in LOCKS}
    problems = check_coverage(pins)
    if problems:
        print("The lock files no longer cover pyproject.toml:", *problems, sep="\n  ")
        print("Run `bash deploy/lock.sh`, review the diff of the locks, and commit them.")
        return 2
    ignores, errors = read_ignores(ROOT / IGNORE_FILE)
    if errors:
        print(*errors, sep="\n")
        return 2

    every = sorted({(name, version) for lock in LOCKS for name, version in pins[lock].items()})
    print(f"pip-audit: {len(every)} pinned versions in {', '.join(LOCKS)}")
    audited, skipped, failure = run_pip_audit(ignores)
    if failure:
        print(f"AUDIT NOT DONE: {failure}")
        print("Failing: the audit of the pinned versions must run in CI, not be skipped.")
        return 2

    findings = [f for pin in every if pin in audited for f in audited[pin]]
    rest = [pin for pin in every if pin not in audited]
    unaudited, unreachable = [], []
    if rest:
        print(
            f"pip-audit could not audit {len(rest)} of them"
            + (f' (first reason: "{skipped[0]}")' if skipped else "")
            + ": auditing those with PyPI's per-project JSON (the latest release's vulnerabilities)"
        )
        with requests.Session() as session, ThreadPoolExecutor(8) as pool:
            retry = Retry(
                total=ATTEMPTS - 1, backoff_factor=2, status_forcelist=(429, 500, 502, 503, 504)
            )
            session.mount("https://", HTTPAdapter(max_retries=retry))
            futures = {pin: pool.submit(fallback, session, *pin) for pin in rest}
            for (name, version), future in futures.items():
                try:
                    found, latest = future.result()
                except (requests.RequestException, ValueError, KeyError) as error:
                    unreachable.append(f"{name}=={version}: {type(error).__name__}: {error}")
                    continue
                findings += found
                if latest != version:
                    unaudited.append((name, version, latest))
    if unreachable:
        print("AUDIT NOT DONE: PyPI's JSON API did not answer for:", *unreachable, sep="\n  ")
        print("Failing: the audit of the pinned versions must run in CI, not be skipped.")
        return 2

    status = 0
    ignored = []
    for finding in distinct(findings):
        ids = {finding.id.upper(), *(alias.upper() for alias in finding.aliases)}
        reviewed = sorted(ids & ignores.vulns.keys())
        if reviewed:
            entry = ignores.vulns[reviewed[0]]
            ignored.append(f"{finding.name}=={finding.version} {finding.id}: {entry}")
            continue
        status = 1
        aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
        fixed = ", ".join(finding.fixed_in) or "no fixed version"
        note = f" [{finding.note}]" if finding.note else ""
        print(
            f"VULNERABLE {finding.name}=={finding.version}: {finding.id}{aliases};"
            f" fixed in: {fixed}{note}"
        )
    if status:
        print(
            "Upgrade the pin when a fixed version exists (`bash deploy/lock.sh --upgrade-package"
            " NAME`); otherwise, once reviewed, add `ID  # NAME VERSION: why it does not apply /"
            f" what we do` to {IGNORE_FILE}."
        )
    unreviewed = [pin for pin in unaudited if pin[:2] not in ignores.unaudited]
    for name, version, latest in unaudited:
        mark = "unaudited, reviewed" if (name, version) in ignores.unaudited else "NOT AUDITED"
        print(f"{mark}: {name}=={version}, below its latest release {latest}: no data for it here")
    if unreviewed:
        print(
            "These pins could not be audited on this network. Move them to the latest release"
            " (`bash deploy/lock.sh --upgrade-package NAME`) if their dependants allow it, or"
            f" review them and add `unaudited NAME==VERSION  # why` to {IGNORE_FILE}."
        )
        status = status or 2
    in_locks = set(every)
    for name, version in sorted(ignores.unaudited.keys() - in_locks):
        print(f"note: {IGNORE_FILE} lists unaudited {name}=={version}, no longer pinned: drop it")
    for line in ignored:
        print(f"ignored (reviewed in {IGNORE_FILE}): {line}")
    if status == 0:
        by_fallback = len(rest) - len(unaudited)
        print(
            f"pip-audit: no known vulnerabilities in {len(every)} pinned versions"
            f" ({len(audited)} audited by pip-audit, {by_fallback} by the latest-release"
            f" fallback, {len(unaudited)} reviewed as unauditable here, {len(ignored)} reviewed"
            " ignores)"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
