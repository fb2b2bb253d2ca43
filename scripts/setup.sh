#!/usr/bin/env bash
# Create .venv and install latentvo with what the demo needs, plus the test tools unless
# called with --no-test-extras. Idempotent: re-running installs again only when
# pyproject.toml or the extras changed. Each step prints a line with its duration, and
# pip prints one line per package, so a long install is never silent.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[test]"
[ "${1:-}" = "--no-test-extras" ] && extras=""
PY=${PYTHON:-python3}
stamp=.venv/.latentvo-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
have=$(cat "$stamp" 2>/dev/null || true)
# the test tools are extras: an install with them also serves the demo
if [ -x .venv/bin/python ] && { [ "$have" = "$want" ] || [ "$have" = "$want[test]" ]; }; then
  exit 0
fi

started=$SECONDS
step() { echo "[setup $((SECONDS - started)) s] $*"; }
if [ ! -x .venv/bin/python ]; then
  step "1/3 creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
# torch first and pinned: an open requirement would pull a multi-GB CUDA build.
step "2/3 installing torch 2.13.0 (the largest package; unpacking it takes a while)"
# pip prints a line per package (and a bar per download): no --quiet, no silent minutes.
# --no-compile: Python compiles what it imports on first use; compiling all of torch and
# scipy up front took 3/4 of the install's CPU time (67 s -> 23 s for torch alone).
.venv/bin/python -m pip install --no-compile torch==2.13.0
step "3/3 installing latentvo${extras} and its dependencies"
.venv/bin/python -m pip install --no-compile -e ".${extras}"
echo "$want" > "$stamp"
step "installed"
