#!/usr/bin/env bash
# Our Diehl & Cook network with BindsNET's eth_mnist parameters (128 Hz, no retry, theta_plus
# 0.05, inh 120), one pass over mnist-5k's 4,000: the same experiment as
# benchmarks/bindsnet_baseline.py, to check that the two simulators agree.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/results; mkdir -p "$OUT"
for n in 100 400; do
    tag=mnist5k_dc_n${n}_e1_bindsnet_params
    [ -f "$OUT/$tag.json" ] && continue
    .venv/bin/tinysnn run -q --config configs/diehl-cook.toml -n "$n" --epochs 1 \
        --set exc_neuron.theta_plus=0.05 --set encoder.max_rate_hz=128.0 \
        --set encoder.max_retries=0 --out "$OUT/$tag.tsnn" --json "$OUT/$tag.json" \
        | grep "test accuracy" | sed "s/^/$tag: /"
done
