"""The numba backend against the NumPy reference: same spikes, same weights bit for bit, same
thresholds and the same operation counters, on real mnist-5k digits."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from numba_test_tools import assert_identical, mnist_digits, run_both  # noqa: E402
from tinysnn_core.builtin.backend_numpy import NumpyBackend  # noqa: E402
from tinysnn_core.config import Config  # noqa: E402
from tinysnn_core.network import Network  # noqa: E402
from tinysnn_core.ops import OpCounts  # noqa: E402
from tinysnn_numba import NumbaBackend  # noqa: E402
from tinysnn_numba import kernels  # noqa: E402

TOPOLOGIES = ("diehl-cook", "tinysnn")
RULES = ("postpre", "weight-dependent", "tinysnn-stdp")


@pytest.fixture(scope="module")
def digits():
    return mnist_digits(12, 24)


def build(n=40, T=80, topology="diehl-cook", rule="postpre", **extra) -> Network:
    cfg = {"n_neurons": n, "topology": {"name": topology}, "learning": {"name": rule},
           "train": {"time_steps": T}}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return Network.build(Config.from_dict(cfg))


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("rule", RULES)
def test_training_is_bit_identical(digits, topology, rule):
    train, _ = digits
    net = build(n=40 if topology == "diehl-cook" else 50, T=80, topology=topology, rule=rule)
    ids = np.arange(100, 106)
    ref, got = run_both(net, train[:6], ids, learn=True)
    assert_identical(ref, got)
    assert ref[1].sum() > 0, "the test network should spike"
    assert ref[2].stdp_updates + ref[2].stdp_accumulates > 0
    # and again from there: state carried across calls (weights, thresholds) stays identical
    ref2, got2 = (run_both(ref[0], train[6:9], ids[:3] + 6, learn=True)[0],
                  run_both(got[0], train[6:9], ids[:3] + 6, learn=True)[1])
    assert_identical(ref2, got2)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_batched_inference_is_identical(digits, topology):
    train, test = digits
    net = build(n=50, T=100, topology=topology, rule="postpre")
    NumpyBackend().run(net, train[:3], np.arange(3), learn=True, seed=1, ops=OpCounts())
    w0, theta0 = net.w.copy(), net.theta.copy()
    ref, got = run_both(net, test, np.arange(500, 500 + len(test)), learn=False, seed=3)
    assert_identical(ref, got)
    assert ref[1].sum() > 0
    np.testing.assert_array_equal(got[0].w, w0)          # inference leaves the network alone
    np.testing.assert_array_equal(got[0].theta, theta0)


VARIANTS = {
    "tinysnn-stdp-mu-decay-xtar": dict(
        topology="tinysnn", rule="tinysnn-stdp",
        learning={"mu": 0.5, "weight_decay": 0.02, "x_tar": 0.1, "min_post_spikes": 2}),
    "tinysnn-stdp-fixed-k": dict(
        topology="diehl-cook", rule="tinysnn-stdp",
        learning={"adaptive_potentiation": False, "nu_post": 0.05}),
    "postpre-no-depression": dict(rule="postpre", learning={"nu_pre": 0.0}),
    "weight-dependent-no-normalize": dict(rule="weight-dependent",
                                          train={"time_steps": 80, "normalize": False}),
    "lif-excitatory": dict(topology="tinysnn", rule="postpre", exc_neuron={"name": "lif"}),
    "no-one-spike": dict(topology="tinysnn", rule="weight-dependent",
                         exc_neuron={"one_spike": False}),
    "adaptive-inhibitory-layer": dict(rule="postpre",
                                      inh_neuron={"name": "adaptive-lif", "one_spike": True}),
    "half-ms-steps": dict(topology="tinysnn", rule="tinysnn-stdp",
                          train={"time_steps": 80, "dt": 0.5}),
    "single-neuron": dict(n=1, topology="tinysnn", rule="postpre"),
    # normalised columns whose sums put weights above wmax: the fused path's skipped writes
    # (of in-range weights only) must still clamp those, as the reference does
    "postpre-weights-off-range": dict(rule="postpre", train={"time_steps": 80, "norm": 600.0}),
    "weight-dependent-off-range": dict(topology="tinysnn", rule="weight-dependent",
                                       train={"time_steps": 80, "norm": 650.0}),
    # the excitatory step reads its spike flags back from the refractory counts
    # (kernels._flags_by_ref): with no refractory period a count of 0 is also where every
    # count starts (test_numba_flags.py covers the counts that cannot tell)
    "no-refractory-period": dict(exc_neuron={"refrac": 0}),
    "tinysnn-no-refractory-period": dict(topology="tinysnn", rule="tinysnn-stdp",
                                         exc_neuron={"refrac": 0}),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_are_bit_identical(digits, name):
    train, test = digits
    net = build(**VARIANTS[name])
    ref, got = run_both(net, train[:5], np.arange(5), learn=True)
    assert_identical(ref, got)
    if "refractory" in name:    # the spike flags must have been exercised
        assert ref[1].sum() > 0
    ref, got = run_both(ref[0], test[:8], np.arange(8), learn=False)
    assert_identical(ref, got)


def test_columns_scaled_by_one_are_skipped_identically(digits):
    """diehl-cook normalises every column after every sample; most come out scaled by exactly
    1.0, and the fused path skips those that nothing writes before the next normalisation.
    Over a dozen samples the weights stay bit-identical, and the case is really there: the
    reference's normalisation of the trained weights leaves most columns as they are."""
    from tinysnn_core.builtin.backend_numpy import normalize_columns

    train, _ = digits
    net = build(n=40, T=80)
    ref, got = run_both(net, train[:12], np.arange(12), learn=True)
    assert_identical(ref, got)
    w = ref[0].w.copy()
    normalize_columns(w, np.arange(w.shape[1]), ref[0].config.train.norm, OpCounts())
    unchanged = np.all(w == ref[0].w, axis=0)
    assert unchanged.mean() > 0.5, unchanged.mean()


