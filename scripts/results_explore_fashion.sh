#!/usr/bin/env bash
# The same exploration on Fashion-MNIST (N = 400 tinySNN, trained on the 60,000): every PTQ point
# of the grid, labels assigned on the first 10,000 training images, tested on all 10,000 test
# images; ITQ points (each a full 60,000-image training) with stochastic rounding, the scheme that
# held up at low precision on mnist-5k, at 4 and 3 bits with the decay group at the neuron
# precision (16 bits) and at 4, 3 and 2 bits with it at 32 bits; no sensitivity sweep. Resumable.
# Then select and report as for mnist-5k.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=runs/results/fashion_ts_n400.tsnn
OUT=runs/explore/fashion; mkdir -p "$OUT"
[ -f "$MODEL" ] || { echo "train $MODEL first: bash scripts/results_core.sh" >&2; exit 2; }
start=$(date +%s)
.venv/bin/tinysnn explore "$MODEL" --results "$OUT/results.jsonl" --bits 16,8,6,4,3,2 \
    --roundings truncation,nearest,stochastic --schemes ptq --group-sets weights,all,mixed \
    --neuron-bits 16 --no-sensitivity --assign-limit 10000 --workers 2
.venv/bin/tinysnn explore "$MODEL" --results "$OUT/results.jsonl" --bits 4,3 \
    --roundings stochastic --schemes itq --group-sets mixed --neuron-bits 16 \
    --no-sensitivity --assign-limit 10000 --workers 2 --save-models "$OUT/models"
# the same with the decay factors at 32 bits: at 16 theta's decay rounds to 1 (docs/results.md)
.venv/bin/tinysnn explore "$MODEL" --results "$OUT/results.jsonl" --bits 4,3,2 \
    --roundings stochastic --schemes itq --group-sets mixed --neuron-bits 16 --decay-bits 32 \
    --no-sensitivity --assign-limit 10000 --workers 2 --save-models "$OUT/models"
echo "explore wall seconds: $(( $(date +%s) - start ))  (load: $(cut -d' ' -f1-3 /proc/loadavg))"
.venv/bin/tinysnn select "$OUT/results.jsonl" --model "$MODEL" --within 1 \
    --out "$OUT/selected.tsnn" --json "$OUT/selected.json"
.venv/bin/tinysnn report "$OUT/results.jsonl" --model "$MODEL" --selected "$OUT/selected.tsnn" \
    --within 1 --out "$OUT/report" --title "tinySNN exploration, fashion-mnist, N = 400"
