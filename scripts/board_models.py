"""Quantized models for the board cost model's calibration and checks: post-training
quantization of trained float models at several weight widths and inference settings.

    python scripts/board_models.py OUT_DIR MODEL.tsnn[,MODEL.tsnn...] --bits 2,4,8 \
        --settings "rate_hz=63.75" "rate_hz=127.5,exit_margin=2"

Writes OUT_DIR/<model>-w<bits>-<k>.tsnn for every model x width x setting (the neuron groups at
16 bits, weights round-to-nearest; the same point tinysnn explore's 'mixed' set builds)."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from tinysnn_core import train as flow
from tinysnn_core.explore import make_groups, point_network, ALL_GROUPS
from tinysnn_core.modelfile import load_network, save_network
from tinysnn_core.quant import model_ranges


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("models")
    ap.add_argument("--bits", default="2,4,8")
    ap.add_argument("--settings", nargs="+", default=[""])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.models.split(","):
        base = load_network(path)
        for bits in [int(b) for b in args.bits.split(",")]:
            groups = make_groups(ALL_GROUPS, bits, "nearest", model_ranges(base), 16)
            net, data, backend = point_network(copy.deepcopy(base), "ptq", groups)
            flow.assign(net, data, backend=backend, progress=False)
            for k, setting in enumerate(args.settings):
                over = [f"inference.{kv}" for kv in setting.split(",") if kv]
                q = copy.deepcopy(net)
                q.config = q.config.with_overrides(over)
                dest = out / f"{Path(path).stem}-w{bits}-{k}.tsnn"
                save_network(q, dest)
                print(dest, setting)


if __name__ == "__main__":
    main()
