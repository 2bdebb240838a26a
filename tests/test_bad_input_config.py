"""Bad configuration values and command-line flags: one line naming the value, exit status 2,
nothing run; and every value the guide says --set overrides is accepted."""

from __future__ import annotations

import dataclasses

import pytest
from bad_input_tools import cli_error
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn_core.config import Config, InferenceSettings, TrainSettings
from tinysnn_core.errors import ConfigError, TinySNNError
from tinysnn_core.fuzzing import sample_model_file
from tinysnn_core.network import Network


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "m.tsnn"
    sample_model_file(path, quantized=False)
    return str(path)


@pytest.mark.parametrize("argv, words", [
    (["--set", "n_neurons=true"], "n_neurons must be in 1..100000, an integer, got True"),
    (["--set", "seed=true"], "seed must be in 0..9223372036854775807, an integer, got True"),
    (["--seed", "-3"], "seed must be in 0..9223372036854775807, an integer, got -3"),
    (["--n-train", "-1"], "train.n_train must be in 1..1000000000, an integer"),
    (["--n-train", "0"], "train.n_train must be in 1..1000000000, an integer"),
    (["--n-test", "0"], "train.n_test must be in 1..1000000000, an integer"),
    (["--set", 'train.n_train="abc"'], "train.n_train must be in 1..1000000000, an integer "
                                       "(leave it out to use every sample), got 'abc'"),
    (["--set", "train.n_test=2.5"], "train.n_test must be in 1..1000000000, an integer"),
    (["--set", "train.time_steps=1000000000"], "train.time_steps must be in 1..65535, an integer"),
    (["--set", "train.time_steps=1e9"], "time_steps must be an integer, got 1000000000.0"),
    (["--set", "train.epochs=0"], "train.epochs must be in 1..10000, an integer"),
    (["--set", "train.dt=nan"], "dt must be finite"),
    (["--set", "train.dt=-1.0"], "train.dt must be in (0, 1000]"),
    (["--set", "train.normalize=1"], "normalize must be true or false"),
    (["--set", "train.norm=0"], "train.norm must be in (0, 1e+09]"),
    (["--set", "train.classifier=best"], "train.classifier must be 'all-activity'"),
    (["--set", 'inference.rate_hz="x"'], "rate_hz must be a number, got 'x'"),
    (["--set", "inference.max_retries=true"], "max_retries must be a number, got True"),
    (["--set", "inference.exit_margin=-1"],
     "inference.exit_margin must be in 0..65535, an integer"),
    (["--set", "quant.scheme=5"], "quant.scheme must be a quantizer name"),
    (["--set", "quant.groups.weights=5"], "quant.groups.weights must be a table with 'format'"),
    (["--set", "quant.groups.weights.format=uQ0.99"], "word length of 99 bits"),
    (["--set", "quant.groups.wts.format=uQ0.4"], "unknown group 'wts'; known: weights"),
    (["--set", "quant.groups.weights.format=uQ0.4", "--set", "quant.groups.weights.rounding=up"],
     "unknown rounding 'up'; known:"),
    (["--set", "exc_neuron.tc_theta_decay=-1.0"], "tc_theta_decay must be positive"),
    (["--set", "exc_neuron.refrac=100000"], "refrac must be in 0..65535"),
    (["--set", "encoder.max_retries=17207"], "max_retries at most 254"),
    (["--set", "learning.tc_trace=0.0"], "tc_trace and target_spikes must be positive"),
    (["--set", "topology.nope=1"], "unknown parameter(s) ['nope']; accepted:"),
    (["--set", "nope=1"], "unknown configuration key(s) ['nope']; known:"),
    (["--set", "train.epochs.x=1"], "'epochs' is not a configuration table"),
    (["--set", "novalue"], "must look like key=value"),
    (["--topology", "mesh"], "unknown topology 'mesh'; known:"),
    (["--set", "dataset.n_train=abc"], "(mnist-5k) n_train must be an integer, got 'abc'"),
    (["--set", "dataset.n_train=true"], "n_train must be an integer, got True"),
    (["--set", "dataset.n_train=0"], "mnist-5k n_train must be in 1..4999, got 0"),
    (["--set", "dataset.path=5"], "path must be a string (a path), got 5"),
    (["--set", 'dataset.path="missing.csv.gz"'], "missing.csv.gz: cannot read it"),
    (["--set", "dataset.validation=true"], "validation must be an integer, got True"),
    (["--set", "dataset.validation=5000"], "mnist-5k: validation must be in 1..3999, got 5000"),
    (["--set", "dataset.seed=3"], "unknown option(s) ['seed']"),
])
def test_bad_run_settings(argv, words, tmp_path):
    line = cli_error("run", "-q", "--out", str(tmp_path / "m.tsnn"), *argv)
    assert words in line
    assert not (tmp_path / "m.tsnn").exists()


