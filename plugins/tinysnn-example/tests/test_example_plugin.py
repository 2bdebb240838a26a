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


def test_weight_traffic_counts_the_rows_of_the_input_spikes_and_the_thresholds():
    from tinysnn_core import intsim
    from tinysnn_core.testing import neuron_network
    from tinysnn_example.plugin import WeightTraffic

    m = intsim.from_network(neuron_network("nonleaky-if", n_neurons=12, weight_bits=4,
                                           potential_bits=16))
    ops = {"input_spikes": np.array([10, 0, 3]), "steps": np.array([60, 60, 20])}
    cost = WeightTraffic().integer_inference_cost(m, ops)
    # 12 neurons x 4 bits = 6 bytes a row; 12 thresholds of 2 bytes a step
    assert cost["weight_row_bytes"] == 6
    assert cost["bytes_median"] == 60 * 24 and cost["bytes_mean"] == (1500 + 1440 + 498) / 3


def test_the_third_party_neuron_and_cost_model_through_explore_select_report(tmp_path, capsys):
    """A model of the example's neuron explored in integer mode with the example's cost model;
    select chooses by its figure and report shows it."""
    import json

    from tinysnn_core.cli import main

    model = tmp_path / "nlif.tsnn"
    assert main(["run", "-q", "-n", "20", "--n-train", "80", "--n-test", "40", "--time-steps",
                 "60", "--topology", "tinysnn", "--set", 'exc_neuron.name="nonleaky-if"',
                 "--out", str(model)]) == 0
    results = tmp_path / "explore.jsonl"
    assert main(["explore", str(model), "--results", str(results), "--schemes", "ptq",
                 "--bits", "8,2", "--roundings", "nearest", "--group-sets", "mixed",
                 "--no-sensitivity", "--cost-models", "weight-traffic", "-q"]) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    grid = [r for r in rows if r["kind"] == "grid"]
    assert len(grid) == 2 and all("accuracy_integer" in r for r in grid)
    assert all(r["costs"]["weight-traffic"]["bytes_median"] > 0 for r in grid)
    # 2-bit rows are a quarter of the 8-bit ones' bytes per input spike
    w = {r["bits"]: r["costs"]["weight-traffic"]["weight_row_bytes"] for r in grid}
    assert w == {8: 20, 2: 5}
    capsys.readouterr()
    assert main(["select", str(results), "--within", "100", "--cost-model", "weight-traffic",
                 "--out", str(tmp_path / "sel.tsnn"), "-q"]) == 0
    out = capsys.readouterr().out
    chosen = min(grid, key=lambda r: r["costs"]["weight-traffic"]["bytes_median"])
    assert "Cost model weight-traffic" in out and chosen["label"] in out
    assert f"bytes_median = {chosen['costs']['weight-traffic']['bytes_median']:.6g}" in out
    assert main(["report", str(results), "--within", "100", "--cost-model", "weight-traffic",
                 "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "### weight-traffic" in md and f"| {chosen['label']} **chosen** |" in md
