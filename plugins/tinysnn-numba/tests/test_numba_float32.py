"""The numba backend's float32 precision (``[backend] precision = "float32"``): weights stored
in float32 while the kernels run, arithmetic in float64. Not the reference's bits, so what is
checked is what that definition implies."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("numba")

from numba_test_tools import mnist_digits  # noqa: E402
from tinysnn_core.config import Config  # noqa: E402
from tinysnn_core.errors import ConfigError, TinySNNError  # noqa: E402
from tinysnn_core.network import Network  # noqa: E402
from tinysnn_core.ops import OpCounts  # noqa: E402
from tinysnn_numba import NumbaBackend  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return mnist_digits(6, 16)


def build(precision=None, topology="tinysnn", rule="tinysnn-stdp") -> Network:
    backend = {"name": "numba"}
    if precision:
        backend["precision"] = precision
    return Network.build(Config.from_dict({
        "n_neurons": 30, "topology": {"name": topology}, "learning": {"name": rule},
        "backend": backend, "train": {"time_steps": 70}}))


@pytest.mark.parametrize("topology,rule", [("tinysnn", "tinysnn-stdp"), ("diehl-cook", "postpre")])
def test_float32_training_keeps_float32_weights_and_is_reproducible(digits, topology, rule):
    train, _ = digits
    nets = [build("float32", topology, rule) for _ in range(2)]
    ref = build(None, topology, rule)
    counts = []
    for net in nets + [ref]:
        counts.append(NumbaBackend().run(net, train, np.arange(6), learn=True, seed=2,
                                         ops=OpCounts()))
    a, b = nets
    assert a.w.dtype == np.float64                      # the network's array is kept
    np.testing.assert_array_equal(a.w, a.w.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(a.w, b.w)             # deterministic
    np.testing.assert_array_equal(counts[0], counts[1])
    assert counts[0].sum() > 0
    # float64 weights after the same samples are not all float32 values
    assert not np.array_equal(ref.w, ref.w.astype(np.float32).astype(np.float64))


def test_float32_inference_of_float32_weights_equals_float64(digits):
    """Weights that are float32 values load exactly, and the sums run in float64: the same
    spikes as the bit-exact float64 path."""
    train, test = digits
    net = build("float32")
    NumbaBackend().run(net, train, np.arange(6), learn=True, seed=1, ops=OpCounts())
    as64 = copy.deepcopy(net)
    as64.config = build(None).config
    got = NumbaBackend().run(net, test, np.arange(16), learn=False, seed=4, ops=OpCounts())
    ref = NumbaBackend().run(as64, test, np.arange(16), learn=False, seed=4, ops=OpCounts())
    np.testing.assert_array_equal(got, ref)
    assert got.sum() > 0
    # the constructor's precision overrides the configuration's
    again = NumbaBackend(precision="float64").run(net, test, np.arange(16), learn=False, seed=4,
                                                  ops=OpCounts())
    np.testing.assert_array_equal(again, ref)


def test_unknown_precision_is_one_line_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"precision must be one of \['float64', 'float32'\]"):
        build("float16").config.resolved()
    with pytest.raises(TinySNNError, match="float16"):
        NumbaBackend(precision="float16")
