"""Numba's integer inference (``run_integer``) on the data of bench_gpu.py's integer benchmark:
the same images (testdata digits cycled), sample ids 0..n-1 and seed 2, on this machine's CPU.

    python plugins/tinysnn-cupy/bench_numba_int.py --model int_model.tsnn   (bench_gpu.py's model)

Prints samples/s and the checksums that bench_gpu.py reports for the GPU, so both runs can be
compared on the same integer model.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True,
                    help="the quantized model file bench_gpu.py wrote (--int-model-out)")
    ap.add_argument("--data", default=str(HERE / "testdata" / "mnist_2k.npz"))
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import numba
    from tinysnn_numba.backend import NumbaBackend

    from tinysnn_core import intsim
    from tinysnn_core.modelfile import load_network

    model = intsim.from_network(load_network(args.model))
    images = np.load(args.data)["images"]
    n = args.n_samples
    ids = np.arange(n)
    imgs = images[ids % len(images)]
    be = NumbaBackend()
    be.run_integer(model, imgs[:4], 2, ids[:4])            # compile
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        preds, counts = be.run_integer(model, imgs, 2, ids)
        times.append(time.perf_counter() - t0)
    N = counts.shape[1]
    out = {"samples": n, "seconds_runs": times, "samples_per_second": n / min(times),
           "threads": numba.get_num_threads(), "loadavg": os.getloadavg(),
           "counts_checksum": int((counts * np.arange(1, N + 1)).sum() % 1_000_000_007),
           "preds_checksum": int((preds * np.arange(1, n + 1)).sum() % 1_000_000_007)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
