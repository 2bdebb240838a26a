"""The fast engine's own paths against the host integer simulator (tinysnn_core.intsim), on the
host firmware over a pty: early exit, every field layout (8-bit fields for 1-, 2- and 4-bit
weights, 16-bit lanes otherwise, and the 32-bit spill of a step with more input spikes than a
field holds), the neurons updated by the exact rule after the pass (refractory ones, sources
that are not refractory), several neurons over threshold in one step, and the folded and plain
neuron passes. The Cortex-M paths (the M3's folded pass, the M4's DSP pass) are checked on QEMU
in test_m4_port.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serial_models import sample_images, small_model
from test_engine_parity import check_parity

from tinysnn_core import intsim
from tinysnn_core.fixedpoint import QFormat


def _ops(m, images, seed=0xC0FFEE):
    ids = np.arange(len(images)) * 7 + 3
    _, _, ops = intsim.infer(m, images, seed, ids, with_ops=True)
    return {k: int(np.sum(v)) for k, v in ops.items()}


def _bright(k, seed=0, p_on=0.3):
    """k images with many full-intensity pixels: many input spikes per step."""
    rng = np.random.default_rng(seed)
    img = np.where(rng.random((k, 784)) < p_on, 255, 0).astype(np.uint8)
    return img


@pytest.mark.parametrize("topology,w_bits,v_bits,margin,min_spikes", [
    ("tinysnn", 2, 16, 3, 5),   # Diehl & Cook with early exit: test_m4_port.py, and below
])
def test_early_exit_matches_intsim(tmp_path, topology, w_bits, v_bits, margin, min_spikes):
    net = small_model(topology, n=20, time_steps=120, w_bits=w_bits, v_bits=v_bits,
                      seed=3 + w_bits)
    m = dataclasses.replace(intsim.from_network(net), exit_margin=margin,
                            retry_min_spikes=min_spikes)
    images = sample_images(4)
    check_parity(m, images, tmp_path)
    ops = _ops(m, images)
    assert 0 < ops["exit_early"], "no presentation ended early: the test would prove little"


@pytest.mark.parametrize("w_bits,rate_scale", [(1, 1), (2, 8), (4, 8), (16, 1)])
def test_field_layouts_match_intsim(tmp_path, w_bits, rate_scale):
    """1, 2, 4 bits: 8-bit fields (rate_scale 8 makes steps with more input spikes than a field
    holds: the 32-bit spill); 16 bits: 16-bit lanes that hold one row, every step with two
    input spikes spills (3 and 8 bits, 16-bit lanes: test_engine_parity.py)."""
    net = small_model("tinysnn", n=37, time_steps=50, w_bits=w_bits, v_bits=16,
                      seed=20 + w_bits)
    m = intsim.from_network(net)
    m.rate_units = np.minimum(np.asarray(m.rate_units, dtype=np.uint64) * rate_scale,
                              np.uint64((1 << 32) // 256 - 1))
    images = _bright(3, seed=w_bits) if rate_scale > 1 else sample_images(3)
    counts = check_parity(m, images, tmp_path)
    assert counts.sum() > 0
    if rate_scale > 1:
        assert _ops(m, images)["input_spikes"] / _ops(m, images)["steps"] > 255 // (
            (1 << w_bits) - 1), "no step spilled its fields"


def _int_model(n, t, w, *, v_bits=16, v_frac=6, decay=30000, fd=15, round_=True, reset=0,
               thresh=None, refrac=3, one_spike=True, lateral=-200, rates=(1_000_000,),
               min_spikes=0, margin=0, assign=None, inh=None, exc_to_inh=0):
    u_min, u_max = -(1 << (v_bits - 1)), (1 << (v_bits - 1)) - 1
    th = np.full(n, 300, dtype=np.int64) if thresh is None else np.asarray(thresh, np.int64)
    exc = intsim.LayerCodes(v_frac=v_frac, u_min=u_min, u_max=u_max, decay=decay,
                            decay_frac=fd, decay_round=round_, reset=reset, thresh=th,
                            refrac=refrac, one_spike=one_spike)
    bits = int(np.max(w)).bit_length() or 1
    return intsim.IntegerModel(
        n_inputs=784, n_neurons=n, time_steps=t, w_codes=np.asarray(w, dtype=np.int64),
        w_format=QFormat(0, bits, False), theta_codes=np.zeros(n, dtype=np.int64),
        theta_format=QFormat(7, 4, False), exc=exc, inh=inh, lateral=lateral,
        exc_to_inh=exc_to_inh, rate_units=np.array(rates, dtype=np.uint64),
        retry_min_spikes=min_spikes,
        assignments=np.arange(n) % 10 if assign is None else np.asarray(assign), formats={},
        exit_margin=margin)


def test_many_crossings_and_refractory_crossings(tmp_path):
    """Identical weight columns and one threshold: many neurons cross in the same step (the
    one-spike winner among them, counted in neuron order across the storage order); a reset
    above the threshold: refractory neurons cross again while refractory; a 24-bit potential:
    the plain pass."""
    rng = np.random.default_rng(5)
    col = rng.integers(0, 4, 784)
    w = np.repeat(col[:, None], 40, axis=1)
    w[:, ::7] = rng.integers(0, 4, (784, 6))
    th = np.full(40, 900)
    th[3::5] = 100                        # below the reset: they keep crossing when refractory
    m = _int_model(40, 60, w, reset=200, thresh=th, refrac=2, lateral=-50)
    counts = check_parity(m, sample_images(3), tmp_path / "a")
    assert counts.sum() > 0
    m24 = _int_model(40, 60, w * 40, v_bits=24, v_frac=10, decay=60000, fd=16, reset=-3000,
                     thresh=np.full(40, 20000), refrac=0, one_spike=False, lateral=-900)
    assert check_parity(m24, sample_images(3), tmp_path / "b").sum() > 0


def test_sources_that_are_not_refractory(tmp_path):
    """No refractory period and no one-spike rule: every neuron that spiked inhibits the others
    in the next step but not itself (the exact rule after the pass); a strong inhibition with
    many sources makes the folded pass's bounds fail (the plain pass takes those steps)."""
    rng = np.random.default_rng(9)
    w = rng.integers(0, 16, (784, 30))
    m = _int_model(30, 50, w, thresh=rng.integers(200, 2000, 30), refrac=0, one_spike=False,
                   lateral=-4000, reset=-100)
    assert check_parity(m, sample_images(3), tmp_path).sum() > 0


