"""The engine on both emulated boards, against the host integer simulator: the Cortex-M3
(qemu-mps2-an385: the folded neuron pass, SSAT) and the Cortex-M4 port (qemu-mps2-an386: the
DSP pass, two neurons per instruction), the paths the host firmware never takes. Small models,
a few samples each; skipped without arm-none-eabi-gcc and qemu-system-arm (CI installs both)."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from serial_models import sample_images, small_model
from serial_test_tools import need_qemu
from test_engine_speed_parity import _bright, _int_model

from tinysnn_core import intsim
from tinysnn_core.modelfile import save_network
from tinysnn_serial import codegen, deploy
from tinysnn_serial import protocol as P
from tinysnn_serial.boards import BOARDS, QemuBoard
from tinysnn_serial.transports import SerialTransport

SEED = 0xC0FFEE
QEMU_BOARDS = ["qemu-mps2-an385", "qemu-mps2-an386"]


def qemu_parity(board_name, m, images, tmp_path, seed=SEED):
    """Build ``m`` for the board, run ``images`` on QEMU; every count and prediction must be
    intsim's. Returns (intsim's operation counts, the board's instruction counts)."""
    board = BOARDS[board_name]
    eng = codegen.generate(m, "q").write(tmp_path / "engine")
    elf = board.build(eng, tmp_path / "build")
    ids = np.arange(len(images)) * 5 + 1
    preds, counts, ops = intsim.infer(m, images, seed, ids, with_ops=True)
    cycles = []
    with board.start(elf) as running:
        t = SerialTransport(running.url)
        t.open()
        try:
            dut = P.DeviceUnderTest(t, timeout=10.0, infer_timeout=120.0)
            assert dut.connect() == board_name
            assert dut.profile()["engine"] == codegen.ENGINE_NAME
            for b, (image, sid) in enumerate(zip(images, ids)):
                res = dut.run_sample(image, seed, int(sid))
                assert res.counts == [int(v) for v in counts[b]], f"sample {sid}: counts differ"
                assert res.prediction == int(preds[b]), f"sample {sid}: prediction differs"
                cycles.append(res.cycles)
        finally:
            t.close()
    assert counts.sum() > 0, "no spikes at all: the comparison would prove little"
    return ops, cycles


def model_fast_path(exit_margin=2):
    """2-bit weights, 16-bit potential, per-neuron thresholds, padding neurons (40 of 48), early
    exit: the M3's folded pass and the M4's DSP pass, with and without inhibition."""
    net = small_model("tinysnn", n=40, time_steps=100, w_bits=2, v_bits=16, seed=11)
    return dataclasses.replace(intsim.from_network(net), exit_margin=exit_margin,
                               retry_min_spikes=3)


