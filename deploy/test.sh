#!/usr/bin/env bash
# Install what the tests need (Python deps, Debian's chromium, the Apache Kafka broker from
# Maven Central) and run the whole suite. The suite starts and stops its own broker.
# Python packages come only from the hashed lock files (made by deploy/lock.sh), and are
# audited before anything from them is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== supply chain: the locks cover pyproject.toml; pip-audit of every pinned version"
# pip-audit in its own venv, from its own hashed lock (deploy/pip-audit.in says why).
python3 -m venv .venv-audit
.venv-audit/bin/python -m pip install --quiet --require-hashes --only-binary :all: \
    -r deploy/pip-audit.lock
.venv-audit/bin/python deploy/audit_locks.py
echo "== installing cirt-hub with test dependencies into .venv (requirements-test.lock)"
python3 -m venv .venv
# pip, setuptools and wheel first, pinned: every build below runs on them (no build isolation,
# which would fetch an unpinned build backend).
.venv/bin/python -m pip install --quiet --require-hashes -r deploy/build-tools.lock
.venv/bin/python -m pip install --quiet --require-hashes --no-build-isolation \
    -r requirements-test.lock
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Debian's chromium for the dashboard's browser test"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium >/dev/null
fi
echo "== fetching the Apache Kafka broker (cached after the first run)"
bash deploy/kafka/kafka.sh fetch
echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Two steps: the suite, then the fault suite (tests/faults: broker, worker and node crashes
# on purpose, several minutes). Both always run; the run fails if either does.
# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
run_step() {
    local name="$1"
    shift
    echo "== $name"
    set +e
    .venv/bin/python -m pytest "$@"
    local code=$?
    set -e
    if [ "$code" -eq 5 ]; then
        echo "$name: no tests were collected" >&2
    fi
    return "$code"
}
status=0
run_step "tests" -m "not faults" --durations=20 "$@" || status=$?
run_step "fault suite" -m faults --durations=10 "$@" || status=$?
exit "$status"
