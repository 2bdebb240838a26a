"""Board cost models: what one inference costs on a board, predicted before anything is built.

On a microcontroller the cost of an inference is its cycles: latency = cycles / clock, energy =
cycles / clock x run current x supply voltage. The firmware engine's work is a linear function
of what the integer simulator counts per sample (``tinysnn_core.intsim.INFER_OPS``), so

    instructions = sum_k c_k * feature_k(model, ops)                            (fitted)
    cycles       = instructions * CPI(core, flash wait states)                  (cycle plugin)
    latency      = cycles / clock
    energy       = cycles / clock * (run uA/MHz * clock MHz) * VDD              (datasheet)

The coefficients ``c_k`` (one set per weight width: the engine's passes differ by width) are
fitted on measured runs of several models on an emulated board
(``tinysnn board calibrate NAME``) and stored, with the engine's source digest, in
``calibration/NAME.json``. A physical board takes the instruction coefficients of the emulated
board with the same core (``INSTRUCTIONS_FROM``) and its own CPI and datasheet figures. Every
figure says which model produced it (``label``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tinysnn_core.errors import TinySNNError

from .boards import BOARDS

CALIBRATION_VERSION = 1
#: what the engine does per sample, as a linear model's features (``features``)
FEATURES = ("sample", "sample_neurons", "presentation_neurons", "step", "step_neurons",
            "step_neurons_inh", "draws", "row_words_fields", "row_codes_lanes", "field_flushes",
            "exc_spikes")
#: weight widths whose rows the engine adds into 8-bit fields, a word at a time; the others are
#: unpacked code by code into 16-bit lanes (firmware/engine/engine.c)
FIELD_WIDTHS = (1, 2, 4)
#: physical boards take their instruction counts from the emulated board with the same core
INSTRUCTIONS_FROM = {"nucleo-l432kc": "qemu-mps2-an386", "nucleo-l476rg": "qemu-mps2-an386"}


_FIT_CACHE: dict = {}


class CalibrationError(TinySNNError):
    """A board has no (or an outdated) cost calibration."""


def calibration_dir() -> Path:
    """Where calibrations are read and written (``TINYSNN_CALIBRATION_DIR`` overrides)."""
    env = os.environ.get("TINYSNN_CALIBRATION_DIR")
    return Path(env) if env else Path(__file__).resolve().parent / "calibration"


def engine_digest() -> str:
    """A digest of the engine sources: a calibration is only valid for the engine it measured."""
    from .codegen import engine_source_dir

    h = hashlib.sha256()
    for src in sorted(engine_source_dir().glob("*.[ch]")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def features(model, ops: dict) -> np.ndarray:
    """[B, len(FEATURES)] feature matrix of the samples whose operation counts are ``ops``."""
    from .codegen import weight_layout

    n = int(model.n_neurons)
    bits = int(model.w_format.bits)
    half, words = weight_layout(bits, n)
    fields = bits in FIELD_WIDTHS
    steps = np.asarray(ops["steps"], dtype=np.float64)
    b = steps.size
    inh = 1.0 if model.inh is not None else 0.0
    spikes = np.asarray(ops["input_spikes"], np.float64)
    cols = {
        "sample": np.ones(b),
        "sample_neurons": np.full(b, float(n)),                  # classification, state reset
        "presentation_neurons": np.asarray(ops["presentations"], np.float64) * n,
        "step": steps,                                           # step keys, loop overhead
        "step_neurons": steps * n,                               # the neuron pass
        "step_neurons_inh": steps * n * inh,                     # Diehl & Cook's second layer
        "draws": np.asarray(ops["draws"], np.float64),           # one hash per non-zero pixel
        # weight rows added: per 32-bit word (8-bit fields) or per code (16-bit lanes)
        "row_words_fields": np.asarray(ops["input_spikes"], np.float64) * words * fields,
        "row_codes_lanes": np.asarray(ops["input_spikes"], np.float64) * words * 2 * half
        * (not fields),
        # 8-bit fields hold 255 / (2^bits - 1) rows: a step with more input spikes empties
        # them into the lanes first; the expected number of such flushes, with the spikes of a
        # step taken as Poisson around the sample's mean
        "field_flushes": steps * words * _expected_flushes(spikes / np.maximum(steps, 1),
                                                           255 // ((1 << bits) - 1))
        * fields,
        "exc_spikes": np.asarray(ops["exc_spikes"], np.float64),
    }
    return np.stack([cols[k] for k in FEATURES], axis=1)


def _expected_flushes(rate: np.ndarray, rows: int) -> np.ndarray:
    """E[floor(X / rows)] for X ~ Poisson(rate): sum over k >= 1 of P(X >= k * rows)."""
    from scipy.stats import poisson

    rate = np.asarray(rate, dtype=np.float64)
    out = np.zeros_like(rate)
    for k in range(1, 64):
        tail = poisson.sf(k * rows - 1, rate)
        out += tail
        if np.all(tail < 1e-9):
            break
    return out


def fit(feature_rows: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the relative error (each sample weighted by
    1 / measured), so that small and large models are predicted equally well."""
    from scipy.optimize import nnls

    X = np.asarray(feature_rows, dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    if X.shape[0] < X.shape[1] or not np.all(y > 0):
        raise CalibrationError(f"calibration needs at least {X.shape[1]} measured samples with "
                               "positive counts")
    w = 1.0 / y
    scale = np.maximum(X.max(axis=0), 1e-12)  # columns of comparable size for the solver
    coef, _ = nnls(X * w[:, None] / scale, y * w)
    return coef / scale


class BoardCostModel:
    """The cost of integer inference on one board, from a calibration (module docstring).

    ``integer_inference_cost(model, ops)`` is the cost-model contract's board part: the
    exploration, the selection, the report and ``deploy`` call it with the integer model and the
    per-sample operation counts of its test samples."""

    def __init__(self, board: str):
        if board not in BOARDS:
            raise CalibrationError(f"unknown board {board!r}; known: {', '.join(BOARDS)}")
        self.board = BOARDS[board]
        self.profile = self.board.profile
        self.name = f"board-{board}"
        self._cal = None

    # -- calibration -----------------------------------------------------------------------
    @property
    def calibration(self) -> dict:
        if self._cal is None:
            source = INSTRUCTIONS_FROM.get(self.profile.name, self.profile.name)
            cal = load_calibration(source)
            own = load_calibration(self.profile.name, required=False) if source != \
                self.profile.name else cal
            self._cal = {"instructions": cal, "own": own or {}}
        return self._cal

    def coefficients(self, bits: int) -> tuple[np.ndarray, str]:
        """The coefficients for ``bits``-bit weights (the engine takes a different path per
        width) and a note when that width was not calibrated (the nearest one's are used)."""
        table = self.calibration["instructions"]["coefficients"]
        widths = sorted(int(b) for b in table)
        if not widths:
            raise CalibrationError(f"the calibration of {self.profile.name} is empty")
        # the nearest width that the engine adds the same way (8-bit fields or 16-bit lanes)
        near = min(widths, key=lambda b: ((b in FIELD_WIDTHS) != (bits in FIELD_WIDTHS),
                                          abs(b - bits), b))
        note = "" if near == bits else (
            f"{bits}-bit weights not calibrated: the {near}-bit coefficients, an estimate of "
            "unknown error (a 6-bit model measured 36-42% above the 8-bit coefficients' figure)")
        return np.asarray(table[str(near)], dtype=np.float64), note

    @property
    def cpi(self) -> tuple[float | None, str]:
        """Cycles per instruction of this board's core and memory, and where it comes from."""
        own = self.calibration["own"]
        if own.get("cpi"):
            return float(own["cpi"]), own.get("cpi_source", "")
        return None, "no cycle estimate calibrated for this board"

    @property
    def label(self) -> str:
        p = self.profile
        base = (f"{p.name}: instructions fitted on {INSTRUCTIONS_FROM.get(p.name, p.name)} "
                f"(engine {self.calibration['instructions'].get('engine_digest', '?')})")
        if p.run_ua_per_mhz and p.supply_v:
            base += (f"; energy = cycles x {p.run_ua_per_mhz:g} uA/MHz x {p.supply_v:g} V "
                     f"(datasheet), {p.clock_hz / 1e6:g} MHz")
        return base

    # -- prediction ------------------------------------------------------------------------
    def predict_instructions(self, model, ops: dict) -> np.ndarray:
        return features(model, ops) @ self.coefficients(int(model.w_format.bits))[0]

    def integer_inference_cost(self, model, ops: dict) -> dict:
        """Predicted per-inference figures (medians and means over the samples of ``ops``) and
        whether the model fits the board."""
        from .codegen import ENGINE_NAME, engine_name

        instr = self.predict_instructions(model, ops)
        note = self.coefficients(int(model.w_format.bits))[1]
        if engine_name(model) != ENGINE_NAME:  # a plugin's neuron model runs on another engine
            note = (f"fitted on the engine {ENGINE_NAME}, not on {engine_name(model)} that this "
                    "model's neuron model runs on: an estimate only")
        out = {"label": self.label + (f"; {note}" if note else ""), "board": self.profile.name,
               "calibrated": not note,
               "instructions_median": float(np.median(instr)),
               "instructions_mean": float(np.mean(instr))}
        cpi, source = self.cpi
        p = self.profile
        if cpi is not None:
            cycles = instr * cpi
            out.update({"cpi": cpi, "cpi_source": source,
                        "cycles_median": float(np.median(cycles)),
                        "cycles_mean": float(np.mean(cycles)),
                        "latency_ms_median": float(np.median(cycles)) / p.clock_hz * 1e3,
                        "latency_ms_mean": float(np.mean(cycles)) / p.clock_hz * 1e3})
            if p.run_ua_per_mhz and p.supply_v:
                joules_per_cycle = p.run_ua_per_mhz * 1e-12 * p.supply_v
                out["energy_uj_median"] = float(np.median(cycles)) * joules_per_cycle * 1e6
                out["energy_uj_mean"] = float(np.mean(cycles)) * joules_per_cycle * 1e6
        out.update(self.fit_check(model))
        return out

    def fit_check(self, model) -> dict:
        """Flash and RAM of the model's firmware, estimated from the generated C (the build
        checks again from the ELF)."""
        from .codegen import ExportError, generate

        # the sizes depend on the constants, not on T or the early exit
        h = hashlib.sha256(np.ascontiguousarray(model.w_codes).tobytes())
        h.update(np.ascontiguousarray(model.exc.thresh).tobytes())
        h.update(repr((model.w_format, len(model.rate_units), model.inh is None)).encode())
        key = (self.profile.name, h.hexdigest())
        if key not in _FIT_CACHE:   # an exploration asks once per inference setting
            try:
                exp = generate(model, "estimate")
            except ExportError as exc:
                _FIT_CACHE[key] = {"fits": False, "fit": str(exc)}
            else:
                rep = self.board.estimate_fit(exp.const_bytes, exp.state_bytes,
                                              model.n_neurons)
                _FIT_CACHE[key] = {"fits": rep.fits, "flash_bytes": rep.flash_needed,
                                   "ram_bytes": rep.ram_needed, "fit": rep.message()}
        return dict(_FIT_CACHE[key])

    # the generic cost-model entry point: a network's integer model on the test samples
    def estimate(self, net, ops=None, plan=None) -> dict:
        raise CalibrationError(f"{self.name} costs integer inference: use "
                               "integer_inference_cost(model, ops) with intsim's operation counts")


def calibration_path(board: str) -> Path:
    return calibration_dir() / f"{board}.json"


def load_calibration(board: str, required: bool = True) -> dict | None:
    path = calibration_path(board)
    if not path.is_file():
        if not required:
            return None
        raise CalibrationError(f"no cost calibration for board {board} (looked for {path.name} "
                               f"in the calibration folder): run tinysnn board calibrate {board}")
    try:
        cal = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"the calibration of {board} cannot be read: {exc}") from None
    if cal.get("version") != CALIBRATION_VERSION or cal.get("features") != list(FEATURES):
        raise CalibrationError(f"the calibration of {board} is of another format: run tinysnn "
                               f"board calibrate {board} again")
    if "coefficients" in cal and cal.get("engine_digest") != engine_digest():
        import warnings

        warnings.warn(f"the cost calibration of {board} was measured on engine "
                      f"{cal.get('engine_digest')}, the engine is now {engine_digest()}: "
                      f"run tinysnn board calibrate {board}", stacklevel=2)
    return cal


