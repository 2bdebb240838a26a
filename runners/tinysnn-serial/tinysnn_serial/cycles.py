"""Cortex-M3/M4 cycle estimates of firmware running under QEMU.

QEMU counts guest instructions (``-icount``), not cycles. The TCG plugin in
``runners/tinysnn-serial/qemu-plugin/cmcycles.c`` decodes every Thumb instruction when QEMU
translates it and charges it from the Cortex-M3/M4 TRM timing tables, with taken branches,
load/store pipelining and flash wait states (docs/boards.md, "Cycle estimate (QEMU TCG
plugin)"). It times each call of one function, entry to return, and appends one line per call
to a file; this module builds the plugin, runs a firmware ELF under QEMU with it, sends the
samples over the serial protocol and pairs each sample with the line its inference wrote.

    plugin = build_plugin()                                  # cached by source digest
    prof = cycle_profile("nucleo-l432kc")                    # cortex-m4, 4 flash wait states
    rows = estimate_samples(elf, [(image, seed, sid), ...], prof)

``tinysnn board cycles NAME --model M.tsnn --samples K`` does it for a model's test samples.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tinysnn_core.errors import TinySNNError

PLUGIN_NAME = "cmcycles"
PLUGIN_SOURCES = ("cmcycles.c", "qemu_plugin_api.h")

#: flash wait states of the physical boards at their profile clock: RM0351 (STM32L4x5/x6
#: reference manual), "Number of wait states according to CPU clock (HCLK) frequency": 4 WS for
#: 64 < HCLK <= 80 MHz in voltage range 1, as ports/stm32l4/port.c programs them. Emulated
#: boards run from SRAM without wait states. A profile attribute ``flash_wait_states`` wins.
FLASH_WAIT_STATES = {"nucleo-l476rg": 4, "nucleo-l432kc": 4}

CORES = ("cortex-m3", "cortex-m4")


class CycleError(TinySNNError):
    """The cycle estimate could not be made (the message says why)."""


@dataclass(frozen=True)
class CycleProfile:
    """What the plugin needs to know about a core and its memory.

    ``flash_wait_states`` apply to instruction fetches and data reads from the firmware's flash
    range (the ELF's read-only sections), with the STM32 ART accelerator off (cache and
    prefetch off: every 64-bit line is read from the flash array). ``div_cycles``,
    ``mull_cycles``, ``mlal_cycles``: the data-dependent costs, charged at the TRMs' worst case
    (SDIV/UDIV 2-12; on the M3, UMULL/SMULL 3-5 and UMLAL/SMLAL 4-7; all 1 on the M4)."""

    core: str
    flash_wait_states: int = 0
    div_cycles: int = 12
    mull_cycles: int = 5
    mlal_cycles: int = 7
    exception_entry: int = 12
    board: str = ""
    clock_hz: int | None = None

    def __post_init__(self):
        if self.core not in CORES:
            raise CycleError(f"no cycle model for {self.core!r}; known: {', '.join(CORES)}")
        if not 0 <= self.flash_wait_states <= 15:
            raise CycleError(f"flash wait states {self.flash_wait_states}: give 0..15")

    def plugin_args(self) -> list[str]:
        return [f"cpu={self.core}", f"div={self.div_cycles}", f"mull={self.mull_cycles}",
                f"mlal={self.mlal_cycles}", f"exc={self.exception_entry}",
                f"ws={self.flash_wait_states}"]

    def describe(self) -> str:
        ws = self.flash_wait_states
        mem = (f"{ws} flash wait states (ART accelerator off)" if ws else
               "0 wait states (code and data in zero-wait memory, or every fetch an ART hit)")
        return f"{self.core} timing tables, {mem}"


def core_of(profile) -> str:
    """``cortex-m3`` or ``cortex-m4`` from a board profile's ``cpu`` ("Cortex-M4F (...)")."""
    m = re.search(r"cortex-m(\d+)", str(getattr(profile, "cpu", profile)), re.IGNORECASE)
    core = f"cortex-m{m.group(1)}" if m else None
    if core not in CORES:
        name = getattr(profile, "name", profile)
        raise CycleError(f"board {name} ({getattr(profile, 'cpu', '?')}) has no Cortex-M3/M4 "
                         f"core: the cycle model covers {', '.join(CORES)}")
    return core


