#!/usr/bin/env python3
"""What numba's float32 precisions change, measured (docs/backends.md, "Precision").

1. Training: both N = 400 networks (the configs compare.py builds) learn the first ``--samples``
   mnist-5k training images in each precision; printed for each float32 mode: the largest weight
   difference from float64, the samples whose spike counts differ from float64's, and whether
   the two float32 modes trained the same weights bit for bit.
2. One presentation: the membrane potentials of every excitatory neuron of the untrained
   diehl-cook network over one training image (the monitor's per-step kernel, learning off), in
   float32 against float32-currents: how far and how often they differ, and the spikes.

    .venv/bin/python benchmarks/precision_check.py [--samples 500]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from compare import our_config  # noqa: E402

from tinysnn_core import counter_rng  # noqa: E402
from tinysnn_core.builtin.datasets import load_mnist_5k  # noqa: E402
from tinysnn_core.network import Network  # noqa: E402
from tinysnn_core.ops import OpCounts  # noqa: E402

PRECISIONS = ("float64", "float32", "float32-currents")


def training(data, n: int, samples: int) -> None:
    from tinysnn_numba import NumbaBackend

    for net_name in ("tinysnn", "diehl-cook"):
        net0 = Network.build(our_config(net_name, n, 350, 0))
        out = {}
        for p in PRECISIONS:
            net = copy.deepcopy(net0)
            counts = NumbaBackend(precision=p).run(net, data.train_images[:samples],
                                                   np.arange(samples), learn=True, seed=0,
                                                   ops=OpCounts())
            out[p] = (net.w.copy(), counts)
        w64, c64 = out["float64"]
        for p in PRECISIONS[1:]:
            w, c = out[p]
            print(f"{net_name} N={n}, {samples} samples, {p}: max |w - w_float64| "
                  f"{np.abs(w - w64).max():.3g}; samples whose counts differ from float64: "
                  f"{int((c != c64).any(axis=1).sum())}")
        same = out["float32"][0].tobytes() == out["float32-currents"][0].tobytes()
        print(f"{net_name}: float32 and float32-currents trained the same weights bit for bit: "
              f"{same}")


def one_presentation(data, n: int) -> None:
    from tinysnn_numba import backend as bk
    from tinysnn_numba import kernels as k

    net = Network.build(our_config("diehl-cook", n, 350, 0))
    fp, ip = bk.pack_params(net)
    qp = bk.pack_quant(net, False)
    enc = net.encoder
    R = enc.params.max_retries + 1
    rate_units = np.array([enc.rate_unit(r) for r in range(R)], dtype=np.int64)
    T = int(ip[k.IP_T])
    idx = np.arange(n, dtype=np.int64)
    v, spikes = {}, {}
    for p in PRECISIONS[1:]:
        w_dtype, cur_dtype = bk.PRECISION_DTYPES[p]
        raster = np.zeros((R, T, n), dtype=np.int8)
        vals = np.zeros((R, 3, T, n))
        k.record_sample(net.w.astype(w_dtype), net.theta.copy(), data.train_images[0],
                        counter_rng.sample_key(0, 0), rate_units, False, fp, ip, qp,
                        bk._program(net.w.shape[0]), np.zeros(k.N_OPS, dtype=np.int64),
                        np.zeros(n, dtype=np.int64), raster, vals, idx, np.zeros(n),
                        np.zeros(0, dtype=cur_dtype))
        v[p], spikes[p] = vals[0, 0], raster[0]
    d = np.abs(v["float32"] - v["float32-currents"])
    print(f"diehl-cook N={n}, one presentation (untrained, learning off), float32 vs "
          f"float32-currents: max |dv| {d.max():.3g} mV, {100 * (d > 0).mean():.1f}% of the "
          f"{d.size} potentials differ; spikes {int(spikes['float32'].sum())} vs "
          f"{int(spikes['float32-currents'].sum())}, identical rasters: "
          f"{np.array_equal(spikes['float32'], spikes['float32-currents'])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=500, help="training samples (500)")
    ap.add_argument("--neurons", type=int, default=400, help="N (400)")
    args = ap.parse_args(argv)
    if args.samples < 1 or args.neurons < 2:
        ap.error("--samples must be >= 1 and --neurons >= 2")
    data = load_mnist_5k(0)
    training(data, args.neurons, args.samples)
    one_presentation(data, args.neurons)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