def test_retries_are_identical(digits):
    """A quiet layer: presentations are repeated at higher rates (the retry rule)."""
    train, test = digits
    net = build(n=30, T=60, topology="diehl-cook", rule="postpre",
                encoder={"max_rate_hz": 8.0, "retry_rate_hz": 8.0, "retry_min_spikes": 6,
                         "max_retries": 3})
    ref, got = run_both(net, train[:5], np.arange(5), learn=True)
    assert_identical(ref, got)
    assert ref[2].presentations > ref[2].samples
    ref, got = run_both(ref[0], test[:10], np.arange(10), learn=False)
    assert_identical(ref, got)
    assert ref[2].presentations > ref[2].samples


def test_empty_batch():
    net = build(n=10, T=10)
    counts = NumbaBackend().run(net, np.zeros((0, 784), np.uint8), [], learn=False, seed=0,
                                ops=OpCounts())
    assert counts.shape == (0, 10)


def test_numpy_summation_orders():
    """The two NumPy reduction orders the kernels replicate: pairwise (contiguous axis) and
    row by row (outer axis of a C-ordered block)."""
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 127, 128, 129, 300, 784, 1000):
        a = rng.random(n)
        assert kernels._pairwise_sum_1d(a, n) == np.add.reduce(a)
        w = rng.random((n, 6))
        prog = kernels.pairwise_program(n)
        cols = np.array([1, 4])
        want = np.abs(w[:, cols]).sum(axis=0)
        got = np.empty(2)
        kernels._cols_sums(w, cols, 2, kernels.COL_READ, got, 0.0, 1.0, prog, got,
                           np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64))
        assert got.tolist() == want.tolist()
        out = np.empty(6)
        kernels._pairwise_abs_all(w, prog, out)
        assert out.tolist() == np.abs(w[:, np.arange(6)]).sum(axis=0).tolist()
    w = rng.random((784, 20))
    pre = np.sort(rng.choice(784, 37, replace=False)).astype(np.int64)
    current = np.empty(20)
    kernels._input_current(w, pre, len(pre), current)
    assert current.tolist() == w[pre].sum(axis=0).tolist()


def _post_training_quantized(digits, groups):
    from tinysnn_core.train import quantizer_for

    train, _ = digits
    net = build(n=40, T=80, quant={"scheme": "ptq", "groups": groups})
    NumpyBackend().run(net, train[:3], np.arange(3), learn=True, seed=0, ops=OpCounts())
    quantizer, plan = quantizer_for(net.config)
    quantizer.prepare(net, plan)
    return net


def test_post_training_quantized_parameters_infer_identically(digits):
    """PTQ of the stored parameters only: rounded once, then plain float simulation."""
    net = _post_training_quantized(digits, {
        "weights": {"format": "uQ0.6", "rounding": "nearest"},
        "decay": {"format": "uQ1.8", "rounding": "nearest"},
        "inhibition": {"format": "sQ5.3", "rounding": "nearest"}})
    assert np.unique(net.w).size <= 64
    _, test = digits
    ref, got = run_both(net, test[:16], np.arange(16), learn=False)
    assert_identical(ref, got)
