#!/usr/bin/env bash
# Install what the tests need (Python deps, the Apache Kafka broker from Maven Central)
# and run the whole suite. The suite starts and stops its own broker.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== installing cirt-hub with test dependencies into .venv"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
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
