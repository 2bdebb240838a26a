"""Hook implementations of tinysnn-serial: boards, transports and the ``board`` command."""

from __future__ import annotations

import json
import random
import signal
import sys
import threading
import time
from pathlib import Path

import tinysnn_core

from . import boards as _boards
from . import transports as _transports


@tinysnn_core.hookimpl
def register_boards(register):
    for name, board in _boards.BOARDS.items():
        p = board.profile
        register(name, board, summary=f"{p.cpu}, {p.clock_hz / 1e6:g} MHz, "
                 f"{'emulated' if p.emulated else 'physical (not yet tried on hardware)'}")


@tinysnn_core.hookimpl
def register_transports(register):
    for name, (cls, summary) in _transports.TRANSPORTS.items():
        register(name, cls, summary=summary)


@tinysnn_core.hookimpl
def register_cost_models(register):
    from .costmodel import BoardCostModel

    for name, board in _boards.BOARDS.items():
        if board.profile.toolchain == "cc":
            continue  # the host process has no cycles of a board
        register(f"board-{name}", lambda name=name: BoardCostModel(name),
                 summary=f"cost on {name}: instructions fitted on measured runs x CPI; "
                         "latency = cycles / clock, energy = cycles x datasheet current x VDD")


@tinysnn_core.hookimpl
def register_exporters(register):
    from .codegen import CExporter

    register("c", CExporter, summary="C99 integer engine + packed model constants (firmware)")


@tinysnn_core.hookimpl
def register_energy_meters(register):
    from .meters import METERS

    for name, (cls, summary) in METERS.items():
        register(name, cls, summary=summary)


@tinysnn_core.hookimpl
def register_commands(register):
    from .deploy import DeployCommand, MeasureCommand

    register("board", BoardCommand(), summary="list, build, start, flash and self-test boards")
    register("deploy", DeployCommand(), summary="quantized model -> C -> board: parity with the "
             "host integer simulator, accuracy, cycles, memory, energy; resumable")
    register("measure", MeasureCommand(), summary="run the test samples on a board that is "
             "already running the model (any serial URL); resumable")


class _StopSignal(Exception):
    """SIGTERM or SIGHUP arrived while ``board start`` was serving a board."""


def _stop_on_signal(signum, frame):
    raise _StopSignal(signal.Signals(signum).name)


