import copy
import json

import numpy as np
import pytest

from tinysnn_core import intsim
from tinysnn_core import train as flow
from tinysnn_core.builtin.backend_numpy import NumpyBackend
from tinysnn_core.builtin.costs import EnergyModel, MemoryModel
from tinysnn_core.config import Config, QuantSettings
from tinysnn_core.errors import ConfigError
from tinysnn_core.evaluate import assign_labels
from tinysnn_core.explore import make_groups
from tinysnn_core.ops import OpCounts
from tinysnn_core.quant import QuantPlan, default_format


@pytest.fixture(scope="module")
def trained(mnist5k):
    cfg = Config.from_dict({"n_neurons": 30, "topology": {"name": "tinysnn", "w_inh": -60.0},
                            "train": {"time_steps": 100}})
    net = flow.build_network(cfg)
    be = NumpyBackend()
    be.run(net, mnist5k.train_images[:60], np.arange(60), learn=True, seed=0, ops=net.phase_ops("train"))
    counts = be.run(net, mnist5k.train_images[:60], np.arange(60), learn=False, seed=1, ops=OpCounts())
    net.assignments, net.proportions, _ = assign_labels(counts, mnist5k.train_labels[:60])
    return net


def quantized(net, wbits, pbits, rounding="nearest", scheme="ptq"):
    net = copy.deepcopy(net)
    groups = make_groups(["weights", "potential", "theta", "inhibition", "decay"], wbits, rounding,
                         {"inhibition": 60.0}, neuron_bits=pbits)
    net.config.quant = QuantSettings(scheme, groups)
    quantizer, plan = flow.quantizer_for(net.config)
    quantizer.prepare(net, plan)
    return net


def test_default_formats():
    assert str(default_format("weights", 4)) == "uQ0.4"
    assert str(default_format("potential", 16)) == "sQ7.8"
    assert str(default_format("theta", 12)) == "uQ7.5"
    assert str(default_format("decay", 8)) == "uQ1.7"
    assert str(default_format("inhibition", 8, 60.0)) == "sQ6.1"
    assert str(default_format("potential", 4)) == "sQ3.0"  # too few bits: saturates early


def test_bad_quant_groups_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown group"):
        QuantPlan.from_settings(QuantSettings("ptq", {"wieghts": {"format": "uQ0.4"}}))
    with pytest.raises(ConfigError, match="cannot parse"):
        QuantPlan.from_settings(QuantSettings("ptq", {"weights": {"format": "Q4"}}))
    with pytest.raises(ConfigError, match="known: .*nearest"):
        QuantPlan.from_settings(QuantSettings("ptq", {"weights": {"format": "uQ0.4",
                                                                  "rounding": "up"}}))


def test_integer_mode_equals_float_simulation_when_the_grids_agree(trained, mnist5k):
    """16-bit potential with 8 fraction bits >= the weights' 4: both round at the same place."""
    net = quantized(trained, 4, 16)
    images = mnist5k.test_images[:15]
    seed = flow.stream_seed(net.config.seed, "test")
    float_counts = NumpyBackend().run(net, images, np.arange(15), learn=False, seed=seed, ops=OpCounts())
    model = intsim.from_network(net)
    _, int_counts = intsim.infer(model, images, seed)
    assert np.array_equal(float_counts, int_counts)


def test_integer_codes_stay_in_their_formats(trained):
    model = intsim.from_network(quantized(trained, 3, 8, "truncation"))
    assert model.w_codes.min() >= 0 and model.w_codes.max() <= 7
    assert model.exc.u_min == -128 and model.exc.u_max == 127
    assert model.lateral < 0


def test_integer_classification_matches_float_all_activity():
    from tinysnn_core.evaluate import predict_all_activity

    rng = np.random.default_rng(0)
    model = intsim.IntegerModel.__new__(intsim.IntegerModel)
    model.assignments = rng.integers(-1, 10, 50)
    model.n_classes = 10
    for _ in range(200):
        counts = rng.integers(0, 4, 50)
        assert intsim.classify(model, counts) == predict_all_activity(counts[None], model.assignments)[0]


@pytest.mark.parametrize("rounding", ["truncation", "nearest", "stochastic"])
def test_itq_training_keeps_parameters_on_the_grid(mnist5k, rounding):
    groups = make_groups(["weights", "theta", "traces", "potential", "decay", "inhibition"], 12,
                         rounding, {"inhibition": 17.5})
    cfg = Config.from_dict({"n_neurons": 20, "train": {"time_steps": 60}})
    cfg.quant = QuantSettings("itq", groups)
    net = flow.build_network(cfg)
    NumpyBackend().run(net, mnist5k.train_images[:8], np.arange(8), learn=True, seed=0, ops=OpCounts())
    step_w = default_format("weights", 12).step
    assert np.all(net.w / step_w == np.round(net.w / step_w))
    step_t = default_format("theta", 12).step
    assert np.all(net.theta / step_t == np.round(net.theta / step_t))
    if rounding == "truncation":
        # theta *= exp(-1/1e7) each step, floored: one LSB lost per step wipes theta out
        assert net.theta.max() == 0
    else:
        assert net.theta.max() > 0


