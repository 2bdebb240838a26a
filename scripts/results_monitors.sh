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
# while learning: the first 20 training samples of the same run (its training stream and
# sample ids), the 20th recorded with all 400 neurons; plot_traces draws those that spiked
nice -n 10 .venv/bin/python - <<'PY'
import numpy as np

from tinysnn_core import plots
from tinysnn_core import train as flow
from tinysnn_core.config import Config
from tinysnn_core.monitors import Record, record_run

cfg = Config.load("configs/tinysnn.toml")
net, data = flow.build_network(cfg), flow.load_dataset(cfg)
rec = record_run(net, data.train_images[:20], np.arange(20),
                 Record(samples=[19], variables=("spikes", "v", "theta", "trace")),
                 seed=flow.stream_seed(cfg.seed, "train"), learn=True,
                 labels=data.train_labels[:20], phase="train")
rec.save("runs/monitors/train-19.npz")
print(plots.plot_traces(rec, 19, "docs/img/monitors-learning.png"))
PY
