"""What monitors cost: the backends before monitors existed, with monitors off, and on.

    python benchmarks/bench_monitors.py --before REV      # REV: a commit without monitors

"before" runs the NumPy and numba backends' source as it was at commit REV (read with
``git show``, imported from a temporary folder, numba compiling it there); "off" is the current
code with ``record=None``, "on" the current code recording every sample of the call (spikes, and
v, theta and trace of ``--neurons`` neurons). The same fresh network and digits for each;
each figure is the best of ``--repeat`` runs, in a shuffled order each round (no variant
always runs first); numba's compile time is excluded by a warm-up call. The times are the
process's CPU time (all its threads): on a machine shared with other jobs, wall time measures
their load more than the code. Prints the CPU seconds and the ratios off / before and
on / before. ``--asm`` also compares the machine code of the numba fast paths.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import re
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
    start = time.process_time()
    backend.run(net, images, np.arange(len(images)), learn=learn, seed=1, ops=OpCounts(), **kw)
    return time.process_time() - start


def _instructions(text: str) -> list[str]:
    """Assembly instructions with symbol names, labels and module names made neutral."""
    text = re.sub(r"before_numba|tinysnn_numba", "M", text)
    text = re.sub(r"_ZN[\w$.]+", "SYM", text)
    text = re.sub(r"\.L\w+", "LBL", text)
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith((".", "#", ";"))
            and not line.strip().endswith(":")]


def compare_code(old_kernels, new_kernels) -> None:
    """The fast paths' machine code before and now (compiled fresh: NUMBA_CACHE_DIR is a
    temporary folder), and whether any recording code is in it."""
    import difflib

    for name in ("train_batch", "infer_batch_tiled"):
        o, n = getattr(old_kernels, name), getattr(new_kernels, name)
        raw = n.inspect_asm(n.signatures[0])
        a, b = _instructions(o.inspect_asm(o.signatures[0])), _instructions(raw)
        changed = sum(1 for line in difflib.ndiff(a, b) if line[:1] in "+-")
        print(f"{name}: {len(a)} instructions before, {len(b)} now, {changed} lines differ; "
              f"recording code in it: {'_record_step' in raw or 'record_sample' in raw}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, metavar="REV",
                    help="a commit whose backends have no monitors")
    ap.add_argument("--n", type=int, default=400, help="excitatory neurons")
    ap.add_argument("--neurons", type=int, default=10, help="neurons whose state is recorded")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--numpy-samples", type=int, default=8)
    ap.add_argument("--numba-samples", type=int, default=200)
    ap.add_argument("--asm", action="store_true",
                    help="also compare the fast paths' machine code before and now")
    args = ap.parse_args(argv)
    if args.asm:        # compile everything fresh: numba shows no code of a cached kernel
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
    shuffle = random.Random(0)

    data = load_mnist_5k(0)
    cfg = Config.load(ROOT / "configs" / "tinysnn.toml").with_overrides([f"n_neurons={args.n}"])
    net = Network.build(cfg)
    on = {"samples": None, "neurons": range(args.neurons),
          "variables": ("spikes", "v", "theta", "trace")}
    with tempfile.TemporaryDirectory() as tmp:
        OldNumpy, OldNumba = load_before(args.before, Path(tmp))
        from tinysnn_numba import NumbaBackend

        print(f"tinysnn N={args.n}, T={cfg.train.time_steps}; 'on' records every sample: "
              f"spikes, and v, theta, trace of {args.neurons} neurons; best of {args.repeat}; "
              "CPU seconds")
        print(f"{'backend':8s} {'phase':6s} {'samples':>7s} {'before':>9s} {'off':>9s} "
              f"{'on':>9s} {'off/before':>10s} {'on/before':>10s}")
        for label, old, new, n in (("numpy", OldNumpy(), NumpyBackend(), args.numpy_samples),
                                   ("numba", OldNumba(), NumbaBackend(), args.numba_samples)):
            for phase, learn, images in (("train", True, data.train_images[:n]),
                                         ("infer", False, data.test_images[:n])):
                if label == "numba":        # compile (or load from the cache) outside the timing
                    for be, kw in ((old, None), (new, None), (new, on)):
                        timed(be, net, images[:2], learn, kw)
                best = {"before": np.inf, "off": np.inf, "on": np.inf}
                runs = [("before", old, None), ("off", new, None), ("on", new, on)]
                for _ in range(args.repeat):
                    shuffle.shuffle(runs)       # no variant always first after another
                    for name, be, kw in runs:
                        best[name] = min(best[name], timed(be, net, images, learn, kw))
                print(f"{label:8s} {phase:6s} {n:7d} {best['before']:9.3f} {best['off']:9.3f} "
                      f"{best['on']:9.3f} {best['off'] / best['before']:10.3f} "
                      f"{best['on'] / best['before']:10.3f}", flush=True)
        if args.asm:
            import before_numba.kernels
            from tinysnn_numba import kernels

            compare_code(before_numba.kernels, kernels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