def test_truncation_loses_small_updates_and_stochastic_keeps_them(mnist5k):
    """The failure mode PAPER.md predicts: theta_plus = 0.05 rounds to 0 under truncation with
    4 fraction bits (uQ7.4 has a step of 0.0625), so theta never grows; SR keeps it in expectation."""
    results = {}
    for rounding in ("truncation", "stochastic"):
        cfg = Config.from_dict({"n_neurons": 20, "train": {"time_steps": 60}})
        cfg.quant = QuantSettings("itq", {"theta": {"format": "uQ7.4", "rounding": rounding}})
        net = flow.build_network(cfg)
        NumpyBackend().run(net, mnist5k.train_images[:10], np.arange(10), learn=True, seed=0,
                           ops=OpCounts())
        results[rounding] = net.theta.sum()
    assert results["truncation"] == 0
    assert results["stochastic"] > 0


def test_memory_model_counts_packed_bits(trained):
    fp = MemoryModel().estimate(trained)
    assert fp["parameters_bits"]["weights"] == 784 * 30 * 32
    assert fp["parameters_bits"]["inhibition"] == 32  # one shared strength
    q = MemoryModel().estimate(quantized(trained, 4, 8))
    assert q["parameters_bits"]["weights"] == 784 * 30 * 4
    assert q["parameters_bits"]["theta"] == 30 * 8
    assert fp["model_bits"] / q["model_bits"] > 7.5


def test_diehl_cook_stores_its_inhibitory_weights(small_config):
    from tinysnn_core.network import Network

    net = Network.build(small_config(topology={"name": "diehl-cook"}))
    mem = MemoryModel().estimate(net)
    assert mem["parameters_bits"]["inhibition"] == 32 * (40 + 40 * 39)


def test_energy_falls_with_precision(trained):
    fp = EnergyModel().estimate(trained)["phases"]["train"]["pj_per_sample"]
    q = EnergyModel().estimate(quantized(trained, 4, 8))["phases"]["train"]["pj_per_sample"]
    assert 0 < q < fp


def test_decay_factors_rounded_to_one_are_reported(capsys, tmp_path):
    # theta's decay exp(-1/1e7) is 1 at 16 bits (uQ1.15); the membrane's exp(-1/100) is not
    cfg = Config.from_dict({"n_neurons": 10, "topology": {"name": "tinysnn"},
                            "quant": {"scheme": "itq", "groups": {
                                "decay": {"format": "uQ1.15", "rounding": "nearest"}}}})
    net = flow.build_network(cfg)
    lost = net.quant.lost_decays
    assert len(lost) == 1 and lost[0].startswith("decay factor exc.theta_decay = 0.9999999")
    assert "becomes 1 in uQ1.15" in lost[0]
    assert net.exc.theta_decay == 1.0 and 0 < net.exc.decay < 1
    # with 31 fractional bits the factor survives; with one bit the membrane decay goes to 1 too
    wide = Config.from_dict({**cfg.to_dict(), "quant": {"scheme": "itq", "groups": {
        "decay": {"format": "uQ1.31", "rounding": "nearest"}}}})
    assert flow.build_network(wide).quant.lost_decays == []
    narrow = Config.from_dict({**cfg.to_dict(), "quant": {"scheme": "itq", "groups": {
        "decay": {"format": "uQ1.1", "rounding": "nearest"}}}})
    names = [m.split(" = ")[0] for m in flow.build_network(narrow).quant.lost_decays]
    assert names == ["decay factor exc.decay", "decay factor exc.theta_decay",
                     "decay factor trace_decay"]
    # post-training quantization never runs theta's decay: only the leak is worth a word
    ptq = Config.from_dict({**cfg.to_dict(), "quant": {"scheme": "ptq", "groups": {
        "decay": {"format": "uQ1.1", "rounding": "nearest"}}}})
    net = flow.finish_training(flow.build_network(ptq))
    assert [m.split(" = ")[0] for m in net.quant.lost_decays] == [
        "decay factor exc.decay", "decay factor trace_decay"]
    # the CLI says so before it trains
    from tinysnn_core.cli import main

    rc = main(["train", "-q", "-n", "10", "--n-train", "5", "--time-steps", "20", "--topology",
               "tinysnn", "--set", 'quant.scheme="itq"', "--set",
               'quant.groups.decay={format="uQ1.15", rounding="nearest"}',
               "--out", str(tmp_path / "m.tsnn")])
    assert rc == 0
    assert "warning: decay factor exc.theta_decay" in capsys.readouterr().err
