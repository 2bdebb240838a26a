"""``tinysnn deploy`` and ``tinysnn measure``: a quantized model on a board, N test samples,
prediction parity with the host integer simulator, accuracy, cycles, memory and energy.

Every sample's result goes to a JSON-lines file the moment it arrives (flushed and synced), and
every byte on the link to a transcript. Running the same command again resumes: the samples
already in the results file are skipped, a half-written last line (a runner killed mid-write) is
dropped, and the file's header must describe the same model, board, data set and seed.

Samples are those of the model's data set test split (its configuration's ``n_test`` limit
applies), with the seed ``tinysnn_core.train.stream_seed(seed, "test")`` and sample id = index
in the split: exactly what ``tinysnn_core.intsim.infer`` computes on the host.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinysnn_core.errors import TinySNNError
from tinysnn_core.log import get_logger

from . import codegen
from .boards import BOARDS, BoardFitError, BoardError, check_mount
from .meters import METERS, MeterError
from .protocol import DeviceUnderTest, LinkError
from .transports import FlakyTransport, PtyTransport, SerialTransport, TransportError

log = get_logger(__name__)

RESULTS_VERSION = 1
#: header keys that must match for a results file to be resumed
IDENTITY = ("model_digest", "board", "dataset", "seed", "engine")


class DeployError(TinySNNError):
    """The deployment could not go on (the message says why and what to do)."""


# ---- results file -----------------------------------------------------------------------------

class ResultsFile:
    """A JSON-lines results file: one header line, then one line per sample (and one line per
    session with the link statistics). Appends are flushed and fsync'ed."""

    def __init__(self, path, header: dict):
        self.path = Path(path)
        self.header = dict(header, kind="header", version=RESULTS_VERSION)
        self.records: list[dict] = []
        self.sessions: list[dict] = []
        self.resumed = False
        self._fh = None

    def open(self) -> "ResultsFile":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            raw = self.path.read_bytes()
            cut = raw.rfind(b"\n") + 1
            if cut < len(raw):  # a line cut short by a kill: drop it, the sample runs again
                with open(self.path, "r+b") as fh:
                    fh.truncate(cut)
                raw = raw[:cut]
            lines = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
            head = lines[0] if lines else {}
            if head.get("kind") != "header":
                raise DeployError(f"{self.path} is not a tinysnn deploy results file")
            diff = [k for k in IDENTITY if head.get(k) != self.header.get(k)]
            if diff:
                raise DeployError(
                    f"{self.path} holds results of another run ({', '.join(diff)} differ: "
                    + "; ".join(f"{k}: {head.get(k)!r} there, {self.header.get(k)!r} now"
                                for k in diff) + "); choose another --results file")
            seen = set()
            for rec in lines[1:]:
                if rec.get("kind") == "sample" and rec["sid"] not in seen:
                    seen.add(rec["sid"])
                    self.records.append(rec)
                elif rec.get("kind") == "session":
                    self.sessions.append(rec)
            self.resumed = True
            self._fh = open(self.path, "a")
        else:
            self._fh = open(self.path, "w")
            self._write(self.header)
        return self

    def _write(self, rec: dict) -> None:
        self._fh.write(json.dumps(rec, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def add(self, rec: dict) -> None:
        rec = dict(rec, kind="sample")
        self._write(rec)
        self.records.append(rec)

    def add_session(self, rec: dict) -> None:
        rec = dict(rec, kind="session")
        self._write(rec)
        self.sessions.append(rec)

    @property
    def done(self) -> set[int]:
        return {r["sid"] for r in self.records}

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def summarize(records: list[dict], sessions: list[dict], profile=None) -> dict:
    """The numbers of a run, from its records."""
    n = len(records)
    out = {"samples": n}
    if not n:
        return out
    out["parity"] = sum(r["pred"] == r["host_pred"] for r in records) / n
    out["counts_identical"] = sum(bool(r["counts_ok"]) for r in records) / n
    labelled = [r for r in records if r.get("label") is not None]
    if labelled:
        out["accuracy"] = sum(r["pred"] == r["label"] for r in labelled) / len(labelled)
        out["host_accuracy"] = sum(r["host_pred"] == r["label"] for r in labelled) / len(labelled)
    cycles = sorted(r["cycles"] for r in records)
    out["cycles"] = {"min": cycles[0], "median": statistics.median(cycles), "max": cycles[-1]}
    if profile is not None:
        out["seconds_at_clock"] = {k: v / profile.clock_hz for k, v in out["cycles"].items()}
        out["clock_hz"] = profile.clock_hz
        out["cycle_source"] = profile.cycle_source
    energies = [r["energy_j"] for r in records if r.get("energy_j") is not None]
    if energies:
        out["energy_j"] = {"min": min(energies), "median": statistics.median(energies),
                           "max": max(energies), "samples": len(energies)}
    link: dict[str, int] = {}   # each sample's record holds its own link counts, written with it
    for s in list(records) + list(sessions):
        for k, v in s.get("link", {}).items():
            link[k] = link.get(k, 0) + int(v)
    out["link"] = link
    out["sessions"] = len(sessions)
    return out


# ---- the run ----------------------------------------------------------------------------------

@dataclass
class Target:
    """Where the samples run: a transport to a board, and what was measured about it."""

    transport: object
    profile: object
    running: object = None            # a RunningBoard (emulated boards started here)
    memory: object = None             # MemoryUse from the ELF
    fit: object = None                # FitReport
    notes: list = field(default_factory=list)

    def close(self) -> None:
        try:
            self.transport.close()
        finally:
            if self.running is not None:
                self.running.stop()


def model_id(model_path) -> tuple[str, str]:
    """(stem, sha256 of the model file)."""
    path = Path(model_path)
    return path.stem, hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(model_path, *, int_defaults: bool = False, board=None):
    """The network and its integer model; an unquantized model is refused (with the FP32 fit
    check when a board is given) unless ``int_defaults``."""
    from tinysnn_core.intsim import from_network
    from tinysnn_core.modelfile import load_network

    net = load_network(model_path)
    if net.quant is None and not int_defaults:
        n = net.n_neurons
        fp32 = 4 * net.w.size + 4 * n + (4 * n * n if net.inh is not None else 0)
        msg = (f"{model_path} is not quantized (FP32: {fp32 / 1024:.1f} KiB of parameters); the "
               "board runs the integer engine of docs/fixed-point.md: quantize the model "
               "(quant.scheme = 'ptq' or 'itq', e.g. the model that tinysnn select writes), or "
               "pass --int-defaults to use the 16-bit default formats")
        if board is not None:
            fit = board.estimate_fit(fp32, 3 * 4 * n, n)
            msg = f"the FP32 {fit.message()}\n{msg}" if not fit.fits else msg
        raise DeployError(msg)
    if net.assignments is None:
        raise DeployError(f"{model_path} has no label assignments: evaluate it first "
                          "(tinysnn eval MODEL)")
    return net, from_network(net)


def test_split(net, samples: int | None):
    """(images, labels, seed, data set name) of the model's test split, first ``samples``."""
    from tinysnn_core import train as flow

    data = flow.load_dataset(net.config)
    images, labels = data.test_images, data.test_labels
    if samples is not None:
        if samples > len(images):
            raise DeployError(f"--samples {samples}: the test split of {data.name} has "
                              f"{len(images)} samples (train.n_test of the model's config)")
        images, labels = images[:samples], labels[:samples]
    return images, labels, flow.stream_seed(net.config.seed, "test"), data.name


def prepare(net, m, board, *, name: str, build_dir) -> tuple[Path, object, object, object]:
    """Generate, check the fit (before and after the build), build. Returns (elf, export,
    memory use or None, fit report or None)."""
    exp = codegen.generate(m, name)
    estimate = board.estimate_fit(exp.const_bytes, exp.state_bytes, m.n_neurons)
    board.require_fit(estimate)
    build_dir = Path(build_dir)
    eng = exp.write(build_dir / "engine")
    elf = board.build(eng, build_dir / "firmware")
    memory = fit = None
    if board.profile.toolchain != "cc":
        memory = board.memory_use(elf)
        fit = board.require_fit(board.check_fit(memory.flash_bytes, memory.ram_bytes))
    return elf, exp, memory, fit


def firmware_model_name(stem: str, digest: str) -> str:
    return codegen.model_name(f"{stem}-{digest[:10]}")


@dataclass
class Firmware:
    """A model's firmware for a board, built as ``deploy`` builds it."""

    net: object
    model: object                     # the integer model
    name: str                         # the firmware's model name
    build_dir: Path
    elf: Path
    export: object                    # codegen.CExport
    memory: object = None             # MemoryUse from the ELF (cross builds)
    fit: object = None                # FitReport


def build_firmware(model_path, board, *, build_dir=None, build_root="build/tinysnn-deploy"):
    """Generate, check the fit and build ``model_path`` for ``board`` in ``build_dir`` (default
    ``build_root/NAME-BOARD``)."""
    net, m = load_model(model_path, board=board)
    stem, _ = model_id(model_path)
    name = firmware_model_name(stem, codegen.model_digest(m))
    bdir = Path(build_dir) if build_dir else Path(build_root) / f"{name}-{board.profile.name}"
    elf, exp, memory, fit = prepare(net, m, board, name=name, build_dir=bdir)
    return Firmware(net, m, name, bdir, elf, exp, memory, fit)


def latency_predictor(board_name: str, m):
    """A function of one sample's operation counts giving the board cost model's latency per
    inference in seconds (None without a calibration): the first wait for ``infer`` follows
    it, before the link has measured any."""
    import warnings

    from .costmodel import BoardCostModel, CalibrationError

    try:
        model = BoardCostModel(board_name)
    except (CalibrationError, KeyError, ValueError):
        return lambda ops: None

    def predict(ops):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cost = model.integer_inference_cost(m, {k: [v] for k, v in ops.items()})
        except (CalibrationError, KeyError, ValueError):
            return None
        ms = cost.get("latency_ms_median")
        return None if ms is None else ms / 1000
    return predict


def run_samples(dut: DeviceUnderTest, m, images, labels, seed: int, results: ResultsFile, *,
                meter=None, n: int = 1, warmup: int = 0, on_sample=None, out=sys.stdout,
                predict=None, progress: bool = False) -> int:
    """Run every sample not yet in ``results``; returns how many ran now. Each record carries
    the link's counts since the previous one, so a killed run keeps them. ``progress``: a bar
    over the samples on stderr (when it is a terminal)."""
    from tqdm import tqdm

    todo = [i for i in range(len(images)) if i not in results.done]
    ran = 0
    # disable=None: tqdm turns itself off when stderr is not a terminal (a log, a pipe, CI)
    bar = tqdm(total=len(images), initial=len(images) - len(todo), desc="samples",
               unit="sample", disable=None if progress else True, dynamic_ncols=True,
               file=sys.stderr)
    try:
        ran = _run_todo(dut, m, images, labels, seed, results, todo, bar, meter=meter, n=n,
                        warmup=warmup, on_sample=on_sample, out=out, predict=predict)
    finally:
        bar.close()
    return ran


def _run_todo(dut, m, images, labels, seed, results, todo, bar, *, meter, n, warmup, on_sample,
              out, predict) -> int:
    from tinysnn_core import intsim

    ran = 0
    for sid in todo:
        ops = intsim.new_ops()
        host_counts = intsim.infer_counts(m, images[sid], seed, sid, ops)
        host_pred = intsim.classify(m, host_counts)
        if predict is not None:
            dut.predicted_infer_s = predict(ops)
        res = dut.run_sample(images[sid], seed, sid, n=n, warmup=warmup, meter=meter)
        rec = {"sid": sid, "label": int(labels[sid]) if labels is not None else None,
               "pred": res.prediction, "host_pred": int(host_pred),
               "counts_ok": res.counts == [int(c) for c in host_counts],
               "spikes": int(sum(res.counts)), "cycles": res.cycles,
               "cycles_min": res.infer.get("min"), "cycles_max": res.infer.get("max"),
               "n": n, "t": round(time.time(), 3), "ops": ops, "link": dut.stats.take_delta()}
        if res.energy is not None:
            rec["energy_j"] = res.energy["energy_j"]
            rec["energy_source"] = res.energy["source"]
        results.add(rec)
        ran += 1
        bar.update(1)
        if not rec["counts_ok"] or rec["pred"] != rec["host_pred"]:
            bar.write(f"PARITY MISMATCH at sample {sid}: board predicted {rec['pred']}, host "
                      f"{rec['host_pred']}; counts identical: {rec['counts_ok']}", file=out)
        if on_sample is not None:
            on_sample(rec)
    return ran


def make_meter(name: str | None, profile, options: dict):
    if not name:
        return None
    if name not in METERS:
        from tinysnn_core.registry import get_registry

        try:
            cls = get_registry().get("energy_meter", name)
        except Exception as exc:  # noqa: BLE001 - report the registry's message
            raise DeployError(str(exc)) from None
    else:
        cls = METERS[name][0]
    meter = cls(**options)
    meter.open(profile)
    why = getattr(meter, "available", lambda: None)()
    if why:
        log.warning("energy: %s", why)
        meter.close()
        return None
    return meter


def report(summary: dict, *, profile, model_desc: str, memory=None, fit=None, meter_name=None,
           results_path=None, transcript_path=None, out=sys.stdout) -> None:
    p = profile
    w = lambda s="": print(s, file=out)  # noqa: E731
    w(f"board {p.name} ({p.cpu}, {p.clock_hz / 1e6:g} MHz); {model_desc}")
    if fit is not None:
        w(fit.message())
    n = summary.get("samples", 0)
    if not n:
        w("no samples")
        return
    par = summary["parity"]
    w(f"prediction parity with the host integer simulator: {round(par * n)}/{n} "
      f"({100 * par:.2f}%); spike counts identical: {round(summary['counts_identical'] * n)}/{n}")
    if "accuracy" in summary:
        w(f"accuracy: {100 * summary['accuracy']:.2f}% on {n} test samples (host integer "
          f"simulator: {100 * summary['host_accuracy']:.2f}%)")
    c = summary["cycles"]
    what = (f"QEMU instruction count (icount), not {p.cpu.split(' (')[0]} cycles"
            if p.name.startswith("qemu") else p.cycle_source)
    w(f"cycles per inference [{what}]: min {c['min']:,}  median {c['median']:,.0f}  "
      f"max {c['max']:,}")
    s = summary.get("seconds_at_clock")
    if s:
        how = " if one instruction took one cycle" if p.name.startswith("qemu") else ""
        w(f"time per inference at {p.clock_hz / 1e6:g} MHz{how}: min {1e3 * s['min']:.2f} ms  "
          f"median {1e3 * s['median']:.2f} ms  max {1e3 * s['max']:.2f} ms")
    if memory is not None:
        w(f"flash {memory.flash_bytes:,} B, RAM {memory.ram_bytes:,} B (from the ELF: "
          + ", ".join(f"{k} {v:,}" for k, v in memory.sections.items()
                      if k in (".text", ".rodata", ".data", ".bss", ".stack")) + ")")
    pred = summary.get("predicted")
    if pred and "instructions_median" in pred:
        meas = c["median"]
        w(f"predicted by the board cost model [{pred['label']}]: median "
          f"{pred['instructions_median']:,.0f} instructions ({100 * (pred['instructions_median'] / meas - 1):+.1f}% "
          f"against the measured median {meas:,.0f})"
          + (f"; {pred['cycles_median']:,.0f} cycles, {pred['latency_ms_median']:.2f} ms at "
             f"{p.clock_hz / 1e6:g} MHz" if "cycles_median" in pred else "")
          + (f", {pred['energy_uj_median']:.1f} uJ (cycles x datasheet)"
             if "energy_uj_median" in pred else ""))
    elif pred and "why" in pred:
        w(f"board cost model: {pred['why']}")
    if summary.get("asic_energy_uj") is not None:
        w(f"energy per inference in the ASIC 45 nm model (operation counts x Horowitz ISSCC "
          f"2014; not this board): {summary['asic_energy_uj']:.2f} uJ")
    e = summary.get("energy_j")
    if e:
        w(f"energy per inference ({meter_name}): median {1e6 * e['median']:.2f} uJ "
          f"(min {1e6 * e['min']:.2f}, max {1e6 * e['max']:.2f}) over {e['samples']} samples")
    elif meter_name:
        w(f"energy per inference ({meter_name}): no result")
    link = summary.get("link", {})
    if link:
        w("link: " + ", ".join(f"{k} {v}" for k, v in link.items() if k in (
            "commands", "retries", "timeouts", "bad_acks", "frame_errors", "reloads", "salvaged",
            "samples", "flaky_damaged_bytes"))
          + f" over {summary.get('sessions', 0)} session(s)")
    if results_path:
        w(f"results: {results_path}" + (f"; transcript: {transcript_path}"
                                        if transcript_path else ""))


def default_paths(stem: str, board: str, results=None):
    res = Path(results) if results else Path("runs") / "deploy" / f"{stem}-{board}.jsonl"
    return res, res.with_name(res.stem + ".transcript.jsonl")


def execute(*, model_path, board_name: str | None, samples: int | None, meter_name: str | None,
            meter_options: dict, results_path, port: str | None, build: bool, build_dir=None,
            flash: bool = True, flaky: float = 0.0, flaky_seed: int = 0, int_defaults=False,
            mount=None, probe=None, timeout: float = 5.0, n: int = 1, warmup: int = 0,
            on_sample=None, on_target=None, out=None, progress: bool = False) -> dict:
    """The whole flow behind both commands (``build`` False: ``measure`` on a running board).
    ``out``: where the report goes (default: ``sys.stdout`` as it is at the call);
    ``progress``: a bar over the samples on stderr, when that is a terminal."""
    out = sys.stdout if out is None else out
    stem, sha = model_id(model_path)
    board = BOARDS.get(board_name) if board_name else None
    if board_name and board is None:
        raise DeployError(f"unknown board {board_name!r}; known: {', '.join(BOARDS)}")
    net, m = load_model(model_path, int_defaults=int_defaults, board=board)
    digest = codegen.model_digest(m)
    name = firmware_model_name(stem, digest)
    images, labels, seed, dataset = test_split(net, samples)
    results_path, transcript_path = default_paths(stem, board_name or "port", results_path)

    if mount is not None:  # before the build: a wrong drive must not cost a build first
        if board is None or board.profile.emulated:
            raise DeployError(f"--mount flashes a physical board; {board_name} is emulated")
        if not flash:
            raise DeployError("--mount and --no-flash contradict each other: give one")
        check_mount(mount)

    target = None
    if build:
        bdir = Path(build_dir) if build_dir else (Path("build") / "tinysnn-deploy"
                                                  / f"{name}-{board.profile.name}")
        elf, exp, memory, fit = prepare(net, m, board, name=name, build_dir=bdir)
        if board.profile.toolchain == "cc":
            transport, running = PtyTransport([str(elf)]), None
        elif board.profile.emulated:
            running = board.start(elf, log_path=bdir / "board.log")
            transport = SerialTransport(running.url)
        else:
            if flash:
                print(board.flash(elf, mount=mount, probe=probe), file=out)
            if not port:
                raise DeployError(f"{board.profile.name} is flashed; give its serial port "
                                  "with --port (e.g. /dev/ttyACM0)")
            transport, running = SerialTransport(port), None
        target = Target(transport, board.profile, running, memory, fit)
    else:
        if not port:
            raise DeployError("measure needs --port (a pyserial URL, pty:CMD or subprocess:CMD)")
        from .transports import open_transport

        target = Target(open_transport(port), board.profile if board else None)
    if flaky:
        target.transport = FlakyTransport(target.transport, drop=flaky / 2, corrupt=flaky / 2,
                                          seed=flaky_seed)
    if on_target is not None:
        on_target(target)

    transcript = None
    results = None
    meter = None
    dut = None
    try:
        target.transport.open()
        transcript = open(transcript_path.parent.mkdir(parents=True, exist_ok=True)
                          or transcript_path, "a")
        # No link settings: the session learns the round trip and the damage as it goes.
        dut = DeviceUnderTest(target.transport, timeout=timeout, transcript=transcript)
        dev_name = dut.connect()
        if target.profile is None:
            if dev_name not in BOARDS:
                raise DeployError(f"the board says it is {dev_name!r}; pass --board NAME")
            target.profile = BOARDS[dev_name].profile
        prof = dut.profile()
        engine = codegen.engine_name(m)
        if prof.get("engine") != engine or prof.get("model") != name:
            raise DeployError(f"the board runs engine {prof.get('engine')!r} with model "
                              f"{prof.get('model')!r}, not {engine!r} with "
                              f"{name!r}: deploy this model first (tinysnn deploy)")
        header = {"model": str(model_path), "model_sha256": sha, "model_digest": digest,
                  "board": target.profile.name, "dataset": dataset, "seed": seed,
                  "engine": engine, "firmware_model": name,
                  "formats": m.formats, "neurons": m.n_neurons, "time_steps": m.time_steps}
        if target.memory is not None:
            header["flash_bytes"] = target.memory.flash_bytes
            header["ram_bytes"] = target.memory.ram_bytes
        results = ResultsFile(results_path, header).open()
        if results.resumed:
            print(f"resuming {results_path}: {len(results.records)} of {len(images)} samples "
                  "done", file=out)
        meter = make_meter(meter_name, target.profile, meter_options)
        try:
            run_samples(dut, m, images, labels, seed, results, meter=meter, n=n,
                        warmup=warmup, on_sample=on_sample, out=out,
                        predict=latency_predictor(target.profile.name, m), progress=progress)
        except (LinkError, TransportError) as exc:
            raise DeployError(f"the board stopped answering ({exc}); {len(results.records)} of "
                              f"{len(images)} samples are in {results_path}: run the same "
                              "command again to resume") from None
    finally:
        if results is not None and dut is not None:
            link = dut.stats.take_delta()   # what the sample records do not hold yet
            if flaky:
                link["flaky_damaged_bytes"] = target.transport.stats.total
            results.add_session({"link": link, "link_model": dut.link.describe(),
                                 "t": round(time.time(), 3)})
        if meter is not None:
            meter.close()
        target.close()
        if transcript is not None:
            transcript.close()
    summary = summarize(results.records, results.sessions, target.profile)
    summary["predicted"] = predicted_cost(target.profile.name, m, results.records)
    summary["asic_energy_uj"] = asic_energy_uj(net, m, results.records)
    memory = target.memory
    desc = (f"model {stem} ({digest}), {m.n_neurons} neurons, "
            f"{'diehl-cook' if m.inh is not None else 'tinysnn'}, T={m.time_steps}, weights "
            f"{m.w_format}, potential {m.formats.get('potential', {}).get('format', '?')}")
    desc += (f", inference rate {m.rate_units.size} presentation(s) from "
             f"{int(m.rate_units[0])} per intensity unit, exit margin {m.exit_margin}")
    report(summary, profile=target.profile, model_desc=desc, memory=memory, fit=target.fit,
           meter_name=meter_name, results_path=results_path, transcript_path=transcript_path,
           out=out)
    results.close()
    summary.update({"results": str(results_path), "transcript": str(transcript_path),
                    "board": target.profile.name, "total": len(images)})
    if memory is not None:
        summary["flash_bytes"], summary["ram_bytes"] = memory.flash_bytes, memory.ram_bytes
    return summary


def asic_energy_uj(net, m, records: list[dict]) -> float | None:
    """The ASIC 45 nm model's energy per inference for the samples that ran (their operation
    counts on the host), the figure of the earlier releases, for comparison only."""
    from tinysnn_core.builtin.costs import EnergyModel
    from tinysnn_core.explore import integer_op_counts

    recs = [r for r in records if r.get("ops")]
    if not recs:
        return None
    ops = {k: [r["ops"][k] for r in recs] for k in recs[0]["ops"]}
    plan = net.quant.plan if net.quant is not None else None
    test = EnergyModel().estimate(net, {"test": integer_op_counts(m, ops)}, plan)
    return test["phases"]["test"]["pj_per_sample"] / 1e6


def predicted_cost(board_name: str, m, records: list[dict]) -> dict:
    """The board cost model's figures for the samples that ran (the host's operation counts of
    each), to print and store next to the measured ones; ``why`` when there is no calibration."""
    import warnings

    from .costmodel import BoardCostModel, CalibrationError

    recs = [r for r in records if r.get("ops")]
    if not recs:
        return {"why": "no operation counts in the results (an older results file)"}
    ops = {k: [r["ops"][k] for r in recs] for k in recs[0]["ops"]}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = BoardCostModel(board_name).integer_inference_cost(m, ops)
        if caught:
            out["warning"] = str(caught[0].message)
        return out
    except CalibrationError as exc:
        return {"why": str(exc)}


# ---- the commands -----------------------------------------------------------------------------

def _common_arguments(p) -> None:
    p.add_argument("model", help="a quantized model file (.tsnn) with label assignments")
    p.add_argument("--samples", type=int, help="the first N test samples (default: all of the "
                   "model's test split)")
    p.add_argument("--meter", help="energy meter: model, ppk2, lpm01a (tinysnn plugins "
                   "--kind energy_meter)")
    p.add_argument("--meter-port", help="the energy meter's serial port (ppk2, lpm01a)")
    p.add_argument("--meter-voltage-mv", type=int, default=3300)
    p.add_argument("--results", help="JSON-lines results file (default "
                   "runs/deploy/MODEL-BOARD.jsonl); the transcript goes next to it")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer "
                   "until the link's round trip is measured (it adapts from then on)")
    p.add_argument("--repeat", type=int, default=1, help="inferences per sample (timed)")
    p.add_argument("--flaky", type=float, default=0.0, metavar="P",
                   help="test the link: drop or corrupt this fraction of the bytes")
    p.add_argument("--flaky-seed", type=int, default=0)
    p.add_argument("--int-defaults", action="store_true", help="run an unquantized model with "
                   "the 16-bit default formats (tinysnn_core.intsim.complete_plan)")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (there is none "
                   "either when stderr is not a terminal)")


def _meter_options(args) -> dict:
    opts = {"voltage_mv": args.meter_voltage_mv}
    if args.meter_port:
        opts["port"] = args.meter_port
    return opts


def _finish(summary: dict, args) -> int:
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    complete = summary.get("samples") == summary.get("total")
    return 0 if complete and summary.get("parity", 0) == 1.0 and \
        summary.get("counts_identical", 0) == 1.0 else 1


#: ``out`` of the Python functions: ``sys.stdout`` as it is when they are called
STDOUT = object()


def _report_stream(out):
    if out is STDOUT:
        return sys.stdout
    return io.StringIO() if out is None else out


def deploy_model(model, board: str, *, samples: int | None = None, results=None,
                 build_dir=None, port: str | None = None, flash: bool = True,
                 meter: str | None = None, meter_options: dict | None = None,
                 timeout: float = 5.0, repeat: int = 1, int_defaults: bool = False,
                 progress: bool = False, out=STDOUT) -> dict:
    """``tinysnn deploy`` from Python: generate the C model of the quantized model file
    ``model``, check the fit, build, start (emulated board) or flash (``port``: its serial
    port), run the first ``samples`` test samples; the summary (``parity``, ``accuracy``,
    ``cycles``, ``flash_bytes``, ...) as a dict. The report goes to ``out`` (default: stdout;
    None: nowhere).
    Resumes from ``results`` (default ``runs/deploy/MODEL-BOARD.jsonl``) as the command does."""
    return execute(model_path=model, board_name=board, samples=samples, meter_name=meter,
                   meter_options=dict(meter_options or {}), results_path=results, port=port,
                   build=True, build_dir=build_dir, flash=flash, int_defaults=int_defaults,
                   timeout=timeout, n=repeat, progress=progress,
                   out=_report_stream(out))


def measure_model(model, port: str, *, board: str | None = None, samples: int | None = None,
                  results=None, meter: str | None = None, meter_options: dict | None = None,
                  timeout: float = 5.0, repeat: int = 1, int_defaults: bool = False,
                  progress: bool = False, out=STDOUT) -> dict:
    """``tinysnn measure`` from Python: the test samples on a board already running ``model``
    at ``port`` (a pyserial URL, ``pty:CMD`` or ``subprocess:CMD``); the summary as a dict."""
    return execute(model_path=model, board_name=board, samples=samples, meter_name=meter,
                   meter_options=dict(meter_options or {}), results_path=results, port=port,
                   build=False, int_defaults=int_defaults, timeout=timeout, n=repeat,
                   progress=progress, out=_report_stream(out))


class DeployCommand:
    """Generate the C model, check the fit, build, start or flash, run the test samples."""

    #: the command's Python function (``tinysnn_core.deploy`` finds it through the registry)
    function = staticmethod(deploy_model)

    def add_arguments(self, p):
        _common_arguments(p)
        p.add_argument("--board", required=True, help="board name (tinysnn board list)")
        p.add_argument("--port", help="serial port of a physical board (after flashing)")
        p.add_argument("--no-flash", action="store_true", help="physical board: already flashed")
        p.add_argument("--mount", metavar="DIR", help="physical board: flash by copying the .bin "
                       "to its ST-LINK USB drive mounted at DIR (e.g. /media/$USER/NODE_L476RG) "
                       "instead of pyocd")
        p.add_argument("--probe", help="physical board: the pyocd probe's unique id (pyocd list)")
        p.add_argument("--build-dir", help="default build/tinysnn-deploy/MODEL-BOARD")

    def run(self, args) -> int:
        try:
            summary = execute(model_path=args.model, board_name=args.board, samples=args.samples,
                              meter_name=args.meter, meter_options=_meter_options(args),
                              results_path=args.results, port=args.port, build=True,
                              build_dir=args.build_dir, flash=not args.no_flash,
                              mount=args.mount, probe=args.probe,
                              flaky=args.flaky, flaky_seed=args.flaky_seed,
                              int_defaults=args.int_defaults, timeout=args.timeout,
                              n=args.repeat, progress=not args.quiet)
        except (DeployError, BoardFitError, BoardError, MeterError) as exc:
            print(f"tinysnn deploy: {exc}", file=sys.stderr)
            return 2
        return _finish(summary, args)


class MeasureCommand:
    """Run the test samples on a board that is already running the model (any serial URL)."""

    function = staticmethod(measure_model)

    def add_arguments(self, p):
        _common_arguments(p)
        p.add_argument("--port", required=True, help="pyserial URL (/dev/ttyACM0, "
                       "socket://host:port, rfc2217://...), pty:CMD or subprocess:CMD")
        p.add_argument("--board", help="board profile for clock and energy (default: the name "
                       "the board reports)")

    def run(self, args) -> int:
        try:
            summary = execute(model_path=args.model, board_name=args.board, samples=args.samples,
                              meter_name=args.meter, meter_options=_meter_options(args),
                              results_path=args.results, port=args.port, build=False,
                              flaky=args.flaky, flaky_seed=args.flaky_seed,
                              int_defaults=args.int_defaults, timeout=args.timeout,
                              n=args.repeat, progress=not args.quiet)
        except (DeployError, BoardError, MeterError) as exc:
            print(f"tinysnn measure: {exc}", file=sys.stderr)
            return 2
        return _finish(summary, args)

