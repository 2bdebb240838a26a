"""`tinysnn board start` stops its emulator on Ctrl-C, SIGTERM and SIGHUP: the QEMU process it
started is gone when it exits."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serial_test_tools import need_qemu

BOARD = "qemu-mps2-an385"
CLI = [sys.executable, "-c", "import sys; from tinysnn_core.cli import main; sys.exit(main())"]


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the live processes whose parent is ``pid``, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended while we looked
        comm = text[text.index("(") + 1:text.rindex(")")]
        state, ppid = text[text.rindex(")") + 2:].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.append((int(stat.parent.name), comm))
    return out


def read_until(proc, pattern: str, timeout: float) -> re.Match:
    """Read the process's stdout until a line matches ``pattern``."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            m = re.search(pattern, line)
            if m:
                return m
    raise AssertionError(f"no line matching {pattern!r} in {timeout} s; output: {seen!r}")


@pytest.fixture(scope="module")
def firmware_dir(tmp_path_factory):
    need_qemu()
    build = tmp_path_factory.mktemp("start-signals")
    proc = subprocess.run(CLI + ["board", "build", BOARD, "--build-dir", str(build)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return build


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_board_start_stops_qemu_on_signal(firmware_dir, signum):
    proc = subprocess.Popen(CLI + ["board", "start", BOARD, "--build-dir", str(firmware_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # our signals reach it only by os.kill
    qemu = []
    try:
        port = int(read_until(proc, r"running: socket://127\.0\.0\.1:(\d+)", 60).group(1))
        qemu = [pid for pid, comm in children(proc.pid) if comm.startswith("qemu-system")]
        assert len(qemu) == 1, children(proc.pid)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the board's serial port is open

        os.kill(proc.pid, signum)
        code = proc.wait(timeout=15)
        assert not Path(f"/proc/{qemu[0]}").exists(), f"QEMU {qemu[0]} still runs after {signum!r}"
        assert code == 0, f"exit code {code}: {proc.stderr.read()[-2000:]}"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        for pid in qemu:  # a failed run must not leave QEMU behind either
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
