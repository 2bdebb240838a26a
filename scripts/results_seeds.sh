#!/usr/bin/env bash
# Issue 12, statistics: both N = 400 networks on mnist-5k over K seeds (0..K-1, default 5): the
# test accuracy's mean and 95% CI; an exploration of the key points over the same seeds (each
# seed's points against that seed's float model); the selection within 1 point, decided by a
# paired test. Resumable: finished seeds and points are skipped, a killed one resumes.
# Then: python scripts/seeds_table.py runs/seeds
set -euo pipefail
cd "$(dirname "$0")/.."
K=${K:-5}
OUT=runs/seeds; mkdir -p "$OUT"
T=.venv/bin/tinysnn
for net in diehl-cook tinysnn; do
    start=$(date +%s)
    nice -n 10 $T run -q --config "configs/$net.toml" --seed 0 --seeds "$K" --out "$OUT/$net" \
        | grep -E "^test accuracy over" | sed "s/^/$net: /"
    echo "$net: wall $(( $(date +%s) - start )) s"
done
start=$(date +%s)
# PTQ of the weights at 8..3 bits with explore's default roundings (truncation, nearest,
# stochastic), in integer inference with the neuron groups at 16 bits (mixed: the deployable
# points select chooses among); then the ITQ point docs/results.md section 2 selected
nice -n 10 $T explore --seeds "$K" "$OUT/tinysnn" --results "$OUT/explore.jsonl" -q \
    --schemes ptq --bits 8,6,5,4,3 --group-sets mixed --no-sensitivity --workers 2
nice -n 10 $T explore --seeds "$K" "$OUT/tinysnn" --results "$OUT/explore.jsonl" -q \
    --schemes itq --bits 2 --roundings stochastic --group-sets mixed --no-sensitivity \
    --workers 2 --save-models "$OUT/models"
echo "explore: wall $(( $(date +%s) - start )) s"
$T select "$OUT/explore.jsonl" --model "$OUT/tinysnn" --within 1 -q \
    --out "$OUT/selected.tsnn" --json "$OUT/selected.json"
# the same rule on seed 0 alone (its own results file): what one seed can certify
$T select "$OUT/explore.jsonl.seeds/seed0.jsonl" --model "$OUT/tinysnn/seed0.tsnn" --within 1 -q \
    --out "$OUT/selected-seed0.tsnn"
