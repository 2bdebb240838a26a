"""Quantization in the numba backend against the NumPy reference, on real mnist-5k digits.

- simulated fixed point (float mode with ``net.quant``): truncation and nearest are bit-exact
  (spikes, weights, thresholds, operation counters) for ITQ training with all three rules on both
  topologies and for PTQ / ITQ inference; stochastic rounding draws its own counter-based numbers,
  so it is checked statistically (unbiasedness, and spike counts and learned parameters against
  the reference within the spread the reference itself shows between seeds);
- integer mode (``run_integer``) is bit-exact with ``tinysnn_core.intsim.infer``: predictions,
  counts and the per-sample operation counts, early exit on and off, at other inference T,
  rates and retries (hypothesis over the settings and the corners of the exit rule);
- what the kernels cannot run (a rounding plugin) is refused before any work.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from numba_test_tools import assert_identical, run_both  # noqa: E402
from tinysnn_core import explore, intsim  # noqa: E402
from tinysnn_core import train as flow  # noqa: E402
from tinysnn_core.builtin.backend_numpy import NumpyBackend  # noqa: E402
from tinysnn_core.config import Config, QuantSettings  # noqa: E402
from tinysnn_core.errors import DatasetMissing  # noqa: E402
from tinysnn_core.evaluate import assign_labels  # noqa: E402
from tinysnn_core.ops import OpCounts  # noqa: E402
from tinysnn_numba import NumbaBackend, UnsupportedNetwork  # noqa: E402
from tinysnn_numba import backend as backend_mod  # noqa: E402
from tinysnn_numba import kernels  # noqa: E402

TOPOLOGIES = ("diehl-cook", "tinysnn")
RULES = ("postpre", "weight-dependent", "tinysnn-stdp")
ALL = ["weights", "potential", "theta", "traces", "inhibition", "decay"]
DEPLOYABLE = ["weights", "potential", "theta", "inhibition", "decay"]


@pytest.fixture(scope="module")
def data():
    from tinysnn_core.builtin.datasets import load_mnist_5k

    try:
        return load_mnist_5k(0)
    except DatasetMissing as exc:
        pytest.skip(f"mnist-5k not installed: {exc}")


def make_groups(names, bits, rounding, neuron_bits=None):
    """``tinysnn_core.explore.make_groups`` with the default integer bits and the test networks'
    inhibition (17.5)."""
    return explore.make_groups(names, bits, rounding, {"inhibition": 17.5}, neuron_bits)


def itq_network(topology="tinysnn", rule="postpre", bits=8, rounding="nearest", n=20, T=60,
                groups=None, **extra):
    cfg = {"n_neurons": n, "topology": {"name": topology}, "learning": {"name": rule},
           "train": {"time_steps": T}, **extra}
    cfg = Config.from_dict(cfg)
    cfg.quant = QuantSettings("itq", groups or make_groups(ALL, bits, rounding))
    return flow.build_network(cfg)          # the in-training quantizer's prepare


# -- simulated fixed point, truncation and nearest: bit-exact -----------------------------------
@pytest.mark.parametrize("rounding", ["truncation", "nearest"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("rule", RULES)
def test_itq_training_and_inference_are_bit_identical(data, topology, rule, rounding):
    net = itq_network(topology, rule, 8, rounding)
    ref, got = run_both(net, data.train_images[:5], np.arange(5), learn=True)
    assert_identical(ref, got)
    assert ref[1].sum() > 0 and ref[2].stdp_updates > 0
    step = 2.0 ** -8                                # uQ0.8 weights: still on the grid
    assert np.all(got[0].w / step == np.round(got[0].w / step))
    ref, got = run_both(ref[0], data.test_images[:6], np.arange(6), learn=False, seed=3)
    assert_identical(ref, got)


ITQ_VARIANTS = {
    # tinysnn-stdp with mu != 0 (NumPy's power, presentation by presentation), 12 bits, TR
    "mu-weight-decay-12b": dict(rule="tinysnn-stdp", bits=12, rounding="truncation",
                                learning={"name": "tinysnn-stdp", "mu": 0.5,
                                          "weight_decay": 0.02, "x_tar": 0.1}),
    # mixed roundings and coarse formats per group; theta_plus below theta's step
    "mixed-formats": dict(topology="diehl-cook", rule="weight-dependent", groups={
        "weights": {"format": "uQ0.5", "rounding": "nearest"},
        "potential": {"format": "sQ7.2", "rounding": "truncation"},
        "theta": {"format": "uQ7.4", "rounding": "nearest"},
        "traces": {"format": "uQ1.3", "rounding": "truncation"},
        "decay": {"format": "uQ1.10", "rounding": "nearest"}}),
    # weights alone (the potential stays float), no normalisation
    "weights-only-no-normalize": dict(rule="postpre", groups={
        "weights": {"format": "uQ0.6", "rounding": "truncation"}},
        train={"time_steps": 60, "normalize": False}),
    # retries: a quiet layer is presented again at a higher rate
    "retries": dict(topology="diehl-cook", rule="postpre", bits=10,
                    encoder={"max_rate_hz": 8.0, "retry_rate_hz": 8.0, "retry_min_spikes": 6,
                             "max_retries": 3}),
}


@pytest.mark.parametrize("name", sorted(ITQ_VARIANTS))
def test_itq_variants_are_bit_identical(data, name):
    net = itq_network(**ITQ_VARIANTS[name])
    ref, got = run_both(net, data.train_images[:5], np.arange(5), learn=True)
    assert_identical(ref, got)
    ref, got = run_both(ref[0], data.test_images[:6], np.arange(6), learn=False)
    assert_identical(ref, got)


@pytest.fixture(scope="module")
def trained(data):
    """Float networks of both topologies, trained by the numba backend (bit-identical to numpy)
    on 60 digits and labelled, for the post-training and integer tests."""
    nets = {}
    for topology in TOPOLOGIES:
        cfg = Config.from_dict({"n_neurons": 30, "topology": {"name": topology},
                                "train": {"time_steps": 100}})
        net = flow.build_network(cfg)
        be = NumbaBackend()
        be.run(net, data.train_images[:60], np.arange(60), learn=True, seed=0, ops=OpCounts())
        counts = be.run(net, data.train_images[:60], np.arange(60), learn=False, seed=1,
                        ops=OpCounts())
        net.assignments, net.proportions, _ = assign_labels(counts, data.train_labels[:60])
        nets[topology] = net
    return nets


def ptq(net, wbits, pbits, rounding="nearest", names=DEPLOYABLE, groups=None):
    """``tests/test_quant_flow.py``'s way: groups + QuantSettings + the quantizer's prepare."""
    net = copy.deepcopy(net)
    groups = groups or make_groups(names, wbits, rounding, neuron_bits=pbits)
    net.config.quant = QuantSettings("ptq", groups)
    quantizer, plan = flow.quantizer_for(net.config)
    quantizer.prepare(net, plan)
    return net


@pytest.mark.parametrize("rounding", ["truncation", "nearest"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("bits", [(4, 8), (8, 12)])
def test_ptq_inference_is_bit_identical(data, trained, topology, rounding, bits):
    net = ptq(trained[topology], *bits, rounding)
    ref, got = run_both(net, data.test_images[:16], np.arange(200, 216), learn=False, seed=9)
    assert_identical(ref, got)
    assert ref[1].sum() > 0


# -- stochastic rounding: statistical agreement --------------------------------------------------
def test_stochastic_rounding_kernel_is_unbiased():
    """E[q(x)] = x: for fractions f of a step, the share of codes rounded up is f within a
    binomial tolerance (5 sigma), for every rounding site of the kernels."""
    qp = np.zeros((kernels.N_QG, kernels.N_QF))
    qp[kernels.Q_POTENTIAL] = [1.0, kernels.QM_STOCHASTIC, 16.0, 1 / 16, -2048.0, 2047.0]
    n = 4000
    salts = [kernels.SALT_POT_E, kernels.SALT_THETA, kernels.SALT_W_ROWS, kernels.SALT_W_NORM]
    for step in (0, 1, 349):
        for salt in salts:
            site = kernels._site_key(kernels._step_key(np.uint64(0x1234), step), salt)
            for f in (0.1, 0.5, 0.875):
                x = -65.0 + (3 + f) / 16.0
                up = sum(kernels._q(x, -65.0, qp, kernels.Q_POTENTIAL, site, i) > x
                         for i in range(n))
                sigma = np.sqrt(n * f * (1 - f))
                assert abs(up - n * f) < 5 * sigma, (step, salt, f, up)
    # saturation still applies after the stochastic step
    assert kernels._q(1e9, 0.0, qp, kernels.Q_POTENTIAL, np.uint64(1), 0) == 2047 / 16


def _sr_statistics(backend, net, data, seeds):
    """ITQ-SR training on 12 digits, then inference on 30: per seed, the mean excitatory
    spikes per inference sample, the mean theta and the mean weight."""
    out = []
    for s in seeds:
        n = copy.deepcopy(net)
        backend.run(n, data.train_images[:12], np.arange(12), learn=True, seed=s, ops=OpCounts())
        counts = backend.run(n, data.test_images[:30], np.arange(30), learn=False, seed=s + 100,
                             ops=OpCounts())
        out.append((counts.sum(axis=1).mean(), n.theta.mean(), n.w.mean()))
    return np.array(out)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_stochastic_rounding_agrees_statistically(data, topology):
    """The two backends draw different random numbers, so SR runs agree in distribution only.

    Tolerance: over 4 seeds each, the means of (spikes per inference sample, theta, weight)
    differ by at most 4 standard errors of the difference plus 5 % of the reference's mean (the
    seeds' spread of the reference). The theta group at uQ7.4 (step 0.0625 > theta_plus = 0.05)
    is the case where SR matters: truncation would keep theta at 0, SR grows it in expectation."""
    groups = make_groups(ALL, 8, "stochastic")
    groups["theta"] = {"format": "uQ7.4", "rounding": "stochastic"}
    net = itq_network(topology, "postpre", groups=groups, n=20, T=60)
    seeds = [11, 12, 13, 14]
    ref = _sr_statistics(NumpyBackend(), net, data, seeds)
    got = _sr_statistics(NumbaBackend(), net, data, seeds)
    assert ref[:, 0].min() > 0 and got[:, 0].min() > 0
    assert got[:, 1].min() > 0                      # theta grew, as only SR allows here
    for k, what in enumerate(("spikes per sample", "mean theta", "mean weight")):
        se = np.sqrt(ref[:, k].var(ddof=1) / len(seeds) + got[:, k].var(ddof=1) / len(seeds))
        tol = 4 * se + 0.05 * abs(ref[:, k].mean())
        assert abs(got[:, k].mean() - ref[:, k].mean()) <= tol, (what, ref[:, k], got[:, k])


def test_stochastic_rounding_is_reproducible(data):
    net = itq_network("tinysnn", "tinysnn-stdp", 8, "stochastic")
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    ca = NumbaBackend().run(a, data.train_images[:3], np.arange(3), learn=True, seed=5,
                            ops=OpCounts())
    cb = NumbaBackend().run(b, data.train_images[:3], np.arange(3), learn=True, seed=5,
                            ops=OpCounts())
    np.testing.assert_array_equal(ca, cb)
    assert a.w.tobytes() == b.w.tobytes()


# -- integer mode: bit-exact with intsim ----------------------------------------------------------
INT_CASES = {
    # 3-bit weights, 8-bit potential (sQ7.0): float-sim and integer round at different points
    "w3-p8-truncation": dict(wbits=3, pbits=8, rounding="truncation", differs=True),
    "w3-p8-nearest": dict(wbits=3, pbits=8, rounding="nearest", differs=True),
    "w4-p16-nearest": dict(wbits=4, pbits=16, rounding="nearest", differs=False),
    "w6-p12-truncation": dict(wbits=6, pbits=12, rounding="truncation", differs=None),
    "w16-p32-nearest": dict(wbits=16, pbits=32, rounding="nearest", differs=False),
    "mixed-formats": dict(groups={
        "weights": {"format": "uQ0.5", "rounding": "nearest"},
        "potential": {"format": "sQ6.5", "rounding": "truncation"},
        "theta": {"format": "uQ5.3", "rounding": "nearest"},
        "inhibition": {"format": "sQ5.1", "rounding": "nearest"},
        "decay": {"format": "uQ1.5", "rounding": "truncation"}}, differs=None),
}


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("case", sorted(INT_CASES))
def test_integer_mode_is_bit_identical(data, trained, topology, case):
    spec = dict(INT_CASES[case])
    differs = spec.pop("differs")
    net = ptq(trained[topology], spec.get("wbits", 0), spec.get("pbits", 0),
              spec.get("rounding", "nearest"), groups=spec.get("groups"))
    model = intsim.from_network(net)
    images, ids, seed = data.test_images[:24], np.arange(300, 324), 1234
    preds_ref, counts_ref = intsim.infer(model, images, seed, ids)
    preds, counts = NumbaBackend().run_integer(model, images, seed, ids)
    assert preds.dtype == np.int64 and counts.dtype == np.int64
    np.testing.assert_array_equal(counts, counts_ref)
    np.testing.assert_array_equal(preds, preds_ref)
    assert counts_ref.sum() > 0
    if differs is not None:
        float_sim = NumbaBackend().run(net, images, ids, learn=False, seed=seed, ops=OpCounts())
        assert (not np.array_equal(float_sim, counts_ref)) == differs


def test_integer_mode_retries_and_default_ids(data, trained):
    net = ptq(trained["diehl-cook"], 5, 10, "nearest")
    net.config = net.config.with_overrides(["encoder.max_rate_hz=6.0", "encoder.retry_rate_hz=6.0",
                                            "encoder.retry_min_spikes=8"])
    net.encoder = type(net.encoder)(net.config.plugin_params("encoder"), net.config.train.dt)
    model = intsim.from_network(net)
    images = data.test_images[:12]
    want = intsim.infer(model, images, 77)
    got = NumbaBackend().run_integer(model, images, 77)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    empty = NumbaBackend().run_integer(model, images[:0], 77, [])
    assert empty[0].shape == (0,) and empty[1].shape == (0, model.n_neurons)


# -- refusals, before any work -------------------------------------------------------------------
def half_even(scaled, rng=None):
    """A rounding plugin the kernels do not know (round half to even)."""
    return np.round(scaled)


def _with_rounding_plugin(net, group):
    net.quant._fns[group] = half_even     # what QuantRuntime holds for a plugin's scheme
    net.quant.plan.groups[group].rounding = "half-even"
    return net


def _no_kernels(monkeypatch):
    def boom():
        raise AssertionError("kernels used before the refusal")
    monkeypatch.setattr(backend_mod, "_kernels", boom)


def test_rounding_plugin_is_refused_before_any_work(data, trained, monkeypatch):
    net = _with_rounding_plugin(ptq(trained["tinysnn"], 6, 10), "potential")
    w0 = net.w.copy()
    _no_kernels(monkeypatch)
    with pytest.raises(UnsupportedNetwork) as info:
        NumbaBackend().run(net, data.test_images[:2], [0, 1], learn=False, seed=0,
                           ops=OpCounts())
    msg = str(info.value)
    assert "half-even" in msg and "potential" in msg and 'backend = "numpy"' in msg
    with pytest.raises(UnsupportedNetwork):
        NumbaBackend().check(net, learn=False)
    assert net.w.tobytes() == w0.tobytes()


def test_rounding_plugin_in_training_is_refused_before_any_work(data, monkeypatch):
    net = _with_rounding_plugin(itq_network("diehl-cook", "postpre", 8, "nearest"), "traces")
    w0 = net.w.copy()
    _no_kernels(monkeypatch)
    with pytest.raises(UnsupportedNetwork, match="traces"):
        NumbaBackend().run(net, data.train_images[:2], [0, 1], learn=True, seed=0,
                           ops=OpCounts())
    assert net.w.tobytes() == w0.tobytes()
    # inference does not round traces: the same network is fine there
    assert backend_mod.unsupported_reasons(net, learn=False) == []


def test_rounding_plugin_for_a_constant_group_is_fine(data, trained):
    """decay and inhibition are rounded once by the quantizer (any rounding), then only read."""
    net = _with_rounding_plugin(ptq(trained["tinysnn"], 6, 10), "decay")
    assert backend_mod.unsupported_reasons(net, learn=True) == []
    ref, got = run_both(net, data.test_images[:4], np.arange(4), learn=False)
    assert_identical(ref, got)


def test_bad_batches_are_refused_before_any_work(data, trained, monkeypatch):
    net = trained["tinysnn"]
    model = intsim.from_network(ptq(net, 4, 8))
    _no_kernels(monkeypatch)
    with pytest.raises(Exception, match="sample ids"):
        NumbaBackend().run(net, data.test_images[:3], [0, 1], learn=False, seed=0,
                           ops=OpCounts())
    with pytest.raises(Exception, match="pixels"):
        NumbaBackend().run(net, np.zeros((2, 100), np.uint8), [0, 1], learn=True, seed=0,
                           ops=OpCounts())
    with pytest.raises(Exception, match="sample ids"):
        NumbaBackend().run_integer(model, data.test_images[:3], 0, [0])


# -- integer mode: early exit and the per-sample operation counts --------------------------------
def _assert_same_integer(got, want):
    """(preds, counts, ops) of run_integer(with_ops=True) equal intsim.infer's, every ops array."""
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    assert tuple(got[2]) == intsim.INFER_OPS
    for name in intsim.INFER_OPS:
        assert got[2][name].dtype == np.int64 and got[2][name].shape == (len(want[0]),)
        np.testing.assert_array_equal(got[2][name], want[2][name], err_msg=name)


