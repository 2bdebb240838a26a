"""Board builds, memory fit checks, registration, and the QEMU board end to end."""

import random

import pytest
from serial_test_tools import need_arm_toolchain, need_qemu

from tinysnn_core.registry import Registry
from tinysnn_serial import plugin
from tinysnn_serial import protocol as P
from tinysnn_serial.boards import BOARDS, BoardFitError
from tinysnn_serial.transports import SerialTransport


def test_plugin_registers_boards_transports_command():
    reg = Registry(load_builtins=False, load_entry_points=False)
    reg.add_plugin(plugin, distribution="tinysnn-serial")
    assert {"host", "qemu-mps2-an385", "nucleo-l476rg", "nucleo-l432kc"} <= set(reg.names("board"))
    assert {"serial", "pty", "subprocess", "flaky"} <= set(reg.names("transport"))
    assert "board" in reg.names("command")


def test_fit_check_says_by_how_much():
    board = BOARDS["nucleo-l432kc"]
    # an FP32 N=400 network: 784*400 input weights + 400*400 inhibition weights, 4 bytes each
    big = board.estimate_fit(model_const_bytes=(784 * 400 + 400 * 400) * 4,
                             model_state_bytes=400 * 4 * 3, n_neurons=400)
    assert not big.fits and big.flash_over > 0
    msg = big.message()
    assert "does NOT fit nucleo-l432kc" in msg and "over by" in msg
    with pytest.raises(BoardFitError, match="over by"):
        board.require_fit(big)
    small = board.estimate_fit(model_const_bytes=784 * 400 // 2, model_state_bytes=400 * 2 * 3,
                               n_neurons=400)
    assert small.fits and "left" in small.message()


@pytest.mark.parametrize("name", ["nucleo-l476rg", "nucleo-l432kc"])
def test_real_board_firmware_builds_and_fits(tmp_path, name):
    need_arm_toolchain()
    board = BOARDS[name]
    elf = board.build(build_dir=tmp_path)
    assert elf.exists() and elf.with_suffix(".bin").exists()
    use = board.memory_use(elf)
    assert 1000 < use.flash_bytes < 16 * 1024 and use.ram_bytes < 16 * 1024
    assert board.check_fit(use.flash_bytes, use.ram_bytes).fits
    with pytest.raises(Exception, match="physical board"):
        board.start(elf)


def test_qemu_board_end_to_end(tmp_path):
    need_qemu()
    board = BOARDS["qemu-mps2-an385"]
    elf = board.build(build_dir=tmp_path)
    use = board.memory_use(elf)
    assert board.check_fit(use.flash_bytes, use.ram_bytes).fits
    rng = random.Random(3)
    with board.start(elf, log_path=tmp_path / "qemu.log") as running:
        assert running.url.startswith("socket://127.0.0.1:")
        with SerialTransport(running.url) as t:
            dut = P.DeviceUnderTest(t, timeout=5.0, transcript=open(tmp_path / "transcript.jsonl", "w"))
            assert dut.connect() == "qemu-mps2-an385"
            prof = dut.profile()
            assert prof["cycles"] == "qemu-icount-instructions" and prof["clock-hz"] == "25000000"
            image = bytes(rng.randrange(256) for _ in range(784))
            cycles = []
            for sid in range(3):
                res = dut.run_sample(image, 42, 7, n=2, warmup=1)
                assert (res.counts, res.prediction) == P.protocol_test_engine(image, 42, 7)
                cycles.append(res.cycles)
                assert res.infer["min"] <= res.cycles <= res.infer["max"]
            assert cycles[0] > 0
            # -icount: instruction-driven virtual time, same input -> same count (+- 1 tick)
            assert max(cycles) - min(cycles) <= 40
            assert dut.stats.retries == 0