def test_bad_configuration_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("n_neurons = true\n")
    assert "n_neurons must be in 1..100000, an integer" in cli_error("train", "-q", "--config",
                                                                     str(bad))
    bad.write_text("n_neurons = \n")
    assert "is not valid TOML" in cli_error("train", "-q", "--config", str(bad))
    bad.write_text("[train]\nn_train = -5\n")
    assert "train.n_train must be in 1..1000000000, an integer" in cli_error(
        "train", "-q", "--config", str(bad))
    assert "does not exist" in cli_error("train", "--config", str(tmp_path / "none.toml"))


def test_eval_refuses_an_empty_test_set(model):
    assert "train.n_test must be in 1..1000000000, an integer" in cli_error(
        "eval", model, "--n-test", "0", "-q")
    assert "train.n_test must be in 1..1000000000, an integer" in cli_error(
        "eval", model, "--n-test", "-4", "-q")


def test_set_overrides_a_quantization_group_as_the_guide_says():
    cfg = Config().with_overrides(["quant.scheme=ptq", "quant.groups.weights.format=uQ0.4",
                                   "quant.groups.weights.rounding=stochastic",
                                   "quant.groups.potential.format=sQ7.8"])
    cfg.resolved()
    assert cfg.quant.groups == {"weights": {"format": "uQ0.4", "rounding": "stochastic"},
                                "potential": {"format": "sQ7.8"}}
    again = cfg.with_overrides(["quant.groups.weights.format=uQ0.6"])
    assert again.quant.groups["weights"] == {"format": "uQ0.6", "rounding": "stochastic"}


@pytest.mark.parametrize("argv, words", [
    (["--neuron-bits", "40"], "--neuron-bits: 40 is outside 1..32"),
    (["--neuron-bits", "0"], "--neuron-bits: 0 is outside 1..32"),
    (["--decay-bits", "1"], "--decay-bits: 1 is outside 2..32"),
    (["--bits", ""], "--bits gives no values"),
    (["--bits", ",,"], "--bits gives no values"),
    (["--bits", "8,x"], "--bits: cannot parse the list '8,x' (comma-separated integers)"),
    (["--bits", "33"], "--bits: 33 is outside 1..32"),
    (["--workers", "-1"], "--workers: -1 is outside 1..1024"),
    (["--workers", "0"], "--workers: 0 is outside 1..1024"),
    (["--group-size", "0"], "--group-size: 0 is outside 1..1024"),
    (["--no-group", "--group-size", "4"], "--no-group and --group-size: give one of them"),
    (["--assign-limit", "-5"], "--assign-limit must be a positive number of samples, got -5"),
    (["--assign-limit", "0"], "--assign-limit must be a positive number of samples, got 0"),
    (["--schemes", ""], "--schemes gives no values"),
    (["--schemes", "qat"], "unknown quantizer 'qat'; known:"),
    (["--roundings", ""], "--roundings gives no values"),
    (["--roundings", "up"], "unknown rounding 'up'; known:"),
    (["--group-sets", ""], "--group-sets gives no values"),
    (["--group-sets", "some"], "unknown group set 'some'; known: weights, all, mixed"),
    (["--time-steps", ""], "--time-steps gives no values"),
    (["--time-steps", "70000"], "inference.time_steps must be in 0..65535, an integer"),
    (["--rates", "nan"], "--rates: nan is not a number"),
    (["--rates", "2000"], "inference.rate_hz must be in 0..1000"),
    (["--retries", "999"], "inference.max_retries must be in -1..254, an integer"),
    (["--exit-margins", "-1"], "inference.exit_margin must be in 0..65535, an integer"),
    (["--train-time-steps", ""], "--train-time-steps gives no values"),
    (["--train-time-steps", "0"], "--train-time-steps: 0 is outside 1..65535"),
    (["--cost-models", "joules"], "unknown cost model 'joules'; known:"),
    (["--boards", "arduino"], "unknown cost model 'board-arduino'; known:"),
    (["--backend", "fpga"], "unknown backend 'fpga'; known:"),
    (["--scheduler", " "], "--scheduler is empty"),
])
def test_bad_explore_flags(model, argv, words, tmp_path):
    results = tmp_path / "explore.jsonl"
    line = cli_error("explore", model, "-q", "--results", str(results), *argv)
    assert words in line
    assert not results.exists()


def test_bad_explore_paths(model, tmp_path):
    assert "is a directory; give a file" in cli_error("explore", model, "--results", str(tmp_path))
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert "exists and is not a directory" in cli_error(
        "explore", model, "--results", str(tmp_path / "r.jsonl"), "--save-models", str(not_a_dir))
    assert "does not exist" in cli_error("explore", str(tmp_path / "none.tsnn"),
                                         "--results", str(tmp_path / "r.jsonl"))


