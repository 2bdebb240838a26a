"""Monitors on the numba backend: the same recording as the NumPy reference, bit for bit (spike
events, v, theta, traces), through its separate recording path, with the fast path's results
(counts, weights, thresholds, operation counters) unchanged by recording."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("numba")

from tinysnn_core import explore  # noqa: E402
from tinysnn_core import train as flow  # noqa: E402
from tinysnn_core.builtin.backend_numpy import NumpyBackend  # noqa: E402
from tinysnn_core.config import Config, QuantSettings  # noqa: E402
from tinysnn_core.errors import DatasetMissing, InputError  # noqa: E402
from tinysnn_core.monitors import Record  # noqa: E402
from tinysnn_core.network import Network  # noqa: E402
from tinysnn_core.ops import OpCounts  # noqa: E402
from tinysnn_numba import NumbaBackend  # noqa: E402

ALL = ("spikes", "v", "theta", "trace")


@pytest.fixture(scope="module")
def images():
    from tinysnn_core.builtin.datasets import load_mnist_5k

    try:
        return load_mnist_5k(0).train_images[:7]
    except DatasetMissing as exc:
        pytest.skip(f"mnist-5k not installed: {exc}")


def network(topology, rule, quant=None, **learning):
    cfg = Config.from_dict({"n_neurons": 24, "topology": {"name": topology},
                            "learning": {"name": rule, **learning}, "train": {"time_steps": 60}})
    if quant:
        cfg.quant = QuantSettings("itq", explore.make_groups(
            ["weights", "potential", "theta", "traces", "inhibition", "decay"], 8, quant,
            {"inhibition": 17.5}, None))
    return flow.build_network(cfg)


def record_both(net, images, *, learn, record_kw):
    out = []
    for backend in (NumpyBackend(), NumbaBackend()):
        copy_, ops = copy.deepcopy(net), OpCounts()
        record = Record(**record_kw)
        counts = backend.run(copy_, images, np.arange(len(images)) + 40, learn=learn, seed=9,
                             ops=ops, record=record)
        out.append((copy_, counts, ops,
                    record.recording(n_neurons=net.n_neurons, time_steps=60)))
    return out


CASES = [(topology, rule, quant, {}, learn)
         for topology, rule, quant in (("tinysnn", "tinysnn-stdp", None),
                                       ("diehl-cook", "postpre", None),
                                       ("tinysnn", "weight-dependent", "nearest"))
         for learn in (True, False)]
CASES.append(("tinysnn", "tinysnn-stdp", None, {"mu": 0.5}, True))    # the NumPy-power path


@pytest.mark.parametrize("topology,rule,quant,learning,learn", CASES)
def test_numba_records_what_numpy_records(images, topology, rule, quant, learning, learn):
    net = network(topology, rule, quant, **learning)
    kw = {"samples": [41, 43, 46], "neurons": [0, 5, 11, 23], "variables": ALL}
    (na, ca, oa, ra), (nb, cb, ob, rb) = record_both(net, images, learn=learn, record_kw=kw)
    np.testing.assert_array_equal(ca, cb)
    assert na.w.tobytes() == nb.w.tobytes() and na.theta.tobytes() == nb.theta.tobytes()
    assert oa.as_dict() == ob.as_dict()
    assert ra.spike_pres.size > 0, "the test network should spike"
    for name, arr in ra.arrays().items():
        got = rb.arrays()[name]
        assert got.shape == arr.shape and got.tobytes() == arr.tobytes(), name
    # and recording changed nothing of what the fast path gives
    fast = copy.deepcopy(net)
    ops = OpCounts()
    counts = NumbaBackend().run(fast, images, np.arange(len(images)) + 40, learn=learn, seed=9,
                                ops=ops)
    np.testing.assert_array_equal(counts, cb)
    assert fast.w.tobytes() == nb.w.tobytes() and ops.as_dict() == ob.as_dict()


def test_numba_refuses_what_it_cannot_record(images):
    lif = Network.build(Config.from_dict({"n_neurons": 8, "exc_neuron": {"name": "lif"},
                                          "train": {"time_steps": 20}}))
    with pytest.raises(InputError, match="no adaptive threshold"):
        NumbaBackend().run(lif, images[:1], [0], learn=False, seed=0, ops=OpCounts(),
                           record=Record(variables=("theta",)))


@pytest.mark.parametrize("precision", ["float32", "float32-currents"])
@pytest.mark.parametrize("topology,rule", [("tinysnn", "tinysnn-stdp"), ("diehl-cook", "postpre")])
@pytest.mark.parametrize("learn", [True, False])
def test_recording_in_a_float32_precision_changes_nothing(images, precision, topology, rule,
                                                          learn):
    """The recording path sums in the precision the fast path sums in: with a monitor on, the
    same counts, weights and counters as without, in both float32 precisions."""
    net = network(topology, rule)
    out = []
    for record in (None, Record(samples=[41, 44], neurons=[0, 7], variables=ALL)):
        copy_, ops = copy.deepcopy(net), OpCounts()
        counts = NumbaBackend(precision=precision).run(
            copy_, images, np.arange(len(images)) + 40, learn=learn, seed=9, ops=ops,
            record=record)
        out.append((counts, copy_.w.tobytes(), ops.as_dict()))
    assert out[0][0].sum() > 0
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert out[0][1:] == out[1][1:]


def test_recording_sums_the_currents_in_the_precision_asked(images):
    """float32-currents' recorded potentials are not float32's (the currents were summed in
    float32), while its spikes are the same on these digits."""
    net = network("diehl-cook", "postpre")
    got = {}
    for precision in ("float32", "float32-currents"):
        record = Record(samples=[41], neurons=list(range(24)), variables=("spikes", "v"))
        NumbaBackend(precision=precision).run(copy.deepcopy(net), images, np.arange(7) + 40,
                                              learn=False, seed=9, ops=OpCounts(), record=record)
        got[precision] = record.recording(n_neurons=24, time_steps=60).arrays()
    a, b = got["float32"], got["float32-currents"]
    assert a["spike_neuron"].size > 0
    for name in a:
        if name.startswith("spike"):
            assert a[name].tobytes() == b[name].tobytes(), name
    v = [name for name in a if "v" in name.split("_")]
    assert v and any(a[n].tobytes() != b[n].tobytes() for n in v)
