#!/usr/bin/env bash
# The quantization issue's figures: the full exploration of a trained N = 400 tinySNN model,
# the selection (within 1 point of the float model) and the report. Resumable: rerun to continue.
# Usage: bash scripts/results_explore.sh [DATASET_TAG]   (mnist5k by default; fashion too)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-mnist5k}
MODEL=runs/results/${TAG}_ts_n400.tsnn
OUT=runs/explore/$TAG; mkdir -p "$OUT"
[ -f "$MODEL" ] || { echo "train $MODEL first: bash scripts/results_core.sh" >&2; exit 2; }
start=$(date +%s)
.venv/bin/tinysnn explore "$MODEL" --results "$OUT/results.jsonl" --bits 16,12,8,6,4,3,2 \
    --roundings truncation,nearest,stochastic --schemes ptq,itq --group-sets weights,all,mixed \
    --neuron-bits 16 --workers 2 --save-models "$OUT/models"
echo "explore wall seconds: $(( $(date +%s) - start ))  (load: $(cut -d' ' -f1-3 /proc/loadavg))"
.venv/bin/tinysnn select "$OUT/results.jsonl" --model "$MODEL" --within 1 \
    --out "$OUT/selected.tsnn" --json "$OUT/selected.json"
.venv/bin/tinysnn report "$OUT/results.jsonl" --model "$MODEL" --selected "$OUT/selected.tsnn" \
    --within 1 --out "$OUT/report" --title "tinySNN exploration, $TAG, N = 400"
