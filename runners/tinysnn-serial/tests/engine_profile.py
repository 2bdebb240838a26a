"""Where the firmware's instructions go, on an emulated board: every executed guest instruction,
attributed to its function and source line.

QEMU logs each translated block (``-d in_asm``: its guest instructions) and each execution of a
block (``-d exec,nochain``: one line per execution, no chaining, so none is missed) to a pipe;
this script counts the instructions of every executed block per address while the firmware
runs real samples over its UART, then maps the addresses to functions and lines with
``addr2line -f -i`` (the innermost function of inlined code). Run from the repository root:

    .venv/bin/python runners/tinysnn-serial/tests/engine_profile.py MODEL.tsnn \\
        --board qemu-mps2-an385 --samples 3

It prints, per engine function (and per source line with ``--lines``), the instructions per
inference averaged over the samples, next to the board's own icount-based measurement. Counts
cover only the instructions of ``engine.c``; the protocol's share is printed separately. A
block cut short by QEMU's instruction budget is counted whole (a small over-count, well under
0.1% here).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_TRACE = re.compile(rb"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/([0-9a-f]+)/([0-9a-f]+)\]")
_INSN = re.compile(rb"^0x([0-9a-f]+):")


def _reader(path, counts: collections.Counter, done: threading.Event):
    """Parse QEMU's log: TB translations (IN: blocks) and executions (Trace lines)."""
    blocks: dict[bytes, list[int]] = {}   # "pc/flags/cflags" -> guest instruction addresses
    pending: list[int] | None = None      # the block just translated
    cur: list[int] | None = None
    execs: collections.Counter = collections.Counter()
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"Trace"):
                m = _TRACE.match(line)
                if m is None:
                    continue
                key = m.group(1) + b"/" + m.group(2) + b"/" + m.group(3)
                if pending is not None:
                    if pending and pending[0] == int(m.group(1), 16):
                        blocks[key] = pending
                    pending = None
                execs[key] += 1
            elif line.startswith(b"IN:"):
                cur = []
                pending = cur
            elif cur is not None:
                m = _INSN.match(line)
                if m is not None:
                    cur.append(int(m.group(1), 16))
                elif not line.strip():
                    cur = None
    for key, n in execs.items():
        for addr in blocks.get(key, ()):
            counts[addr] += n
    done.set()


def symbolize(elf, addrs, tool="arm-none-eabi-addr2line"):
    """address -> (innermost function, file basename, line)."""
    addrs = sorted(addrs)
    # -a starts each address's answer with the address; -i adds one (function, file:line)
    # pair per outer inline level after the innermost one
    out = subprocess.run([tool, "-a", "-f", "-i", "-e", str(elf)] + [hex(a) for a in addrs],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    res, i = {}, 0
    while i < len(out):
        addr = int(out[i], 16)
        frames = []
        i += 1
        while i + 1 < len(out) and not out[i].startswith("0x"):
            file, _, line = out[i + 1].rpartition(":")
            frames.append((out[i], os.path.basename(file), line.split()[0] if line else "?"))
            i += 2
        # the innermost frame of the firmware's own sources (a compiler header's inline
        # function, e.g. an arm_acle.h intrinsic, counts for the line that called it)
        own = [f for f in frames if f[1] in ("engine.c", "protocol.c", "main.c", "crc32.c",
                                              "port.c", "startup.c")]
        res[addr] = (own or frames or [("?", "?", "?")])[0]
    return res


def profile(model_path, board_name="qemu-mps2-an385", samples=3, first=0, build_dir=None):
    """Build the model's firmware as deploy does, run test samples ``first ..`` under QEMU
    with its log on a pipe. Returns (instructions executed per guest address, address ->
    (function, file, line), the board's own instruction count of each inference)."""
    from tinysnn_serial import deploy
    from tinysnn_serial import protocol as P
    from tinysnn_serial.boards import BOARDS, _free_tcp_port
    from tinysnn_serial.transports import SerialTransport

    board = BOARDS[board_name]
    net, m = deploy.load_model(model_path)
    stem, _ = deploy.model_id(model_path)
    name = deploy.firmware_model_name(stem, deploy.codegen.model_digest(m))
    work = Path(build_dir or tempfile.mkdtemp(prefix="tsnn-prof-"))
    elf, *_ = deploy.prepare(net, m, board, name=name, build_dir=work)
    images, _, seed, _ = deploy.test_split(net, first + samples)
    fifo = work / "qemu.log"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    counts: collections.Counter = collections.Counter()
    done = threading.Event()
    th = threading.Thread(target=_reader, args=(fifo, counts, done), daemon=True)
    th.start()
    port = _free_tcp_port()
    argv = board.qemu_argv(elf, port) + ["-d", "in_asm,exec,nochain", "-D", str(fifo)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    measured = []
    try:
        t = SerialTransport(f"socket://127.0.0.1:{port}", connect_timeout=20)
        t.open()
        dut = P.DeviceUnderTest(t, timeout=60.0, infer_timeout=600.0)
        dut.connect()
        for sid in range(first, first + samples):
            res = dut.run_sample(images[sid], seed, sid)
            measured.append(res.cycles)
        t.close()
    finally:
        time.sleep(0.2)
        proc.terminate()
        proc.wait()
    if not done.wait(120):
        raise RuntimeError("QEMU's log was not read to its end (did qemu-system-arm start?)")
    sym = symbolize(elf, counts)
    return counts, sym, measured


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--board", default="qemu-mps2-an385")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--first", type=int, default=0, help="the first test sample")
    ap.add_argument("--lines", type=int, default=0, help="also the N busiest source lines")
    ap.add_argument("--build-dir")
    ap.add_argument("--region", action="append", default=[], metavar="NAME=LO-HI",
                    help="count engine.c lines LO..HI as NAME instead of by function "
                         "(for an engine whose hot loops share one function)")
    args = ap.parse_args(argv)
    regions = []
    for spec in args.region:
        name, _, rng = spec.partition("=")
        lo, _, hi = rng.partition("-")
        regions.append((int(lo), int(hi or lo), name))
    counts, sym, measured = profile(args.model, args.board, args.samples, args.first,
                                    args.build_dir)
    k = len(measured)
    by_func: collections.Counter = collections.Counter()
    by_line: collections.Counter = collections.Counter()
    other: collections.Counter = collections.Counter()
    for addr, n in counts.items():
        func, file, line = sym.get(addr, ("?", "?", "?"))
        if file == "engine.c":
            for lo, hi, name in regions:
                if line.isdigit() and lo <= int(line) <= hi:
                    func = name
                    break
            by_func[func] += n
            by_line[(func, line)] += n
        else:
            other[file] += n
    total = sum(by_func.values())
    print(f"{args.model} on {args.board}, samples {args.first}..{args.first + k - 1}: "
          f"measured {sum(measured) / k:,.0f} instructions per inference (icount), "
          f"engine.c counted {total / k:,.0f}")
    print(f"{'function':<24} {'instr/inference':>16} {'share':>7}")
    for func, n in by_func.most_common():
        print(f"{func:<24} {n / k:>16,.0f} {100 * n / total:>6.1f}%")
    if args.lines:
        print(f"\n{'function':<24} {'line':>6} {'instr/inference':>16} {'share':>7}")
        for (func, line), n in by_line.most_common(args.lines):
            print(f"{func:<24} {line:>6} {n / k:>16,.0f} {100 * n / total:>6.1f}%")
    print("\noutside the engine (protocol, port, start-up; per sample, loading included): "
          + ", ".join(f"{f} {n / k:,.0f}" for f, n in other.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
