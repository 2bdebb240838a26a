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
    # N = 40: 2 neurons per thread (one warp; cheap to emulate), and once 1 per thread (64
    # threads, 24 idle, two warps)
    npt = 1 if case == "dc-postpre" else 2
    check_equal(CupyBackend(executor=emu_executor, neurons_per_thread=npt), case)


def test_emulated_run_many_equals_single_runs(emu_executor, digits):
    # a lively network (low threshold, weak inhibition): no retries, so the emulation stays quick
    cfg = Config.from_dict({"n_neurons": 40, "train": {"time_steps": 30},
                            "exc_neuron": {"name": "adaptive-lif", "thresh": -62.0},
                            "topology": {"name": "tinysnn", "w_inh": -1.0}})
    net = Network.build(cfg)
    be = CupyBackend(executor=emu_executor, neurons_per_thread=2)
    rng = np.random.default_rng(0)
    stack = np.stack([net.w, np.floor(net.w * 16) / 16, net.w * rng.uniform(0.8, 1.2, net.w.shape)])
    thetas = np.stack([net.theta, net.theta + 0.5, net.theta])
    images, ids = digits[0][20:22], np.array([5, 6])
    ops = OpCounts()
    many = be.run_many(net, stack, thetas, images, ids, seed=4, ops=ops)
    assert many.shape == (3, 2, 40) and many.dtype == np.int64
    for k in range(3):
        net.w, net.theta = stack[k].copy(), thetas[k].copy()
        np.testing.assert_array_equal(
            be.run(net, images, ids, learn=False, seed=4, ops=OpCounts()), many[k])
    assert ops.samples == 6 and ops.exc_spikes >= many.sum() > 0