def _check_integer(model, images, seed, ids):
    want = intsim.infer(model, images, seed, ids, with_ops=True)
    _assert_same_integer(NumbaBackend().run_integer(model, images, seed, ids, with_ops=True),
                         want)
    return want


def test_integer_features_and_op_layout():
    assert {"early_exit", "ops"} <= set(NumbaBackend.integer_features)
    assert kernels.INT_OP_FIELDS == intsim.INFER_OPS


@pytest.mark.parametrize("margin", [0, 1, 3])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_integer_early_exit_and_ops_are_bit_identical(data, trained, topology, margin):
    """Early exit off and on, at the training T and at other T / rate tables (inference
    settings), with retries: predictions, counts and every operation count equal intsim's."""
    base = intsim.from_network(ptq(trained[topology], 6, 12))
    images, ids, seed = data.test_images[:16], np.arange(400, 416), 99
    low = (base.rate_units // 3).astype(np.uint64)          # quiet: retries happen
    variants = [dict(), dict(time_steps=37, rate_units=low[:3], retry_min_spikes=4),
                dict(time_steps=160, rate_units=base.rate_units[:1])]
    exits = 0
    for v in variants:
        m = dataclasses.replace(base, exit_margin=margin, **v)
        want = _check_integer(m, images, seed, ids)
        exits += int(want[2]["exit_early"].sum())
        assert want[1].sum() > 0
    assert (exits > 0) == (margin > 0)


def test_integer_inference_settings_from_the_config(data, trained):
    """[inference] overrides (T, retries, rate, early exit) reach the integer model and the
    kernel through intsim.from_network, and run_integer(backend=numba) is used for them."""
    net = ptq(trained["diehl-cook"], 5, 10)
    net.config = net.config.with_overrides(["inference.exit_margin=2", "inference.time_steps=100",
                                            "inference.rate_hz=127.5", "inference.max_retries=0"])
    m = intsim.from_network(net)
    assert (m.exit_margin, m.time_steps, len(m.rate_units)) == (2, 100, 1)
    images, ids = data.test_images[:12], np.arange(12)
    want = _check_integer(m, images, 5, ids)
    assert want[2]["exit_early"].sum() > 0

    calls = []

    class Spy(NumbaBackend):
        def run_integer(self, *args, **kw):
            calls.append(kw)
            return super().run_integer(*args, **kw)

    _assert_same_integer(intsim.run_integer(m, images, 5, ids, Spy(), with_ops=True), want)
    assert calls == [{"with_ops": True}]


@st.composite
def _exit_settings(draw):
    """Inference settings and corners of the exit rule drawn over the trained models."""
    return dict(
        key=(draw(st.sampled_from(TOPOLOGIES)), draw(st.sampled_from([(4, 8), (8, 16)]))),
        margin=draw(st.sampled_from([0, 1, 3])),
        T=draw(st.integers(1, 120)),
        n_rates=draw(st.integers(1, 4)),
        rate_scale=draw(st.sampled_from([0.2, 0.5, 1.0, 2.0])),
        min_spikes=draw(st.integers(0, 12)),
        one_spike=draw(st.booleans()),
        # class remap: merged classes leave classes without neurons, -1 unassigns; n_classes
        # below 10 leaves neurons assigned beyond the classes (in the exit total, no class)
        remap=draw(st.lists(st.integers(-1, 9), min_size=10, max_size=10)),
        n_classes=draw(st.sampled_from([10, 10, 3, 1])),
        seed=draw(st.integers(0, 2**32 - 1)))


@pytest.fixture(scope="module")
def int_bases(trained):
    return {(topo, bits): intsim.from_network(ptq(trained[topo], *bits))
            for topo in TOPOLOGIES for bits in ((4, 8), (8, 16))}


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(s=_exit_settings())
def test_integer_early_exit_random_settings_are_bit_identical(data, int_bases, s):
    base = int_bases[s["key"]]
    units = np.array([min(int(base.rate_units[0] * s["rate_scale"] * (1 + r)), 2**32 // 256)
                      for r in range(s["n_rates"])], dtype=np.uint64)
    remap = np.array(s["remap"] + [-1])
    m = dataclasses.replace(
        base, exit_margin=s["margin"], time_steps=s["T"], rate_units=units,
        retry_min_spikes=s["min_spikes"], exc=dataclasses.replace(base.exc,
                                                                  one_spike=s["one_spike"]),
        assignments=remap[base.assignments], n_classes=s["n_classes"])
    rng = np.random.default_rng(s["seed"] % 1000)
    pick = rng.choice(len(data.test_images), 6, replace=False)
    _check_integer(m, data.test_images[pick], s["seed"], pick * 3 + 1)
