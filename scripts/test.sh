#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/services.sh
# One test process per core, at most 4: the tests start engines, workers and browsers of their
# own, so more would only queue for the CPU. A file's tests stay in one process (module
# fixtures, the order a file was written in). AIGC_TEST_WORKERS=0 runs them in this process.
workers=${AIGC_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
