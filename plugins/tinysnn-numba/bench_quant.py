"""Speed of quantized simulation: numba vs the NumPy reference and vs ``intsim``, mnist-5k.

    python plugins/tinysnn-numba/bench_quant.py                        # N = 400, T = 350
    python plugins/tinysnn-numba/bench_quant.py --topology diehl-cook --bits 4 8

A float network is trained by the numba backend on ``--train`` digits and labelled, then
post-training quantized (``make_groups`` of the weights, potential, theta, inhibition and decay
groups at ``--bits``, round to nearest). Measured, batched over test digits, best of
``--repeat``: float-simulated fixed point (``run(learn=False)``, the potential rounded every
step) on numpy and numba, and integer mode, ``intsim.infer`` vs ``NumbaBackend.run_integer``;
plus ITQ training (all six groups) on numpy and numba. Wall clock and CPU time of the process
(all threads), as ``bench_numba.py``; compile time excluded by a warm-up.
"""

from __future__ import annotations

import argparse
import copy
import os

import numpy as np

from tinysnn_core import intsim
from tinysnn_core import train as flow
from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.builtin.datasets import load_mnist_5k
from tinysnn_core.config import Config, QuantSettings
from tinysnn_core.evaluate import assign_labels
from tinysnn_core.explore import make_groups
from tinysnn_core.ops import OpCounts

try:
    from bench_numba import cpu_model, timed
except ImportError:  # run from elsewhere
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_numba import cpu_model, timed

ALL = ["weights", "potential", "theta", "inhibition", "decay"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--T", type=int, default=350)
    ap.add_argument("--topology", default="tinysnn")
    ap.add_argument("--rule", default="postpre")
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 4])
    ap.add_argument("--rounding", default="nearest")
    ap.add_argument("--train", type=int, default=100, help="float training digits (numba)")
    ap.add_argument("--samples", type=int, default=1000, help="numba inference samples")
    ap.add_argument("--train-samples", type=int, default=100, help="numba ITQ training samples")
    ap.add_argument("--numpy-samples", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from numba import get_num_threads

    from tinysnn_numba import NumbaBackend

    data = load_mnist_5k(0)
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, numba threads {get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"N = {args.n}, T = {args.T}, topology {args.topology}, rule {args.rule}; "
          f"best of {args.repeat}; ms per sample (wall / cpu), samples per second (wall)")
    cfg = Config.from_dict({"n_neurons": args.n, "topology": {"name": args.topology},
                            "learning": {"name": args.rule}, "train": {"time_steps": args.T}})
    nb = NumbaBackend()
    net = flow.build_network(cfg)
    nb.run(net, data.train_images[:args.train], np.arange(args.train), learn=True, seed=0,
           ops=OpCounts())
    counts = nb.run(net, data.train_images[:args.train], np.arange(args.train), learn=False,
                    seed=1, ops=OpCounts())
    net.assignments, net.proportions, _ = assign_labels(counts, data.train_labels[:args.train])
    try:
        from tinysnn_core.quant import model_ranges
        mag = dict(model_ranges(net))
    except ImportError:
        mag = {"inhibition": max(abs(net.topology.w_lateral), abs(net.topology.w_exc_inh), 1.0)}
    print("formats at 8 bits:", {g: v["format"] for g, v in make_groups(ALL, 8, "nearest",
                                                                        mag).items()})
    images = data.test_images
    print(f"{'what':<34} {'ref wall':>9} {'ref cpu':>8} {'numba wall':>10} {'numba cpu':>9} "
          f"{'ref sps':>8} {'numba sps':>9} {'x wall':>7} {'x cpu':>6}")

    def row(label, ref_fn, fast_fn, n_ref, n_fast):
        ref_fn(2), fast_fn(2)                                   # warm-up / compile
        a_wall, a_cpu = timed(lambda: ref_fn(n_ref), args.repeat)
        b_wall, b_cpu = timed(lambda: fast_fn(n_fast), args.repeat)
        a_wall, a_cpu, b_wall, b_cpu = a_wall / n_ref, a_cpu / n_ref, b_wall / n_fast, b_cpu / n_fast
        print(f"{label:<34} {a_wall * 1e3:>9.2f} {a_cpu * 1e3:>8.2f} {b_wall * 1e3:>10.3f} "
              f"{b_cpu * 1e3:>9.3f} {1 / a_wall:>8.1f} {1 / b_wall:>9.1f} "
              f"{a_wall / b_wall:>6.0f}x {a_cpu / b_cpu:>5.0f}x", flush=True)

    def infer(backend, qnet):
        return lambda k: backend.run(qnet, images[:k], np.arange(k), learn=False, seed=2,
                                     ops=OpCounts())

    row("float64 inference (no quant)", infer(NumpyBackend(), net), infer(nb, net),
        args.numpy_samples, args.samples)
    for bits in args.bits:
        qnet = copy.deepcopy(net)
        qnet.config.quant = QuantSettings("ptq", make_groups(ALL, bits, args.rounding, mag))
        quantizer, plan = flow.quantizer_for(qnet.config)
        quantizer.prepare(qnet, plan)
        row(f"PTQ {bits}b {args.rounding} float-sim inference", infer(NumpyBackend(), qnet),
            infer(nb, qnet), args.numpy_samples, args.samples)
        model = intsim.from_network(qnet)
        row(f"PTQ {bits}b integer inference", lambda k: intsim.infer(model, images[:k], 2),
            lambda k: nb.run_integer(model, images[:k], 2, np.arange(k)),
            args.numpy_samples, args.samples)
        icfg = copy.deepcopy(cfg)
        icfg.quant = QuantSettings("itq", make_groups(ALL + ["traces"], bits, args.rounding, mag))

        def itq(backend):
            def go(k):
                inet = flow.build_network(icfg)
                backend.run(inet, data.train_images[:k], np.arange(k), learn=True, seed=0,
                            ops=OpCounts())
            return go

        row(f"ITQ {bits}b {args.rounding} training", itq(NumpyBackend()), itq(nb),
            args.numpy_samples, args.train_samples)


if __name__ == "__main__":
    main()
