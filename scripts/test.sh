#!/usr/bin/env bash
# Set up everything and run every check: ruff, mypy (strict), import-linter, then the tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -k cache -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff";          ruff check src tests benchmarks examples
echo "== ruff format";   ruff format --check src tests benchmarks examples
echo "== mypy";          mypy
echo "== import-linter"; lint-imports
echo "== pytest"
# pytest exits 5 when it collected no tests; that must fail the check, and set -e makes it so.
pytest "$@"
