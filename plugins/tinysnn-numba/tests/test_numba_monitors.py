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
