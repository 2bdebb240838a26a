"""Speed of the numba backend against the NumPy reference, on mnist-5k digits.

    python plugins/tinysnn-numba/bench_numba.py                 # N = 100 and 400, T = 350
    python plugins/tinysnn-numba/bench_numba.py --n 400 --topology tinysnn --rule tinysnn-stdp

Training: ``learn=True`` over the first training digits, from a fresh network each time (one
backend call for all of them). Inference: one batched ``learn=False`` call over test digits.
Each figure is the best of ``--repeat`` timed runs, in wall-clock time and in CPU time of the
process (all its threads): on a shared machine the CPU time is the steadier figure, the wall time
the one that includes the parallel speed-up of batched inference. numba's compile time is
excluded by a warm-up call (and by its on-disk cache).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import subprocess
import time

import numpy as np

from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.builtin.datasets import load_mnist_5k
from tinysnn_core.config import Config
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def timed(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU time (all threads of the process) over ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100, 400], help="network sizes")
    ap.add_argument("--T", type=int, default=350, help="time steps per presentation")
    ap.add_argument("--topology", default="diehl-cook")
    ap.add_argument("--rule", default="postpre")
    ap.add_argument("--train-samples", type=int, default=300, help="numba training samples")
    ap.add_argument("--infer-samples", type=int, default=1000, help="numba inference samples")
    ap.add_argument("--numpy-samples", type=int, default=20,
                    help="samples for the (slow) NumPy reference, training and inference")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from numba import get_num_threads

    from tinysnn_numba import NumbaBackend

    data = load_mnist_5k(0)
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, numba threads {get_num_threads()}")
    print(f"topology {args.topology}, rule {args.rule}, T = {args.T}; best of {args.repeat}")
    print("ms per sample (wall / cpu), samples per second (wall), speed-up numba vs numpy")
    print(f"{'N':>5} {'phase':<9} {'numpy wall':>10} {'numpy cpu':>10} {'numba wall':>10} "
          f"{'numba cpu':>10} {'numpy sps':>10} {'numba sps':>10} {'x wall':>7} {'x cpu':>7}")
    for n in args.n:
        cfg = Config.from_dict({"n_neurons": n, "topology": {"name": args.topology},
                                "learning": {"name": args.rule},
                                "train": {"time_steps": args.T}})
        net0 = Network.build(cfg)
        # warm-up: compile (or load from the cache) and train a little, so that inference
        # runs on a network that fires
        warm = copy.deepcopy(net0)
        NumbaBackend().run(warm, data.train_images[:2], np.arange(2), learn=True, seed=0,
                           ops=OpCounts())
        NumbaBackend().run(warm, data.test_images[:2], np.arange(2), learn=False, seed=1,
                           ops=OpCounts())
        trained = copy.deepcopy(net0)
        NumbaBackend().run(trained, data.train_images[:100], np.arange(100), learn=True, seed=0,
                           ops=OpCounts())

        rows = []
        for phase in ("train", "inference"):
            learn = phase == "train"
            images = data.train_images if learn else data.test_images
            base = net0 if learn else trained
            res = {}
            for name, backend, count in (("numpy", NumpyBackend(), args.numpy_samples),
                                         ("numba", NumbaBackend(),
                                          args.train_samples if learn else args.infer_samples)):
                def once(backend=backend, count=count):
                    net = copy.deepcopy(base)
                    backend.run(net, images[:count], np.arange(count), learn=learn, seed=0,
                                ops=OpCounts())
                wall, cpu = timed(once, args.repeat)
                res[name] = (wall / count, cpu / count)
            rows.append((phase, res))
        for phase, res in rows:
            (a_wall, a_cpu), (b_wall, b_cpu) = res["numpy"], res["numba"]
            print(f"{n:>5} {phase:<9} {a_wall * 1e3:>10.3f} {a_cpu * 1e3:>10.3f} "
                  f"{b_wall * 1e3:>10.3f} {b_cpu * 1e3:>10.3f} {1 / a_wall:>10.1f} "
                  f"{1 / b_wall:>10.1f} {a_wall / b_wall:>6.1f}x {a_cpu / b_cpu:>6.1f}x")


if __name__ == "__main__":
    main()