class BoardCommand:
    """``tinysnn board list|build|start|flash|calibrate|cycles|selftest``."""

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="board_action", metavar="ACTION", required=True)
        p = sub.add_parser("list", help="the boards and their profiles")
        p.add_argument("--json", action="store_true")
        for action, text in (("build", "build the firmware and report its flash and RAM use"),
                             ("start", "start an emulated board and print its serial URL"),
                             ("flash", "build and flash a physical board")):
            p = sub.add_parser(action, help=text)
            p.add_argument("name", help="board name (tinysnn board list)")
            src = p.add_mutually_exclusive_group()
            src.add_argument("--model", help="a quantized model (.tsnn): generate its engine and "
                             "build that, refused before building when it does not fit")
            src.add_argument("--engine-dir", help="engine sources (default: the protocol test "
                             "engine, which is not a model)")
            p.add_argument("--build-dir")
            if action == "flash":
                p.add_argument("--mount", help="copy to this mass-storage drive instead of pyocd")
                p.add_argument("--probe", help="pyocd probe unique id")
        p = sub.add_parser("calibrate", help="fit the board cost model: run quantized models "
                           "on an emulated board and fit instructions per inference to the host "
                           "simulator's operation counts")
        p.add_argument("name", help="an emulated board (qemu-mps2-an385, qemu-mps2-an386)")
        p.add_argument("--models", nargs="+", required=True, metavar="M.tsnn",
                       help="quantized models of different sizes and settings (at least two)")
        p.add_argument("--samples", type=int, default=40, help="test samples per model")
        p.add_argument("--work-dir", default="runs/calibrate", help="builds and results (resumable)")
        p.add_argument("--out", help="folder for NAME.json (default: the package's calibration "
                       "folder, or TINYSNN_CALIBRATION_DIR)")
        from .cycles import CyclesCommand

        CyclesCommand.add_arguments(sub.add_parser("cycles", help=CyclesCommand.help))
        p = sub.add_parser("calibrate-cycles", help="cycles per instruction of a board's core "
                           "and flash wait states, from the cycle-estimate plugin on models' "
                           "firmware; completes the board cost model")
        p.add_argument("name", help="board name (tinysnn board list)")
        p.add_argument("--models", nargs="+", required=True, metavar="M.tsnn")
        p.add_argument("--samples", type=int, default=5, help="test samples per model")
        p.add_argument("--work-dir", default="runs/calibrate-cycles")
        p.add_argument("--out", help="folder for NAME.json (default: the calibration folder)")
        p = sub.add_parser("selftest", help="check a running board's link with the protocol "
                           "test engine (random samples, results checked)")
        p.add_argument("--port", required=True, help="pyserial URL, pty:CMD or subprocess:CMD")
        p.add_argument("--samples", type=int, default=5)
        p.add_argument("--timeout", type=float, default=2.0)
        p.add_argument("--transcript", help="append the byte transcript (JSON lines) here")

    def run(self, args) -> int:
        action = args.board_action
        if action == "list":
            rows = [b.describe() for b in _boards.BOARDS.values()]
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                for r in rows:
                    print(f"{r['name']:18} {r['kind']:9} {r['cpu']:26} "
                          f"{r['clock_hz'] / 1e6:6g} MHz  flash {r['flash_bytes'] // 1024} KiB  "
                          f"RAM {r['ram_bytes'] // 1024} KiB")
            return 0
        if action == "selftest":
            return self._selftest(args)
        if action == "calibrate":
            return self._calibrate(args)
        if action == "calibrate-cycles":
            from .costmodel import calibrate_cycles

            if not 1 <= args.samples <= 10_000:
                raise tinysnn_core.errors.ConfigError(f"--samples {args.samples}: give 1..10000")
            path, data = calibrate_cycles(args.name, args.models, args.samples, args.work_dir,
                                          args.out)
            print(f"{args.name}: CPI {data['cpi']:.3f} ({data['cpi_source']}); bounds "
                  f"{data['cpi_zero_wait']:.3f} (every access a cache hit) to "
                  f"{data['cpi_art_off']:.3f} (ART off)\ncalibration written to {path}")
            return 0
        if action == "cycles":
            from .cycles import CyclesCommand

            return CyclesCommand.run(args)
        board = tinysnn_core.registry.lookup("board", args.name)
        if action == "flash" and args.mount:
            _boards.check_mount(args.mount)  # before the build: a wrong drive costs nothing
        if args.model:
            elf = self._build_model(board, args.model, args.build_dir)
        else:
            elf = board.build(args.engine_dir, args.build_dir)
            if board.profile.toolchain != "cc":
                use = board.memory_use(elf)
                print(board.check_fit(use.flash_bytes, use.ram_bytes).message())
        print(f"firmware: {elf}")
        if action == "build":
            return 0
        if action == "flash":
            print(board.flash(elf, mount=args.mount, probe=args.probe))
            return 0
        return self._serve(board, elf)

    @staticmethod
    def _serve(board, elf) -> int:
        """Start an emulated board and keep it running until Ctrl-C, SIGTERM or SIGHUP (a
        closed terminal), then stop the emulator: Python's default action for the last two
        would end this process at once and leave QEMU running."""
        handled = (signal.SIGTERM, signal.SIGHUP)
        main = threading.current_thread() is threading.main_thread()  # signal() needs it
        previous = {s: signal.signal(s, _stop_on_signal) for s in handled} if main else {}
        running = None
        try:
            running = board.start(elf)
            print(f"{board.profile.name} running: {running.url}   (Ctrl-C, SIGTERM or SIGHUP "
                  "stops it)", flush=True)
            while running.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        except _StopSignal as stop:
            print(f"{board.profile.name}: {stop}, stopping", flush=True)
        finally:
            for s in previous:  # a second signal must not cut the clean-up short
                signal.signal(s, signal.SIG_IGN)
            if running is not None:
                running.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0

    @staticmethod
    def _build_model(board, model_path, build_dir):
        """The firmware of a model, as ``tinysnn deploy`` builds it (code generation, the fit
        checked before and after the build); prints the fit."""
        from . import deploy

        fw = deploy.build_firmware(model_path, board, build_dir=build_dir,
                                   build_root=Path("build") / "tinysnn-fw")
        print(f"model {model_path} as {fw.name}: {fw.model.n_neurons} neurons, "
              f"{fw.export.const_bytes} B of constants, {fw.export.state_bytes} B of state")
        if fw.fit is not None:
            print(fw.fit.message())
        return fw.elf

    @staticmethod
    def _calibrate(args) -> int:
        from .costmodel import calibrate

        if not 1 <= args.samples <= 100_000:
            raise tinysnn_core.errors.ConfigError(f"--samples {args.samples}: give 1..100000")
        path, table = calibrate(args.name, args.models, args.samples, args.work_dir, args.out)
        print(f"{'model':40} {'samples':>7} {'measured':>12} {'predicted':>12} {'error':>7}")
        for r in table:
            print(f"{r['model']:40} {r['samples']:7d} {r['measured_median']:12,.0f} "
                  f"{r['predicted_median']:12,.0f} {100 * r['error_median']:+6.1f}%")
        print(f"calibration written to {path}")
        return 0

    def _selftest(self, args) -> int:
        from .protocol import DeviceUnderTest, protocol_test_engine

        transcript = open(args.transcript, "a") if args.transcript else None
        with _transports.open_transport(args.port) as t:
            dut = DeviceUnderTest(t, timeout=args.timeout, transcript=transcript)
            name = dut.connect()
            prof = dut.profile()
            print(f"board {name}: engine {prof.get('engine')}, {prof.get('neurons')} neurons, "
                  f"cycles = {prof.get('cycles')}")
            if prof.get("engine") != "protocol-test-engine":
                print("selftest needs the protocol test engine firmware (tinysnn board build "
                      "NAME without --engine-dir)", file=sys.stderr)
                return 2
            rng = random.Random(0)
            bad = 0
            for sid in range(args.samples):
                image = bytes(rng.randrange(256) for _ in range(784))
                res = dut.run_sample(image, 1234, sid)
                if (res.counts, res.prediction) != protocol_test_engine(image, 1234, sid):
                    bad += 1
            print(f"{args.samples - bad}/{args.samples} samples correct; link: "
                  f"{json.dumps(dut.stats.as_dict())}")
            return 0 if bad == 0 else 1