def cycle_profile(board, wait_states: int | None = None) -> CycleProfile:
    """The cycle model of a board (a name from ``tinysnn board list``, a board or a profile):
    its core and the flash wait states at its clock (``wait_states`` overrides)."""
    from .boards import BOARDS

    if isinstance(board, str):
        if board not in BOARDS:
            raise CycleError(f"unknown board {board!r}; known: {', '.join(BOARDS)}")
        board = BOARDS[board]
    prof = getattr(board, "profile", board)
    ws = wait_states
    if ws is None:
        ws = getattr(prof, "flash_wait_states", None)
    if ws is None:
        ws = FLASH_WAIT_STATES.get(prof.name, 0)
    return CycleProfile(core=core_of(prof), flash_wait_states=int(ws), board=prof.name,
                        clock_hz=prof.clock_hz)


# ---- the plugin ------------------------------------------------------------------------------

def plugin_source_dir() -> Path:
    """The plugin sources (``TINYSNN_QEMU_PLUGIN_DIR`` overrides)."""
    env = os.environ.get("TINYSNN_QEMU_PLUGIN_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "qemu-plugin"
    if not (path / "cmcycles.c").is_file():
        raise CycleError(f"the cycle-estimate plugin sources are not at {path}; install "
                         "tinysnn-serial from its source tree (pip install -e "
                         "runners/tinysnn-serial) or set TINYSNN_QEMU_PLUGIN_DIR")
    return path


def host_compiler() -> str | None:
    """The host C compiler: ``$CC``, else gcc, else cc."""
    for cand in (os.environ.get("CC"), "gcc", "cc"):
        if cand and shutil.which(cand):
            return cand
    return None


def build_plugin(cache_dir=None, *, compiler: str | None = None) -> Path:
    """Compile the plugin into a shared object, once per source digest; returns its path.
    ``cache_dir`` default: ``build/qemu-plugin`` (``TINYSNN_PLUGIN_CACHE`` overrides)."""
    cc = compiler or host_compiler()
    if cc is None:
        raise CycleError("cannot build the QEMU cycle-estimate plugin: no host C compiler "
                         "(gcc or cc; Debian package gcc)")
    src = plugin_source_dir()
    h = hashlib.sha256(cc.encode())
    for name in PLUGIN_SOURCES:
        h.update(name.encode() + b"\0" + (src / name).read_bytes())
    cache = Path(cache_dir or os.environ.get("TINYSNN_PLUGIN_CACHE")
                 or Path("build") / "qemu-plugin")
    out = cache / f"{PLUGIN_NAME}-{h.hexdigest()[:16]}.so"
    if out.is_file():
        return out.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{PLUGIN_NAME}-", suffix=".so", dir=cache)
    os.close(fd)
    argv = [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-fPIC", "-shared",
            "-fvisibility=hidden", "-o", tmp, str(src / "cmcycles.c")]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise CycleError(f"building the QEMU cycle-estimate plugin with {cc} failed:\n"
                         f"{proc.stderr[-3000:]}")
    os.replace(tmp, out)  # atomic: concurrent builds of the same digest agree
    return out.resolve()


def _qemu_opt(value: str) -> str:
    """A value inside a QEMU option list: commas are doubled."""
    return str(value).replace(",", ",,")


def plugin_argv(plugin, profile: CycleProfile, *, entries, out, flash=None,
                returns=None, isrs=()) -> list[str]:
    """``-plugin`` arguments for QEMU: time every call of the functions at ``entries``
    (addresses) and append one line per call to ``out``; ``flash``: (lo, hi) of the memory
    charged with the profile's wait states; ``isrs``: (lo, hi) of the exception handlers, whose
    work during a call is reported apart from the call's."""
    args = [_qemu_opt(plugin)] + profile.plugin_args()
    for i, addr in enumerate(entries):
        args.append(f"entry={int(addr) & ~1:#x}")
        if returns and returns[i] is not None:
            args.append(f"ret={int(returns[i]) & ~1:#x}")
    if flash is not None and profile.flash_wait_states:
        lo, hi = flash
        args.append(f"flash={int(lo):#x}:{int(hi):#x}")
    for lo, hi in isrs:
        args.append(f"isr={int(lo) & ~1:#x}:{int(hi):#x}")
    args.append(f"out={_qemu_opt(out)}")
    return ["-plugin", ",".join(args)]


# ---- the ELF -----------------------------------------------------------------------------------

def _binutil(tool: str) -> str:
    name = f"arm-none-eabi-{tool}"
    if shutil.which(name) is None:
        raise CycleError(f"{name} is not installed (Debian package binutils-arm-none-eabi)")
    return name


def symbol_address(elf, name: str = "tsnn_infer") -> int:
    """The address of a function in the ELF's symbol table (Thumb bit cleared)."""
    out = subprocess.run([_binutil("nm"), str(elf)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name and parts[1] in "TtWw":
            return int(parts[0], 16) & ~1
    raise CycleError(f"{elf} has no function {name!r} in its symbol table")


def handler_ranges(elf) -> list[tuple[int, int]]:
    """[lo, hi) of the ELF's exception handlers (functions named ``*_Handler``, the reset handler
    aside): an interrupt that lands inside a timed call runs one of these."""
    out = subprocess.run([_binutil("nm"), "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    ranges = set()
    for line in out.splitlines():
        parts = line.split()
        name = parts[-1] if parts else ""
        if not name.endswith("_Handler") or name == "Reset_Handler" or parts[-2] not in "TtWw":
            continue
        if len(parts) != 4:
            raise CycleError(f"{elf}: the handler {name} has no size in the symbol table "
                             "(assembly: add .size), so its work cannot be told apart")
        lo = int(parts[0], 16) & ~1
        ranges.add((lo, lo + int(parts[1], 16)))
    return sorted(ranges)


def flash_range(elf) -> tuple[int, int]:
    """[lo, hi) of the ELF's allocated read-only sections (code, constants): what a board keeps
    in flash."""
    out = subprocess.run([_binutil("objdump"), "-h", str(elf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    lo = hi = None
    for head, flags in zip(out, out[1:]):
        parts = head.split()
        if len(parts) >= 7 and parts[0].isdigit() and "ALLOC" in flags and "READONLY" in flags:
            size, vma = int(parts[2], 16), int(parts[3], 16)
            if size:
                lo = vma if lo is None else min(lo, vma)
                hi = vma + size if hi is None else max(hi, vma + size)
    if lo is None:
        raise CycleError(f"{elf} has no read-only sections")
    return lo, hi


# ---- the plugin's output -----------------------------------------------------------------------

@dataclass
class CallCycles:
    """One timed call, as the plugin wrote it."""

    entry: int
    call: int
    insns: int
    cycles: int
    core: int
    fetch_stall: int
    data_stall: int
    core_lo: int | None = None  # the core counts the TRMs' ranges allow (P 1-3, DIV 2-12, ...)
    core_hi: int | None = None
    isr_insns: int = 0   # what interrupt handlers ran during the call (not in insns, cycles)
    isr_cycles: int = 0

    @property
    def cpi(self) -> float:
        return self.cycles / self.insns if self.insns else float("nan")


def parse_calls(text: str) -> list[CallCycles]:
    """The per-call lines of the plugin's output file (``#`` lines are comments)."""
    calls = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kv = dict(item.split("=", 1) for item in line.split())
        calls.append(CallCycles(int(kv["entry"], 16), int(kv["call"]), int(kv["insns"]),
                                int(kv["cycles"]), int(kv["core"]), int(kv["fetch_stall"]),
                                int(kv["data_stall"]),
                                int(kv["core_lo"]) if "core_lo" in kv else None,
                                int(kv["core_hi"]) if "core_hi" in kv else None,
                                int(kv.get("isr_insns", 0)), int(kv.get("isr_cycles", 0))))
    return calls


@dataclass
class SampleCycles:
    """The estimate of one sample's inference, next to what the firmware itself counted."""

    sid: int
    prediction: int
    icount: int          # the firmware's own count: QEMU instructions (icount, resolution 40)
    insns: int           # instructions of tsnn_infer, entry to return (the plugin's count)
    cycles: int          # the estimate: core + fetch_stall + data_stall
    core: int            # cycles with zero-wait memory
    fetch_stall: int     # instruction-fetch wait states
    data_stall: int      # data-read wait states
    calls: int = 1       # tsnn_infer calls seen for this sample (more after a protocol retry)
    core_lo: int | None = None  # the range of the core count the TRMs' ranges allow
    core_hi: int | None = None
    isr_insns: int = 0   # interrupt handlers run during the call (a UART byte, a SysTick wrap:
    isr_cycles: int = 0  # host timing), counted apart from insns and cycles

    def as_dict(self) -> dict:
        return asdict(self)


# ---- running samples ---------------------------------------------------------------------------

def emulator_for(core: str):
    """The emulated board that runs code for ``core``: a QEMU board with that core, else the
    Cortex-M3 board (its code runs unchanged on a Cortex-M4). Returns (board, exact match)."""
    from .boards import BOARDS, QemuBoard

    qemu = [b for b in BOARDS.values() if isinstance(b, QemuBoard)]
    for b in qemu:
        try:
            if core_of(b.profile) == core:
                return b, True
        except CycleError:
            continue
    if not qemu:
        raise CycleError("no emulated (QEMU) board is registered")
    return qemu[0], False


def estimate_samples(elf, samples, profile: CycleProfile, *, board=None,
                     function: str = "tsnn_infer", plugin=None, work_dir=None,
                     timeout: float = 5.0, infer_timeout: float = 300.0,
                     on_sample=None) -> list[SampleCycles]:
    """Run ``elf`` (built for ``board``, a QEMU board; default ``emulator_for(profile.core)``)
    under QEMU with the plugin and send it ``samples``, an iterable of (image, seed, sample id);
    returns one ``SampleCycles`` per sample, in order."""
    from .boards import BoardError
    from .protocol import DeviceUnderTest
    from .transports import SerialTransport

    if board is None:
        board, _ = emulator_for(profile.core)
    plugin = Path(plugin) if plugin else build_plugin()
    entry = symbol_address(elf, function)
    flash = flash_range(elf) if profile.flash_wait_states else None
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tinysnn-cycles-")
        work_dir = tmp.name
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = (work / "cycles.txt").resolve()
    out.write_text("")
    log = work / "qemu.log"
    argv = plugin_argv(plugin, profile, entries=[entry], out=out, flash=flash,
                       isrs=handler_ranges(elf))
    try:
        try:
            running = board.start(elf, log_path=log, extra_args=argv)
        except BoardError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise CycleError(f"{exc}\n{tail}".rstrip()) from None
        rows = []
        try:
            transport = SerialTransport(running.url)
            transport.open()
            try:
                dut = DeviceUnderTest(transport, timeout=timeout, infer_timeout=infer_timeout,
                                      quiet=0.01, settle=0.25)
                dut.connect()
                offset = 0
                for image, seed, sid in samples:
                    res = dut.run_sample(image, seed, sid)
                    text = out.read_text()
                    calls = [c for c in parse_calls(text[offset:]) if c.entry == entry]
                    offset = len(text)
                    if not calls:
                        raise CycleError(f"sample {sid}: the plugin timed no call of "
                                         f"{function} (see {log})")
                    c = calls[-1]
                    row = SampleCycles(sid, res.prediction, res.cycles, c.insns, c.cycles,
                                       c.core, c.fetch_stall, c.data_stall, len(calls),
                                       c.core_lo, c.core_hi, c.isr_insns, c.isr_cycles)
                    rows.append(row)
                    if on_sample is not None:
                        on_sample(row)
            finally:
                transport.close()
        finally:
            running.stop()
        return rows
    finally:
        if tmp is not None:
            tmp.cleanup()


def summarize(rows: list[SampleCycles], profile: CycleProfile) -> dict:
    """Medians (and min/max) over the samples; latency at the profile's clock."""
    if not rows:
        return {"samples": 0}
    keys = ["cycles", "core", "fetch_stall", "data_stall", "insns", "icount"]
    if all(r.core_lo is not None and r.core_hi is not None for r in rows):
        keys += ["core_lo", "core_hi"]
    med = {k: statistics.median(getattr(r, k) for r in rows) for k in keys}
    out = {"samples": len(rows), "median": med,
           "min_cycles": min(r.cycles for r in rows), "max_cycles": max(r.cycles for r in rows),
           "cpi": med["cycles"] / med["insns"] if med["insns"] else None,
           "cpi_zero_wait": med["core"] / med["insns"] if med["insns"] else None,
           "core": profile.core, "flash_wait_states": profile.flash_wait_states,
           "board": profile.board}
    if profile.clock_hz:
        out["clock_hz"] = profile.clock_hz
        out["latency_s"] = med["cycles"] / profile.clock_hz
        out["latency_zero_wait_s"] = med["core"] / profile.clock_hz
    return out


# ---- tinysnn board cycles ----------------------------------------------------------------------

class CyclesCommand:
    """``tinysnn board cycles NAME --model M.tsnn --samples K``."""

    help = ("estimated Cortex-M3/M4 cycles per inference of a model (its firmware under QEMU "
            "with the cycle-estimate plugin), for a board's core, flash wait states and clock")

    @staticmethod
    def add_arguments(p) -> None:
        p.add_argument("name", help="board profile: core, flash wait states, clock (tinysnn "
                       "board list)")
        p.add_argument("--model", required=True, help="a quantized model (.tsnn)")
        p.add_argument("--samples", type=int, default=5, help="the first K test samples")
        p.add_argument("--wait-states", type=int, help="flash wait states (default: the "
                       "board's at its clock, ART accelerator off)")
        p.add_argument("--build-dir", help="default build/tinysnn-cycles/MODEL-EMULATOR")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds per command")
        p.add_argument("--json", metavar="FILE", help="also write the samples and summary")

    @staticmethod
    def run(args, out=sys.stdout) -> int:
        from . import deploy
        from .boards import BoardError, BoardFitError

        w = lambda s="": print(s, file=out, flush=True)  # noqa: E731
        try:
            if not 1 <= args.samples <= 100_000:
                raise CycleError(f"--samples {args.samples}: give 1..100000")
            profile = cycle_profile(args.name, args.wait_states)
            emu, exact = emulator_for(profile.core)
            fw = deploy.build_firmware(args.model, emu, build_dir=args.build_dir,
                                       build_root=Path("build") / "tinysnn-cycles")
            net, m, bdir, elf, exp = fw.net, fw.model, fw.build_dir, fw.elf, fw.export
            from .boards import BOARDS

            target = BOARDS[args.name]
            w(f"board {args.name} ({target.profile.cpu}, {target.profile.clock_hz / 1e6:g} MHz): "
              f"{profile.describe()}")
            if target is not emu:
                w(target.estimate_fit(exp.const_bytes, exp.state_bytes, m.n_neurons).message())
            w(f"firmware for {emu.profile.name} ({emu.profile.cpu}) under QEMU with the "
              f"cycle-estimate plugin" + ("" if exact else
                                          f"; no emulated {profile.core}: its code, timed with "
                                          f"the {profile.core} tables"))
            w(f"{'sample':>6} {'cycles':>13} {'core':>13} {'fetch':>11} {'data':>11} "
              f"{'instr':>13} {'CPI':>5} {'icount':>13}")

            def show(r):
                cpi = r.cycles / r.insns if r.insns else float("nan")
                w(f"{r.sid:6d} {r.cycles:13,} {r.core:13,} {r.fetch_stall:11,} "
                  f"{r.data_stall:11,} {r.insns:13,} {cpi:5.2f} {r.icount:13,}")

            images, _, seed, _ = deploy.test_split(net, args.samples)
            rows = estimate_samples(elf, [(images[i], seed, i) for i in range(len(images))],
                                    profile, board=emu, work_dir=bdir / "cycles",
                                    timeout=args.timeout, on_sample=show)
        except (CycleError, BoardError, BoardFitError, deploy.DeployError) as exc:
            print(f"tinysnn board cycles: {exc}", file=sys.stderr)
            return 2
        s = summarize(rows, profile)
        med = s["median"]
        w(f"median over {s['samples']} samples: {med['cycles']:,.0f} estimated {profile.core} "
          f"cycles (core {med['core']:,.0f} + fetch {med['fetch_stall']:,.0f} + data "
          f"{med['data_stall']:,.0f} wait-state cycles) for {med['insns']:,.0f} instructions, "
          f"CPI {s['cpi']:.2f}")
        if "core_lo" in med and med["core"]:
            w(f"the TRMs' ranges (branch refill P 1-3, SDIV/UDIV 2-12, M3 long multiplies, IT "
              f"folding) allow {med['core_lo']:,.0f} to {med['core_hi']:,.0f} core cycles "
              f"({100 * (med['core_lo'] / med['core'] - 1):+.0f}% to "
              f"{100 * (med['core_hi'] / med['core'] - 1):+.0f}%)")
        if s.get("clock_hz"):
            line = (f"latency at {s['clock_hz'] / 1e6:g} MHz: {1e3 * s['latency_s']:.2f} ms")
            if profile.flash_wait_states:
                line += (f" with {profile.flash_wait_states} wait states and the ART off; "
                         f"{1e3 * s['latency_zero_wait_s']:.2f} ms if every fetch hit the ART "
                         "cache (0 wait states)")
            w(line)
        w("an estimate from the TRM timing tables, not a measurement (docs/boards.md, "
          "\"Cycle estimate (QEMU TCG plugin)\")")
        if args.json:
            Path(args.json).write_text(json.dumps(
                {"summary": s, "profile": asdict(profile), "emulator": emu.profile.name,
                 "samples": [r.as_dict() for r in rows]}, indent=2))
        return 0


__all__ = ["CORES", "FLASH_WAIT_STATES", "CallCycles", "CycleError", "CycleProfile",
           "CyclesCommand", "SampleCycles", "build_plugin", "core_of", "cycle_profile",
           "emulator_for", "estimate_samples", "flash_range", "handler_ranges", "parse_calls", "plugin_argv",
           "plugin_source_dir", "summarize", "symbol_address"]
