#!/usr/bin/env bash
# The core issue's figures: both networks at N = 100 and 400 on mnist-5k (4,000 / 1,000), and at
# N = 400 on Fashion-MNIST (60,000 / 10,000). Writes runs/results/*.json (+ models); resumable
# (finished runs are skipped, an interrupted one resumes from its checkpoint).
# Then: python scripts/results_table.py runs/results/*.json
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/results; mkdir -p "$OUT"
run() {  # tag config args...
    local tag=$1 cfg=$2; shift 2
    [ -f "$OUT/$tag.json" ] && { echo "$tag: done"; return 0; }
    .venv/bin/tinysnn run -q --config "configs/$cfg.toml" --out "$OUT/$tag.tsnn" \
        --json "$OUT/$tag.json" "$@" | grep "test accuracy" | sed "s/^/$tag: /"
}
# theta_plus per size, chosen on the validation split (scripts/tune_validation.sh N 4):
# N = 100 -> 0.2, N = 400 -> 0.8, the same for both networks; inhibition 120 for both.
for n in 100 400; do
    tp=$([ "$n" = 100 ] && echo 0.2 || echo 0.8)
    run "mnist5k_dc_n$n" diehl-cook -n "$n" --set exc_neuron.theta_plus=$tp
    run "mnist5k_ts_n$n" tinysnn -n "$n" --set exc_neuron.theta_plus=$tp
done
# one pass over the 4,000 (the presentations of benchmarks/bindsnet_baseline.py's run)
run mnist5k_dc_n400_e1 diehl-cook --epochs 1
run mnist5k_ts_n400_e1 tinysnn --epochs 1
run mnist5k_dc_n100_e1 diehl-cook -n 100 --epochs 1 --set exc_neuron.theta_plus=0.2
run mnist5k_ts_n100_e1 tinysnn -n 100 --epochs 1 --set exc_neuron.theta_plus=0.2
run fashion_dc_n400 diehl-cook --dataset fashion-mnist --epochs 1
run fashion_ts_n400 tinysnn --dataset fashion-mnist --epochs 1
