"""The C engine against the host integer simulator (tinysnn_core.intsim, the oracle): the host
firmware, built with the generated model (ASan + UBSan when available), over a pty; spike
counts and predictions must be identical for every sample."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serial_models import sample_images, small_model

from tinysnn_core import intsim
from tinysnn_core.fixedpoint import QFormat
from tinysnn_serial import codegen
from tinysnn_serial import protocol as P
from tinysnn_serial.boards import BOARDS, firmware_dir
from tinysnn_serial.transports import PtyTransport

SEED = 0xC0FFEE


def build_host(engine_dir, build_dir, sanitize=True):
    if not sanitize:
        return BOARDS["host"].build(engine_dir, build_dir)
    try:
        return BOARDS["host"].build(engine_dir, build_dir, sanitize=True)
    except Exception:  # a compiler without the sanitizer runtimes
        return BOARDS["host"].build(engine_dir, build_dir)


def device_results(elf, images, seed, ids):
    out = []
    with PtyTransport([str(elf)]) as t:
        dut = P.DeviceUnderTest(t, timeout=5.0)
        dut.connect()
        prof = dut.profile()
        assert prof["engine"] == codegen.ENGINE_NAME
        for image, sid in zip(images, ids):
            res = dut.run_sample(image, seed, int(sid))
            out.append((res.counts, res.prediction))
    return out


def check_parity(m, images, tmp_path, seed=SEED, name="t", sanitize=False):
    exp = codegen.generate(m, name)
    eng = exp.write(tmp_path / "engine")
    elf = build_host(eng, tmp_path / "build", sanitize)
    ids = np.arange(len(images)) * 7 + 3
    preds, counts = intsim.infer(m, images, seed, ids)
    got = device_results(elf, images, seed, ids)
    for b, (c, p) in enumerate(got):
        assert c == [int(v) for v in counts[b]], f"sample {ids[b]}: spike counts differ"
        assert p == int(preds[b]), f"sample {ids[b]}: prediction differs"
    return counts


@pytest.mark.parametrize("topology,w_bits,v_bits,rounding", [
    ("tinysnn", 4, 16, "nearest"),
    ("tinysnn", 3, 8, "truncation"),
    ("tinysnn", 8, 12, "nearest"),
    ("diehl-cook", 4, 12, "truncation"),
    ("diehl-cook", 8, 16, "nearest"),
    ("diehl-cook", 3, 8, "nearest"),
])
def test_engine_matches_intsim(tmp_path, topology, w_bits, v_bits, rounding):
    net = small_model(topology, n=20, time_steps=70, w_bits=w_bits, v_bits=v_bits,
                      rounding=rounding, seed=w_bits + v_bits)
    m = intsim.from_network(net)
    counts = check_parity(m, sample_images(5), tmp_path)
    assert counts.sum() > 0, "no spikes at all: the comparison would prove little"


def test_pack_round_trip():
    rng = np.random.default_rng(0)
    for bits in range(1, 17):
        for n in (1, 7, 16, 33):
            codes = rng.integers(0, 1 << bits, (784, n))
            words, half, wpr = codegen.pack_weights(codes, bits)
            assert half == 16 // bits and words.dtype == np.uint32
            assert len(words) == 784 * wpr and wpr * 2 * half >= n
            assert (codegen.unpack_weights(words, bits, 784, n) == codes).all()


def test_generated_code_compiles_without_warnings(tmp_path):
    """-Wall -Wextra -Werror (and -pedantic), for the host compiler and the Cortex-M3 one."""
    for topology, wb, vb in (("tinysnn", 4, 16), ("diehl-cook", 8, 24)):
        m = intsim.from_network(small_model(topology, n=10, w_bits=wb, v_bits=vb))
        eng = codegen.generate(m, "w").write(tmp_path / topology)
        compilers = [["cc"]]
        if shutil.which("arm-none-eabi-gcc"):
            compilers.append(["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb"])
        for cc in compilers:
            for src in ("engine.c", "model_data.c"):
                subprocess.run(cc + ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wshadow",
                                     "-Wconversion", "-Wno-sign-conversion", "-Werror", "-Os",
                                     "-c", f"-I{firmware_dir()}", f"-I{eng}", str(eng / src),
                                     "-o", str(tmp_path / "x.o")], check=True)


def test_unsupported_models_are_refused():
    m = intsim.from_network(small_model(n=4, w_bits=4))
    m.w_format = QFormat(0, 20, False)
    with pytest.raises(codegen.ExportError, match="20-bit weights"):
        codegen.generate(m)


# ---- random integer models ------------------------------------------------------------------

@st.composite
def integer_models(draw):
    """Small integer models straight from the contract's constants, with the corners the
    trained models rarely reach: saturation, negative reset, no refractory period, floor or
    round-half-up leak, a leak of 1.0 or 0, 64-bit potentials, several presentations, empty
    classes, the inhibitory layer."""
    n = draw(st.integers(1, 12))
    t = draw(st.integers(1, 40))
    w_bits = draw(st.integers(1, 16))
    v_bits = draw(st.sampled_from([6, 8, 12, 16, 24, 32]))
    v_frac = draw(st.integers(0, v_bits - 2))
    u_min, u_max = -(1 << (v_bits - 1)), (1 << (v_bits - 1)) - 1
    w_frac = w_bits
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(0, 1 << w_bits, (784, n))
    w[rng.random((784, n)) < draw(st.floats(0, 0.9))] = 0

    def layer(one_spike):
        fd = draw(st.integers(0, 20))
        decay = draw(st.one_of(st.just(1 << fd), st.just(0), st.integers(0, 1 << fd)))
        th_scale = max(1, u_max // draw(st.sampled_from([1, 4, 64, 1024])))
        return intsim.LayerCodes(
            v_frac=v_frac, u_min=u_min, u_max=u_max, decay=decay, decay_frac=fd,
            decay_round=draw(st.booleans()),
            reset=int(rng.integers(u_min // 4, u_max // 4 + 1)),
            thresh=rng.integers(-th_scale // 8, th_scale, n),
            refrac=draw(st.integers(0, 6)), one_spike=one_spike)

    exc = layer(draw(st.booleans()))
    inh = layer(False) if draw(st.booleans()) else None
    rates = sorted(int(r) for r in rng.integers(1, (1 << 32) // 256, draw(st.integers(1, 4))))
    fmt = QFormat(0, w_frac, False)
    return intsim.IntegerModel(
        n_inputs=784, n_neurons=n, time_steps=t, w_codes=w, w_format=fmt,
        theta_codes=np.zeros(n, dtype=np.int64), theta_format=QFormat(7, 4, False), exc=exc,
        inh=inh, lateral=int(rng.integers(-(u_max // 8) - 1, 1)),
        exc_to_inh=int(rng.integers(0, u_max // 2 + 1)),
        rate_units=np.array(rates, dtype=np.uint64),
        retry_min_spikes=draw(st.integers(0, 3 * n)),
        assignments=rng.integers(-1, 10, n), formats={})


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=integer_models(), seed=st.integers(0, 2**32 - 1))
def test_random_integer_models_match_intsim(tmp_path_factory, m, seed):
    tmp = tmp_path_factory.mktemp("rand")
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2, 784)).astype(np.uint8)
    images[rng.random((2, 784)) < 0.7] = 0
    check_parity(m, images, tmp, seed=seed, sanitize=True)  # UBSan: no overflow, no bad shift
