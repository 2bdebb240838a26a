"""The Python API (docs/api.md): one import, the commands' own code paths."""

import inspect
import warnings

import numpy as np
import pytest

import tinysnn as tsnn
from tinysnn_core import train as flow
from tinysnn_core.explore import build_grid
from tinysnn_core.quant import model_ranges


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = tsnn.Config().replace(n_neurons=12, seed=2,
                                train={"n_train": 40, "n_test": 30, "time_steps": 40})
    path = tmp_path_factory.mktemp("api") / "float.tsnn"
    net, metrics = tsnn.run(cfg, path, progress=False)
    return cfg, net, path


def test_every_public_name_is_there_and_annotated():
    for name in tsnn.__all__:
        obj = getattr(tsnn, name)
        if inspect.isfunction(obj) and obj.__module__.startswith("tinysnn_core"):
            sig = inspect.signature(obj)
            # the fixed-point helpers take any array-like; report.py's rewrite brings its own
            if name in ("quantize", "to_codes", "from_codes", "hookimpl", "write_report"):
                continue
            assert sig.return_annotation is not inspect.Signature.empty, name
    # the facade's functions are the core's, not copies
    assert tsnn.train is flow.train and tsnn.evaluate is flow.evaluate


def test_replace_sets_by_keyword_and_checks_like_a_file():
    cfg = tsnn.Config().replace(n_neurons=30, train={"n_train": 500}, topology={"w_inh": -20.0})
    assert cfg.n_neurons == 30 and cfg.train.n_train == 500 and cfg.train.epochs == 1
    assert cfg.plugin_params("topology").w_inh == -20.0
    # merged key by key, and the same as the command line's overrides
    same = tsnn.Config().with_overrides(["n_neurons=30", "train.n_train=500",
                                         "topology.w_inh=-20.0"])
    assert cfg.resolved().to_dict() == same.resolved().to_dict()
    switched = cfg.replace(topology="diehl-cook")    # another plugin: the old params dropped
    assert switched.topology == {"name": "diehl-cook"}
    assert cfg.replace(topology={"name": "diehl-cook", "inh": 30.0}).topology == {
        "name": "diehl-cook", "inh": 30.0}
    for bad, match in (({"n_neuron": 3}, "unknown configuration key 'n_neuron'"),
                       ({"train": {"epochs": 0}}, "train.epochs must be in 1..10000"),
                       ({"n_neurons": True}, "n_neurons must be in"),
                       ({"topology": 3}, "must be a plugin name or a table")):
        with pytest.raises(tsnn.ConfigError, match=match):
            cfg.replace(**bad)
    assert cfg.n_neurons == 30          # the original is unchanged


def test_quantize_network_is_the_exploration_point(trained, tmp_path):
    cfg, net, path = trained
    before = net.w.copy()
    q = tsnn.quantize_network(net, bits=6, rounding="nearest", group_set="all")
    assert np.array_equal(net.w, before) and net.quant is None     # the float one untouched
    point = build_grid(schemes=["ptq"], bits=[6], roundings=["nearest"], group_sets=["all"],
                       sensitivity=False, ranges=model_ranges(net))[0]
    assert {g: s.to_dict() for g, s in q.quant.plan.groups.items()} == point.groups
    data = tsnn.load_dataset(cfg)
    accuracy = tsnn.evaluate(q, data, progress=False)["accuracy"]
    rows = tsnn.explore(path, tmp_path / "e.jsonl", schemes=["ptq"], bits=[6],
                        roundings=["nearest"], group_sets=["all"], sensitivity=False,
                        progress=False)
    (row,) = [r for r in rows if r["kind"] == "grid"]
    assert row["accuracy_float_sim"] == accuracy     # the same code path, the same number
    m = tsnn.integer_model(q)
    preds, _ = tsnn.run_integer(m, data.test_images, tsnn.stream_seed(cfg.seed, "test"))
    assert row["accuracy_integer"] == float((preds == data.test_labels).mean())


def test_quantize_network_takes_a_plan_and_warns_of_lost_decays(trained):
    _, net, _ = trained
    plan = {"weights": {"format": "uQ0.4", "rounding": "truncation"},
            "decay": {"format": "uQ1.2", "rounding": "nearest"}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = tsnn.quantize_network(net, plan, assign=False)
    lost = [str(w.message) for w in caught if issubclass(w.category, tsnn.TinySNNWarning)]
    assert lost == q.quant.lost_decays and lost and lost[0].startswith("decay factor exc.decay")
    assert np.all(np.isin(q.w, np.arange(16) / 16))     # on the 4-bit grid, truncated
    assert np.array_equal(q.assignments, net.assignments)   # assign=False keeps the labels
    again = tsnn.quantize_network(net, q.quant.plan, assign=False)     # a QuantPlan too
    assert np.array_equal(again.w, q.w)


def test_explore_refuses_an_unknown_option(trained, tmp_path):
    _, _, path = trained
    with pytest.raises(tsnn.ConfigError, match="explore: unknown option 'bit'; accepted: .*bits"):
        tsnn.explore(path, tmp_path / "e.jsonl", bit=[8])
    assert not (tmp_path / "e.jsonl").exists()
