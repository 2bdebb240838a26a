#!/usr/bin/env python3
"""What bounds numba's row sums on this machine: the core or memory (docs/benchmarks.md).

1. The kernels' own ``_accumulate`` (the input currents of a 64-step chunk: each step's spiking
   rows of a 784 x ``--neurons`` weight matrix added in ascending order) on random chunks with
   Poisson(``--spikes``) spikes per step (at most one per pixel) drawn from 16, 40, 150 or 300
   active pixels, float64 and float32. At N = 400, 16 float32 rows (25.6 KB) fit a 32 KiB L1
   and 40 rows fit L2; 150 rows are what an MNIST digit touches. If the time per addition barely
   moves from 16 to 150 pixels, the loop is bound by the core, not by where its rows come from.
2. The core's clock, from a chain of dependent float64 additions (3 cycles each on x86 cores
   since Zen and Skylake).
3. Whether the two threads share the core's throughput: an L1-resident multiply-add loop on 1
   thread and on every thread, time per element per thread and the ratio.

    NUMBA_NUM_THREADS=2 .venv/bin/python benchmarks/row_sums.py [--neurons 400] [--spikes 13.3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import side_venv  # noqa: E402

N_IN = 784
STEPS = 64      # kernels.INFER_STEPS
CHUNKS = 50


def chunks(rng, pixels: int, spikes: float):
    """CHUNKS chunks of STEPS steps: (ascending row list, step offsets) each."""
    active = np.sort(rng.choice(N_IN, pixels, replace=False))
    out = []
    for _ in range(CHUNKS):
        off = np.zeros(STEPS + 1, dtype=np.int64)
        rows = []
        for t in range(STEPS):
            k = min(int(rng.poisson(spikes)), pixels)
            rows.extend(np.sort(rng.choice(active, k, replace=False)))
            off[t + 1] = len(rows)
        out.append((np.array(rows + [0], dtype=np.int32), off))
    return out


def time_accumulate(K, w, data, reps: int = 5) -> float:
    """Best seconds per addition of ``_accumulate`` over the chunks."""
    buf = np.zeros((STEPS, w.shape[1]), dtype=w.dtype)
    K._accumulate(w, data[0][0], data[0][1], STEPS, buf)     # compile
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for lst, off in data:
            K._accumulate(w, lst, off, STEPS, buf)
        best = min(best, time.perf_counter() - t0)
    adds = sum(int(off[-1]) for _, off in data) * w.shape[1]
    return best / adds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--neurons", type=int, default=400)
    ap.add_argument("--spikes", type=float, default=13.3,
                    help="mean spiking pixels per step (diehl-cook on mnist-5k: 13.3)")
    o = ap.parse_args(argv)
    if not (1 <= o.neurons <= 16384) or not (0.0 < o.spikes <= 40.0):  # 784 x 16384 float64:
        raise SystemExit("error: --neurons must be in 1..16384 and --spikes in (0, 40]")  # 100 MB

    import numba
    from numba import njit, prange
    from tinysnn_numba import kernels as K

    print(f"machine: {side_venv.cpu_model()}; load {side_venv.loadavg()}; "
          f"numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads")
    rng = np.random.default_rng(0)
    data = {p: chunks(rng, p, o.spikes) for p in (16, 40, 150, 300)}
    per_step = {p: sum(int(off[-1]) for _, off in d) / (CHUNKS * STEPS) for p, d in data.items()}
    print(f"1. _accumulate, N = {o.neurons}, {STEPS}-step chunks, one thread: ns per addition "
          f"(spikes per step: " + ", ".join(f"{v:.1f} of {p} pixels" for p, v in per_step.items())
          + ")")
    for dtype in (np.float64, np.float32):
        w = rng.random((N_IN, o.neurons)).astype(dtype)
        ns = {p: 1e9 * time_accumulate(K, w, d) for p, d in data.items()}
        print(f"   {np.dtype(dtype).name:8s} " + "  ".join(f"{p} pixels {v:.3f}"
                                                       for p, v in ns.items())
              + f"   (150 / 16 pixels: {ns[150] / ns[16]:.2f}x)")

    @njit(cache=False)
    def chain(n):
        s = 1.0
        for _ in range(n):
            s = s + 1e-9
        return s

    chain(10)
    n = 50_000_000
    best = min(_timed(chain, n) for _ in range(3)) / n
    print(f"2. a dependent float64 addition: {1e9 * best:.3f} ns, so about {3 / best / 1e9:.2f} GHz"
          " at 3 cycles each")

    @njit(parallel=True, cache=False)
    def madd(a, reps, k):
        out = np.zeros(k)
        for t in prange(k):
            x = a[t]
            for _ in range(reps):
                for j in range(x.shape[0]):
                    x[j] = x[j] * 1.0000001 + 1e-9
            out[t] = x[0]
        return out

    nth = numba.config.NUMBA_NUM_THREADS
    a = np.ones((nth, 1024))
    madd(a, 2, nth)
    reps = 100_000
    per = {}
    for k in sorted({1, nth}):
        numba.set_num_threads(k)
        per[k] = min(_timed(madd, a, reps, k) for _ in range(3)) / (reps * a.shape[1])
    print("3. an L1-resident multiply-add loop, ns per element per thread: "
          + ", ".join(f"{k} thread{'s' if k > 1 else ''} {1e9 * v:.4f}" for k, v in per.items())
          + (f"  ({nth} / 1 threads: {per[nth] / per[1]:.2f}x per thread)" if nth > 1 else ""))
    return 0


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
