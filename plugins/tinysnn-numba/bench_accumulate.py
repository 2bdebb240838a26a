"""The cost of the input accumulation alone, the floor of exact float inference (N = 400, T = 350).

    NUMBA_NUM_THREADS=1 python plugins/tinysnn-numba/bench_accumulate.py

For the first ``--samples`` mnist-5k test digits, at the default input rate (63.75 Hz) and at
BindsNET's eth_mnist rate (128 Hz): the input spikes of every step drawn as the inference kernel
draws them (``kernels._draw_steps``, timed alone first), then the weight rows of the spiking
pixels summed per step (``kernels._accumulate``, the kernel's own code) with the weights in
float64 (what the backend runs), float32 (BindsNET's precision) and int16 codes summed in int32
(integer mode). Prints microseconds of CPU per sample (best of ``--repeat``) and the input spikes
per sample. Weights are random: the cost depends on the spikes, not the values.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    from numba import njit

    from tinysnn_core.builtin.datasets import load_mnist_5k
    from tinysnn_numba import kernels as k

    @njit(cache=False, boundscheck=False)
    def run(accumulate, w, images, rate, T, buf, nz, thm1, im, fired, lst, off, rnd):
        n_input = 0
        CH = buf.shape[0]
        for b in range(images.shape[0]):
            n_nz = k._setup_inputs_u32(images[b], rate, nz, thm1, im)
            for t0 in range(0, T, CH):
                ch = min(CH, T - t0)
                n_input += k._draw_steps(np.uint64(b + 1), t0, ch, n_nz, nz, thm1, im, fired,
                                         lst, off, rnd)
                if accumulate:
                    k._accumulate(w, lst, off, ch, buf)
        return n_input

    images = load_mnist_5k(0).test_images[:args.samples].reshape(args.samples, -1).astype(np.int64)
    n_in, N, T, CH = images.shape[1], 400, 350, k.INFER_STEPS
    rng = np.random.default_rng(0)
    weights = {"float64": (rng.random((n_in, N)), np.float64),
               "float32": (rng.random((n_in, N)).astype(np.float32), np.float32),
               "int16 codes, int32 sums": (rng.integers(0, 256, (n_in, N)).astype(np.int16),
                                           np.int32)}
    nz = np.zeros(n_in, np.int32)
    thm1 = np.zeros(n_in, np.uint32)
    im = np.zeros(n_in, np.uint32)
    fired = np.zeros(n_in + k.DRAW_SCRATCH, np.uint32)
    lst = np.zeros(CH * n_in + 1, np.int32)
    off = np.zeros(CH + 1, np.int64)
    rnd = np.zeros(CH, np.int64)

    def best(accumulate, w, acc_type, rate):
        buf = np.zeros((CH, N), acc_type)
        run(accumulate, w, images[:2], rate, T, buf, nz, thm1, im, fired, lst, off, rnd)  # compile
        times = []
        for _ in range(args.repeat):
            t = time.process_time()
            n = run(accumulate, w, images, rate, T, buf, nz, thm1, im, fired, lst, off, rnd)
            times.append(time.process_time() - t)
        return min(times) / len(images) * 1e6, n / len(images)

    for hz in (63.75, 128.0):
        rate = int(2 ** 32 * hz / 1000.0 / 255.0)       # the encoder's rate unit at dt = 1 ms
        draw_us, spikes = best(False, weights["float64"][0], np.float64, rate)
        print(f"{hz:g} Hz: {spikes:.0f} input spikes per sample ({spikes * N / 1e6:.2f} M weight "
              f"additions); drawing them {draw_us:.1f} us")
        for name, (w, acc_type) in weights.items():
            us, _ = best(True, w, acc_type, rate)
            print(f"    {name:24s} draw + accumulate {us:6.1f} us, accumulate {us - draw_us:6.1f} us")


if __name__ == "__main__":
    main()
