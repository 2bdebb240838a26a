#!/usr/bin/env bash
# The board link through real damage (docs/results.md, "The link through damage"): the selected
# mnist-5k model on qemu-mps2-an385, all 1,000 test samples in ONE measure session per damage
# rate, through scripts/damage_proxy.py (seeded drops and bit flips, both directions).
#   bash scripts/results_link.sh RATE SEED PROXY_PORT [SAMPLES]   e.g. 0.03 1 4403
# Needs runs/board/mnist5k/selected.tsnn (scripts/results_board.sh). Writes runs/link/RATE-*.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=$1; SEED=$2; LISTEN=$3; SAMPLES=${4:-1000}
T=.venv/bin/tinysnn; MODEL=runs/board/mnist5k/selected.tsnn; OUT=${OUT:-runs/link/$RATE}
mkdir -p "$OUT"
.venv/bin/tinysnn board start qemu-mps2-an385 --model "$MODEL" --build-dir "build/link-$RATE" \
    > "$OUT/board.log" 2>&1 &
BOARD=$!
trap 'kill -TERM $BOARD ${PROXY:-} 2>/dev/null || true' EXIT
for _ in $(seq 120); do grep -q "running: socket" "$OUT/board.log" && break; sleep 1; done
URL=$(grep -o "socket://127.0.0.1:[0-9]*" "$OUT/board.log")
python3 scripts/damage_proxy.py --listen "$LISTEN" --upstream "127.0.0.1:${URL##*:}" \
    --rate "$RATE" --seed "$SEED" --stats "$OUT/proxy.json" > "$OUT/proxy.log" 2>&1 &
PROXY=$!
sleep 1
start=$(date +%s)
$T measure "$MODEL" --board qemu-mps2-an385 --port "socket://127.0.0.1:$LISTEN" --samples "$SAMPLES" \
    --results "$OUT/measure.jsonl" --json "$OUT/measure.json" 2>&1 | tee "$OUT/measure.log"
echo "wall: $(( $(date +%s) - start )) s" | tee -a "$OUT/measure.log"
