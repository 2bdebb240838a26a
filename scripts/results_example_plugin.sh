#!/usr/bin/env bash
# "A third-party plugin end to end" (docs/results.md): the example plugin's neuron model
# (nonleaky-if) trained on the NumPy reference, explored in integer mode with its cost model
# (weight-traffic) and the board's, selected by the third party's figure, reported, and deployed
# to the emulated Cortex-M3 on the generic engine with the plugin's C step. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/example; mkdir -p "$OUT"
MODEL=$OUT/nlif_n100.tsnn
.venv/bin/tinysnn run -q --config configs/tinysnn.toml -n 100 --backend numpy --epochs 1 \
    --n-train 2000 --n-test 1000 --set 'exc_neuron.name="nonleaky-if"' \
    --set exc_neuron.theta_plus=0.8 --out "$MODEL"
.venv/bin/tinysnn explore "$MODEL" --results "$OUT/explore.jsonl" --schemes ptq --bits 8,4,2 \
    --roundings nearest,half-even --group-sets mixed --no-sensitivity --backend numpy \
    --cost-models weight-traffic,board-qemu-mps2-an385 -q
.venv/bin/tinysnn select "$OUT/explore.jsonl" --model "$MODEL" --within 2 \
    --cost-model weight-traffic --out "$OUT/selected.tsnn" --json "$OUT/selected.json" -q
.venv/bin/tinysnn report "$OUT/explore.jsonl" --model "$MODEL" --within 2 \
    --cost-model weight-traffic --out "$OUT/report"
.venv/bin/tinysnn deploy "$OUT/selected.tsnn" --board qemu-mps2-an385 --samples 200 \
    --results "$OUT/deploy-qemu.jsonl" --json "$OUT/deploy-qemu.json"
