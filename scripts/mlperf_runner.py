"""Run the unmodified MLPerf Tiny runner (github.com/mlcommons/tiny, benchmark/runner) against
a tinySNN board that has no USB identity: the host board (a pty) or a QEMU board (a TCP
socket), as `tinysnn board start` prints them (docs/protocol.md, "The MLPerf Tiny runner").

The runner finds its device under test only among the serial ports that pyserial's
``list_ports.comports()`` reports with a USB vendor and product id, and opens it by path with
``serial.Serial``. This launcher, run with the runner's own Python environment:

1. opens the board's serial URL and reads away what the board printed before (its boot banner),
   as a board that booted before the runner opened its port would have;
2. creates a new pseudo-terminal and relays bytes unchanged between it and the board (the part a
   USB-UART bridge such as the ST-LINK's virtual COM port plays for a Nucleo);
3. wraps ``serial.tools.list_ports.comports`` so that, besides the real ports, it reports that
   pty with the pid.codes test id 1209:0001, the id of the device definition it writes
   (devices.yaml) -- the only thing it changes in the runner's process, nothing in its files;
4. writes the test script (tests.yaml) for the board's model, and runs the runner's main.py as
   ``__main__`` with ``-d devices.yaml -t tests.yaml -s DATASET -m MODE`` in SESSION_DIR, where
   the runner writes sessions/<time>/log.txt, results.txt and results.json.

    build/mlperf-runner-venv/bin/python scripts/mlperf_runner.py --runner RUNNER_DIR \
        --port /dev/pts/7 --dataset build/mlperf-data --mode a --session-dir build/mlperf/host-a

Energy mode needs a power board (an LPM01A or a Joulescope) and is refused by the runner
without one.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import sys
import threading
import time
import tty
from pathlib import Path

import serial
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

#: pid.codes' test VID:PID, for devices that are not sold (pid.codes/1209/0001)
VID, PID = 0x1209, 0x0001


def drain(port, quiet_s: float = 0.3, limit_s: float = 5.0) -> bytes:
    """Read until the board has been silent for ``quiet_s``."""
    out, quiet_since, start = b"", time.monotonic(), time.monotonic()
    while time.monotonic() - quiet_since < quiet_s and time.monotonic() - start < limit_s:
        chunk = port.read(4096)
        if chunk:
            out += chunk
            quiet_since = time.monotonic()
    return out


def ask(port, command: str, timeout_s: float = 10.0) -> list[str]:
    """One plain command, before the relay starts: its answer lines up to m-ready."""
    port.write(command.encode("ascii") + b"%")
    buf, deadline = b"", time.monotonic() + timeout_s
    while not buf.endswith(b"m-ready\r\n"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the board did not answer {command!r} (got {buf!r})")
        buf += port.read(4096)
    return buf.decode("ascii", "replace").splitlines()


class Relay:
    """Bytes between a new pty (the runner's side) and the board, unchanged, both ways."""

    def __init__(self, board):
        self.board = board
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)       # no echo, no line editing before the runner opens it
        self.path = os.ttyname(self.slave)
        self.running = True
        self.threads = [threading.Thread(target=self._to_board, daemon=True),
                        threading.Thread(target=self._to_runner, daemon=True)]
        for t in self.threads:
            t.start()

    def _to_board(self):
        while self.running:
            try:
                data = os.read(self.master, 4096)
            except OSError:          # no client has the pty open at this moment
                time.sleep(0.01)
                continue
            if data:
                self.board.write(data)

    def _to_runner(self):
        while self.running:
            data = self.board.read(4096)
            if data:
                os.write(self.master, data)

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(timeout=1.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", required=True, help="the runner's directory (benchmark/runner)")
    ap.add_argument("--port", required=True, help="the board's serial URL (tinysnn board start)")
    ap.add_argument("--dataset", required=True, help="the runner's data set directory "
                    "(scripts/mlperf_dataset.py)")
    ap.add_argument("--mode", choices=("a", "p"), required=True,
                    help="a: accuracy (every file once, infer 1 0); p: performance")
    ap.add_argument("--session-dir", required=True, help="the runner's working directory")
    ap.add_argument("--infer", nargs=2, type=int, default=(1, 0), metavar=("N", "W"),
                    help="performance mode: N timed inferences after W warm-ups per window")
    ap.add_argument("--windows", type=int, default=5, help="performance mode: windows "
                    "(the runner's rule is 5)")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--echo", action="store_true", help="the device definition's echo: the "
                    "runner logs every command and line it exchanges with the board")
    args = ap.parse_args(argv)

    runner = Path(args.runner).resolve()
    if not (runner / "main.py").is_file() or not (runner / "device_under_test.py").is_file():
        raise SystemExit(f"{runner} is not the MLPerf Tiny runner directory (no main.py and "
                         "device_under_test.py)")
    session = Path(args.session_dir).resolve()
    session.mkdir(parents=True, exist_ok=True)
    dataset = Path(args.dataset).resolve()

    board = serial.serial_for_url(args.port, baudrate=args.baud, timeout=0.05)
    drain(board)
    name = re.match(r"^m-name-dut-\[([^]]+)]$", ask(board, "name")[0])
    model = [m.group(1) for m in map(re.compile(r"^m-model-\[([^]]+)]$").match,
                                      ask(board, "profile")) if m]
    if not name or not model:
        raise SystemExit("the board did not give an EEMBC name and model line")
    board_name, model = name.group(1), model[0]
    if not (dataset / model / "y_labels.csv").is_file():
        raise SystemExit(f"{dataset / model}/y_labels.csv is missing: make it with "
                         "scripts/mlperf_dataset.py for the board's model")

    devices = (f"- name: {board_name}\n  type: dut\n  check_name: {board_name}\n"
               f"  echo: {args.echo}\n"
               f"  baud:\n    energy: 9600\n    performance: {args.baud}\n"
               f"    accuracy: {args.baud}\n  usb:\n    0x{VID:04X}: 0x{PID:04X}\n")
    step = (f"    - loop {args.windows}:\n      - download\n      - infer {args.infer[0]} "
            f"{args.infer[1]}\n" if args.mode == "p" else
            "    - loop:\n      - download\n      - infer 1 0\n")
    tests = (f"{model}:\n  name: tinysnn_{model}\n  model: {model}\n  truth_file: y_labels.csv\n"
             f"  script:\n{step}")
    (session / "devices.yaml").write_text(devices)
    (session / "tests.yaml").write_text(tests)

    relay = Relay(board)
    real_comports = serial.tools.list_ports.comports

    def comports(include_links=False):
        port = ListPortInfo(relay.path, skip_link_detection=True)
        port.vid, port.pid = VID, PID
        port.description = f"tinySNN {board_name} (pty relay to {args.port})"
        port.hwid = f"USB VID:PID={VID:04X}:{PID:04X} (pty relay)"
        return list(real_comports(include_links)) + [port]

    serial.tools.list_ports.comports = comports
    print(f"mlperf_runner: {board_name} ({model}) at {args.port}, relayed on {relay.path} "
          f"as USB {VID:04x}:{PID:04x}; runner {runner}", flush=True)
    os.chdir(session)
    sys.path.insert(0, str(runner))
    sys.argv = [str(runner / "main.py"), "-d", "devices.yaml", "-t", "tests.yaml",
                "-s", str(dataset), "-m", args.mode]
    try:
        runpy.run_path(str(runner / "main.py"), run_name="__main__")
    finally:
        relay.stop()
        board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
