"""The nir exporter: a written file read back with ``nir.read`` holds the model's graph and
every parameter bit for bit (docs/nir.md)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinysnn_core import cli, contracts
from tinysnn_core.config import Config, QuantSettings
from tinysnn_core.errors import ConfigError, UnknownPluginError
from tinysnn_core.export import export_model, parse_options, target_path
from tinysnn_core.modelfile import save_network
from tinysnn_core.network import Network
from tinysnn_core.registry import Registry
from tinysnn_nir import METADATA_KEY, write_nir
from tinysnn_nir.plugin import NIRExporter

REDUCED_EDGES = {("input", "w_in"), ("w_in", "exc"), ("exc", "output"), ("exc", "exc_delay"),
                 ("exc_delay", "w_lateral"), ("w_lateral", "exc")}
DC_EDGES = {("input", "w_in"), ("w_in", "exc"), ("exc", "output"), ("exc", "exc_delay"),
            ("exc_delay", "w_exc_inh"), ("w_exc_inh", "inh"), ("inh", "inh_delay"),
            ("inh_delay", "w_inh_exc"), ("w_inh_exc", "exc")}


@pytest.fixture
def small_config():
    """A small configuration: 6 neurons, 40 steps, overrides by table."""
    def make(**over):
        return Config.from_dict({"n_neurons": 6, "train": {"time_steps": 40}, **over})
    return make


def finite(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def small_models(draw):
    """A random small network: either topology, random neuron constants, weights, thresholds
    and label assignments."""
    n, n_in = draw(st.integers(1, 8)), draw(st.integers(1, 12))
    rest = draw(finite(-80, -50))
    exc = {"name": "adaptive-lif", "rest": rest, "reset": rest + draw(finite(0, 10)),
           "thresh": rest + draw(finite(1, 30)), "tc_decay": draw(finite(1, 500)),
           "refrac": draw(st.integers(0, 10)), "one_spike": draw(st.booleans()),
           "theta_plus": draw(finite(0, 2))}
    cfg = {"n_neurons": n, "seed": draw(st.integers(0, 2**31 - 1)), "exc_neuron": exc,
           "train": {"dt": draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])),
                     "time_steps": draw(st.integers(1, 400))}}
    if draw(st.booleans()):
        cfg["topology"] = {"name": "diehl-cook", "exc": draw(finite(0, 50)),
                           "inh": draw(finite(0, 200))}
        irest = draw(finite(-70, -50))
        cfg["inh_neuron"] = {"name": "lif", "rest": irest, "reset": irest + draw(finite(0, 20)),
                             "thresh": irest + draw(finite(1, 30)),
                             "tc_decay": draw(finite(1, 100)), "refrac": draw(st.integers(0, 5))}
    else:
        cfg["topology"] = {"name": "tinysnn", "w_inh": -draw(finite(0, 200))}
    net = Network.build(Config.from_dict(cfg), n_inputs=n_in)
    net.w = draw(arrays(np.float64, (n_in, n), elements=finite(0, 1)))
    net.theta = draw(arrays(np.float64, n, elements=finite(0, 300)))
    if draw(st.booleans()):
        net.assignments = draw(arrays(np.int64, n, elements=st.integers(-1, 9)))
        net.proportions = draw(arrays(np.float64, (n, 10), elements=finite(0, 1)))
    return net


def same(a, b) -> bool:
    """Bit-exact: same shape, float64, same values."""
    a = np.asarray(a)
    return a.dtype == np.float64 and a.shape == np.shape(b) and np.array_equal(a, b)


def check_population(node, layer, theta, dt_s):
    p, n, decay = layer.p, layer.n, float(layer.decay)
    meta = node.metadata[METADATA_KEY]
    if decay == 1.0:
        assert isinstance(node, nir.IF) and same(node.r, np.full(n, 1.0 / dt_s))
    else:
        assert isinstance(node, nir.LIF)
        assert same(node.tau, np.full(n, -dt_s / math.log(decay)))
        assert same(node.r, np.full(n, 1.0 / (1.0 - decay)))
        assert same(node.v_leak, np.full(n, p.rest))
        # the exact step of the written ODE is the model's: leak exp(-dt/tau), a spike adds w
        assert np.allclose(np.exp(-dt_s / node.tau), decay, rtol=1e-12, atol=0)
        assert np.allclose(node.r * (1 - np.exp(-dt_s / node.tau)), 1.0, rtol=1e-9)
    threshold = np.full(n, p.thresh) + (theta if theta is not None else 0.0)
    assert same(node.v_threshold, threshold) and same(node.v_reset, np.full(n, p.reset))
    assert meta["decay_per_step"] == decay and meta["refractory_steps"] == p.refrac
    assert math.isclose(meta["refractory_s"], p.refrac * dt_s)
    assert bool(meta["one_spike"]) == bool(getattr(layer, "one_spike", False))
    assert ("one_spike_rule" in meta) == bool(meta["one_spike"])
    if theta is not None:
        assert same(meta["theta_mV"], theta) and meta["thresh_mV"] == p.thresh
        assert meta["theta_plus_mV"] == p.theta_plus


def check_graph(g, net):
    """Everything the file must say about ``net``, compared bit for bit."""
    topo, n, n_in = net.topology, net.n_neurons, net.n_inputs
    dt_s = net.config.train.dt / 1000.0
    layer_dc = topo.inhibitory_layer
    assert set(g.edges) == (DC_EDGES if layer_dc else REDUCED_EDGES)
    assert len(g.edges) == len(set(g.edges))
    assert {k for a, b in g.edges for k in (a, b)} == set(g.nodes)
    assert isinstance(g.nodes["input"], nir.Input) and isinstance(g.nodes["output"], nir.Output)
    assert list(g.nodes["input"].input_type["input"]) == [n_in]
    assert list(g.nodes["output"].output_type["output"]) == [n]
    assert same(g.nodes["w_in"].weight, net.w.T)
    off = 1.0 - np.eye(n)
    check_population(g.nodes["exc"], net.exc, net.theta, dt_s)
    assert same(g.nodes["exc_delay"].delay, np.full(n, dt_s))
    if layer_dc:
        assert same(g.nodes["w_exc_inh"].weight, topo.w_exc_inh * np.eye(n))
        assert same(g.nodes["w_inh_exc"].weight, topo.w_lateral * off)
        assert same(g.nodes["inh_delay"].delay, np.full(n, dt_s))
        check_population(g.nodes["inh"], net.inh, None, dt_s)
    else:
        assert same(g.nodes["w_lateral"].weight, topo.w_lateral * off)
        assert g.nodes["w_lateral"].metadata[METADATA_KEY]["w_inh_mV"] == topo.w_lateral
    meta = g.metadata[METADATA_KEY]
    assert meta["format"] == "tinysnn-nir/1" and meta["dt_s"] == dt_s
    assert meta["n_neurons"] == n and meta["n_inputs"] == n_in
    assert meta["time_steps"] == net.config.train.time_steps
    assert json.loads(meta["config_json"]) == net.config.resolved().to_dict()
    enc = g.nodes["input"].metadata[METADATA_KEY]
    assert enc["seed"] == net.config.seed
    assert enc["encoder_params"]["max_rate_hz"] == net.encoder.params.max_rate_hz
    out = g.nodes["output"].metadata[METADATA_KEY]
    if net.assignments is None:
        assert "assignments" not in out
    else:
        assert np.array_equal(out["assignments"], net.assignments)
        assert same(out["proportions"], net.proportions)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_models())
def test_written_file_reads_back_bit_exact(net):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nir(net, Path(tmp) / "m.nir")
        g = nir.read(path)
        assert not (Path(tmp) / "m.nir.tmp").exists()
    check_graph(g, net)


def test_quantized_model_exports_dequantized_values_and_formats(tmp_path, small_config):
    from tinysnn_core import train as flow

    net = Network.build(small_config(), n_inputs=20)
    net.theta = np.linspace(0, 40, net.n_neurons)
    net.config.quant = QuantSettings("ptq", {
        "weights": {"format": "uQ0.4", "rounding": "nearest"},
        "theta": {"format": "uQ7.2", "rounding": "truncation"},
        "inhibition": {"format": "sQ7.3", "rounding": "nearest"},
        "decay": {"format": "uQ1.6", "rounding": "nearest"}})
    quantizer, plan = flow.quantizer_for(net.config)
    quantizer.prepare(net, plan)
    g = nir.read(write_nir(net, tmp_path / "q.nir"))
    check_graph(g, net)
    # what was written lies on the grids: 4 fraction bits of weight, 2 of theta
    assert np.array_equal(g.nodes["w_in"].weight * 16, np.round(g.nodes["w_in"].weight * 16))
    theta = g.nodes["exc"].metadata[METADATA_KEY]["theta_mV"]
    assert np.array_equal(theta * 4, np.floor(theta * 4)) and theta.max() > 0
    assert g.nodes["exc"].metadata[METADATA_KEY]["decay_per_step"] == pytest.approx(63 / 64)
    q = g.metadata[METADATA_KEY]["quant"]
    assert q["scheme"] == "ptq" and q["groups"]["weights"]["format"] == "uQ0.4"
    assert q["groups"]["theta"]["rounding"] == "truncation" and q["groups"]["theta"]["bits"] == 9


def test_no_leak_becomes_an_if_node(tmp_path, small_config):
    net = Network.build(small_config(exc_neuron={"name": "adaptive-lif", "tc_decay": 1e300}),
                        n_inputs=5)
    assert net.exc.decay == 1.0
    g = nir.read(write_nir(net, tmp_path / "if.nir"))
    assert isinstance(g.nodes["exc"], nir.IF)
    check_graph(g, net)


def test_plugin_neuron_model_is_refused_in_one_line(tmp_path, small_config):
    # nonleaky-if comes from tinysnn-example, which scripts/setup.sh installs as it does this plugin
    net = Network.build(small_config(exc_neuron={"name": "nonleaky-if"}), n_inputs=5)
    with pytest.raises(ConfigError, match="no NIR mapping"):
        write_nir(net, tmp_path / "x.nir")
    assert not (tmp_path / "x.nir").exists()


def test_exporter_meets_its_contract_and_one_without_suffix_is_refused():
    assert contracts.check("exporter", NIRExporter) == []

    class NoSuffix:
        def export(self, net, path):
            return path

    assert any("suffix" in p for p in contracts.check("exporter", NoSuffix))

    class WrongSignature:
        suffix = ".x"

        def export(self, net):
            return None

    assert any("export" in p for p in contracts.check("exporter", WrongSignature))
    reg = Registry(load_builtins=False, load_entry_points=False)

    class Plugin:
        from tinysnn_core import hookimpl

        @hookimpl
        def register_exporters(self, register):
            register("nosuffix", NoSuffix)
            register("good", NIRExporter)

    problems = reg.add_plugin(Plugin())
    assert reg.names("exporter") == ["good"] and "suffix" in problems[0]


def test_export_command_and_api(tmp_path, small_config, capsys):
    net = Network.build(small_config(), n_inputs=784)
    model = tmp_path / "m.tsnn"
    save_network(net, model)
    # the suffix is added to a path without one; the command prints where it wrote
    assert cli.main(["export", str(model), "--format", "nir", str(tmp_path / "out")]) == 0
    assert "out.nir" in capsys.readouterr().out
    check_graph(nir.read(tmp_path / "out.nir"), net)
    assert export_model(net, "NIR", tmp_path / "api.nir") == tmp_path / "api.nir"
    assert target_path("a/b.h5", ".nir") == Path("a/b.h5")
    # an unknown format lists the known ones, in one line, and writes nothing
    assert cli.main(["export", str(model), "--format", "onnx", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown exporter 'onnx'" in err and "nir" in err
    with pytest.raises(UnknownPluginError, match="known: .*nir"):
        export_model(net, "onnx", tmp_path / "o")
    # an option the exporter does not take is refused before anything is written
    assert cli.main(["export", str(model), "-f", "nir", str(tmp_path / "opt"), "-O", "x=1"]) == 2
    assert "takes no option(s) x" in capsys.readouterr().err
    assert not (tmp_path / "opt.nir").exists()
    assert parse_options(["a=1", "b=true", "c=word", 'd="q"']) == {"a": 1, "b": True,
                                                                    "c": "word", "d": "q"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_options(["novalue"])
    # a place that cannot be written is one line too, and leaves nothing behind
    (tmp_path / "plain").write_text("a file, not a directory")
    assert cli.main(["export", str(model), "-f", "nir", str(tmp_path / "plain" / "x.nir")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the NIR file" in err and err.strip().count("\n") == 0
    assert (tmp_path / "plain").read_text() == "a file, not a directory"
    # a damaged model file is the model file's one-line error
    model.write_bytes(model.read_bytes()[:100])
    assert cli.main(["export", str(model), "-f", "nir", str(tmp_path / "bad")]) == 2
    assert "tinysnn: error:" in capsys.readouterr().err and not (tmp_path / "bad.nir").exists()


def _roundtrip_script():
    """scripts/nir_roundtrip.py as a module (its outer half needs no torch)."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "scripts" / "nir_roundtrip.py"
    spec = importlib.util.spec_from_file_location("nir_roundtrip", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roundtrip_delays_and_our_side(small_config):
    from tinysnn_core.builtin.backend_numpy import NumpyBackend
    from tinysnn_core.ops import OpCounts

    rt = _roundtrip_script()
    # nirtorch spends one step closing the cycle at exc: the delay just before it is that step
    reduced = write_nir(Network.build(small_config(), n_inputs=9), Path(tempfile.mkdtemp()) / "r")
    g = nir.read(reduced)
    assert [d is g.nodes["exc_delay"] for d in rt._absorbed_delays(g)] == [True]
    dc = Network.build(small_config(topology={"name": "diehl-cook"}), n_inputs=9)
    g = nir.read(write_nir(dc, Path(tempfile.mkdtemp()) / "dc"))
    assert [d is g.nodes["inh_delay"] for d in rt._absorbed_delays(g)] == [True]
    # our side: the backend's counts, and the spikes of each sample's last presentation
    rng = np.random.default_rng(3)
    net = Network.build(small_config(n_neurons=10), n_inputs=784)
    images = (rng.random((6, 784)) < 0.2).astype(np.uint8) * rng.integers(1, 256, (6, 784),
                                                                             dtype=np.uint8)
    variant = Network(net.config.with_overrides(["exc_neuron.one_spike=false"]), net.w,
                      net.theta, net.topology)
    counts, retries, packed, other = rt.simulate_ours(net, images, 5, variants={"v": variant})
    expected = NumpyBackend().run(net, images, np.arange(6), learn=False, seed=5, ops=OpCounts())
    assert np.array_equal(counts, expected) and counts.sum() > 0
    for i in range(6):
        spikes = np.unpackbits(packed[i], axis=-1, count=784).astype(bool)
        assert np.array_equal(spikes, net.encoder.encode_dense(images[i], 5, i, retries[i], 40))
    a = rt.agreement(counts, counts, np.zeros(6, dtype=np.int64), np.zeros(10, dtype=np.int64))
    assert a["identical_counts"] == 1.0 and a["same_prediction"] == 1.0
    b = rt.agreement(counts, other["v"], np.zeros(6, dtype=np.int64), np.zeros(10, dtype=np.int64))
    assert b["mean_abs_total_spike_diff"] == np.abs(counts.sum(1) - other["v"].sum(1)).mean()
