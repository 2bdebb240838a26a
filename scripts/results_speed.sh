#!/usr/bin/env bash
# Issue 13's speed figures (docs/benchmarks.md), on this machine, from a checkout with the side
# venvs buildable (BindsNET: benchmarks/bindsnet_baseline.py; Brian2: brian2_baseline.py; both
# are built on first use):
#   ratios     like-for-like ratios at N = 400: BindsNET, Brian2 cpp_standalone, the C floor,
#              numba float64 and float32 (benchmarks/compare.py)
#   scaling    our backends at N = 100 .. 6400, T = 350 and 100 (compare.py, ours only)
#   explore    the board issue's grid at N = 400 over 5 seeds, grouped, timed; then seed 0
#              again without grouping, and the rows of both compared
# Usage: bash scripts/results_speed.sh [ratios|scaling|explore|all]   (default all)
# Each part is resumable (compare.py keeps finished measurements, explore finished points);
# delete its output to measure again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
T=.venv/bin/tinysnn
O=benchmarks/out
mkdir -p "$O"
what=${1:-all}
say() { echo "== $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }

if [[ $what == ratios || $what == all ]]; then
    say "like-for-like ratios at N = 400"
    $PY benchmarks/compare.py --sizes 400 --threads 1,all --ours-infer 2000 \
        --json "$O/speed_n400.json" | tee "$O/speed_n400.txt"
fi

if [[ $what == scaling || $what == all ]]; then
    for t in 350 100; do
        say "scaling, T = $t"
        $PY benchmarks/compare.py --sizes 100,400,1600,6400 --time "$t" --skip-bindsnet \
            --no-brian2 --no-floor --skip-numpy --ours-train 500 --ours-infer 1000 \
            --ours-infer-sample 100 --json "$O/scaling_T$t.json" | tee "$O/scaling_T$t.txt"
    done
fi

if [[ $what == explore || $what == all ]]; then
    S=runs/seeds/tinysnn     # five float models, seeds 0-4 (scripts/results_seeds.sh trains them)
    $T run -q --config configs/tinysnn.toml --seed 0 --seeds 5 --out "$S" | grep "test accuracy"
    E=runs/speed/explore; mkdir -p "$E"
    AXES=(--time-steps 350,200,100 --rates 63.75,127.5,191.25 --exit-margins 0,1,2,4 --retries 4,0
          --boards nucleo-l432kc,qemu-mps2-an385,qemu-mps2-an386 --no-sensitivity --workers 2 -q)
    say "5-seed exploration, grouped"
    start=$(date +%s)
    $T explore --seeds 5 "$S" --results "$E/results.jsonl" --schemes ptq --bits 8,4,2 \
        --roundings nearest --group-sets mixed "${AXES[@]}"
    $T explore --seeds 5 "$S" --results "$E/results.jsonl" --schemes itq --bits 4,2 \
        --roundings stochastic --group-sets mixed "${AXES[@]}"
    echo "5-seed exploration: wall $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
    say "seed 0 without grouping"
    U=runs/speed/explore-ungrouped; mkdir -p "$U"
    start=$(date +%s)
    $T explore "$S/seed0.tsnn" --results "$U/results.jsonl" --schemes ptq --bits 8,4,2 \
        --roundings nearest --group-sets mixed "${AXES[@]}" --no-group
    $T explore "$S/seed0.tsnn" --results "$U/results.jsonl" --schemes itq --bits 4,2 \
        --roundings stochastic --group-sets mixed "${AXES[@]}" --no-group
    echo "seed 0 ungrouped: wall $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
    $PY scripts/same_rows.py "$E/results.jsonl.seeds/seed0.jsonl" "$U/results.jsonl"
fi
