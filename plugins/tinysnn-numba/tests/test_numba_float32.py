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


@pytest.mark.parametrize("topology,rule", [("tinysnn", "tinysnn-stdp"), ("diehl-cook", "postpre")])
def test_float32_fused_learning_equals_the_per_step_kernel(topology, rule):
    """In float32 the fused path's shortcuts must change nothing either: its normalisation
    skips columns whose last scaling rounded back to the same float32 weights (a scale near 1
    that is not 1.0), and tinysnn-stdp's update is fused into the sums. The per-step kernel
    normalises every dirty column every time; over a dozen digits both leave the same bits."""
    from numba_test_tools import mnist_digits as digits_of
    from tinysnn_core import counter_rng
    from tinysnn_numba import backend as bk
    from tinysnn_numba import kernels as k

    train, _ = digits_of(12, 1)
    net = Network.build(Config.from_dict({
        "n_neurons": 40, "topology": {"name": topology}, "learning": {"name": rule},
        "train": {"time_steps": 80}}))
    fp, ip = bk.pack_params(net)
    qp = bk.pack_quant(net, True)
    images = np.ascontiguousarray(train, dtype=np.int64)
    skeys = np.array([counter_rng.sample_key(3, s) for s in range(len(images))], dtype=np.int64)
    enc = net.encoder
    rate_units = np.array([enc.rate_unit(r) for r in range(enc.params.max_retries + 1)],
                          dtype=np.int64)
    prog = k.pairwise_program(net.w.shape[0])
    out = []
    for fn in (k.train_batch, k.train_batch_fused):
        w, theta = net.w.astype(np.float32), net.theta.copy()
        ops = np.zeros(k.N_OPS, dtype=np.int64)
        counts = np.zeros((len(images), 40), dtype=np.int64)
        fn(w, theta, images, skeys, rate_units, fp, ip, qp, prog, ops, counts)
        out.append((w, theta, counts, ops))
    assert out[0][2].sum() > 0
    for a, b in zip(*out):
        assert a.tobytes() == b.tobytes()
