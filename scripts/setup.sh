#!/usr/bin/env bash
# Set up a virtual environment with tinySNN and all of its own distributions (editable):
# the core, the example plugin, the compiled CPU backend, the CuPy backend (imports without a
# GPU), the NIR exporter and the serial hardware-in-the-loop runner. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
pkgs=(-e '.[data,test,fast,explore]' -e plugins/tinysnn-example)
for extra in plugins/tinysnn-numba plugins/tinysnn-cupy plugins/tinysnn-nir "runners/tinysnn-serial[test]"; do
    [ -f "${extra%%\[*}/pyproject.toml" ] && pkgs+=(-e "$extra")
done
.venv/bin/python -m pip install -q "${pkgs[@]}"
echo "tinySNN installed in .venv: try .venv/bin/tinysnn plugins"
