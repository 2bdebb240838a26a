"""The example plugin checks itself with tinySNN's conformance kit, and trains a network."""

import numpy as np

from tinysnn_core.config import Config
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts
from tinysnn_core.registry import Registry
from tinysnn_core.testing import neuron_conformance, rounding_conformance

TestHalfEven = rounding_conformance("half-even", max_error_steps=0.5)


def test_registered_through_the_entry_point():
    reg = Registry()
    assert reg.get_entry("rounding", "rne").distribution == "tinysnn-example"
    assert reg.get_entry("neuron_model", "nonleaky-if").distribution == "tinysnn-example"


def test_ties_go_to_even():
    from tinysnn_example.plugin import half_even

    assert list(half_even(np.array([0.5, 1.5, 2.5, -0.5]))) == [0.0, 2.0, 2.0, -0.0]


def test_a_network_learns_with_the_example_neuron():
    from tinysnn_core.builtin.backend_numpy import NumpyBackend

    cfg = Config.from_dict({"n_neurons": 10, "exc_neuron": {"name": "nonleaky-if"},
                            "train": {"time_steps": 60}})
    net = Network.build(cfg)
    images = np.zeros((3, 784), np.uint8)
    images[:, 300:400] = 200
    before = net.w.copy()
    ops = OpCounts()
    NumpyBackend().run(net, images, np.arange(3), learn=True, seed=0, ops=ops)
    assert ops.exc_spikes > 0 and not np.array_equal(before, net.w)


# -- the neuron model in integer mode and on the (host) board: the kit ------------------------
TestNonLeakyIF = neuron_conformance("nonleaky-if", max_error_steps=0, agreement=1.0)
