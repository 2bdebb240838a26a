"""The numba backend as a plugin: registration, availability, unsupported networks."""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import tinysnn_core
from tinysnn_core import registry as registry_mod
from tinysnn_core.builtin.neurons import LIF
from tinysnn_core.config import Config
from tinysnn_core.errors import TinySNNError
from tinysnn_core.log import TinySNNNote
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts
from tinysnn_numba import NumbaBackend, UnsupportedNetwork
from tinysnn_numba.backend import unsupported_reasons


def test_registered_through_the_entry_point():
    from importlib import metadata

    try:
        metadata.distribution("tinysnn-numba")
    except metadata.PackageNotFoundError:
        pytest.skip("tinysnn-numba is not installed (pip install -e plugins/tinysnn-numba)")
    entry = registry_mod.Registry().get_entry("backend", "numba")
    assert entry.obj is NumbaBackend
    assert entry.distribution == "tinysnn-numba"
    assert "numba" in entry.summary


def test_available_says_when_numba_is_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba" else real(name, *a))
    ok, why = NumbaBackend().available()
    assert not ok
    assert "numba is not installed" in why and "pip install" in why and "numpy" in why
    net = Network.build(Config.from_dict({"n_neurons": 5, "train": {"time_steps": 5}}))
    with pytest.raises(TinySNNError, match="numba is not installed"):
        NumbaBackend().run(net, np.zeros((1, 784), np.uint8), [0], learn=False, seed=0,
                           ops=OpCounts())


def test_available_with_numba():
    pytest.importorskip("numba")
    assert NumbaBackend().available() == (True, "")


# -- a third-party neuron model the compiled kernels do not know --------------------------------
@dataclass
class BurstParams:
    rest: float = -65.0
    reset: float = -65.0
    thresh: float = -52.0
    tc_decay: float = 100.0
    refrac: int = 5
    burst: int = 2


class BurstingLIF(LIF):
    """A LIF subclass with a different step: not something the kernels can assume."""

    Params = BurstParams


class FancyNeurons:
    @staticmethod
    @tinysnn_core.hookimpl
    def register_neuron_models(register):
        register("test-bursting-lif", BurstingLIF, summary="test plugin")


@pytest.fixture
def private_registry(monkeypatch):
    reg = registry_mod.Registry(load_entry_points=False)
    reg.add_plugin(FancyNeurons())
    monkeypatch.setattr(registry_mod, "_REGISTRY", reg)
    return reg


def test_third_party_neuron_model_is_refused_clearly(private_registry):
    cfg = Config.from_dict({"n_neurons": 8, "topology": {"name": "tinysnn"},
                            "exc_neuron": {"name": "test-bursting-lif"},
                            "train": {"time_steps": 5}})
    net = Network.build(cfg)
    reasons = unsupported_reasons(net)
    assert len(reasons) == 1 and "test-bursting-lif" in reasons[0]
    with pytest.raises(UnsupportedNetwork) as info:
        NumbaBackend().run(net, np.zeros((1, 784), np.uint8), [0], learn=True, seed=0,
                           ops=OpCounts())
    msg = str(info.value)
    assert "test-bursting-lif" in msg and "BurstingLIF" in msg
    assert 'backend = "numpy"' in msg
    assert isinstance(info.value, TinySNNError)  # the CLI prints it as one line


def test_supported_default_networks_have_no_reasons():
    for topology in ("diehl-cook", "tinysnn"):
        for rule in ("postpre", "weight-dependent", "tinysnn-stdp"):
            net = Network.build(Config.from_dict({
                "n_neurons": 4, "topology": {"name": topology}, "learning": {"name": rule},
                "train": {"time_steps": 5}}))
            assert unsupported_reasons(net) == []


def test_unknown_rule_and_encoder_objects_are_refused():
    net = Network.build(Config.from_dict({"n_neurons": 4, "train": {"time_steps": 5}}))
    net.rule = object()
    net.encoder = object()
    reasons = " ".join(unsupported_reasons(net))
    assert "learning rule" in reasons and "encoder" in reasons


def test_a_plugin_neuron_in_integer_mode_falls_back_to_intsim_and_says_so():
    """numba has no integer step for a plugin's neuron model: intsim.run_integer runs the model
    on the reference simulator, with the same results, and says so once (a TinySNNNote warning)."""
    pytest.importorskip("numba")
    pytest.importorskip("tinysnn_example")
    from tinysnn_core import intsim
    from tinysnn_core.testing import synthetic_images, neuron_network
    from tinysnn_numba.backend import pack_integer_model

    m = intsim.from_network(neuron_network("nonleaky-if", n_neurons=10, time_steps=30))
    assert "neuron:nonleaky-if" in m.features
    with pytest.raises(UnsupportedNetwork, match="'nonleaky-if' is a plugin's"):
        pack_integer_model(m)
    images = synthetic_images(3, seed=0)
    intsim._REPORTED.clear()
    with pytest.warns(TinySNNNote, match="backend 'numba' has no integer step for neuron "
                                         "model 'nonleaky-if'"):
        preds, counts = intsim.run_integer(m, images, 1, [0, 1, 2], NumbaBackend())
    ref_preds, ref_counts = intsim.infer(m, images, 1, [0, 1, 2])
    assert np.array_equal(counts, ref_counts) and np.array_equal(preds, ref_preds)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        intsim.run_integer(m, images, 1, [0, 1, 2], NumbaBackend())
    assert not again                              # once per process
