#!/usr/bin/env bash
# Regenerate the hashed lock files, for CPython 3.11 on Linux x86_64 (the project's machines):
#   requirements.lock         pyproject.toml's dependencies + the build backend (setuptools,
#                             wheel): README's command 1 installs it with --require-hashes
#   requirements-test.lock    the same + the `test` extra, with the same pins for what the two
#                             share: deploy/test.sh (README's command 2, CI) installs it
#   deploy/build-tools.lock   pip, setuptools, wheel (deploy/build-tools.in): test.sh installs
#                             it first, so builds need no unpinned build backend
# with uv, installed into a throwaway venv (nothing is added to the project's .venv).
#
# When to run it:
# - after changing pyproject.toml's dependencies, its `test` extra, its [build-system]
#   requires, or deploy/*.in (deploy/test.sh fails while a lock no longer covers them);
# - to take a fixed version after the audit (`bash deploy/audit.sh`) reports a vulnerability;
# - now and then, to take upgrades.
# How:
#   bash deploy/lock.sh                          keep every existing pin; add or drop only what
#                                                the inputs changed
#   bash deploy/lock.sh --upgrade-package NAME   move NAME (repeatable) to its newest version
#   bash deploy/lock.sh --upgrade                move everything to the newest versions
# (arguments go to `uv pip compile`), then review `git diff -- '*.lock'` and run
# `bash deploy/audit.sh` (the new pins' known vulnerabilities) and `bash deploy/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet "uv==$UV_VERSION"

compile() {
    "$tools/venv/bin/uv" pip compile --quiet --generate-hashes \
        --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
        --custom-compile-command "bash deploy/lock.sh" "$@"
}

# The test lock first: it holds every package of the runtime lock, whose pins then follow it.
compile pyproject.toml deploy/build-tools.in --extra test --no-emit-package pip \
    -o requirements-test.lock "$@"
compile pyproject.toml deploy/build-tools.in --no-emit-package pip --only-binary :all: \
    -c requirements-test.lock -o requirements.lock "$@"
compile deploy/build-tools.in --only-binary :all: -c requirements-test.lock \
    -o deploy/build-tools.lock "$@"
echo "locks written: requirements.lock requirements-test.lock deploy/build-tools.lock"
