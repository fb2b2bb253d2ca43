#!/usr/bin/env bash
# Fresh machine -> running demo service: install (without the test tools), then
# `latentvo demo`: embedded database, the web service on http://127.0.0.1:8000/ at once,
# and in the background a synthetic archive, its ingest, reference labels, the demo's
# models and their products (the landing page shows the progress).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-test-extras
exec .venv/bin/latentvo demo "$@"
