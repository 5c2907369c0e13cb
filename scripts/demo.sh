#!/usr/bin/env bash
# Run the host with the demo pipeline (the embedded default) on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/mwhost serve "$@"