def _previous(board: str) -> dict:
    """What a calibration file holds, of any format (a refit keeps the CPI, and vice versa)."""
    try:
        data = json.loads(calibration_path(board).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if data.get("features") != list(FEATURES):   # coefficients of other features: drop them
        data.pop("coefficients", None)
    return data if isinstance(data, dict) else {}


def write_calibration(board: str, data: dict, out_dir=None) -> Path:
    path = Path(out_dir) / f"{board}.json" if out_dir else calibration_path(board)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(data, version=CALIBRATION_VERSION, features=list(FEATURES), board=board,
                date=datetime.date.today().isoformat())
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def model_error_table(coefs: dict, runs: list[dict]) -> list[dict]:
    """Per calibration model: measured vs predicted median and mean instructions."""
    out = []
    for r in runs:
        pred = np.asarray(r["features"]) @ np.asarray(coefs[str(r["weight_bits"])])
        meas = np.asarray(r["measured"], dtype=np.float64)
        out.append({"model": r["model"], "samples": int(meas.size),
                    "measured_median": float(np.median(meas)),
                    "predicted_median": float(np.median(pred)),
                    "measured_mean": float(meas.mean()), "predicted_mean": float(pred.mean()),
                    "error_median": float(np.median(pred) / np.median(meas) - 1.0),
                    "error_mean": float(pred.mean() / meas.mean() - 1.0)})
    return out


def measure_runs(board: str, models, samples: int, work_dir) -> list[dict]:
    """Run each model's first ``samples`` test samples on an emulated board (``deploy``'s
    flow: parity checked, results resumable under ``work_dir``); per model the features and the
    measured instruction counts of every sample."""
    import io

    from . import deploy

    runs = []
    for path in models:
        stem, _ = deploy.model_id(path)
        results = Path(work_dir) / f"{stem}-{board}.jsonl"
        out = io.StringIO()
        summary = deploy.execute(model_path=path, board_name=board, samples=samples,
                                 meter_name=None, meter_options={}, results_path=results,
                                 port=None, build=True, build_dir=Path(work_dir) / f"build-{stem}",
                                 out=out)
        if summary.get("parity") != 1.0:
            raise CalibrationError(f"{path} on {board}: parity {summary.get('parity')}, not 1: "
                                   "the engine disagrees with the host; fix that first")
        _, m = deploy.load_model(path)
        recs = [json.loads(line) for line in open(results) if '"kind": "sample"' in line]
        ops = {k: [r["ops"][k] for r in recs] for k in recs[0]["ops"]}
        runs.append({"model": Path(path).name, "digest": deploy.codegen.model_digest(m),
                     "neurons": m.n_neurons, "weight_bits": m.w_format.bits,
                     "features": features(m, ops).tolist(),
                     "measured": [int(r["cycles"]) for r in recs]})
    return runs


def calibrate(board: str, models, samples: int, work_dir, out_dir=None) -> tuple[Path, list]:
    """Fit the instruction coefficients of an emulated ``board`` on ``models`` and write the
    calibration; returns (its path, the per-model error table)."""
    if not BOARDS[board].profile.emulated or BOARDS[board].profile.toolchain == "cc":
        raise CalibrationError(f"{board} counts no instructions itself; calibrate the emulated "
                               f"board with its core ({INSTRUCTIONS_FROM.get(board, '?')})")
    if len(models) < 2:
        raise CalibrationError("calibrate on at least two models of different sizes (and, per "
                               "weight width, settings that vary T, the rate and the exit)")
    runs = measure_runs(board, models, samples, work_dir)
    coefs = {}      # one fit per weight width: the engine's row and neuron passes differ by width
    for bits in sorted({r["weight_bits"] for r in runs}):
        mine = [r for r in runs if r["weight_bits"] == bits]
        X = np.concatenate([np.asarray(r["features"]) for r in mine])
        y = np.concatenate([np.asarray(r["measured"], dtype=np.float64) for r in mine])
        coefs[str(bits)] = fit(X, y).tolist()
    table = model_error_table(coefs, runs)
    data = {k: v for k, v in _previous(board).items() if k.startswith("cpi")}
    data.update({"engine_digest": engine_digest(), "coefficients": coefs,
                 "samples_per_model": samples, "fitted_on": table})
    return write_calibration(board, data, out_dir), table


def calibrate_cycles(board: str, models, samples: int, work_dir, out_dir=None) -> tuple[Path, dict]:
    """The cycles per instruction of ``board``'s core and flash wait states: each model's
    firmware under QEMU with the cycle-estimate plugin (``tinysnn_serial.cycles``), summed over
    the samples. The board's figure assumes what its port sets up (STM32L4: ART instruction and
    data caches on): instruction fetches hit the cache, data reads from flash pay the wait
    states; the zero-wait and the all-miss (ART off) figures bound it."""
    from . import cycles, deploy

    profile = cycles.cycle_profile(board)
    emu, exact = cycles.emulator_for(profile.core)
    tot = {"insns": 0, "core": 0, "fetch_stall": 0, "data_stall": 0}
    for path in models:
        fw = deploy.build_firmware(path, emu, build_root=work_dir)
        images, _, seed, _ = deploy.test_split(fw.net, samples)
        rows = cycles.estimate_samples(fw.elf, [(images[i], seed, i) for i in range(len(images))],
                                       profile, board=emu, work_dir=fw.build_dir / "cycles")
        for r in rows:
            for k in tot:
                tot[k] += getattr(r, k)
    if not tot["insns"]:
        raise CalibrationError("the cycle-estimate runs counted no instructions")
    cpi = (tot["core"] + tot["data_stall"]) / tot["insns"]
    data = {k: v for k, v in _previous(board).items()
            if k not in ("version", "features", "board", "date")}
    if data.get("features") is not None and data.get("version") != CALIBRATION_VERSION:
        data = {}
    data.update({
        "cpi": cpi, "cpi_zero_wait": tot["core"] / tot["insns"],
        "cpi_art_off": (tot["core"] + tot["fetch_stall"] + tot["data_stall"]) / tot["insns"],
        "cpi_totals": tot, "cpi_models": [Path(p).name for p in models],
        "cpi_source": (f"cycle-estimate plugin ({profile.core} TRM timings, "
                       f"{profile.flash_wait_states} flash wait states on data reads, "
                       f"instruction fetches in the cache) on {emu.profile.name}"
                       + ("" if exact else f" (no emulated {profile.core}: its code)"))})
    return write_calibration(board, data, out_dir), data
