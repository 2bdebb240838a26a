"""A plugin's neuron model on the board: the generic engine (firmware/engine_generic) with the
plugin's C step compiled in, against intsim on QEMU (the host board is the conformance kit's,
tinysnn_core.testing.neuron_conformance); what the generator refuses; the fast engine and its
calibration digest untouched."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serial_test_tools import need_qemu

from tinysnn_core import intsim
from tinysnn_core.fixedpoint import QFormat
from tinysnn_core.testing import synthetic_images, neuron_network
from tinysnn_serial import codegen
from tinysnn_serial import protocol as P
from tinysnn_serial.boards import BOARDS
from tinysnn_serial.costmodel import engine_digest
from tinysnn_serial.transports import PtyTransport, SerialTransport

pytest.importorskip("tinysnn_example", reason="the example plugin provides the neuron model")
NEURON = "nonleaky-if"


def test_the_generic_engine_runs_the_plugin_model_and_the_fast_engine_the_builtin_one():
    m = intsim.from_network(neuron_network(NEURON, n_neurons=12))
    exp = codegen.generate(m, "g")
    assert exp.engine == codegen.engine_name(m) == codegen.GENERIC_ENGINE_NAME
    assert "tsnn_neuron_step" in exp.files["neuron_step.h"]
    assert f"#define TSNN_NEURON_FLOOR ({m.exc.constants['FLOOR']})" in exp.files["model_data.h"]
    builtin = intsim.from_network(neuron_network("adaptive-lif", n_neurons=12))
    fast = codegen.generate(builtin, "f")
    assert fast.engine == codegen.ENGINE_NAME and "neuron_step.h" not in fast.files
    # the fast engine's sources, hence every board calibration, are those they were fitted on
    cal = json.loads((codegen.Path(codegen.__file__).parent / "calibration"
                      / "qemu-mps2-an385.json").read_text())
    assert cal["engine_digest"] == engine_digest()


def test_the_digest_follows_the_plugin_constants():
    m = intsim.from_network(neuron_network(NEURON, n_neurons=6))
    other = dataclasses.replace(m, exc=dataclasses.replace(m.exc, constants={"FLOOR": -1}))
    assert codegen.model_digest(m) != codegen.model_digest(other)


def test_what_the_generic_engine_cannot_run_is_refused(monkeypatch):
    m = intsim.from_network(neuron_network(NEURON, n_neurons=6))
    with_inh = dataclasses.replace(m, inh=m.exc)
    with pytest.raises(codegen.ExportError, match="direct lateral inhibition only"):
        codegen.generate(with_inh)
    from tinysnn_example.plugin import NonLeakyIF

    monkeypatch.setattr(NonLeakyIF, "c_step", None)
    with pytest.raises(codegen.ExportError, match="ships no C step"):
        codegen.generate(m)


def test_a_neuron_model_without_an_integer_mode_is_refused_by_name(monkeypatch):
    from tinysnn_core.errors import TinySNNError
    from tinysnn_example.plugin import NonLeakyIF

    net = neuron_network(NEURON, n_neurons=6)
    monkeypatch.delattr(NonLeakyIF, "integer_step")
    with pytest.raises(TinySNNError, match="'nonleaky-if'.*lacks integer_step"):
        intsim.from_network(net)


def test_generic_engine_matches_intsim_on_qemu_m3(tmp_path):
    need_qemu()
    board = BOARDS["qemu-mps2-an385"]
    m = dataclasses.replace(intsim.from_network(neuron_network(NEURON, n_neurons=20)),
                            exit_margin=2)
    images = synthetic_images(4, seed=4)
    ids = np.arange(4) * 5 + 1
    preds, counts = intsim.infer(m, images, 9, ids)
    assert counts.sum() > 0, "no spikes at all: the comparison would prove little"
    elf = board.build(codegen.generate(m, "g").write(tmp_path / "engine"), tmp_path / "build")
    with board.start(elf) as running:
        link = SerialTransport(running.url)
        link.open()
        try:
            dut = P.DeviceUnderTest(link, timeout=10.0, infer_timeout=120.0)
            assert dut.connect() == board.profile.name
            assert dut.profile()["engine"] == codegen.GENERIC_ENGINE_NAME
            for b, (image, sid) in enumerate(zip(images, ids)):
                res = dut.run_sample(image, 9, int(sid))
                assert res.counts == [int(v) for v in counts[b]], f"sample {sid}: counts differ"
                assert res.prediction == int(preds[b]), f"sample {sid}: prediction differs"
        finally:
            link.close()


def test_the_board_cost_model_calls_a_generic_engine_model_uncalibrated():
    """The board cost model was fitted on the fast engine: for a plugin's neuron model its
    figures are estimates only, which select --board leaves out."""
    from tinysnn_serial.costmodel import BoardCostModel

    m = intsim.from_network(neuron_network(NEURON, n_neurons=12))
    ops = {k: np.array([5, 7]) for k in intsim.INFER_OPS}
    cost = BoardCostModel("qemu-mps2-an385").integer_inference_cost(m, ops)
    assert cost["calibrated"] is False and codegen.GENERIC_ENGINE_NAME in cost["label"]
    builtin = intsim.from_network(neuron_network("adaptive-lif", n_neurons=12))
    assert BoardCostModel("qemu-mps2-an385").integer_inference_cost(builtin, ops)["calibrated"]


def test_an_integer_step_that_returns_floats_is_refused_by_name(monkeypatch):
    from tinysnn_core.errors import TinySNNError
    from tinysnn_example.plugin import NonLeakyIF

    m = intsim.from_network(neuron_network(NEURON, n_neurons=6))
    step = NonLeakyIF.integer_step
    monkeypatch.setattr(NonLeakyIF, "integer_step",
                        staticmethod(lambda c, u, r, i: (step(c, u, r, i)[0] * 1.0,
                                                         *step(c, u, r, i)[1:])))
    with pytest.raises(TinySNNError, match="'nonleaky-if': integer_step returned float64"):
        intsim.infer(m, synthetic_images(1, seed=0), 0)


@st.composite
def plugin_models(draw):
    """Small integer models of the example's neuron straight from the contract's constants, with
    the corners a trained model rarely reaches: saturation, a floor above the reset or below the
    format, negative thresholds and reset, no refractory period, 32-bit potentials, several
    presentations, early exit, empty classes."""
    n = draw(st.integers(1, 12))
    w_bits = draw(st.integers(1, 16))
    v_bits = draw(st.sampled_from([6, 8, 12, 16, 24, 32]))
    u_min, u_max = -(1 << (v_bits - 1)), (1 << (v_bits - 1)) - 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(0, 1 << w_bits, (784, n))
    w[rng.random((784, n)) < draw(st.floats(0, 0.9))] = 0
    th_scale = max(1, u_max // draw(st.sampled_from([1, 4, 64, 1024])))
    exc = intsim.NeuronCodes(
        model=NEURON, v_frac=draw(st.integers(0, v_bits - 2)), u_min=u_min, u_max=u_max,
        reset=int(rng.integers(u_min // 4, u_max // 4 + 1)),
        thresh=rng.integers(-th_scale // 8, th_scale, n), refrac=draw(st.integers(0, 6)),
        one_spike=draw(st.booleans()),
        constants={"FLOOR": int(rng.integers(u_min, u_max // 2 + 1))})
    rates = sorted(int(r) for r in rng.integers(1, (1 << 32) // 256, draw(st.integers(1, 4))))
    return intsim.IntegerModel(
        n_inputs=784, n_neurons=n, time_steps=draw(st.integers(1, 40)), w_codes=w,
        w_format=QFormat(0, w_bits, False), theta_codes=np.zeros(n, dtype=np.int64),
        theta_format=QFormat(7, 4, False), exc=exc, inh=None,
        lateral=int(rng.integers(-(u_max // 8) - 1, 1)), exc_to_inh=0,
        rate_units=np.array(rates, dtype=np.uint64), retry_min_spikes=draw(st.integers(0, 3 * n)),
        assignments=rng.integers(-1, 10, n), formats={}, exit_margin=draw(st.integers(0, 3)))


@settings(max_examples=3, deadline=None,   # a firmware build each: about 3 s
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=plugin_models(), seed=st.integers(0, 2**32 - 1))
def test_random_plugin_models_match_intsim_on_the_host(tmp_path_factory, m, seed):
    tmp = tmp_path_factory.mktemp("plugin")
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2, 784)).astype(np.uint8)
    images[rng.random((2, 784)) < 0.7] = 0
    ids = np.array([3, 11])
    preds, counts = intsim.infer(m, images, seed, ids)
    engine = codegen.generate(m, "r").write(tmp / "engine")
    try:   # UBSan: no overflow, no bad shift (a compiler without the runtimes builds plainly)
        elf = BOARDS["host"].build(engine, tmp / "build", sanitize=True)
    except Exception:  # noqa: BLE001
        elf = BOARDS["host"].build(engine, tmp / "build")
    with PtyTransport([str(elf)]) as link:
        dut = P.DeviceUnderTest(link, timeout=5.0)
        dut.connect()
        for b, (image, sid) in enumerate(zip(images, ids)):
            res = dut.run_sample(image, seed, int(sid))
            assert res.counts == [int(c) for c in counts[b]], f"sample {sid}: counts differ"
            assert res.prediction == int(preds[b]), f"sample {sid}: prediction differs"
