#!/usr/bin/env bash
# Install what the tests need (Python deps, Debian's chromium, the Apache Kafka broker from
# Maven Central) and run the whole suite. The suite starts and stops its own broker.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== installing cirt-hub with test dependencies into .venv"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
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
echo "== tests"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
if [ "$status" -eq 5 ]; then
    echo "no tests were collected" >&2
fi
exit "$status"