_SETTINGS = ([("train", f.name) for f in dataclasses.fields(TrainSettings)]
             + [("inference", f.name) for f in dataclasses.fields(InferenceSettings)]
             + [(None, "seed"), (None, "n_neurons")])
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                    st.text(max_size=8), st.lists(st.integers(), max_size=3),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_SETTINGS), _VALUES)
def test_any_value_of_any_setting_is_accepted_or_refused_cleanly(where, value):
    table, name = where
    data = {name: value} if table is None else {table: {name: value}}
    try:
        cfg = Config.from_dict(data)
    except ConfigError as exc:
        assert "\n" not in str(exc) and name in str(exc)
        return
    # accepted: the value is of its field's type (a boolean never passes as an integer)
    got = getattr(cfg, name) if table is None else getattr(getattr(cfg, table), name)
    default = (getattr(Config(), name) if table is None
               else getattr(getattr(Config(), table), name))
    if isinstance(default, bool):
        assert isinstance(got, bool)
    elif isinstance(default, int) or name in ("n_train", "n_test"):
        assert got is None or (isinstance(got, int) and not isinstance(got, bool))
    elif isinstance(default, float):
        assert isinstance(got, (int, float)) and not isinstance(got, bool) and got == got


@pytest.mark.parametrize("argv, words", [
    (["--within", "-5"], "--within is percentage points in 0..100, got -5.0"),
    (["--within", "nan"], "--within is percentage points in 0..100, got nan"),
    (["--target", "1.5"], "--target is an accuracy in 0..1 (e.g. 0.85), got 1.5"),
    (["--target", "nan"], "--target is an accuracy in 0..1"),
    (["--within", "1", "--mu", "nan"], "--mu must be a non-negative number, got nan"),
    (["--within", "1", "--mu", "-1"], "--mu must be a non-negative number, got -1.0"),
    (["--within", "1", "--tau", "0"], "--tau must be a positive number, got 0.0"),
])
def test_bad_select_and_report_flags(argv, words, tmp_path):
    results = tmp_path / "r.jsonl"
    assert words in cli_error("select", str(results), "-q", "--out", str(tmp_path / "s.tsnn"),
                              *argv)
    if "--mu" not in argv and "--tau" not in argv:
        assert words in cli_error("report", str(results), "-o", str(tmp_path / "rep"), *argv)


@pytest.mark.parametrize("lines, words", [
    (["[1, 2]"], "line 1 is a JSON list, not a results row (an object)"),
    (['{"kind": "baseline"}'], "line 1 is not a results row of tinysnn explore: field 'label'"),
    (['{"kind": "grid", "label": "x", "scheme": "ptq", "rounding": "nearest", "group_set": '
      '"weights", "bits": 4, "groups": {}, "accuracy": 7}'], "field 'accuracy' is 7, not an "
                                                             "accuracy in 0..1"),
    (['{"kind": "grid", "label": "x", "scheme": "ptq", "rounding": "nearest", "group_set": '
      '"weights", "bits": true, "groups": {}, "accuracy": 0.5}'], "field 'bits' is True"),
])
def test_results_files_that_explore_did_not_write(lines, words, tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text("\n".join(lines) + "\n")
    assert words in cli_error("select", str(results), "--within", "1", "-q")
    assert words in cli_error("report", str(results), "-o", str(tmp_path / "rep"))
    assert "is a directory, not a results file" in cli_error("select", str(tmp_path),
                                                             "--within", "1")


def _plugin_parameters():
    resolved = Config.from_dict({"topology": {"name": "diehl-cook"}}).resolved().to_dict()
    tinysnn = Config().resolved().to_dict()
    return sorted({(slot, key) for cfg in (resolved, tinysnn)
                   for slot in ("encoder", "topology", "exc_neuron", "inh_neuron", "learning")
                   for key in cfg[slot] if key != "name"})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_plugin_parameters()), _VALUES, st.sampled_from(["tinysnn", "diehl-cook"]))
def test_any_plugin_parameter_builds_a_network_or_is_refused_cleanly(where, value, topology):
    """A plugin parameter of any type and size: the configuration is refused in one line, or
    a network builds from it (the plugins' constructors raise nothing else)."""
    slot, key = where
    data = {"n_neurons": 4, "topology": {"name": topology}, slot: {key: value}}
    if slot == "topology":
        data["topology"][key] = value
    try:
        cfg = Config.from_dict(data)
        cfg.resolved()
        Network.build(cfg)
    except TinySNNError as exc:
        assert "\n" not in str(exc)
