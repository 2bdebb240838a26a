"""Shared fixtures: firmware builds (once per session, in a temporary directory)."""

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
