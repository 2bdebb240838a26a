#!/usr/bin/env bash
# Issue 12, monitors: the figures of docs/monitors.md. The mnist-5k N = 400 tinySNN network
# (configs/tinysnn.toml, seed 0) trained with its training curve, then two recordings of its
# test samples (all of them, spikes only, for the confusion matrix; the first 12 with the state
# of their 6 most active neurons), then the plots. Resumable (training resumes from its
# checkpoint; the curve then covers the resumed part only).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/monitors; IMG=docs/img; mkdir -p "$OUT" "$IMG"
T=.venv/bin/tinysnn
M=$OUT/mnist5k_ts_n400.tsnn
[ -f "$M" ] || nice -n 10 $T run -q --config configs/tinysnn.toml --out "$M" \
    --curve "$OUT/curve.json" | grep -E "^test accuracy|written"
nice -n 10 $T eval "$M" -q --record "$OUT/test-all.npz" --record-samples all \
    --record-variables spikes | grep -E "^test accuracy|^recording"
nice -n 10 $T eval "$M" -q --record "$OUT/test-12.npz" --record-samples 0:12 \
    --record-neurons active:6 | grep -E "^recording"
$T plot raster "$OUT/test-12.npz" --samples 0:12 --model "$M" -o "$IMG/monitors-raster.png"
$T plot traces "$OUT/test-12.npz" --sample 0 -o "$IMG/monitors-traces.png"
$T plot confusion "$OUT/test-all.npz" -o "$IMG/monitors-confusion.png"
$T plot assignments "$M" -o "$IMG/monitors-assignments.png"
$T plot curve "$OUT/curve.json" -o "$IMG/monitors-training-curve.png"
