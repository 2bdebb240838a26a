"""Two versions of the numba kernels, timed against each other in one process.

    git show HEAD~1:plugins/tinysnn-numba/tinysnn_numba/kernels.py > /tmp/old.py
    .venv/bin/python benchmarks/kernel_ab.py /tmp/old.py \
        plugins/tinysnn-numba/tinysnn_numba/kernels.py --network tinysnn --phase train

Each file is loaded as its own module (compiled on first use, cached apart by numba). The
numba backend builds the kernel's arguments once, for the compare.py network (N = 400, T = 350,
mnist-5k, seed 0); both versions then run the same call on copies of them, interleaved (A B,
B A, ...), so that a machine whose speed drifts slows both alike. It prints whether the two
versions' outputs are bit-identical, each one's best and median time per sample, and B / A.
On a shared machine a single run of the whole training moves by 10-30%; interleaving in one
process is what makes a 2% difference visible.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare  # noqa: E402
import side_venv  # noqa: E402
from tinysnn_core.errors import InputError, TinySNNError  # noqa: E402

KERNELS = ("train_batch_fused", "infer_batch_tiled", "infer_batch_group")


def load_kernels(path: Path, name: str):
    if not path.is_file():
        raise InputError(f"kernel_ab: no such file: {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def capture_call(network: str, phase: str, precision: str | None, samples: int):
    """(kernel name, arguments) of the numba backend's call for this network and phase."""
    from tinysnn_core.builtin.datasets import load_mnist_5k
    from tinysnn_core.network import Network
    from tinysnn_core.ops import OpCounts
    from tinysnn_core.registry import get_registry
    from tinysnn_numba import backend as B

    net = Network.build(compare.our_config(network, 400, 350, 0))
    data = load_mnist_5k(0)
    real, seen = B._kernels(), {}

    class Spy:
        def __getattr__(self, attr):
            fn = getattr(real, attr)
            if attr not in KERNELS:
                return fn

            def spy(*args):
                seen["call"] = (attr, [a.copy() if isinstance(a, np.ndarray) else a for a in args])
                return fn(*args)
            return spy

    # the precision is the backend's own parameter, as compare.py's variants pass it (a
    # configuration's [backend] precision counts only where that table names numba)
    be = get_registry().get("backend", "numba")(precision)
    B._kernels = lambda: Spy()
    try:
        if phase == "infer":    # a network that has learned a little first
            be.run(net, data.train_images[:100], np.arange(100), learn=True, seed=0,
                   ops=OpCounts())
        images = data.train_images if phase == "train" else data.test_images
        samples = min(samples, len(images))
        seen.clear()
        be.run(copy.deepcopy(net), images[:samples], np.arange(samples),
               learn=phase == "train", seed=0, ops=OpCounts())
    finally:
        B._kernels = lambda: real
    if "call" not in seen:
        raise InputError(f"kernel_ab: the backend called none of {', '.join(KERNELS)}")
    return seen["call"][0], seen["call"][1], samples


def fresh(args):
    from tinysnn_core.network import aligned
    return [aligned(a.copy()) if isinstance(a, np.ndarray) else a for a in args]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="kernels.py of version A")
    ap.add_argument("b", type=Path, help="kernels.py of version B")
    ap.add_argument("--network", choices=compare.NETWORKS, default="tinysnn")
    ap.add_argument("--phase", choices=("train", "infer"), default="train")
    ap.add_argument("--precision", default=None, help="[backend] precision (default float64)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--reps", type=int, default=15, help="timed calls per version")
    o = ap.parse_args(argv)
    if o.samples < 1 or o.reps < 1:
        raise SystemExit("error: --samples and --reps must be at least 1")
    try:
        mods = {"A": load_kernels(o.a, "kernels_ab_a"), "B": load_kernels(o.b, "kernels_ab_b")}
        name, args, K = capture_call(o.network, o.phase, o.precision, o.samples)
    except TinySNNError as exc:     # a missing file, an unknown precision
        raise SystemExit(f"error: {exc}")
    outs = {}
    for v, mod in mods.items():     # compile, and keep each version's outputs
        a = fresh(args)
        getattr(mod, name)(*a)
        outs[v] = a
    same = all(np.array_equal(x, y) for x, y in zip(outs["A"], outs["B"])
               if isinstance(x, np.ndarray))
    load0 = side_venv.loadavg()
    times = {"A": [], "B": []}
    for r in range(o.reps):
        for v in ("AB" if r % 2 == 0 else "BA"):
            a = fresh(args)
            t0 = time.perf_counter()
            getattr(mods[v], name)(*a)
            times[v].append(time.perf_counter() - t0)
    print(f"machine: {side_venv.cpu_model()}; load {load0} -> {side_venv.loadavg()}")
    print(f"{name}, {o.network} {o.phase}, {o.precision or 'float64'}, {K} samples, "
          f"{o.reps} calls each, interleaved")
    print(f"outputs bit-identical: {'yes' if same else 'NO'}")
    med = {}
    for v, ts in times.items():
        ts.sort()
        med[v] = ts[len(ts) // 2]
        print(f"{v} ({mods[v].__file__}): best {1e6 * ts[0] / K:.1f}, "
              f"median {1e6 * med[v] / K:.1f} us/sample")
    print(f"B / A: best {min(times['B']) / min(times['A']):.3f}, "
          f"median {med['B'] / med['A']:.3f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
