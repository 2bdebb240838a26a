"""The numba backend's float32 precisions: ``[backend] precision = "float32"`` (weights stored
in float32 while the kernels run, arithmetic in float64) and ``"float32-currents"`` (the input
currents summed in float32 too). Not the reference's bits, so what is checked is what each
definition implies."""

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
    with pytest.raises(ConfigError, match=r"precision must be one of \['float64', 'float32', "
                                          r"'float32-currents'\]"):
        build("float16").config.resolved()
    with pytest.raises(TinySNNError, match="float16"):
        NumbaBackend(precision="float16")


@pytest.mark.parametrize("cur_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("topology,rule", [("tinysnn", "tinysnn-stdp"), ("diehl-cook", "postpre")])
def test_float32_fused_learning_equals_the_per_step_kernel(topology, rule, cur_dtype):
    """In float32 the fused path's shortcuts must change nothing either: its normalisation
    skips columns whose last scaling rounded back to the same float32 weights (a scale near 1
    that is not 1.0), and tinysnn-stdp's update is fused into the sums. The per-step kernel
    normalises every dirty column every time; over a dozen digits both leave the same bits."""
    from numba_test_tools import kernel_inputs
    from numba_test_tools import mnist_digits as digits_of
    from tinysnn_numba import kernels as k

    train, _ = digits_of(12, 1)
    net = Network.build(Config.from_dict({
        "n_neurons": 40, "topology": {"name": topology}, "learning": {"name": rule},
        "train": {"time_steps": 80}}))
    fp, ip, qp, images, skeys, rate_units = kernel_inputs(net, train, 3, learn=True)
    prog = k.pairwise_program(net.w.shape[0])
    out = []
    for fn in (k.train_batch, k.train_batch_fused):
        w, theta = net.w.astype(np.float32), net.theta.copy()
        ops = np.zeros(k.N_OPS, dtype=np.int64)
        counts = np.zeros((len(images), 40), dtype=np.int64)
        fn(w, theta, images, skeys, rate_units, fp, ip, qp, prog, ops, counts,
           np.zeros(0, dtype=cur_dtype))
        out.append((w, theta, counts, ops))
    assert out[0][2].sum() > 0
    for a, b in zip(*out):
        assert a.tobytes() == b.tobytes()


def test_float32_currents_add_each_row_in_float32():
    """``float32-currents`` sums the rows of a step's spiking pixels in float32, one row after
    the other from 0 (a float32 ``w[rows].sum(axis=0)`` done row by row), and ``float32`` /
    ``float64`` sum the same float32 weights in float64: compared on rows whose sums round."""
    from tinysnn_numba import kernels as k
    rng = np.random.default_rng(5)
    w = (rng.random((50, 24)) * 0.3).astype(np.float32)
    lst = np.sort(rng.choice(50, size=23, replace=False)).astype(np.int32)
    off = np.array([0, 9, 9, 23], dtype=np.int64)
    sums = {}
    for dt in (np.float32, np.float64):
        buf = np.full((3, 24), np.nan, dtype=dt)
        k._accumulate(w, lst, off, 3, buf)
        sums[dt] = buf
    for tt in range(3):
        ref32 = np.zeros(24, dtype=np.float32)
        ref64 = np.zeros(24)
        for r in lst[off[tt]:off[tt + 1]]:
            ref32 = ref32 + w[r]                    # float32 + float32: float32
            ref64 = ref64 + w[r].astype(np.float64)
        assert sums[np.float32][tt].tobytes() == ref32.tobytes()
        assert sums[np.float64][tt].tobytes() == ref64.tobytes()
    assert not np.array_equal(sums[np.float32].astype(np.float64), sums[np.float64])


@pytest.mark.parametrize("topology,rule", [("tinysnn", "tinysnn-stdp"), ("diehl-cook", "postpre")])
def test_float32_currents_inference_paths_agree(digits, topology, rule, monkeypatch):
    """The tiled inference kernel (batches, N >= 2), the per-step one and the grouped one give
    the same counts with float32 currents (the lateral term kept in float32 alike), and the
    grouped call keeps each network's own precision."""
    from numba_test_tools import kernel_inputs
    from tinysnn_numba import kernels as k
    train, test = digits
    net = build("float32-currents", topology, rule)
    NumbaBackend().run(net, train, np.arange(6), learn=True, seed=1, ops=OpCounts())
    fp, ip, qp, images, skeys, rate_units = kernel_inputs(net, test, 4, learn=False)
    w = net.w.astype(np.float32)
    out = []
    for tiled in (True, False):
        per_sample = np.zeros((len(images), k.N_OPS), dtype=np.int64)
        counts = np.zeros((len(images), net.w.shape[1]), dtype=np.int64)
        args = (w, net.theta.copy(), images, skeys, rate_units, fp, ip, qp, per_sample, counts)
        if tiled:
            k.infer_batch_tiled(*args, 2, np.zeros(0, dtype=np.float32))
        else:
            k.infer_batch(*args, np.zeros(0, dtype=np.float32))
        out.append((counts, per_sample))
    assert out[0][0].sum() > 0
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    # the backend's own call, and a group mixing the three precisions
    via_run = NumbaBackend().run(net, test, np.arange(16), learn=False, seed=4, ops=OpCounts())
    np.testing.assert_array_equal(via_run, out[0][0])
    others = []
    for precision in ("float32", None):
        other = copy.deepcopy(net)
        other.config = build(precision, topology, rule).config
        others.append(other)
    nets = [net, others[0], copy.deepcopy(net), others[1]]
    ops = [OpCounts() for _ in nets]
    calls, real = [], k.infer_batch_group

    def spy(wu, *args):     # the real kernel, its weights' and currents' dtypes noted
        calls.append((wu.dtype, args[-1].dtype, wu.shape[0]))
        return real(wu, *args)

    monkeypatch.setattr(k, "infer_batch_group", spy)
    grouped = NumbaBackend().run_group(nets, test, np.arange(16), seed=4, ops_list=ops)
    # one group per precision (the float32-currents pair shares its matrix), each in its own
    # precision; the lone ones run through run()
    assert calls == [(np.float32, np.float32, 1)]
    for g, one in zip(grouped, nets):
        alone = NumbaBackend().run(one, test, np.arange(16), learn=False, seed=4, ops=OpCounts())
        np.testing.assert_array_equal(g, alone)
