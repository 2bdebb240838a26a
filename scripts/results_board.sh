#!/usr/bin/env bash
# The board issue's figures (docs/results.md section 5), from a fresh checkout:
#   1. float models: tinySNN N = 100, 400, 1600 and Diehl & Cook N = 400 on mnist-5k, tinySNN
#      N = 400 on Fashion-MNIST (results_core.sh's settings);
#   2. the board cost model: calibration models (PTQ, several sizes, widths and inference
#      settings) run on both QEMU boards, instructions fitted (tinysnn board calibrate), the
#      cycles per instruction of each core from the cycle-estimate plugin;
#   3. checks of the fit on other models (predicted vs measured on both QEMU boards);
#   4. the exploration with the inference axes and the board costs, the selection for
#      nucleo-l432kc within 1 point, its deployment on both QEMU boards (1,000 samples);
#   5. the same selection on Fashion-MNIST.
# Leaves the mnist-5k model chosen for nucleo-l432kc at runs/board/mnist5k/selected.tsnn.
# Resumable: every step skips what it finds done. WORKERS (default 2) sets explore's workers.
set -euo pipefail
cd "$(dirname "$0")/.."
T=.venv/bin/tinysnn
PY=.venv/bin/python
W=${WORKERS:-2}
R=runs/results; B=runs/board; mkdir -p "$R" "$B"
say() { echo "== $*" >&2; }

train() {  # tag config args...
    local tag=$1 cfg=$2; shift 2
    [ -f "$R/$tag.tsnn" ] || $T run -q --config "configs/$cfg.toml" --out "$R/$tag.tsnn" \
        --json "$R/$tag.json" "$@" | grep "test accuracy" | sed "s/^/$tag: /"
}
say "1. float models"
train mnist5k_ts_n100 tinysnn -n 100 --set exc_neuron.theta_plus=0.2
train mnist5k_ts_n400 tinysnn -n 400 --set exc_neuron.theta_plus=0.8
train mnist5k_ts_n1600 tinysnn -n 1600 --set exc_neuron.theta_plus=0.8
train mnist5k_dc_n400 diehl-cook -n 400 --set exc_neuron.theta_plus=0.8
train fashion_ts_n400 tinysnn --dataset fashion-mnist --epochs 1
M100=$R/mnist5k_ts_n100.tsnn; M400=$R/mnist5k_ts_n400.tsnn; M1600=$R/mnist5k_ts_n1600.tsnn

say "2. calibration: models, instructions on both QEMU boards, cycles per instruction"
CAL=$B/calibration-models
[ -f "$CAL/done" ] || {
    $PY scripts/board_models.py "$CAL" "$M100,$M400,$M1600" --bits 2,4,8 --settings \
        "" "rate_hz=127.5,exit_margin=2" "time_steps=150,rate_hz=191.25,max_retries=0"
    touch "$CAL/done"; }
for board in qemu-mps2-an385 qemu-mps2-an386; do
    $T board calibrate "$board" --models "$CAL"/*.tsnn --samples 30 --work-dir "$B/calibrate"
done
for board in qemu-mps2-an385 qemu-mps2-an386 nucleo-l432kc nucleo-l476rg; do
    $T board calibrate-cycles "$board" --models "$CAL"/mnist5k_ts_n400-w2-1.tsnn \
        "$CAL"/mnist5k_ts_n100-w8-0.tsnn --samples 5 --work-dir "$B/cycles"
done

say "3. the fit checked on models it was not fitted on (100 samples each, both QEMU boards)"
CHK=$B/check-models
[ -f "$CHK/done" ] || {
    $PY scripts/board_models.py "$CHK" "$M100,$M400,$M1600" --bits 2,4 --settings \
        "rate_hz=95.625,exit_margin=3" "time_steps=200,exit_margin=1"
    touch "$CHK/done"; }
for board in qemu-mps2-an385 qemu-mps2-an386; do
    for m in "$CHK"/*.tsnn; do
        $T deploy "$m" --board "$board" --samples 100 --results "$B/check/$(basename "$m" .tsnn)-$board.jsonl" \
            --json "$B/check/$(basename "$m" .tsnn)-$board.json" | grep -E "parity|predicted" || true
    done
done

say "4. mnist-5k: exploration with the inference axes and the board costs, selection, deployment"
E=$B/mnist5k; mkdir -p "$E"
AXES=(--time-steps 350,200,100 --rates 63.75,127.5,191.25 --exit-margins 0,1,2,4 --retries 4,0
      --boards nucleo-l432kc,qemu-mps2-an385,qemu-mps2-an386 --no-sensitivity --workers "$W" -q)
$T explore "$M100" "$M400" "$M1600" --results "$E/results.jsonl" --schemes ptq \
    --bits 8,4,2 --roundings nearest --group-sets mixed "${AXES[@]}"
$T explore "$M100" "$M400" --results "$E/results.jsonl" --schemes itq \
    --bits 4,2 --roundings stochastic --group-sets mixed --save-models "$E/models" "${AXES[@]}"
$T select "$E/results.jsonl" --board nucleo-l432kc --within 1 --model "$M400" \
    --out "$E/selected.tsnn" --json "$E/selected.json"
for board in qemu-mps2-an385 qemu-mps2-an386; do
    $T deploy "$E/selected.tsnn" --board "$board" --samples 1000 \
        --results "$E/selected-$board.jsonl" --json "$E/selected-$board.json"
done
$T report "$E/results.jsonl" --board nucleo-l432kc --within 1 --model "$M400" \
    --selected "$E/selected.tsnn" --out "$E/report" || true

say "5. Fashion-MNIST: the same board selection"
F=$B/fashion; mkdir -p "$F"
$T explore "$R/fashion_ts_n400.tsnn" --results "$F/results.jsonl" --schemes ptq \
    --bits 4,2 --roundings stochastic --group-sets mixed --assign-limit 10000 \
    --rates 63.75,127.5,191.25 --exit-margins 0,1,2 --boards nucleo-l432kc,qemu-mps2-an385 \
    --no-sensitivity --workers "$W" -q
$T select "$F/results.jsonl" --board nucleo-l432kc --within 1 --out "$F/selected.tsnn" \
    --json "$F/selected.json"
$T deploy "$F/selected.tsnn" --board qemu-mps2-an385 --samples 1000 \
    --results "$F/selected-qemu-mps2-an385.jsonl" --json "$F/selected-qemu-mps2-an385.json"
say "done: $E/selected.tsnn"
