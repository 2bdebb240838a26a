"""Grouped inference (``NumbaBackend.run_group`` / ``run_integer_group``): several networks on
the same samples and seed, the input spikes drawn once for all, give each network what a call
of its own gives it -- counts, predictions and operation counters, bit for bit -- whatever the
mix: float and simulated fixed point (stochastic rounding included), shared and distinct
weight matrices, both topologies, early exit, retries, and networks that cannot share draws
(another T), which run apart."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from tinysnn_core import explore, intsim  # noqa: E402
from tinysnn_core import train as flow  # noqa: E402
from tinysnn_core.builtin.backend_numpy import NumpyBackend  # noqa: E402
from tinysnn_core.config import Config, QuantSettings  # noqa: E402
from tinysnn_core.errors import DatasetMissing  # noqa: E402
from tinysnn_core.evaluate import assign_labels  # noqa: E402
from tinysnn_core.ops import OpCounts  # noqa: E402
from tinysnn_numba import NumbaBackend  # noqa: E402

TOPOLOGIES = ("diehl-cook", "tinysnn")
GROUPS = ("weights", "potential", "theta", "inhibition", "decay")
#: the quantizations a group mixes: (group set, weight bits, neuron bits, rounding); None: float
VARIANTS = (None, (("weights",), 4, None, "nearest"), (GROUPS, 6, 12, "nearest"),
            (GROUPS, 6, 12, "stochastic"), (GROUPS, 4, 8, "truncation"),
            (GROUPS, 4, 16, "stochastic"))


@pytest.fixture(scope="module")
def data():
    from tinysnn_core.builtin.datasets import load_mnist_5k

    try:
        return load_mnist_5k(0)
    except DatasetMissing as exc:
        pytest.skip(f"mnist-5k not installed: {exc}")


@pytest.fixture(scope="module")
def nets(data):
    """(topology, variant index) -> a trained network (30 neurons) quantized post-training,
    labels assigned."""
    out = {}
    be = NumpyBackend()     # the reference trains them: the tests below are about inference
    for topology in TOPOLOGIES:
        cfg = Config.from_dict({"n_neurons": 30, "topology": {"name": topology},
                                "train": {"time_steps": 60}})
        net = flow.build_network(cfg)
        be.run(net, data.train_images[:40], np.arange(40), learn=True, seed=0, ops=OpCounts())
        counts = be.run(net, data.train_images[:40], np.arange(40), learn=False, seed=1,
                        ops=OpCounts())
        net.assignments, net.proportions, _ = assign_labels(counts, data.train_labels[:40])
        for v, spec in enumerate(VARIANTS):
            q = copy.deepcopy(net)
            if spec is not None:
                names, wbits, nbits, rounding = spec
                q.config.quant = QuantSettings("ptq", explore.make_groups(
                    names, wbits, rounding, {"inhibition": 17.5}, nbits))
                quantizer, plan = flow.quantizer_for(q.config)
                quantizer.prepare(q, plan)
            out[topology, v] = q
    return out


def _with(net, **over):
    net = copy.deepcopy(net)
    net.config = net.config.with_overrides([f"{k}={v}" for k, v in over.items()])
    return net


@st.composite
def _group(draw):
    return dict(
        members=draw(st.lists(st.tuples(st.sampled_from(TOPOLOGIES),
                                        st.integers(0, len(VARIANTS) - 1),
                                        st.booleans()),   # True: the group's second T
                              min_size=1, max_size=5)),
        T=draw(st.sampled_from([1, 7, 40, 70])), T2=draw(st.sampled_from([13, 64, 130])),
        rate=draw(st.sampled_from([10.0, 63.75])), min_spikes=draw(st.integers(0, 8)),
        margin=draw(st.sampled_from([0, 1, 3])), seed=draw(st.integers(0, 2**32 - 1)),
        start=draw(st.integers(0, 990)))


_SETTINGS = settings(max_examples=12, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow,
                                            HealthCheck.function_scoped_fixture])


def _members(nets, g):
    """The group's networks with its encoder settings; several may be the same network."""
    out = []
    for topology, v, second in g["members"]:
        out.append(_with(nets[topology, v], **{
            "train.time_steps": g["T2"] if second else g["T"],
            "encoder.max_rate_hz": g["rate"], "encoder.retry_min_spikes": g["min_spikes"]}))
    return out


@_SETTINGS
@given(g=_group())
def test_grouped_float_inference_is_each_networks_own(data, nets, g):
    members = _members(nets, g)
    images = data.test_images[g["start"]:g["start"] + 5]
    ids = np.arange(g["start"], g["start"] + 5) * 7
    be = NumbaBackend()
    own_ops = [OpCounts() for _ in members]
    own = [be.run(n, images, ids, learn=False, seed=g["seed"], ops=o)
           for n, o in zip(members, own_ops)]
    ops = [OpCounts() for _ in members]
    got = be.run_group(members, images, ids, seed=g["seed"], ops_list=ops)
    for a, b in zip(own, got):
        np.testing.assert_array_equal(a, b)
    assert ops == own_ops


@_SETTINGS
@given(g=_group())
def test_grouped_integer_inference_is_each_models_own(data, nets, g):
    models = []
    for net in _members(nets, g):
        if net.quant is None or not all(net.quant.has(x) for x in GROUPS):
            continue
        m = intsim.from_network(net)
        models.append(dataclasses.replace(m, exit_margin=g["margin"] * (len(models) % 2)))
    if not models:
        return
    images = data.test_images[g["start"]:g["start"] + 5]
    ids = np.arange(g["start"], g["start"] + 5) * 3
    be = NumbaBackend()
    own = [be.run_integer(m, images, g["seed"], ids, with_ops=True) for m in models]
    got = be.run_integer_group(models, images, g["seed"], ids, with_ops=True)
    for (p, c, o), (p2, c2, o2) in zip(own, got):
        np.testing.assert_array_equal(p, p2)
        np.testing.assert_array_equal(c, c2)
        assert o.keys() == o2.keys()
        for k in o:
            np.testing.assert_array_equal(o[k], o2[k])
    # and the reference simulator agrees with the group (the backends are bit-exact)
    p, c = intsim.infer(models[0], images, g["seed"], ids)
    np.testing.assert_array_equal(c, got[0][1])


def test_grouped_inference_shares_the_weight_rows_of_equal_matrices(nets):
    """Networks of one weight format share one matrix in the kernel call."""
    from tinysnn_numba.backend import _distinct

    ws = [np.ascontiguousarray(nets["tinysnn", v].w) for v in (2, 3, 2, 0)]
    wu, wmap = _distinct(ws)
    assert wmap.tolist() == [0, 1, 0, 2] and wu.shape[0] == 3
    for w, u in zip(ws, wmap):
        assert np.array_equal(wu[u], w)
