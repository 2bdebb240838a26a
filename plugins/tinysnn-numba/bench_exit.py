"""Batched integer inference of the numba kernel with early exit off and on (one trained model).

    .venv/bin/tinysnn run -q --config configs/tinysnn.toml --out runs/n400.tsnn
    .venv/bin/python plugins/tinysnn-numba/bench_exit.py runs/n400.tsnn --margins 0 2

The model file's network (by default as saved: a float model gets intsim's 16-bit default
formats; ``--bits b``: quantized post-training first, ``make_groups`` of the weights, potential,
theta, inhibition and decay groups at b bits, round to nearest, sized to the model's ranges) is
exported with ``intsim.from_network`` and run by ``NumbaBackend.run_integer(with_ops=True)`` on
``--samples`` mnist-5k test digits (the test stream's seed), once per ``exit_margin``. Reported
per margin: samples/s (wall clock) and CPU ms per sample (process time, all threads), best of
``--repeat`` (the margins interleaved, so that each sees the same load); the mean steps,
presentations and draws per sample from the kernel's operation counts; the share of samples
whose last presentation ended early; test accuracy; the share of predictions equal to the first
margin's. Every margin is checked bit-exact against ``intsim.infer`` on the first ``--check``
samples.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import time

import numpy as np

from tinysnn_core import intsim
from tinysnn_core import train as flow
from tinysnn_core.builtin.datasets import load_mnist_5k
from tinysnn_core.config import QuantSettings
from tinysnn_core.explore import make_groups
from tinysnn_core.modelfile import load_network
from tinysnn_core.quant import model_ranges

GROUPS = ["weights", "potential", "theta", "inhibition", "decay"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a trained, labelled model file (tinysnn run --out)")
    ap.add_argument("--margins", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--bits", type=int, default=0,
                    help="post-training quantization to this word length (0: the model as saved)")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--check", type=int, default=20, help="samples checked against intsim")
    args = ap.parse_args(argv)
    import numba

    from tinysnn_numba import NumbaBackend

    net = load_network(args.model)
    if args.bits:
        net = copy.deepcopy(net)
        net.config.quant = QuantSettings("ptq", make_groups(GROUPS, args.bits, "nearest",
                                                            dict(model_ranges(net))))
        quantizer, plan = flow.quantizer_for(net.config)
        quantizer.prepare(net, plan)
    base = intsim.from_network(net)
    data = load_mnist_5k(0)
    images = data.test_images[:args.samples]
    labels = np.asarray(data.test_labels[:args.samples])
    B = len(images)
    ids = np.arange(B)
    seed = flow.stream_seed(int(net.config.seed), "test")
    nb = NumbaBackend()
    print(f"N = {base.n_neurons}, T = {base.time_steps}, {len(base.rate_units)} rate(s), "
          f"MIN_SPIKES {base.retry_min_spikes}, bits {args.bits or 'as saved'}; {B} samples, "
          f"numba threads {numba.get_num_threads()}, best of {args.repeat}, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'margin':>6} {'samples/s':>10} {'CPU ms':>8} {'steps':>7} {'pres.':>6} "
          f"{'draws':>8} {'exit %':>7} {'acc %':>6} {'= m0 %':>7}")
    runs = {}
    for margin in args.margins:
        m = dataclasses.replace(base, exit_margin=int(margin))
        k = min(args.check, B)
        want = intsim.infer(m, images[:k], seed, ids[:k], with_ops=True)
        got = nb.run_integer(m, images[:k], seed, ids[:k], with_ops=True)   # compiles once
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert all(np.array_equal(got[2][n], want[2][n]) for n in intsim.INFER_OPS)
        runs[margin] = [m, float("inf"), float("inf"), None]
    for _ in range(args.repeat):            # the margins interleaved: the same load for each
        for margin, r in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = nb.run_integer(r[0], images, seed, ids, with_ops=True)
            r[1] = min(r[1], time.perf_counter() - t0)
            r[2] = min(r[2], time.process_time() - c0)
            r[3] = out
    ref_preds = runs[args.margins[0]][3][0]
    for margin, (m, wall, cpu, (preds, counts, ops)) in runs.items():
        print(f"{margin:>6} {B / wall:>10.0f} {cpu / B * 1e3:>8.4f} "
              f"{ops['steps'].mean():>7.1f} {ops['presentations'].mean():>6.2f} "
              f"{ops['draws'].mean():>8.0f} {100 * ops['exit_early'].mean():>7.1f} "
              f"{100 * (preds == labels).mean():>6.2f} {100 * (preds == ref_preds).mean():>7.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)

if __name__ == "__main__":
    main()
