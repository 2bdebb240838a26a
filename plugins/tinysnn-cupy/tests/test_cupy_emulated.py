"""The CUDA kernels' logic on CPU: snn_kernels.cu compiled as C++ (tests/emu), one OS thread per
CUDA thread, through the real host code of CupyBackend. Bit-identical to the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from tinysnn_core.config import Config
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts
from tinysnn_cupy import CupyBackend

CASES = ["tinysnn-stdp", "tinysnn-postpre", "dc-stdp", "dc-postpre", "busy-winner", "lif-many",
         "dc-soft"]


@pytest.mark.parametrize("case", CASES)
def test_emulated_kernels_match_numpy(emu_executor, check_equal, case):
    # N = 40: 1 neuron per thread (64 threads, 24 idle) and 2 per thread (one warp)
    npt = 2 if CASES.index(case) % 2 else 1
    check_equal(CupyBackend(executor=emu_executor, neurons_per_thread=npt), case)


def test_emulated_run_many_equals_single_runs(emu_executor, digits):
    cfg = Config.from_dict({"n_neurons": 40, "train": {"time_steps": 40}})
    net = Network.build(cfg)
    be = CupyBackend(executor=emu_executor, neurons_per_thread=2)
    rng = np.random.default_rng(0)
    stack = np.stack([net.w, np.floor(net.w * 16) / 16, net.w * rng.uniform(0.8, 1.2, net.w.shape)])
    thetas = np.stack([net.theta, net.theta + 0.5, net.theta])
    images, ids = digits[0][20:23], np.array([5, 6, 7])
    ops = OpCounts()
    many = be.run_many(net, stack, thetas, images, ids, seed=4, ops=ops)
    assert many.shape == (3, 3, 40) and many.dtype == np.int64
    for k in range(3):
        net.w, net.theta = stack[k].copy(), thetas[k].copy()
        np.testing.assert_array_equal(
            be.run(net, images, ids, learn=False, seed=4, ops=OpCounts()), many[k])
    assert ops.samples == 9 and ops.exc_spikes >= many.sum() > 0
