import copy
import pickle

import numpy as np
import pytest

from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.evaluate import assign_labels, predict_all_activity, predict_proportion_weighting
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts


def train_some(cfg, images, start=0):
    net = Network.build(cfg)
    ops = OpCounts()
    NumpyBackend().run(net, images, np.arange(start, start + len(images)), learn=True, seed=0, ops=ops)
    return net, ops


@pytest.mark.parametrize("topology", ["diehl-cook", "tinysnn"])
@pytest.mark.parametrize("rule", ["postpre", "weight-dependent", "tinysnn-stdp"])
def test_learning_keeps_invariants(small_config, tiny_images, topology, rule):
    cfg = small_config(topology={"name": topology}, learning={"name": rule})
    net, ops = train_some(cfg, tiny_images[0])
    w = net.w
    assert np.isfinite(w).all() and w.min() >= 0
    assert np.allclose(w.sum(axis=0), 78.4), "columns normalised to 78.4"
    assert (net.theta >= 0).all() and net.theta.max() > 0, "theta grows with spikes"
    assert ops.samples == len(tiny_images[0]) and ops.exc_spikes > 0
    assert ops.stdp_updates > 0


def test_same_seed_same_weights_bit_for_bit(small_config, tiny_images):
    cfg = small_config()
    a, _ = train_some(cfg, tiny_images[0])
    b, _ = train_some(cfg, tiny_images[0])
    assert np.array_equal(a.w, b.w) and np.array_equal(a.theta, b.theta)
    c, _ = train_some(small_config(seed=1), tiny_images[0])
    assert not np.array_equal(a.w, c.w)


def test_resuming_midway_is_bit_identical(small_config, tiny_images):
    cfg = small_config()
    whole, _ = train_some(cfg, tiny_images[0])
    net = Network.build(cfg)
    be = NumpyBackend()
    be.run(net, tiny_images[0][:5], np.arange(5), learn=True, seed=0, ops=OpCounts())
    resumed = copy.deepcopy(net)
    be.run(resumed, tiny_images[0][5:], np.arange(5, 12), learn=True, seed=0, ops=OpCounts())
    assert np.array_equal(whole.w, resumed.w) and np.array_equal(whole.theta, resumed.theta)


def test_op_counts_of_the_reduction(small_config, tiny_images):
    """The reduced network has no inhibitory-neuron updates and far fewer STDP updates."""
    dc, dc_ops = train_some(small_config(topology={"name": "diehl-cook"},
                                         learning={"name": "postpre"}), tiny_images[0])
    ts, ts_ops = train_some(small_config(), tiny_images[0])
    assert dc_ops.neuron_updates_inh == dc_ops.neuron_updates_exc > 0
    assert ts_ops.neuron_updates_inh == 0
    assert ts_ops.stdp_updates * 10 <= dc_ops.stdp_updates
    # pair rule: every input spike writes N weights, every output spike 784
    n = dc.n_neurons
    assert dc_ops.stdp_updates == dc_ops.input_spikes * n + dc_ops.exc_spikes * 784


def test_inference_does_not_change_the_network(small_config, tiny_images):
    net, _ = train_some(small_config(), tiny_images[0])
    w, theta = net.w.copy(), net.theta.copy()
    ops = OpCounts()
    NumpyBackend().run(net, tiny_images[0], np.arange(12), learn=False, seed=3, ops=ops)
    assert np.array_equal(w, net.w) and np.array_equal(theta, net.theta)
    assert ops.stdp_updates == 0 and ops.trace_updates == 0


def test_one_spike_layer_never_fires_two_at_once(small_config, tiny_images):
    cfg = small_config(n_neurons=30)
    net = Network.build(cfg)
    net.theta[:] = -20.0  # make many neurons cross together
    from tinysnn_core.builtin.backend_numpy import present
    counts = present(net, tiny_images[0][0], 0, 0, learn=False, seed=0, ops=OpCounts())
    assert counts.sum() <= cfg.train.time_steps


def test_label_assignment_and_classifiers():
    counts = np.array([[5, 0, 0], [0, 4, 0], [4, 1, 0], [0, 0, 0]])
    labels = np.array([0, 1, 0, 2])
    assignments, proportions, rates = assign_labels(counts, labels, 3)
    assert list(assignments) == [0, 1, -1]
    assert np.allclose(proportions.sum(axis=1)[:2], 1)
    test = np.array([[3, 0, 0], [0, 2, 0]])
    assert list(predict_all_activity(test, assignments, 3)) == [0, 1]
    assert list(predict_proportion_weighting(test, assignments, proportions, 3)) == [0, 1]


def test_a_backend_can_refuse_before_any_work(small_config, tiny_images):
    from tinysnn_core import train as flow
    from tinysnn_core.data import Dataset
    from tinysnn_core.errors import TinySNNError

    class Refusing(NumpyBackend):
        def check(self, net, learn=True):
            raise TinySNNError("cannot simulate this network")

    net = Network.build(small_config())
    before = net.w.copy()
    images, labels = tiny_images
    data = Dataset("t", images, labels, images[:2], labels[:2])
    with pytest.raises(TinySNNError, match="cannot simulate"):
        flow.train(net, data, backend=Refusing(), progress=False)
    assert np.array_equal(before, net.w) and not net.progress.get("samples_done")


def _misaligned(a: np.ndarray, offset: int) -> np.ndarray:
    """An equal C-contiguous copy of ``a`` starting ``offset`` bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = -buf.ctypes.data % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("offset", [0, 8, 16, 32, 48])
def test_network_parameters_stay_aligned(small_config, offset):
    from tinysnn_core.network import ALIGN, aligned

    net = Network.build(small_config())
    w = _misaligned(net.w, offset)
    assert (w.ctypes.data % ALIGN == 0) == (offset == 0)
    a = aligned(w)
    assert a.ctypes.data % ALIGN == 0 and a.flags.c_contiguous and a.flags.writeable
    assert a.dtype == w.dtype and np.array_equal(a, w)
    assert (a is w) == (offset == 0)        # an aligned array is kept, not copied
    assert aligned(a) is a
    # the network re-homes misaligned parameters when built, copied or unpickled
    net2 = Network(net.config, w, _misaligned(net.theta, offset), net.topology)
    for n in (net2, copy.deepcopy(net2), pickle.loads(pickle.dumps(net2))):
        assert n.w.ctypes.data % ALIGN == 0 and n.theta.ctypes.data % ALIGN == 0
        assert np.array_equal(n.w, net.w) and np.array_equal(n.theta, net.theta)
