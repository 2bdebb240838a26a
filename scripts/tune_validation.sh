#!/usr/bin/env bash
# Choose the inhibition strength and theta_plus of each network on a validation split
# (the last 1,000 of mnist-5k's 4,000 training digits; the test set is not looked at).
# Usage: bash scripts/tune_validation.sh N EPOCHS   -> runs/tune/*.json, one per setting
# Give EPOCHS so that 3,000 x EPOCHS presentations match the final run's (4,000 x 3 = 3,000 x 4):
# these networks change abruptly with the number of presentations (theta must grow first).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400}; E=${2:-4}; OUT=runs/tune; mkdir -p "$OUT"
run() {  # tag, then tinysnn arguments
    local tag=$1; shift
    [ -f "$OUT/$tag.json" ] && return 0   # resumable: finished settings are skipped
    .venv/bin/tinysnn run -q --backend numba -n "$N" --epochs "$E" --set dataset.validation=1000 \
        --out "$OUT/$tag.tsnn" --fresh --json "$OUT/$tag.json" "$@" > /dev/null
    python3 -c "import json,sys; m=json.load(open('$OUT/$tag.json'))['metrics']; print('$tag', round(100*m['accuracy'],2))"
}
for tp in 0.05 0.2 0.4 0.8; do
    for inh in 17.5 120; do
        run "dc_n${N}_e${E}_inh${inh}_tp${tp}" --topology diehl-cook --learning postpre \
            --set topology.inh=$inh --set exc_neuron.theta_plus=$tp
    done
    for w in -60 -120; do
        run "ts_n${N}_e${E}_w${w}_tp${tp}" --topology tinysnn --learning tinysnn-stdp \
            --set topology.w_inh=$w --set exc_neuron.theta_plus=$tp
    done
done
