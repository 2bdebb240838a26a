#!/usr/bin/env bash
# The hardware-in-the-loop figures: the model tinysnn select chose (mnist-5k, N = 400) on the
# emulated Cortex-M3 (all 1,000 test samples), on a 1%-damaged link, and the fit checks against a
# 256 KB board. Resumable (each run keeps its JSON-lines results).
set -uo pipefail
cd "$(dirname "$0")/.."
SEL=runs/explore/mnist5k/selected.tsnn
FP32=runs/results/mnist5k_ts_n400.tsnn
OUT=runs/deploy; mkdir -p "$OUT"
.venv/bin/tinysnn deploy "$SEL" --board qemu-mps2-an385 --samples 1000 \
    --results "$OUT/selected-qemu.jsonl" --json "$OUT/selected-qemu.json"
.venv/bin/tinysnn deploy "$SEL" --board qemu-mps2-an385 --samples 100 --flaky 0.01 \
    --results "$OUT/selected-qemu-flaky.jsonl" --json "$OUT/selected-qemu-flaky.json"
echo "--- 256 KB flash board (nucleo-l432kc): the FP32 model, then the selected one (build only)"
.venv/bin/tinysnn deploy "$FP32" --board nucleo-l432kc --samples 1 2>&1 | head -3
.venv/bin/tinysnn board build nucleo-l432kc --model "$SEL" --build-dir build/fit-l432kc