# ---- random integer models with early exit ----------------------------------------------------

@st.composite
def exit_models(draw):
    n = draw(st.integers(1, 40))
    t = draw(st.integers(1, 60))
    w_bits = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16]))
    v_bits = draw(st.sampled_from([8, 12, 16, 20, 32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(0, 1 << w_bits, (784, n))
    w[rng.random((784, n)) < draw(st.floats(0, 0.9))] = 0
    u_max = (1 << (v_bits - 1)) - 1
    fd = draw(st.integers(0, 20))
    th_scale = max(1, u_max // draw(st.sampled_from([1, 16, 256])))
    inh = None
    if draw(st.booleans()):
        inh = intsim.LayerCodes(v_frac=4, u_min=-u_max - 1, u_max=u_max, decay=1 << fd,
                                decay_frac=fd, decay_round=False, reset=0,
                                thresh=rng.integers(0, th_scale, n), refrac=1, one_spike=False)
    uniform = draw(st.booleans())
    th = np.full(n, th_scale // 2) if uniform else rng.integers(-th_scale // 8, th_scale, n)
    m = _int_model(n, t, w, v_bits=v_bits, v_frac=min(8, v_bits - 2),
                   decay=draw(st.integers(0, 1 << fd)), fd=fd, round_=draw(st.booleans()),
                   reset=int(rng.integers(-u_max // 4, u_max // 4 + 1)), thresh=th,
                   refrac=draw(st.integers(0, 5)), one_spike=draw(st.booleans()),
                   lateral=int(rng.integers(-(u_max // 8) - 1, 1)),
                   rates=sorted(int(r) for r in rng.integers(1, (1 << 32) // 256,
                                                              draw(st.integers(1, 3)))),
                   min_spikes=draw(st.integers(0, 2 * n)), margin=draw(st.integers(0, 4)),
                   assign=rng.integers(-1, 10, n), inh=inh,
                   exc_to_inh=int(rng.integers(0, u_max // 2 + 1)))
    return m


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=exit_models(), seed=st.integers(0, 2**32 - 1))
def test_random_models_with_early_exit_match_intsim(tmp_path_factory, m, seed):
    tmp = tmp_path_factory.mktemp("exit")
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2, 784)).astype(np.uint8)
    images[rng.random((2, 784)) < 0.7] = 0
    check_parity(m, images, tmp, seed=seed, sanitize=True)  # UBSan: no overflow, no bad shift
