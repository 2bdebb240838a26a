"""The plugin contracts (tinysnn_core/contracts.py) are checked at registration, per name."""

import dataclasses
import os
import re
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysnn_core
from tinysnn_core import cli, contracts, hookspecs, registry
from tinysnn_core.errors import PluginError
from tinysnn_core.registry import Registry

DOCS = Path(__file__).resolve().parents[1] / "docs"


def plugin_with(hook_name, *registrations):
    """A plugin object whose hook ``hook_name`` registers each (name, obj[, aliases])."""
    def hook(self, register):
        for name, obj, *aliases in registrations:
            register(name, obj, aliases=tuple(aliases[0]) if aliases else ())
    hook.__name__ = hook_name
    return type("Plugin", (), {hook_name: tinysnn_core.hookimpl(hook)})()


def test_every_installed_plugin_meets_its_contract():
    reg = Registry()
    assert reg.failures == []
    for kind in contracts.CONTRACTS:
        for name in reg.names(kind):
            assert contracts.check(kind, reg.get(kind, name)) == [], (kind, name)


def test_every_kind_has_a_contract_and_its_hook_names_it():
    assert [kind for kind, _ in hookspecs.KINDS] == list(contracts.CONTRACTS)
    for kind, hook in hookspecs.KINDS:
        assert f"contracts.{contracts.CONTRACTS[kind].protocol.__name__}" in getattr(
            hookspecs, hook).__doc__


@pytest.mark.parametrize("kind,hook", hookspecs.KINDS)
@pytest.mark.parametrize("bad", [42, None, "text"])
def test_a_non_object_is_refused_naming_plugin_kind_and_name(kind, hook, bad):
    reg = Registry(load_builtins=False, load_entry_points=False)
    problems = reg.add_plugin(plugin_with(hook, ("bad-one", bad)), distribution="third-party")
    assert len(problems) == 1
    assert problems[0].startswith(f"plugin third-party: {kind} 'bad-one' was skipped")
    assert repr(bad) in problems[0] and "\n" not in problems[0]
    assert reg.names(kind) == []


def test_a_class_without_the_methods_is_refused_listing_what_is_missing():
    reg = Registry(load_builtins=False, load_entry_points=False)
    empty = type("Empty", (), {})
    problems = reg.add_plugin(plugin_with("register_neuron_models", ("hollow", empty)),
                              distribution="third-party")
    message = problems[0]
    for missing in ("class attribute Params", "init_state()", "reset()", "step()",
                    "constructor does not take the arguments (params"):
        assert missing in message
    assert "hollow" not in reg.names("neuron_model")


@dataclasses.dataclass
class HalfParams:
    rest: float = -65.0
    thresh: float = -52.0


class HalfNeuron:
    """Has every method, but ``Params`` lacks two fields and ``step`` takes no ``learning``."""

    Params = HalfParams

    def __init__(self, params, n, dt):
        self.p = params

    def init_state(self):
        return {}

    def reset(self, state):
        pass

    def step(self, state, current):
        return current > 0


def test_missing_params_fields_and_a_narrow_signature_are_named():
    reg = Registry(load_builtins=False, load_entry_points=False)
    message = reg.add_plugin(plugin_with("register_neuron_models", ("half", HalfNeuron)))[0]
    assert "Params lacks the field(s) reset, refrac" in message
    assert "step does not take the arguments (state" in message


def test_signatures_that_accept_the_core_calls_pass():
    class Loose(HalfNeuron):
        def step(self, *args, **kwargs):
            return None
    assert contracts.check("neuron_model", Loose) == ["Params lacks the field(s) reset, refrac"]
    assert contracts.check("rounding", lambda scaled, rng=None: scaled) == []
    assert contracts.check("rounding", lambda scaled: scaled) != []
    assert contracts.check("dataset", lambda seed, path="x": None) == []


def test_a_class_the_core_builds_bare_must_take_no_arguments():
    class NeedsArgs:
        in_training = False

        def __init__(self, bits):
            pass

        def prepare(self, net, plan):
            return net
    assert contracts.check("quantizer", NeedsArgs) == [
        "the core builds it with cls(), but its constructor needs arguments"]


def test_a_cost_model_needs_one_of_its_methods_and_a_factory_is_accepted():
    assert contracts.check("cost_model", type("Nothing", (), {})) == [
        "it needs one of the methods estimate(), integer_inference_cost()"]
    only_integer = type("I", (), {"integer_inference_cost": lambda self, model, ops: {}})
    assert contracts.check("cost_model", only_integer) == []
    assert contracts.check("cost_model", lambda: only_integer()) == []


