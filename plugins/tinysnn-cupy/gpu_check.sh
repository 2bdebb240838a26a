#!/usr/bin/env bash
# GPU check of the tinysnn-cupy backend, for a machine with an NVIDIA GPU and CuPy preinstalled.
#
#   bash plugins/tinysnn-cupy/gpu_check.sh          (from the repository root, or anywhere)
#
# Needs: python3 with numpy, pluggy and cupy. Does not install or download anything: our
# packages come from this checkout through PYTHONPATH, the digits from testdata/mnist_2k.npz.
# Runs the GPU tests (float and integer mode, when pytest is present) and bench_gpu.py (float and
# integer benchmarks; the quantized model goes to $OUT/int_model.tsnn for bench_numba_int.py); prints a JSON summary and writes
# it to $OUT/gpu_results.json when $OUT is set. Environment knobs: PYTHON (interpreter),
# BENCH_ARGS (extra bench_gpu.py arguments), TEST_TIMEOUT / BENCH_TIMEOUT (seconds).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
RESULTS_DIR="${OUT:-$(mktemp -d)}"
mkdir -p "$RESULTS_DIR"
export PYTHONPATH="$ROOT:$HERE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -4
"$PY" - <<'EOF'
import sys, platform
print("python", platform.python_version(), sys.executable)
for name in ("numpy", "pluggy", "cupy", "pytest", "numba"):
    try:
        mod = __import__(name)
        print(f"{name:8s}", getattr(mod, "__version__", "?"))
    except Exception as exc:
        print(f"{name:8s} MISSING ({type(exc).__name__}: {exc})")
EOF

# pluggy is the core's only pure-Python dependency that a bare CuPy image may lack: fall back to
# a copy in a checkout-local virtual environment (e.g. .venv/lib/python3.X/site-packages/pluggy).
if ! "$PY" -c "import pluggy" 2>/dev/null; then
    for d in "$ROOT"/.venv/lib/python3*/site-packages; do
        if [ -d "$d/pluggy" ]; then
            VENDOR="$(mktemp -d)"
            ln -s "$d/pluggy" "$VENDOR/pluggy"
            export PYTHONPATH="$PYTHONPATH:$VENDOR"
            echo "pluggy taken from $d"
            break
        fi
    done
fi

TEST_STATUS="not run"
if "$PY" -c "import pytest" 2>/dev/null; then
    echo "== GPU tests (tinysnn-cupy)"
    # -p no:cacheprovider: the checkout may be read-only; rootdir conftest of the core is not needed
    timeout "${TEST_TIMEOUT:-200}" "$PY" -m pytest -q -rs -p no:cacheprovider \
        "$HERE/tests/test_cupy_gpu.py" "$HERE/tests/test_cupy_int_gpu.py" \
        "$HERE/tests/test_cupy_plugin.py" 2>&1 | tee "$RESULTS_DIR/gpu_tests.txt" | tail -25
    rc=${PIPESTATUS[0]}
    TEST_STATUS="$(tail -1 "$RESULTS_DIR/gpu_tests.txt") (exit $rc)"
else
    echo "== pytest missing: GPU tests skipped (bench_gpu.py still checks equivalence)"
fi

echo "== benchmark"
# shellcheck disable=SC2086
timeout "${BENCH_TIMEOUT:-330}" "$PY" "$HERE/bench_gpu.py" --out "$RESULTS_DIR/bench.json" \
    --int-model-out "$RESULTS_DIR/int_model.tsnn" ${BENCH_ARGS:-}
BENCH_RC=$?

"$PY" - "$RESULTS_DIR" "$TEST_STATUS" "$BENCH_RC" <<'EOF'
import json, sys
from pathlib import Path
d, tests, rc = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
try:
    bench = json.loads((d / "bench.json").read_text())
except Exception as exc:
    bench = {"ok": False, "errors": [f"bench_gpu.py produced no results (exit {rc}): {exc}"]}
summary = {"tests": tests, "bench_exit": rc, **bench}
text = json.dumps(summary, indent=2)
(d / "gpu_results.json").write_text(text + "\n")
print("== summary (also in", d / "gpu_results.json", ")")
print(text)
EOF
