"""Small quantized models for the engine and deploy tests (a uniquely named module: other test
folders have their own conftest and helpers)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinysnn_core.config import Config
from tinysnn_core.network import Network
from tinysnn_core.quant import default_format
from tinysnn_core.train import quantizer_for


def small_model(topology: str = "tinysnn", n: int = 16, time_steps: int = 60, w_bits: int = 4,
                v_bits: int = 16, rounding: str = "nearest", seed: int = 1,
                w_scale: float = 0.6, theta_max: float = 5.0, n_test: int | None = None) -> Network:
    """An untrained network with random weights (scaled so that neurons spike), random theta,
    PTQ at the given widths and random label assignments (some neurons unassigned): what the
    integer contract computes does not depend on how the weights were learned."""
    cfg = {"seed": seed, "n_neurons": n, "topology": topology,
           "train": {"time_steps": time_steps},
           "quant": {"scheme": "ptq", "groups": {
               "weights": {"format": str(default_format("weights", w_bits)), "rounding": rounding},
               "potential": {"format": str(default_format("potential", v_bits)),
                             "rounding": rounding},
               "theta": {"format": str(default_format("theta", 12)), "rounding": rounding},
               "inhibition": {"format": str(default_format("inhibition", 12, 120.0)),
                              "rounding": rounding},
               "decay": {"format": str(default_format("decay", 16)), "rounding": rounding}}}}
    if n_test is not None:
        cfg["train"]["n_test"] = n_test
    net = Network.build(Config.from_dict(cfg))
    rng = np.random.default_rng(seed)
    net.w[:] = rng.random(net.w.shape) * w_scale
    net.theta[:] = rng.random(n) * theta_max
    quantizer, plan = quantizer_for(net.config)
    quantizer.prepare(net, plan)
    net.assignments = rng.integers(-1, 10, n)
    net.proportions = np.zeros((n, 10))
    return net


@lru_cache(maxsize=8)
def sample_images(k: int, seed: int = 0) -> np.ndarray:
    """k images of the mnist-5k test split when the data set is there, else random sparse ones."""
    try:
        from tinysnn_core.builtin.datasets import load_mnist_5k

        return load_mnist_5k(0).test_images[:k]
    except Exception:  # noqa: BLE001 - the data set is optional for these tests
        rng = np.random.default_rng(seed)
        img = rng.integers(0, 256, (k, 784)).astype(np.uint8)
        img[rng.random((k, 784)) < 0.8] = 0
        return img
