#!/usr/bin/env bash
# The whole test suite, after setting up everything it needs (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check pool tests benchmarks
exec .venv/bin/python -m pytest -q "$@"
