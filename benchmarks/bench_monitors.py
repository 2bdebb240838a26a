"""What monitors cost: the backends before monitors existed, with monitors off, and on.

    python benchmarks/bench_monitors.py --before REV      # REV: a commit without monitors

"before" runs the NumPy and numba backends' source as it was at commit REV (read with
``git show``, imported from a temporary folder, numba compiling it there); "off" is the current
code with ``record=None``, "on" the current code recording every sample of the call (spikes, and
v, theta and trace of ``--neurons`` neurons). The same fresh network and digits for each;
each figure is the best of ``--repeat`` runs, interleaved (before, off, on, before, ...) so that
the load of a shared machine falls on all three alike; numba's compile time is excluded by a
warm-up call. Prints the seconds and the ratios off / before and on / before.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.builtin.datasets import load_mnist_5k
from tinysnn_core.config import Config
from tinysnn_core.monitors import Record
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts

ROOT = Path(__file__).resolve().parent.parent


def git_show(rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def load_before(rev: str, folder: Path):
    """The backends of commit ``rev``: (NumpyBackend, NumbaBackend) classes."""
    numpy_src = folder / "before_numpy.py"
    numpy_src.write_text(git_show(rev, "tinysnn_core/builtin/backend_numpy.py"))
    pkg = folder / "before_numba"
    pkg.mkdir()
    for name in ("kernels.py", "backend.py"):
        (pkg / name).write_text(git_show(rev, f"plugins/tinysnn-numba/tinysnn_numba/{name}"))
    (pkg / "__init__.py").write_text("from .backend import NumbaBackend\n")
    sys.path.insert(0, str(folder))
    import before_numba
    import before_numpy
    return before_numpy.NumpyBackend, before_numba.NumbaBackend


def timed(backend, net, images, learn: bool, record_kw) -> float:
    net = copy.deepcopy(net)
    record = Record(**record_kw) if record_kw is not None else None
    kw = {} if record is None else {"record": record}
    start = time.perf_counter()
    backend.run(net, images, np.arange(len(images)), learn=learn, seed=1, ops=OpCounts(), **kw)
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, metavar="REV",
                    help="a commit whose backends have no monitors")
    ap.add_argument("--n", type=int, default=400, help="excitatory neurons")
    ap.add_argument("--neurons", type=int, default=10, help="neurons whose state is recorded")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--numpy-samples", type=int, default=8)
    ap.add_argument("--numba-samples", type=int, default=200)
    args = ap.parse_args(argv)

    data = load_mnist_5k(0)
    cfg = Config.load(ROOT / "configs" / "tinysnn.toml").with_overrides([f"n_neurons={args.n}"])
    net = Network.build(cfg)
    on = {"samples": None, "neurons": range(args.neurons),
          "variables": ("spikes", "v", "theta", "trace")}
    with tempfile.TemporaryDirectory() as tmp:
        OldNumpy, OldNumba = load_before(args.before, Path(tmp))
        from tinysnn_numba import NumbaBackend

        print(f"tinysnn N={args.n}, T={cfg.train.time_steps}; 'on' records every sample: "
              f"spikes, and v, theta, trace of {args.neurons} neurons; best of {args.repeat}")
        print(f"{'backend':8s} {'phase':6s} {'samples':>7s} {'before s':>9s} {'off s':>9s} "
              f"{'on s':>9s} {'off/before':>10s} {'on/before':>10s}")
        for label, old, new, n in (("numpy", OldNumpy(), NumpyBackend(), args.numpy_samples),
                                   ("numba", OldNumba(), NumbaBackend(), args.numba_samples)):
            for phase, learn, images in (("train", True, data.train_images[:n]),
                                         ("infer", False, data.test_images[:n])):
                if label == "numba":        # compile (or load from the cache) outside the timing
                    for be, kw in ((old, None), (new, None), (new, on)):
                        timed(be, net, images[:2], learn, kw)
                best = {"before": np.inf, "off": np.inf, "on": np.inf}
                for _ in range(args.repeat):
                    best["before"] = min(best["before"], timed(old, net, images, learn, None))
                    best["off"] = min(best["off"], timed(new, net, images, learn, None))
                    best["on"] = min(best["on"], timed(new, net, images, learn, on))
                print(f"{label:8s} {phase:6s} {n:7d} {best['before']:9.3f} {best['off']:9.3f} "
                      f"{best['on']:9.3f} {best['off'] / best['before']:10.3f} "
                      f"{best['on'] / best['before']:10.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