def test_the_m4_board():
    p = BOARDS["qemu-mps2-an386"].profile
    assert (p.cpu, p.clock_hz, p.port, p.emulated) == ("Cortex-M4 (QEMU)", 25_000_000,
                                                       "qemu-mps2-an386", True)
    assert "instructions" in p.cycle_source and "icount" in p.cycle_source
    board = BOARDS["qemu-mps2-an386"]
    assert isinstance(board, QemuBoard)
    argv = board.qemu_argv("fw.elf", 1234)
    assert argv[argv.index("-M") + 1] == "mps2-an386"
    assert "shift=0,align=off,sleep=on" in argv[argv.index("-icount") + 1]


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_fast_path_with_early_exit(board, tmp_path):
    need_qemu()
    m = model_fast_path()
    ops, cycles = qemu_parity(board, m, sample_images(4), tmp_path)
    assert ops["exit_early"].sum() > 0
    # a guard against the engine losing its speed: the measured cost per neuron update, draw
    # and weight word stays within a generous bound (docs/boards.md, "Engine cost")
    words = codegen.weight_layout(2, m.n_neurons)[1]
    bound = (ops["steps"] * (48 * 12 + 250) + ops["draws"] * 12
             + ops["input_spikes"] * words * 12 + ops["presentations"] * 6000 + 30000)
    assert all(c <= b for c, b in zip(cycles, bound)), (cycles, bound.tolist())


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_other_paths(board, tmp_path):
    """Diehl & Cook, 4-bit weights, 12-bit potential (the M4's plain pass, the M3's folded pass
    with a 12-bit saturation), early exit; a uniform threshold with no refractory period and no
    one-spike rule (the uniform-threshold passes; several spikes a step, sources that are not
    refractory); bright images at a high rate (steps that spill the 8-bit fields)."""
    need_qemu()
    net = small_model("diehl-cook", n=24, time_steps=80, w_bits=4, v_bits=12,
                      rounding="truncation", seed=4)
    m = dataclasses.replace(intsim.from_network(net), exit_margin=1)
    qemu_parity(board, m, sample_images(3), tmp_path / "dc")
    rng = np.random.default_rng(3)
    w = rng.integers(0, 4, (784, 44))
    m2 = _int_model(44, 60, w, decay=32200, thresh=np.full(44, 3000), refrac=0,
                    one_spike=False, lateral=-1000, reset=-500, rates=(1_500_000,))
    qemu_parity(board, m2, sample_images(3), tmp_path / "uniform")
    m3 = _int_model(44, 40, w, thresh=rng.integers(1500, 4000, 44), refrac=1, lateral=-9000,
                    reset=-500, rates=(16_000_000,))
    ops, _ = qemu_parity(board, m3, _bright(2, seed=1), tmp_path / "wide")
    assert (ops["input_spikes"] / ops["steps"]).min() > 85, "no step spilled its fields"


def test_wide_weights_on_the_m4(tmp_path):
    """8-bit weights: 16-bit lanes, the folded pass on the M4 too."""
    need_qemu()
    net = small_model("tinysnn", n=20, time_steps=60, w_bits=8, v_bits=16, seed=8)
    qemu_parity("qemu-mps2-an386", intsim.from_network(net), sample_images(3), tmp_path)


def test_deploy_to_the_m4_end_to_end(tmp_path):
    """tinysnn deploy on qemu-mps2-an386: generate, build for the Cortex-M4, launch QEMU, full
    parity, instruction counts, fewer than the M3 needs for the same samples."""
    need_qemu()
    net = small_model("tinysnn", n=32, time_steps=60, w_bits=2, v_bits=16, n_test=20, seed=2)
    path = tmp_path / "m2.tsnn"
    save_network(net, path)
    med = {}
    for board in QEMU_BOARDS:
        out = io.StringIO()
        summary = deploy.execute(model_path=path, board_name=board, samples=6,
                                 meter_name=None, meter_options={},
                                 results_path=tmp_path / f"{board}.jsonl", port=None,
                                 build=True, build_dir=tmp_path / f"build-{board}", out=out)
        assert summary["parity"] == 1.0 and summary["counts_identical"] == 1.0
        assert summary["board"] == board and summary["flash_bytes"] > 4096
        med[board] = summary["cycles"]["median"]
    assert 0 < med["qemu-mps2-an386"] < med["qemu-mps2-an385"]


def test_the_profiler_accounts_for_every_instruction(tmp_path):
    """engine_profile.py (docs/boards.md, "Engine cost"): the instructions it attributes to
    engine.c add up to the board's own icount measurement of the same inference."""
    need_qemu()
    import engine_profile

    net = small_model("tinysnn", n=16, time_steps=30, w_bits=2, v_bits=16, n_test=5, seed=6)
    path = tmp_path / "p.tsnn"
    save_network(net, path)
    counts, sym, measured = engine_profile.profile(path, "qemu-mps2-an386", samples=1,
                                                   build_dir=tmp_path / "b")
    engine = sum(n for a, n in counts.items() if sym[a][1] == "engine.c")
    funcs = {sym[a][0] for a in counts if sym[a][1] == "engine.c"}
    assert {"draw_inputs", "acc_rows", "pass_simd_body"} <= funcs
    assert abs(engine - measured[0]) <= 0.02 * measured[0] + 200, (engine, measured)
