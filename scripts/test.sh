#!/usr/bin/env bash
# Fresh machine -> full test suite: install, run pytest on an embedded PostgreSQL,
# then rerun the database tests against a separate server through LATENTVO_DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# STILTS (taplint, tapquery, votlint) checks the TAP service; nginx and openssl run
# deploy/nginx in front of it (tests/test_deploy.py). Debian packages them.
missing=""
command -v stilts >/dev/null || missing="$missing stilts"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
command -v openssl >/dev/null || missing="$missing openssl"
# Debian's chromium runs the explorer page's browser test (tests/test_explore_browser.py),
# driven by Playwright from PyPI with this executable (never 'playwright install').
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
unset LATENTVO_DATABASE_URL LATENTVO_READER_DATABASE_URL LATENTVO_HOME LATENTVO_CONFIG
.venv/bin/python -m pytest "$@"
echo "--- external-database pass (LATENTVO_DATABASE_URL) ---"
.venv/bin/python tests/external_database.py -- \
  .venv/bin/python -m pytest -q tests/test_database.py tests/test_schema.py tests/test_ingest.py
