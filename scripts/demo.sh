#!/usr/bin/env bash
# Set up everything and run the end-to-end fraud demo in ./shipyard-demo (or the folder given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/shipyard demo "${1:-shipyard-demo}"
