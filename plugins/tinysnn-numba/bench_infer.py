"""CPU time of the numba backend's batched inference, float and integer, N = 400, T = 350.

    NUMBA_NUM_THREADS=1 python plugins/tinysnn-numba/bench_infer.py

Networks trained by the numba backend on 100 mnist-5k digits (float inference: ``diehl-cook``
and ``tinysnn`` topologies with ``postpre``; the ``tinysnn`` one labelled and post-training
quantized like ``bench_quant.py`` for float-simulated fixed point (8 bits) and integer mode
(8 and 4 bits)); then one batched call over ``--samples`` test digits, best of ``--repeat``,
in process CPU time (all threads): the steady figure on a shared machine. With one numba thread
it is the cost of a sample; with more, thread start-up and waiting are counted as well.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np

from tinysnn_core import intsim
from tinysnn_core import train as flow
from tinysnn_core.builtin.datasets import load_mnist_5k
from tinysnn_core.config import Config, QuantSettings
from tinysnn_core.evaluate import assign_labels
from tinysnn_core.explore import make_groups
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from bench_quant import ALL  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import numba

    from tinysnn_numba import NumbaBackend

    data = load_mnist_5k(0)
    nb = NumbaBackend()
    nets, models = {}, {}
    for topo in ("diehl-cook", "tinysnn"):
        cfg = Config.from_dict({"n_neurons": 400, "topology": {"name": topo},
                                "learning": {"name": "postpre"}, "train": {"time_steps": 350}})
        net = Network.build(cfg)
        nb.run(net, data.train_images[:100], np.arange(100), learn=True, seed=0, ops=OpCounts())
        nets[f"float64 {topo}"] = net
    net = nets["float64 tinysnn"]
    counts = nb.run(net, data.train_images[:100], np.arange(100), learn=False, seed=1,
                    ops=OpCounts())
    net.assignments, net.proportions, _ = assign_labels(counts, data.train_labels[:100])
    from tinysnn_core.quant import model_ranges
    mag = dict(model_ranges(net))
    for bits in (8, 4):
        qnet = copy.deepcopy(net)
        qnet.config.quant = QuantSettings("ptq", make_groups(ALL, bits, "nearest", mag))
        quantizer, plan = flow.quantizer_for(qnet.config)
        quantizer.prepare(qnet, plan)
        if bits == 8:
            nets["PTQ 8b float-sim tinysnn"] = qnet
        models[f"PTQ {bits}b integer tinysnn"] = intsim.from_network(qnet)
    images = data.test_images[:args.samples]
    B = len(images)
    print(f"numba threads {numba.get_num_threads()}, {B} samples, best of {args.repeat}, "
          f"load average {os.getloadavg()[0]:.1f}; CPU ms per sample")

    def best(fn):
        fn(2)
        cpu = float("inf")
        for _ in range(args.repeat):
            c0 = time.process_time()
            fn(B)
            cpu = min(cpu, time.process_time() - c0)
        return cpu / B * 1e3

    for name, net in nets.items():
        ms = best(lambda k, net=net: nb.run(net, images[:k], np.arange(k), learn=False, seed=2,
                                            ops=OpCounts()))
        print(f"{name:<28} {ms:.4f}", flush=True)
    for name, model in models.items():
        ms = best(lambda k, m=model: nb.run_integer(m, images[:k], 2, np.arange(k)))
        print(f"{name:<28} {ms:.4f}", flush=True)


if __name__ == "__main__":
    main()
