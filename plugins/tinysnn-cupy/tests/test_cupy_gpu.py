"""The cupy backend on a real GPU (skipped, with the reason, without CuPy or a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.config import Config
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("case", ["tinysnn-stdp", "tinysnn-postpre", "dc-stdp", "dc-postpre",
                                  "busy-winner", "lif-many", "dc-soft"])
def test_gpu_matches_numpy_small(gpu_backend, check_equal, case):
    check_equal(gpu_backend, case)


@pytest.mark.parametrize("case", ["tinysnn-stdp", "dc-postpre"])
def test_gpu_matches_numpy_n400(gpu_backend, check_equal, case):
    check_equal(gpu_backend, case, n_neurons=400, T=350, n_train=2, n_test=3)


@pytest.mark.parametrize("npt", [1, 3, 4])
def test_gpu_geometries_agree(check_equal, gpu_backend, npt):
    from tinysnn_cupy import CupyBackend

    check_equal(CupyBackend(neurons_per_thread=npt), "busy-winner", n_neurons=100, T=60)


def test_gpu_run_many(gpu_backend, digits):
    cfg = Config.from_dict({"n_neurons": 100, "train": {"time_steps": 100}})
    net = Network.build(cfg)
    stack = np.stack([np.floor(net.w * 2 ** f) / 2 ** f for f in range(2, 10)])
    images, ids = digits[0][:16], np.arange(1000, 1016)
    many = gpu_backend.run_many(net, stack, None, images, ids, seed=3)
    assert many.shape == (8, 16, 100)
    for k in (0, 5):
        net.w = stack[k].copy()
        want = NumpyBackend().run(net, images[:4], ids[:4], learn=False, seed=3, ops=OpCounts())
        np.testing.assert_array_equal(many[k, :4], want)


def test_gpu_weight_dependence_pow_within_tolerance(gpu_backend, digits):
    """tinysnn-stdp with mu != 0 uses CUDA's pow, which may differ from libm's in the last bits:
    the documented tolerance is 1e-9 on the weights after a few samples (docs/gpu.md)."""
    cfg = Config.from_dict({"n_neurons": 40, "train": {"time_steps": 60},
                            "learning": {"name": "tinysnn-stdp", "mu": 0.5}})
    ref, net = Network.build(cfg), Network.build(cfg)
    ids = np.arange(4)
    NumpyBackend().run(ref, digits[0][:4], ids, learn=True, seed=1, ops=OpCounts())
    gpu_backend.run(net, digits[0][:4], ids, learn=True, seed=1, ops=OpCounts())
    assert np.abs(net.w - ref.w).max() <= 1e-9
    assert np.abs(net.theta - ref.theta).max() <= 1e-9
