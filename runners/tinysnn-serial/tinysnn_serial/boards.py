"""Boards: profiles (memory, clock, datasheet power figures), firmware builds, memory-fit
checks, and launching (QEMU, a host process) or flashing (a real board).

Every board object provides ``profile``, ``build(engine_dir=None, build_dir=None)``,
``memory_use(elf)``, ``check_fit(flash_bytes, ram_bytes)`` and either ``start(elf)`` (emulated
boards: returns a ``RunningBoard`` with a pyserial URL) or ``flash(elf)`` (physical boards).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from tinysnn_core.errors import TinySNNError


class BoardError(TinySNNError):
    """A board could not be built, started or flashed."""


class BoardFitError(BoardError):
    """The model does not fit the board's flash or RAM."""


def firmware_dir() -> Path:
    """The portable firmware sources (``TINYSNN_FIRMWARE_DIR`` overrides)."""
    env = os.environ.get("TINYSNN_FIRMWARE_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "firmware"
    if not (path / "Makefile").is_file():
        raise BoardError(f"firmware sources not found at {path}; install tinysnn-serial from its "
                         "source tree (pip install -e runners/tinysnn-serial) or set "
                         "TINYSNN_FIRMWARE_DIR")
    return path


def protocol_test_engine_dir() -> Path:
    """The PROTOCOL TEST ENGINE (not a model): for link and protocol tests only."""
    return firmware_dir() / "testengine"


@dataclass(frozen=True)
class BoardProfile:
    """What the runner needs to know about a board. Power figures: datasheet typical run
    current per MHz at the supply voltage (see docs/boards.md for the sources)."""

    name: str
    port: str  # the firmware Makefile's PORT
    cpu: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    emulated: bool
    toolchain: str  # "cc" or "arm-none-eabi"
    supply_v: float | None = None
    run_ua_per_mhz: float | None = None
    power_source: str = ""
    cycle_source: str = ""
    tried_on_hardware: bool = False
    pyocd_target: str | None = None
    notes: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MemoryUse:
    flash_bytes: int
    ram_bytes: int
    sections: dict = field(default_factory=dict)


@dataclass
class FitReport:
    board: str
    flash_needed: int
    ram_needed: int
    flash_available: int
    ram_available: int

    @property
    def flash_over(self) -> int:
        return self.flash_needed - self.flash_available

    @property
    def ram_over(self) -> int:
        return self.ram_needed - self.ram_available

    @property
    def fits(self) -> bool:
        return self.flash_over <= 0 and self.ram_over <= 0

    def message(self) -> str:
        parts = []
        for what, need, have, over in (("flash", self.flash_needed, self.flash_available,
                                         self.flash_over),
                                        ("RAM", self.ram_needed, self.ram_available,
                                         self.ram_over)):
            verdict = (f"over by {_kib(over)}" if over > 0 else f"{_kib(-over)} left")
            parts.append(f"{what} {_kib(need)} of {_kib(have)} ({verdict})")
        head = "fits" if self.fits else "does NOT fit"
        return f"model {head} {self.board}: " + "; ".join(parts)


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


# The protocol firmware without any engine, measured from `make PORT=qemu-mps2-an385` with the
# protocol test engine (arm-none-eabi-gcc 12.2, -Os): .text ~4 KiB; .bss ~1.7 KiB (1 KiB data
# buffer, 256 B command buffer, 320 B line buffer); the stack is 8 KiB. Rounded up.
FIRMWARE_FLASH_OVERHEAD = 6 * 1024
FIRMWARE_RAM_OVERHEAD = 2 * 1024
FIRMWARE_STACK = 8 * 1024


class Board:
    """Base board: build with the firmware Makefile, measure, check the fit."""

    def __init__(self, profile: BoardProfile):
        self.profile = profile
        self.__doc__ = f"{profile.cpu} at {profile.clock_hz / 1e6:g} MHz"

    # -- build ----------------------------------------------------------------------------
    def toolchain_missing(self) -> str | None:
        """None when the build tools are there, else what is missing (with the apt package)."""
        if shutil.which("make") is None:
            return "make (Debian package make)"
        if self.profile.toolchain == "cc":
            return None if shutil.which("cc") else "a C compiler (Debian package gcc)"
        if shutil.which("arm-none-eabi-gcc") is None:
            return ("arm-none-eabi-gcc (Debian packages gcc-arm-none-eabi and "
                    "libnewlib-arm-none-eabi)")
        return None

    def default_build_dir(self, engine_dir: Path) -> Path:
        tag = "testengine" if engine_dir == protocol_test_engine_dir() else \
            f"{engine_dir.name}-{abs(hash(str(engine_dir))) % 10**8:08d}"
        return Path("build") / "tinysnn-fw" / f"{self.profile.name}-{tag}"

    def build(self, engine_dir=None, build_dir=None, *, sanitize: bool = False,
              quiet: bool = True) -> Path:
        """Build the firmware with ``engine_dir`` (engine.c, engine_config.h, model_data.c...;
        default: the protocol test engine). Returns the ELF (or host executable) path."""
        missing = self.toolchain_missing()
        if missing:
            raise BoardError(f"cannot build for {self.profile.name}: {missing} is not installed")
        fw = firmware_dir()
        engine_dir = Path(engine_dir).resolve() if engine_dir else protocol_test_engine_dir()
        if not (engine_dir / "engine_config.h").is_file():
            raise BoardError(f"{engine_dir} has no engine_config.h (see firmware/engine.h)")
        build_dir = Path(build_dir or self.default_build_dir(engine_dir)).resolve()
        argv = ["make", "-C", str(fw), f"PORT={self.profile.port}", f"ENGINE_DIR={engine_dir}",
                f"BUILD={build_dir}"]
        if sanitize:
            argv.append("SANITIZE=1")
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BoardError(f"firmware build for {self.profile.name} failed:\n"
                             f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
        elf = build_dir / ("tinysnn-fw" if self.profile.toolchain == "cc" else "tinysnn-fw.elf")
        if not elf.exists():
            raise BoardError(f"the build did not produce {elf}")
        return elf

    # -- memory ---------------------------------------------------------------------------
    def memory_use(self, elf) -> MemoryUse:
        """Flash and RAM the ELF needs, from ``arm-none-eabi-size -A`` (or ``size``)."""
        tool = "arm-none-eabi-size" if self.profile.toolchain != "cc" else "size"
        if shutil.which(tool) is None:
            raise BoardError(f"{tool} is not installed (Debian package "
                             f"{'binutils-arm-none-eabi' if tool != 'size' else 'binutils'})")
        out = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True, check=True)
        sections = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[0].startswith("."):
                sections[parts[0]] = int(parts[1])
        flash = sum(v for k, v in sections.items()
                    if k in (".text", ".rodata", ".ARM.exidx", ".data", ".vectors"))
        ram = sum(v for k, v in sections.items() if k in (".data", ".bss", ".stack"))
        return MemoryUse(flash, ram, sections)

    def check_fit(self, flash_bytes: int, ram_bytes: int) -> FitReport:
        return FitReport(self.profile.name, int(flash_bytes), int(ram_bytes),
                         self.profile.flash_bytes, self.profile.ram_bytes)

    def estimate_fit(self, model_const_bytes: int, model_state_bytes: int,
                     n_neurons: int) -> FitReport:
        """Before building: the firmware overhead plus the model's constant data (flash) and
        its state (RAM), plus the reported spike counts (2 bytes per neuron)."""
        flash = FIRMWARE_FLASH_OVERHEAD + int(model_const_bytes)
        ram = (FIRMWARE_RAM_OVERHEAD + FIRMWARE_STACK + int(model_state_bytes)
               + 2 * int(n_neurons))
        return self.check_fit(flash, ram)

    def require_fit(self, report: FitReport) -> FitReport:
        if not report.fits:
            raise BoardFitError(report.message())
        return report

    def describe(self) -> dict:
        d = self.profile.as_dict()
        d["kind"] = "emulated" if self.profile.emulated else "physical"
        return d


@dataclass
class RunningBoard:
    """A started emulated board: its pyserial URL and the process behind it."""

    name: str
    url: str
    process: subprocess.Popen
    keep_fds: list = field(default_factory=list)
    log_path: Path | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in self.keep_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.keep_fds.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class HostBoard(Board):
    """The firmware as a native process on a pseudo-terminal: fast tests and fuzzing."""

    def start(self, elf) -> RunningBoard:
        master, slave = os.openpty()
        tty.setraw(slave)  # before the firmware writes: no echo back into its own input
        try:
            proc = subprocess.Popen([str(elf)], stdin=master, stdout=master, close_fds=True)
        finally:
            os.close(master)
        # We keep the slave open so the pty does not hang up between clients; clients open
        # the slave's path with pyserial like any serial port.
        return RunningBoard(self.profile.name, os.ttyname(slave), proc, keep_fds=[slave])


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuBoard(Board):
    """An emulated board under qemu-system-arm with UART0 on a local TCP socket."""

    machine = "mps2-an385"
    icount_shift = 0

    def qemu_missing(self) -> str | None:
        if shutil.which("qemu-system-arm") is None:
            return "qemu-system-arm (Debian package qemu-system-arm)"
        return None

    def qemu_argv(self, elf, port: int) -> list[str]:
        return ["qemu-system-arm", "-M", self.machine, "-nographic", "-monitor", "none",
                "-icount", f"shift={self.icount_shift},align=off,sleep=on",
                # nodelay: QEMU writes the UART byte by byte; without it Nagle's algorithm
                # and delayed ACKs hold every reply back for tens of milliseconds
                "-chardev", f"socket,id=uart0,host=127.0.0.1,port={port},server=on,wait=off,"
                            "nodelay=on",
                "-serial", "chardev:uart0",
                "-kernel", str(elf)]

    def start(self, elf, *, port: int | None = None, log_path=None,
              startup_timeout: float = 10.0, extra_args=()) -> RunningBoard:
        """``extra_args``: appended to QEMU's argv (e.g. ``-plugin`` for tinysnn_serial.cycles)."""
        missing = self.qemu_missing()
        if missing:
            raise BoardError(f"cannot start {self.profile.name}: {missing} is not installed")
        port = port or _free_tcp_port()
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        proc = subprocess.Popen(self.qemu_argv(elf, port) + list(extra_args),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if log_path:
            log.close()
        deadline = time.monotonic() + startup_timeout
        try:
            while True:  # wait until QEMU listens
                if proc.poll() is not None:
                    raise BoardError(f"qemu-system-arm exited with code {proc.returncode}"
                                     + (f"; see {log_path}" if log_path else ""))
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise BoardError(f"QEMU did not open its serial port {port} in "
                                         f"{startup_timeout:g} s") from None
                    time.sleep(0.05)
        except BaseException:  # a timeout, Ctrl-C or a stop signal: no QEMU left behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        return RunningBoard(self.profile.name, f"socket://127.0.0.1:{port}", proc,
                            log_path=Path(log_path) if log_path else None)


class QemuM4Board(QemuBoard):
    """QEMU's mps2-an386: the AN385 board with a Cortex-M4 (same UART, memory map and icount
    instruction counting)."""

    machine = "mps2-an386"


#: files that the ST-LINK/V2-1 of a Nucleo shows on its USB drive (docs/deploy.md)
STLINK_DRIVE_FILES = ("MBED.HTM", "DETAILS.TXT")
#: the name the firmware gets on that drive (FAT 8.3); the ST-LINK flashes any .bin copied there
DRIVE_IMAGE_NAME = "TINYSNN.BIN"


def check_mount(mount) -> Path:
    """The mount point of a board's ST-LINK USB drive, checked: a writable directory that holds
    the drive's own files (a wrong folder would take the copy and flash nothing)."""
    dest = Path(mount)
    if not dest.is_dir():
        raise BoardError(f"--mount {mount}: not a directory; give the mount point of the board's "
                         "ST-LINK USB drive (e.g. /media/$USER/NODE_L476RG)")
    if not any((dest / name).is_file() for name in STLINK_DRIVE_FILES):
        raise BoardError(f"--mount {mount}: no {' or '.join(STLINK_DRIVE_FILES)} there, so not an "
                         "ST-LINK drive; give the mount point of the board's USB drive")
    if not os.access(dest, os.W_OK):
        raise BoardError(f"--mount {mount}: not writable by this user (see docs/deploy.md, "
                         "'Real boards')")
    return dest


class PhysicalBoard(Board):
    """A real board: build, then flash with pyocd or by copying the .bin to the board's
    mass-storage drive; talk to it through its serial port (e.g. /dev/ttyACM0)."""

    def start(self, elf):
        raise BoardError(f"{self.profile.name} is a physical board: flash it "
                         f"(tinysnn board flash {self.profile.name}) and talk to its serial "
                         "port (tinysnn measure MODEL --port /dev/ttyACM0)")

    def flash(self, elf, *, mount: str | None = None, probe: str | None = None) -> str:
        elf = Path(elf)
        if mount:
            dest = check_mount(mount)
            image = elf.with_suffix(".bin")
            if not image.is_file():
                raise BoardError(f"{image} is missing: build the board's firmware first")
            # The ST-LINK programs the flash as the bytes arrive and resets the board at the
            # end; the copy is complete only once it is on the device, hence the fsync.
            with open(image, "rb") as src, open(dest / DRIVE_IMAGE_NAME, "wb") as dst:
                shutil.copyfileobj(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            return (f"copied {image.name} ({image.stat().st_size:,} B) to {dest / DRIVE_IMAGE_NAME}"
                    "; the ST-LINK flashes it and resets the board (a FAIL.TXT on the drive "
                    "afterwards says why it did not)")
        if shutil.which("pyocd") is None:
            raise BoardError("pyocd is not installed (pip install 'tinysnn-serial[flash]'); or "
                             "flash by copying to the board's USB drive with --mount DIR")
        argv = ["pyocd", "flash", "-t", self.profile.pyocd_target or "", str(elf)]
        if probe:
            argv[2:2] = ["-u", probe]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
            if "not recognized" in why or "target" in why.lower():
                # the target comes from ST's device pack, which pyocd does not ship
                why += (f"; the STM32L4 targets come from ST's device pack: pyocd pack install "
                        f"{self.profile.pyocd_target} (docs/deploy.md, 'Real boards'), or "
                        "flash with --mount DIR")
            raise BoardError(f"pyocd flash -t {self.profile.pyocd_target} failed: {why}")
        return f"flashed {elf} with pyocd ({self.profile.pyocd_target})"


# Datasheet figures: docs/boards.md gives the source of each number.
PROFILES = {
    "host": BoardProfile(
        name="host", port="host", cpu="this machine", clock_hz=1_000_000_000,
        flash_bytes=1 << 40, ram_bytes=1 << 40, emulated=True, toolchain="cc",
        cycle_source="nanoseconds of process CPU time (not cycles)",
        notes="native process on a pseudo-terminal or pipes; for tests and fuzzing"),
    "qemu-mps2-an385": BoardProfile(
        name="qemu-mps2-an385", port="qemu-mps2-an385", cpu="Cortex-M3 (QEMU)",
        clock_hz=25_000_000, flash_bytes=4 << 20, ram_bytes=4 << 20, emulated=True,
        toolchain="arm-none-eabi",
        cycle_source="guest instructions under -icount shift=0 (SysTick x 40), not M3 cycles",
        notes="ARM MPS2 FPGA image AN385 as modelled by qemu-system-arm; no power model"),
    "qemu-mps2-an386": BoardProfile(
        name="qemu-mps2-an386", port="qemu-mps2-an386", cpu="Cortex-M4 (QEMU)",
        clock_hz=25_000_000, flash_bytes=4 << 20, ram_bytes=4 << 20, emulated=True,
        toolchain="arm-none-eabi",
        cycle_source="guest instructions under -icount shift=0 (SysTick x 40), not M4 cycles",
        notes="ARM MPS2 FPGA image AN386 (the AN385 with a Cortex-M4) as modelled by "
              "qemu-system-arm; the engine uses the M4's DSP instructions where the model allows; "
              "no power model"),
    "nucleo-l476rg": BoardProfile(
        name="nucleo-l476rg", port="nucleo-l476rg", cpu="Cortex-M4F (STM32L476RG)",
        clock_hz=80_000_000, flash_bytes=1024 * 1024, ram_bytes=96 * 1024, emulated=False,
        toolchain="arm-none-eabi", supply_v=3.3, run_ua_per_mhz=100.0,
        power_source="STM32L476xx datasheet DS10198, features (page 1): 100 uA/MHz run mode; "
                     "see docs/boards.md",
        cycle_source="DWT CYCCNT (core clock cycles)", pyocd_target="stm32l476rgtx",
        notes="not yet tried on hardware; RAM is SRAM1 (96 KiB), SRAM2 unused"),
    "nucleo-l432kc": BoardProfile(
        name="nucleo-l432kc", port="nucleo-l432kc", cpu="Cortex-M4F (STM32L432KC)",
        clock_hz=80_000_000, flash_bytes=256 * 1024, ram_bytes=64 * 1024, emulated=False,
        toolchain="arm-none-eabi", supply_v=3.3, run_ua_per_mhz=84.0,
        power_source="STM32L432KB/KC datasheet DS11451, features (page 1): 84 uA/MHz run mode; "
                     "see docs/boards.md",
        cycle_source="DWT CYCCNT (core clock cycles)", pyocd_target="stm32l432kcux",
        notes="not yet tried on hardware; the 256 KiB-flash profile of the fit checks"),
}

_CLASSES = {"host": HostBoard, "qemu-mps2-an385": QemuBoard, "qemu-mps2-an386": QemuM4Board,
            "nucleo-l476rg": PhysicalBoard, "nucleo-l432kc": PhysicalBoard}

BOARDS = {name: _CLASSES[name](profile) for name, profile in PROFILES.items()}
