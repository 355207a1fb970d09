#!/usr/bin/env bash
# Installs the Python tools the tests use (schemathesis, from PyPI) into .venv, idempotently.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -x .venv/bin/st ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
