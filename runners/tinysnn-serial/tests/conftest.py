"""Shared fixtures: firmware builds (once per session, in a temporary directory)."""

import shutil

import pytest

from tinysnn_serial.boards import BOARDS


@pytest.fixture(scope="session")
def host_fw(tmp_path_factory):
    """The host firmware with the protocol test engine, built with ASan + UBSan when the
    compiler supports it (any memory error aborts the process and fails the test)."""
    board = BOARDS["host"]
    try:
        return board.build(build_dir=tmp_path_factory.mktemp("fw-host-san"), sanitize=True)
    except Exception:  # e.g. a compiler without the sanitizer runtimes
        return board.build(build_dir=tmp_path_factory.mktemp("fw-host"))


def need_arm_toolchain():
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (Debian: gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi); CI installs it")


def need_qemu():
    need_arm_toolchain()
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed (Debian: qemu-system-arm); CI installs it")
