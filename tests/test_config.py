import pytest

from tinysnn_core.config import Config
from tinysnn_core.errors import ConfigError


def test_defaults_resolve_every_plugin():
    cfg = Config().resolved()
    assert cfg.topology["name"] == "tinysnn"
    assert cfg.exc_neuron["thresh"] == -52.0
    assert cfg.encoder["max_rate_hz"] == 63.75
    assert cfg.train.time_steps == 350


def test_toml_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seed = 3\nn_neurons = 64\n[topology]\nname = "diehl-cook"\ninh = 30.0\n'
                    '[train]\nepochs = 2\n')
    cfg = Config.load(path)
    assert cfg.seed == 3 and cfg.train.epochs == 2
    assert cfg.plugin_params("topology").inh == 30.0
    cfg2 = cfg.with_overrides(["topology.inh=40", "train.epochs=5"])
    assert cfg2.plugin_params("topology").inh == 40 and cfg2.train.epochs == 5
    cfg3 = cfg.with_overrides(["topology=tinysnn"])
    assert cfg3.plugin_name("topology") == "tinysnn"
    assert cfg3.plugin_params("topology").w_inh == -120.0


@pytest.mark.parametrize("data, match", [
    ({"n_neuron": 3}, "unknown configuration key"),
    ({"topology": {"name": "tinysnn", "w_ihn": -3}}, "accepted"),
    ({"topology": {"name": "nope"}}, "known: diehl-cook"),
    ({"n_neurons": 0}, "n_neurons"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"topology": {"name": "tinysnn", "w_inh": 5.0}}, "must be <= 0"),
    ({"exc_neuron": {"name": "adaptive-lif", "tc_decay": "fast"}}, "must be a number"),
    ({"exc_neuron": {"name": "adaptive-lif", "one_spike": 1}}, "true or false"),
    ({"exc_neuron": {"name": "adaptive-lif", "thresh": float("nan")}}, "finite"),
])
def test_bad_config_is_a_clear_error(data, match):
    with pytest.raises(ConfigError, match=match):
        Config.from_dict(data).resolved()


def test_bad_toml_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(path)
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "missing.toml")
