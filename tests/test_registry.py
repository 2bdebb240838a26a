import pytest

import tinysnn_core
from tinysnn_core.errors import PluginError, UnknownPluginError
from tinysnn_core.log import TinySNNWarning
from tinysnn_core.registry import Registry, get_registry


def test_builtins_register_through_the_public_hooks():
    reg = get_registry()
    assert {"diehl-cook", "tinysnn"} <= set(reg.names("topology"))
    assert {"adaptive-lif", "lif"} <= set(reg.names("neuron_model"))
    assert {"postpre", "weight-dependent", "tinysnn-stdp"} <= set(reg.names("learning_rule"))
    assert {"truncation", "nearest", "stochastic"} <= set(reg.names("rounding"))
    assert {"mnist-5k", "fashion-mnist", "mnist-idx"} <= set(reg.names("dataset"))
    assert reg.get_entry("topology", "tinysnn").distribution == "tinysnn"


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownPluginError) as info:
        get_registry().get("topology", "nope")
    message = str(info.value)
    assert "unknown topology 'nope'" in message
    assert "diehl-cook" in message and "tinysnn" in message


def test_aliases_resolve_case_insensitively():
    reg = get_registry()
    assert reg.get("rounding", "tr") is reg.get("rounding", "truncation")
    assert reg.get("rounding", "SR") is reg.get("rounding", "stochastic")


class GoodPlugin:
    @tinysnn_core.hookimpl
    def register_rounding_schemes(self, register):
        register("ceil-test", lambda x, rng=None: x, summary="test scheme")


class BrokenPlugin:
    @tinysnn_core.hookimpl
    def register_rounding_schemes(self, register):
        register("half-registered", lambda x, rng=None: x)
        raise RuntimeError("boom")


class ClashingPlugin:
    @tinysnn_core.hookimpl
    def register_rounding_schemes(self, register):
        register("nearest", lambda x, rng=None: x)


def test_fresh_registry_takes_objects_directly():
    reg = Registry(load_entry_points=False)
    reg.add_plugin(GoodPlugin(), distribution="tests", version="1")
    entry = reg.get_entry("rounding", "ceil-test")
    assert entry.distribution == "tests" and entry.summary == "test scheme"


def test_broken_plugin_is_rolled_back_and_others_keep_working():
    reg = Registry(load_entry_points=False)
    with pytest.raises(RuntimeError):
        reg.add_plugin(BrokenPlugin())
    assert "half-registered" not in reg.names("rounding")
    assert "nearest" in reg.names("rounding")


def test_broken_plugin_reported_not_fatal_unless_strict(monkeypatch):
    reg = Registry(load_entry_points=False)
    with pytest.warns(TinySNNWarning, match="failed to load"):
        reg._load(lambda: BrokenPlugin(), "broken (tests)", "tests", "1")
    assert reg.failures and "boom" in reg.failures[0].error
    monkeypatch.setenv("TINYSNN_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="boom"):
        reg._load(lambda: BrokenPlugin(), "broken (tests)", "tests", "1")


def test_import_error_is_reported():
    reg = Registry(load_entry_points=False)
    def loader():
        raise ImportError("no module named missing_dep")
    with pytest.warns(TinySNNWarning, match="missing_dep"):
        reg._load(loader, "needs-missing (tests)", "tests", "1")
    assert "missing_dep" in reg.failures[0].error


def test_name_clash_is_reported_naming_both_and_fatal_when_strict(monkeypatch):
    reg = Registry(load_entry_points=False)
    with pytest.warns(TinySNNWarning, match="clashes"):
        problems = reg.add_plugin(ClashingPlugin(), distribution="clash-dist")
    assert len(problems) == 1 and "clash-dist" in problems[0]
    assert "clashes with the one from tinysnn" in problems[0]
    assert reg.get_entry("rounding", "nearest").distribution == "tinysnn"
    monkeypatch.setenv("TINYSNN_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="clashes with the one from tinysnn"):
        Registry(load_entry_points=False).add_plugin(ClashingPlugin(), distribution="clash-dist")


def test_disable_list_skips_entry_points(monkeypatch):
    monkeypatch.setenv("TINYSNN_DISABLE_PLUGINS", "example")
    reg = Registry()
    assert "half-even" not in reg.names("rounding")


def test_example_plugin_installed_like_a_third_party():
    reg = Registry()
    entry = reg.get_entry("neuron_model", "nonleaky-if")
    assert entry.distribution == "tinysnn-example"


def test_hook_reference_matches_the_hookspecs():
    from pathlib import Path

    from tinysnn_core.hookdoc import render

    doc = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
    assert doc.read_text() == render(), "docs/hooks.md is stale: python -m tinysnn_core.hookdoc > docs/hooks.md"
