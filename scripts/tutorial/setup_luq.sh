#!/usr/bin/env bash
# Builds the published tutorial's venv for `make bench-tutorial`: lightning-uq-box 0.4.0 (it needs
# Python 3.12) with the torch a new user gets from pip. Outside the repo, once (a few minutes,
# ~6 GB): ${LUQ_VENV:-${TMPDIR:-/tmp}/venv-luq}. Finds python3.12 on PATH or in pyenv.
set -euo pipefail
V=${LUQ_VENV:-${TMPDIR:-/tmp}/venv-luq}
if [ -x "$V/bin/python" ] && "$V/bin/python" -c "import lightning_uq_box" 2>/dev/null; then
  echo "$V ready"; exit 0
fi
PY=""
# a pyenv shim answers `command -v` even when its 3.12 is not the active version: try each one
for candidate in python3.12 "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12; do
  if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != (3, 12))" 2>/dev/null; then
    PY=$candidate; break
  fi
done
[ -n "$PY" ] || { echo "setup_luq.sh: needs Python 3.12 (python3.12 on PATH, or pyenv install 3.12)" >&2; exit 1; }
rm -rf "$V"
"$PY" -m venv "$V"
"$V/bin/pip" install -q "torch==2.14.1" lightning-uq-box==0.4.0
echo "$V ready"