def test_a_clash_is_reported_per_name_and_the_rest_of_the_plugin_is_kept():
    class Mixed:
        @tinysnn_core.hookimpl
        def register_rounding_schemes(self, register):
            register("nearest", lambda scaled, rng=None: scaled)            # clashes
            register("toward-zero", np.trunc, aliases=("TR", "T0"))        # alias TR clashes

        @tinysnn_core.hookimpl
        def register_neuron_models(self, register):
            from tinysnn_core.builtin.neurons import LIF
            register("lif-copy", LIF)

    reg = Registry(load_entry_points=False)
    problems = reg.add_plugin(Mixed(), distribution="mixed-dist")
    assert len(problems) == 2
    assert "rounding name 'nearest' clashes with the one from tinysnn" in problems[0]
    assert "alias 'tr' of 'toward-zero' clashes with the one from tinysnn" in problems[1]
    assert reg.get_entry("rounding", "nearest").distribution == "tinysnn"
    assert reg.get_entry("rounding", "t0").name == "toward-zero"
    assert reg.get("rounding", "tr") is reg.get("rounding", "truncation")
    assert reg.get_entry("neuron_model", "lif-copy").distribution == "mixed-dist"
    assert [f.source for f in reg.failures] == ["mixed-dist", "mixed-dist"]
    assert reg.failures[0].error.startswith("rounding name 'nearest' clashes")


def test_a_mistyped_hook_name_is_caught_with_the_nearest_hook():
    plugin = plugin_with("register_rounding_scheme", ("never-seen", np.rint))
    reg = Registry(load_builtins=False, load_entry_points=False)
    problems = reg.add_plugin(plugin, distribution="typo-dist")
    assert problems == ["plugin typo-dist: register_rounding_scheme is not a tinysnn hook, so "
                        "nothing it registers is seen (did you mean register_rounding_schemes?)"]


def test_an_optional_hook_of_another_host_is_not_reported():
    class Other:
        @tinysnn_core.hookimpl(optionalhook=True)
        def some_other_hook(self, register):
            pass
    assert Registry(load_builtins=False, load_entry_points=False).add_plugin(Other()) == []


@pytest.mark.parametrize("plugin", [
    plugin_with("register_rounding_scheme", ("x", np.rint)),
    plugin_with("register_rounding_schemes", ("nearest", np.rint)),
    plugin_with("register_neuron_models", ("n", 42)),
])
def test_strict_mode_makes_each_problem_fatal_and_registers_nothing(monkeypatch, plugin):
    monkeypatch.setenv("TINYSNN_STRICT_PLUGINS", "1")
    reg = Registry(load_entry_points=False)
    before = {kind: reg.names(kind) for kind in registry.KIND_NAMES}
    with pytest.raises(PluginError) as info:
        reg._load(lambda: plugin, "strict (tests)", "tests", "1")
    assert "\n" not in str(info.value) and str(info.value).startswith("plugin tests: ")
    assert {kind: reg.names(kind) for kind in registry.KIND_NAMES} == before


