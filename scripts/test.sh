#!/usr/bin/env bash
# The README's test command: set up a virtual environment, lint and type-check, then run the
# parity suite, first against live PyTorch, then against the recorded PyTorch outputs shipped in
# the package.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TORCHSEM_VENV:-.venv-test}"
PY="${PYTHON:-python3}"
"$PY" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch==2.13.0 is the CPU build the project's machines keep on disk; a plain `torch` pulls a CUDA build.
"$VENV/bin/python" -m pip install --quiet -e ".[test]" "torch==2.13.0"
export PYTHONDONTWRITEBYTECODE=1
status=0
echo "== lint and types (ruff, mypy) =="
"$VENV/bin/ruff" check . || status=$?
"$VENV/bin/ruff" format --check . || status=$?
"$VENV/bin/mypy" || status=$?
# One pytest worker per core (pytest-xdist): most tests are single-threaded. TORCHSEM_TEST_WORKERS=0
# runs in one process.
WORKERS="${TORCHSEM_TEST_WORKERS:-2}"
echo "== parity suite, live PyTorch oracle =="
TORCHSEM_ORACLE=live "$VENV/bin/python" -m pytest -q -p no:cacheprovider -n "$WORKERS" "$@" || status=$?
echo "== parity suite, recorded PyTorch outputs (torch import blocked) =="
TORCHSEM_ORACLE=recorded "$VENV/bin/python" -m pytest -q -p no:cacheprovider -n "$WORKERS" "$@" || status=$?
exit "$status"
