"""The training callback contract: ``train(net, data, callbacks=[cb])`` calls ``cb(step)`` after
every batch with the samples done, the total, the live network, that batch's spike counts and
its labels."""

import numpy as np
import pytest

from tinysnn_core import train as flow
from tinysnn_core.config import Config


class Recording:
    """The real backend, keeping what each ``run`` returned."""

    def __init__(self, inner):
        self.inner, self.returned = inner, []

    def run(self, *args, **kwargs):
        out = self.inner.run(*args, **kwargs)
        self.returned.append(out.copy())
        return out


def _setup(n_train=40, epochs=2):
    cfg = Config.from_dict({"n_neurons": 12, "seed": 3, "train": {
        "n_train": n_train, "n_test": 10, "epochs": epochs, "time_steps": 30}})
    return cfg, flow.load_dataset(cfg)


def test_every_batch_reports_its_counts_and_labels():
    cfg, data = _setup()
    net = flow.build_network(cfg)
    steps = []

    def record(step):
        assert step.net is net                     # the live network, not a copy
        steps.append((step.done, step.total, step.counts.copy(), step.labels.copy(),
                      step.net.w.copy()))

    backend = Recording(flow.get_backend(cfg))
    flow.train(net, data, backend=backend, progress=False, callbacks=[record])
    n = len(data.train_labels)
    assert [s[1] for s in steps] == [2 * n] * len(steps)
    done = [s[0] for s in steps]
    assert done == sorted(done) and done[-1] == 2 * n and len(set(done)) == len(done)
    sizes = np.diff([0] + done)
    labels = np.concatenate([s[3] for s in steps])
    assert np.array_equal(labels, np.concatenate([data.train_labels] * 2))
    for (_, _, counts, batch_labels, _), size in zip(steps, sizes):
        assert counts.shape == (size, 12) and counts.dtype.kind == "i"
        assert batch_labels.shape == (size,)
    # the counts are what the backend's run returned for that batch, and the network fired
    assert len(backend.returned) == len(steps)
    for (_, _, counts, _, _), returned in zip(steps, backend.returned):
        assert np.array_equal(counts, returned)
    total = sum(int(s[2].sum()) for s in steps)
    assert 0 < total <= net.ops["train"].exc_spikes      # the last presentation of each sample
    # the weights the callback saw changed from batch to batch (learning, seen live)
    assert not np.array_equal(steps[0][4], steps[-1][4])
    assert np.array_equal(steps[-1][4], net.w)


def test_callbacks_change_nothing_and_run_in_order():
    cfg, data = _setup(n_train=20, epochs=1)
    plain = flow.train(flow.build_network(cfg), data, progress=False)
    order = []
    watched = flow.train(flow.build_network(cfg), data, progress=False,
                         callbacks=[lambda s: order.append(("a", s.done)),
                                    lambda s: order.append(("b", s.done))])
    assert np.array_equal(plain.w, watched.w) and np.array_equal(plain.theta, watched.theta)
    assert order[:2] == [("a", order[0][1]), ("b", order[0][1])]
    assert len(order) == 2 * len({d for _, d in order})


def test_no_callbacks_builds_no_step(monkeypatch):
    cfg, data = _setup(n_train=10, epochs=1)

    def refuse(*args, **kwargs):
        raise AssertionError("a TrainStep was made without callbacks")

    monkeypatch.setattr(flow, "TrainStep", refuse)
    flow.train(flow.build_network(cfg), data, progress=False)
    with pytest.raises(AssertionError, match="without callbacks"):
        flow.train(flow.build_network(cfg), data, progress=False, callbacks=[print])
