#!/usr/bin/env bash
# The supply-chain audit: known vulnerabilities of every version pinned in the lock files
# (requirements.lock, requirements-test.lock, deploy/build-tools.lock), from PyPI's advisory
# data. Exit 0: none known (pins it could not audit are listed, not failed); 1: a known
# vulnerability, named; 2: the audit could not be done. Its verdict changes as advisories are
# published, so it is an operator's or a scheduled job's command, not a gate of the test
# command (deploy/test.sh runs it as a report). Python's standard library only.
# Options (see --help): --lock FILE, --ignore-file FILE, --json-api URL, --deadline SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 deploy/audit_locks.py "$@"
