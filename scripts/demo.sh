#!/usr/bin/env bash
# Fresh machine -> running demo service: install, then `latentvo demo` (embedded database,
# synthetic archive, ingest, reference labels, web service on http://127.0.0.1:8000/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/latentvo demo "$@"
