"""The fused learning path against the per-step kernel it replaced, on the same samples.

    NUMBA_NUM_THREADS=1 python plugins/tinysnn-numba/bench_fused.py [--topology T] [--n N]

Trains a fresh network on the first ``--samples`` mnist-5k training digits with
``kernels.train_batch`` (the per-step kernel, ``_steps_float``) and ``kernels.train_batch_fused``
(what the backend runs for N >= 2), alternately, ``--repeat`` times each; prints microseconds per
sample of each run (wall clock) and whether the two paths left identical weights, thresholds,
counts and counters.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinysnn_core import counter_rng
from tinysnn_core.builtin.datasets import load_mnist_5k
from tinysnn_core.config import Config
from tinysnn_core.network import Network
from tinysnn_numba import backend as bk
from tinysnn_numba import kernels as k

RULES = {"tinysnn": "tinysnn-stdp", "diehl-cook": "postpre"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topology", choices=sorted(RULES), default="tinysnn")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--time-steps", type=int, default=350)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)

    data = load_mnist_5k(0)
    net0 = Network.build(Config.from_dict({
        "n_neurons": args.n, "topology": {"name": args.topology},
        "learning": {"name": RULES[args.topology]}, "train": {"time_steps": args.time_steps}}))
    fp, ip = bk.pack_params(net0)
    qp = bk.pack_quant(net0, True)
    B = args.samples
    images = np.ascontiguousarray(data.train_images[:B], dtype=np.int64)
    skeys = np.array([counter_rng.sample_key(0, s) for s in range(B)], dtype=np.int64)
    enc = net0.encoder
    rate_units = np.array([enc.rate_unit(r) for r in range(enc.params.max_retries + 1)],
                          dtype=np.int64)
    prog = k.pairwise_program(net0.w.shape[0])
    times, outs = {}, {}
    for _ in range(args.repeat):
        for name, fn in (("per-step", k.train_batch), ("fused", k.train_batch_fused)):
            w, theta = net0.w.copy(), net0.theta.copy()
            ops = np.zeros(k.N_OPS, dtype=np.int64)
            counts = np.zeros((B, args.n), dtype=np.int64)
            cur = np.zeros(0)       # float64 input currents
            fn(w.copy(), theta.copy(), images[:2], skeys[:2], rate_units, fp, ip, qp, prog,
               ops.copy(), counts[:2].copy(), cur)     # compile / load from the cache
            t0 = time.perf_counter()
            fn(w, theta, images, skeys, rate_units, fp, ip, qp, prog, ops, counts, cur)
            times.setdefault(name, []).append(1e6 * (time.perf_counter() - t0) / B)
            outs[name] = (w, theta, counts, ops)
    same = all(np.array_equal(a, b) for a, b in zip(outs["per-step"], outs["fused"]))
    print(f"{args.topology} N={args.n} T={args.time_steps}, {B} samples, us per sample: "
          + "; ".join(f"{name} " + ", ".join(f"{t:.1f}" for t in ts) for name, ts in times.items())
          + f"; identical results: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