def test_strict_mode_on_the_command_line_is_one_line_not_a_traceback(monkeypatch, capsys):
    clashing = plugin_with("register_rounding_schemes", ("nearest", np.rint))

    def load_entry_points(self):
        self._load(lambda: clashing, "clash (tests)", "clash-dist", "1")

    monkeypatch.setenv("TINYSNN_STRICT_PLUGINS", "1")
    monkeypatch.setattr(registry, "_REGISTRY", None)
    monkeypatch.setattr(Registry, "_load_entry_points", load_entry_points)
    assert cli.main(["plugins"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("tinysnn: error: plugin clash-dist: rounding name 'nearest' clashes")


def _tutorial_plugin_code() -> str:
    """The plugin module of docs/plugins.md, step 2."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "plugins.md").read_text(), re.S)
    return next(b for b in blocks if "@hookimpl" in b)


def test_the_tutorial_plugin_registers_next_to_the_installed_example_plugin():
    module = types.ModuleType("tutorial_plugin")
    exec(compile(_tutorial_plugin_code(), "docs/plugins.md", "exec"), module.__dict__)
    reg = Registry()
    assert reg.get_entry("rounding", "half-even").distribution == "tinysnn-example"
    assert reg.add_plugin(module, distribution="tinysnn-myplugin") == []
    rounding = re.search(r'rounding = "([\w-]+)"', (DOCS / "plugins.md").read_text()).group(1)
    assert reg.get_entry("rounding", rounding).distribution == "tinysnn-myplugin"


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_the_tutorial_rounding_is_round_to_nearest(x):
    module = types.ModuleType("tutorial_plugin")
    exec(compile(_tutorial_plugin_code(), "docs/plugins.md", "exec"), module.__dict__)
    (fn,) = [v for k, v in vars(module).items() if k.startswith("half_")]
    out = fn(np.array([x]), None)
    assert out.dtype == np.float64 and float(out[0]).is_integer()
    assert abs(out[0] - x) <= 0.5


class NoLeak:
    """Integrate-and-fire without leak: no ``decay`` attribute."""

    @dataclasses.dataclass
    class Params:
        rest: float = -65.0
        reset: float = -65.0
        thresh: float = -52.0
        refrac: int = 5

    def __init__(self, params, n, dt):
        self.p, self.n, self.dt = params, n, dt

    def init_state(self):
        return {"v": np.full(self.n, self.p.rest), "refrac": np.zeros(self.n)}

    def reset(self, state):
        state["v"].fill(self.p.rest)
        state["refrac"].fill(0.0)

    def step(self, state, current, learning, rand=0):
        state["v"] += current
        return state["v"] >= self.p.thresh


def test_a_neuron_model_without_decay_is_quantized(monkeypatch):
    """``decay`` is optional in the contract: a model without leak has none to round."""
    from tinysnn_core import train as flow
    from tinysnn_core.config import Config

    reg = Registry(load_entry_points=False)
    assert reg.add_plugin(plugin_with("register_neuron_models", ("no-leak", NoLeak))) == []
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    cfg = Config.from_dict({
        "n_neurons": 6, "exc_neuron": {"name": "no-leak"},
        "quant": {"scheme": "ptq", "groups": {"weights": {"format": "uQ0.6"},
                                              "decay": {"format": "uQ1.15"}}}})
    net = flow.finish_training(flow.build_network(cfg))
    assert not hasattr(net.exc, "decay") and net.quant is not None
    assert np.array_equal(net.w * 64, np.round(net.w * 64))


def test_the_hook_reference_is_generated_from_the_contracts(tmp_path):
    from tinysnn_core import hookdoc

    text = hookdoc.render()
    for kind, contract in contracts.CONTRACTS.items():
        assert f"## `{kind}`" in text and contract.protocol.__name__ in text
    assert "`decay: float` (attribute), *optional*" in text
    stale = tmp_path / "hooks.md"
    stale.write_text(text.replace("*optional*", "*required*"))
    assert hookdoc.main(["--check", str(stale)]) == 1
    assert hookdoc.main(["--check", str(DOCS / "hooks.md")]) == 0


def test_an_attribute_the_constructor_should_set_is_named_when_the_network_is_built(monkeypatch):
    from tinysnn_core.builtin.learning import PostPre
    from tinysnn_core.config import Config
    from tinysnn_core.network import Network

    class Forgetful(PostPre):
        """Its constructor forgets the trace decay."""

        def __init__(self, params, n_pre, n_post, dt):
            super().__init__(params, n_pre, n_post, dt)
            del self.trace_decay

    reg = Registry(load_entry_points=False)
    assert reg.add_plugin(plugin_with("register_learning_rules", ("forgetful", Forgetful))) == []
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    with pytest.raises(PluginError, match=r"learning_rule 'forgetful' \(Forgetful\) was built "
                                          r"without the attribute\(s\) trace_decay"):
        Network.build(Config.from_dict({"n_neurons": 4, "learning": {"name": "forgetful"}}))
    assert Network.build(Config.from_dict({"n_neurons": 4, "learning": "postpre"})).rule


THIRD_PARTY = '''
import numpy as np
from tinysnn_core import hookimpl


@hookimpl
def register_rounding_scheme(register):          # mistyped: no such hook
    register("never-seen", np.rint)


@hookimpl
def register_rounding_schemes(register):
    register("nearest", np.rint)                  # clashes with the built-in
    register("toward-zero", np.trunc)             # fine
'''


def test_an_installed_third_party_distribution_end_to_end(tmp_path):
    """A real distribution on the path (dist-info with an entry point), loaded by the CLI:
    reported per problem and kept otherwise; under strict mode a one-line error."""
    import subprocess
    import sys

    site = tmp_path / "site"
    info = site / "tinysnn_typo-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "tinysnn_typo.py").write_text(THIRD_PARTY)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinysnn-typo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tinysnn]\ntypo = tinysnn_typo\n")

    def plugins(strict):
        env = {**os.environ, "PYTHONPATH": str(site), "TINYSNN_STRICT_PLUGINS": strict}
        return subprocess.run([sys.executable, "-m", "tinysnn_core.cli", "plugins",
                               "--kind", "rounding"], capture_output=True, text=True, env=env,
                              timeout=120)

    relaxed = plugins("0")
    assert relaxed.returncode == 0
    assert "toward-zero" in relaxed.stdout and "tinysnn-typo" in relaxed.stdout
    assert "register_rounding_scheme is not a tinysnn hook" in relaxed.stderr
    assert "rounding name 'nearest' clashes with the one from tinysnn" in relaxed.stderr
    strict = plugins("1")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert strict.stderr.count("\n") == 1
    assert strict.stderr.startswith("tinysnn: error: plugin tinysnn-typo: ")
