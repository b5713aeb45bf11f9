#!/usr/bin/env bash
# Install what the tests need (Python deps, Debian's chromium, kcat and openssl, the Apache
# Kafka broker from Maven Central) and run the whole suite. The suite starts and stops its
# own broker.
#
# Same verdict for the same commit on any day: Python packages come only from the hashed lock
# files, installed offline from a folder holding exactly the locked files (pip resolves against
# that folder, never against what the index offers today, so a lock that is not closed fails
# here, every day alike); Hypothesis runs derandomized (tests/conftest.py). The supply-chain
# audit, whose data changes as advisories are published, runs first as a report: its exit
# status is printed, never the run's verdict (`bash deploy/audit.sh` is the command that fails
# on a known vulnerability).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== supply-chain audit (a report, not a gate of this command: see deploy/audit.sh)"
audit_status=0
bash deploy/audit.sh --deadline 180 || audit_status=$?

echo "== installing cirt-hub with test dependencies into .venv (requirements-test.lock)"
python3 -m venv .venv
# pip, setuptools and wheel first, pinned and without resolving anything (--no-deps): every
# build below runs on them (no build isolation, which would fetch an unpinned build backend).
.venv/bin/python -m pip install --quiet --no-deps --require-hashes -r deploy/build-tools.lock
# Exactly the locked files into .wheelhouse, then the install resolves offline against them.
rm -rf .wheelhouse
.venv/bin/python -m pip download --quiet --no-deps --require-hashes --no-build-isolation \
    -r requirements-test.lock -d .wheelhouse
.venv/bin/python -m pip install --quiet --no-index --find-links .wheelhouse --require-hashes \
    --no-build-isolation -r requirements-test.lock
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/python -m pip check
# tests/deploy/test_locks.py resolves the other locks against the same files.
export CIRT_HUB_WHEELHOUSE="$PWD/.wheelhouse"
# Debian packages the suite runs (apt, as root or with sudo), each only when missing.
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_updated=""
debian_install() {  # debian_install [-t RELEASE] PACKAGE...
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null
}
if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Debian's chromium for the dashboard's browser test"
    debian_install chromium
fi
if ! command -v kcat >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    echo "== installing Debian's kcat and openssl for the Kafka-native members' recipe test"
    debian_install kcat openssl
fi
if ! command -v suricata >/dev/null 2>&1; then
    echo "== installing Debian's suricata for the export test (suricata -T reads the rules)"
    release=()
    # Debian 12 has Suricata in its backports only: add them from the mirror that serves
    # bookworm here (backports are never installed unless asked for by name, as below).
    if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
    if ! apt-cache policy suricata | grep -q 'Candidate: [0-9]' \
        && [ "$(. /etc/os-release && echo "$VERSION_CODENAME")" = bookworm ]; then
        mirror="$(apt-cache policy | awk '$3 == "bookworm/main" && $5 == "Packages" {print $2; exit}')"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
            "$mirror" /usr/share/keyrings/debian-archive-keyring.gpg \
            | $sudo tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
        $sudo apt-get update -qq
        release=(-t bookworm-backports)
    fi
    debian_install "${release[@]}" suricata
fi
echo "== fetching the Apache Kafka broker (cached after the first run)"
bash deploy/kafka/kafka.sh fetch
echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== types (mypy, strict: pyproject.toml [tool.mypy])"
.venv/bin/mypy
echo "== documentation site (mkdocs build --strict: a broken link, anchor or nav entry fails)"
docs_site="$(mktemp -d)"
.venv/bin/mkdocs build --strict --quiet --site-dir "$docs_site"
rm -rf "$docs_site"
# Two steps: the suite, then the fault suite (tests/faults: broker, worker and node crashes
# on purpose, several minutes). Both always run; the run fails if either does. Each writes a
# JUnit report; the last line adds both up.
# The suite runs on two pytest-xdist workers (its tests mostly wait on servers and brokers,
# so two at once take about half the time; they share one Kafka broker, tests/conftest.py);
# worksteal hands each worker a contiguous half and lets an idle one take from the other's
# end, so a module's tests mostly stay on one worker. `-n 0` (or a later `-n N`) as an
# argument of this command overrides it.
# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
reports="test-artifacts/junit"
rm -rf "$reports"
mkdir -p "$reports"
run_step() {
    local name="$1" report="$2"
    shift 2
    echo "== $name"
    set +e
    .venv/bin/python -m pytest --junitxml="$reports/$report.xml" "$@"
    local code=$?
    set -e
    if [ "$code" -eq 5 ]; then
        echo "$name: no tests were collected" >&2
    fi
    return "$code"
}
status=0
run_step "tests" main -m "not faults" -n 2 --dist worksteal --durations=20 "$@" || status=$?
run_step "fault suite" faults -m faults --durations=10 "$@" || status=$?
echo "== totals"
echo "supply-chain audit: exit $audit_status (a report; 0 none known, 1 vulnerable, 2 not done)"
.venv/bin/python deploy/junit_totals.py "tests=$reports/main.xml" \
    "fault suite=$reports/faults.xml" || status=$((status == 0 ? 1 : status))
exit "$status"
