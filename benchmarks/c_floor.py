#!/usr/bin/env python3
"""The C floor of the reduced network's training: how fast its work can go on one core.

``benchmarks/c_floor.c`` does only the work of training ``configs/tinysnn.toml``'s network
(input row accumulation, adaptive LIF with the one-spike rule, direct lateral inhibition,
traces, tinysnn-stdp's trace sums and end-of-sample update, column normalisation, the retry
rule) in float64 or float32, without Python or I/O. This driver

1. builds the network the way ``benchmarks/compare.py`` does (the config with ``n_neurons``,
   ``seed`` and ``train.time_steps`` overridden) and takes the first ``samples`` mnist-5k
   training images (``load_mnist_5k(seed)``, sample ids 0..K-1);
2. draws their input spikes with the project's own encoder and counter-based generator (every
   presentation the retry rule may need) and the one-spike winner words, and writes them with
   the initial weights to a spike file (format in c_floor.c's header comment);
3. compiles c_floor.c with the host's ``cc`` and ``FLAGS`` (``-O3 -march=native
   -ffp-contract=off -fno-trapping-math -std=c11``) into ``build/c_floor/`` (git-ignored),
   runs it pinned to one CPU, and reads back its best microseconds per sample over
   ``repeats`` runs, the time of the row accumulation alone, and what it did (spikes,
   presentations, weight updates), checked against what was written.

The CLI also trains the numba backend on the same samples in the same run (same pinning, best
of the same repeats) and prints the ratio; in float64 it checks that the C program's spikes
and trained weights equal numba's. ``measure_floor`` is the Python entry point
(``benchmarks/compare.py`` can call it). See docs/c-floor.md.

    .venv/bin/python benchmarks/c_floor.py                  # N = 400, T = 350, 200 samples
    .venv/bin/python benchmarks/c_floor.py --neurons 100 --time 100 --samples 50
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCE = HERE / "c_floor.c"
BUILD_DIR = ROOT / "build" / "c_floor"
CONFIG = ROOT / "configs" / "tinysnn.toml"
#: no FMA contraction: numba does not contract either, and float64 stays bit-identical to it.
#: No trapping math: numba (LLVM) assumes floating-point operations never trap, as this does;
#: without it gcc keeps the LIF step's selects as branches where it has no masked vector
#: instructions (AVX2), and the "floor" is scalar. The results are the same bits either way.
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math", "-std=c11")
DTYPES = {"float64": "double", "float32": "float"}
MAGIC, END = b"TSNNCF2\0", b"TSNNEND\0"

sys.path.insert(0, str(HERE))
import bindsnet_baseline as bb  # noqa: E402  (stdlib-only: the CPU model and load average)

sys.path.insert(0, str(ROOT))
from tinysnn_core.errors import ConfigError, InputError, TinySNNError  # noqa: E402


# --------------------------------------------------------------------------------------------
# the network and its input spikes
# --------------------------------------------------------------------------------------------

def build_network(n_exc: int, time_steps: int, seed: int, config: Path | str = CONFIG):
    """The reduced network as compare.py builds it: the config, with N, seed and T set."""
    from tinysnn_core.config import Config
    from tinysnn_core.network import Network

    cfg = Config.load(Path(config)).with_overrides(
        [f"n_neurons={n_exc}", f"seed={seed}", f"train.time_steps={time_steps}"])
    return Network.build(cfg)


def check_mirrored(net) -> None:
    """Refuse a network whose training c_floor.c does not reproduce (one line, before work)."""
    from tinysnn_core.builtin.encoders import PoissonEncoder
    from tinysnn_core.builtin.learning import TinySNNSTDP
    from tinysnn_core.builtin.neurons import AdaptiveLIF

    cfg, problems = net.config, []
    if net.inh is not None:
        problems.append(f"topology {cfg.plugin_name('topology')!r} has an inhibitory layer")
    if type(net.exc) is not AdaptiveLIF:
        problems.append(f"neuron model {cfg.plugin_name('exc_neuron')!r} is not adaptive-lif")
    if type(net.rule) is not TinySNNSTDP:
        problems.append(f"learning rule {cfg.plugin_name('learning')!r} is not tinysnn-stdp")
    elif net.rule.p.mu != 0:
        problems.append(f"tinysnn-stdp mu = {net.rule.p.mu} (the floor has no weight dependence)")
    if type(net.encoder) is not PoissonEncoder:
        problems.append(f"encoder {cfg.plugin_name('encoder')!r} is not poisson")
    if net.quant is not None:
        problems.append("simulated fixed point (quant) is on")
    if net.n_inputs > 65535 or net.encoder.params.max_retries + 1 > 255:
        problems.append("more than 65535 inputs or 254 retries")
    if problems:
        raise ConfigError("c_floor: the C floor mirrors the tinysnn network's float training "
                          "only: " + "; ".join(problems))


def _params(net) -> tuple[list[int], list[float]]:
    """The header's integer and float parameters, in c_floor.c's order."""
    e, r, cfg = net.exc, net.rule, net.config
    ints = [int(bool(e.one_spike)), int(r.p.min_post_spikes), int(bool(r.p.adaptive_potentiation)),
            int(bool(cfg.train.normalize)), int(net.encoder.params.retry_min_spikes)]
    floats = [e.p.rest, e.p.reset, e.p.thresh, e.decay, e.p.refrac, e.theta_decay,
              e.p.theta_plus, cfg.train.dt, net.topology.w_lateral, net.topology.wmin,
              net.topology.wmax, r.trace_decay, r.p.nu_post, r.p.x_tar, r.p.target_spikes,
              r.p.k_min, r.p.k_max, r.p.weight_decay, cfg.train.norm]
    return ints, [float(x) for x in floats]


def _presentation_words(winner: np.ndarray, pixels: list[np.ndarray]) -> np.ndarray:
    """One presentation as little-endian 16-bit words: per step the winner word (low, high
    half), the spike count, the spiking pixels."""
    n = np.array([p.size for p in pixels], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(n + 3)[:-1]])
    out = np.empty(int((n + 3).sum()), dtype="<u2")
    w = winner.astype(np.uint32)
    out[starts] = w & 0xFFFF
    out[starts + 1] = w >> 16
    out[starts + 2] = n
    if n.sum():
        body = np.concatenate(pixels)
        out[np.repeat(starts + 3 - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
            + np.arange(body.size)] = body
    return out


@dataclass
class SpikeSet:
    """A written spike file and what went into it."""

    path: Path
    net: object                     # the untrained network (its weights are the file's w0)
    images: np.ndarray
    sample_ids: np.ndarray
    seed: int
    per_presentation: np.ndarray    # int64 [K, R]: input spikes written per presentation
    pixels: np.ndarray              # int64: every step's spiking pixels, one after the other
    step_off: np.ndarray            # int64 [K*R*T + 1]: step (s, r, t) = (s*R + r)*T + t
    nbytes: int = 0

    @property
    def total(self) -> int:
        return int(self.per_presentation.sum())


def write_spike_file(path: Path | str, net, images, sample_ids, seed: int) -> SpikeSet:
    """Draw every presentation's input spikes (the encoder's ``encode``) and winner words (the
    backends' ``winner_draws``) of ``images`` and write them, with ``net``'s initial weights and
    constants, as c_floor.c's spike file. Returns what was written."""
    from tinysnn_core import counter_rng
    from tinysnn_core.builtin.backend_numpy import winner_draws

    check_mirrored(net)
    images = np.asarray(images)
    ids = np.asarray(sample_ids, dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != net.n_inputs or len(ids) != len(images):
        raise InputError(f"c_floor: images of shape {images.shape} and {len(ids)} sample ids "
                         f"for a network of {net.n_inputs} inputs")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise InputError("c_floor: image intensities must be in 0..255")
    T = int(net.config.train.time_steps)
    R = int(net.encoder.params.max_retries) + 1
    ints, floats = _params(net)
    per = np.zeros((len(images), R), dtype=np.int64)
    flat, counts = [], []
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")     # a reader never sees half a file
    try:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC)
            fh.write(struct.pack("<5I", net.n_inputs, net.n_neurons, T, len(images), R))
            fh.write(struct.pack("<5i", *ints))
            fh.write(struct.pack("<19d", *floats))
            # the encoder keeps 255 * rate_unit below 2**32: the C draws compare in 32 bits
            fh.write(struct.pack(f"<{R}I", *[net.encoder.rate_unit(r) for r in range(R)]))
            fh.write(np.ascontiguousarray(net.w, dtype="<f8").tobytes())
            fh.write(np.ascontiguousarray(net.theta, dtype="<f8").tobytes())
            for b, (image, sample) in enumerate(zip(images, ids.tolist())):
                nz = np.flatnonzero(image)
                fh.write(struct.pack("<IH", counter_rng.sample_key(seed, sample), nz.size))
                fh.write(nz.astype("<u2").tobytes())
                fh.write(image[nz].astype(np.uint8).tobytes())
                for r in range(R):
                    pixels = net.encoder.encode(image, seed, sample, r, T)
                    per[b, r] = sum(p.size for p in pixels)
                    flat.extend(pixels)
                    counts.extend(p.size for p in pixels)
                    words = _presentation_words(winner_draws(seed, sample, r, T), pixels)
                    fh.write(words.tobytes())
            fh.write(struct.pack("<Q", int(per.sum())))
            fh.write(END)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    flat_pix = np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64)
    step_off = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    return SpikeSet(path, net, images, ids, seed, per, flat_pix, step_off, path.stat().st_size)


def prepare(n_exc: int = 400, time_steps: int = 350, samples: int = 200, seed: int = 0,
            directory: Path | str | None = None, config: Path | str = CONFIG) -> SpikeSet:
    """The network and the spike file of the first ``samples`` mnist-5k training images."""
    from tinysnn_core.builtin.datasets import load_mnist_5k

    net = build_network(n_exc, time_steps, seed, config)
    check_mirrored(net)
    data = load_mnist_5k(seed)
    if not 1 <= samples <= len(data.train_images):
        raise InputError(f"c_floor: samples must be in 1..{len(data.train_images)}, got {samples}")
    directory = Path(directory) if directory else BUILD_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"spikes_N{n_exc}_T{time_steps}_K{samples}_s{seed}.bin"
    return write_spike_file(path, net, data.train_images[:samples], np.arange(samples), seed)


# --------------------------------------------------------------------------------------------
# building and running the C program
# --------------------------------------------------------------------------------------------

def compiler(cc: str | None = None) -> tuple[str, str]:
    """(path, first line of ``--version``) of the C compiler: ``cc``, $CC, or ``cc`` on PATH."""
    name = cc or os.environ.get("CC") or "cc"
    path = shutil.which(name)
    if path is None:
        raise TinySNNError(f"c_floor: no C compiler {name!r} found (install gcc, or set CC)")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
        version = (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "unknown"
    return path, version


def build(dtype: str = "float64", cc: str | None = None, build_dir: Path | str | None = None,
          source: Path = SOURCE) -> tuple[Path, dict]:
    """Compile c_floor.c for ``dtype`` (cached by source, compiler and flags); returns the
    binary and {compiler, flags}."""
    if dtype not in DTYPES:
        raise ConfigError(f"c_floor: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    path, version = compiler(cc)
    flags = list(FLAGS) + [f"-DREAL={DTYPES[dtype]}"]
    code = source.read_bytes()
    tag = hashlib.sha256(code + "\0".join([path, version] + flags).encode()).hexdigest()[:12]
    out_dir = Path(build_dir) if build_dir else BUILD_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / f"c_floor_{dtype}_{tag}"
    if not binary.exists():
        tmp = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")     # concurrent builds
        res = subprocess.run([path, *flags, "-o", str(tmp), str(source)], capture_output=True,
                             text=True)
        if res.returncode != 0:
            first = next((ln for ln in res.stderr.splitlines() if "error" in ln),
                         res.stderr.strip().splitlines()[0] if res.stderr.strip() else "")
            raise TinySNNError(f"c_floor: {Path(path).name} failed to compile {source.name}: "
                               f"{first}")
        os.replace(tmp, binary)
        for old in out_dir.glob(f"c_floor_{dtype}_*"):     # builds of older sources or flags
            if old != binary and not old.name.endswith(".tmp"):
                old.unlink(missing_ok=True)
    return binary, {"compiler": version, "compiler_path": path,
                    "flags": " ".join(flags)}


def _pin(cpu: int | None):
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_binary(binary: Path, spike_file: Path, repeats: int = 5, dump: Path | None = None,
               cpu: int | None = 0) -> dict:
    """Run the C program; its "key value" lines as a dict (numbers parsed). A refused spike
    file raises InputError with the program's one-line message."""
    cmd = [str(binary), str(spike_file), "--repeats", str(int(repeats))]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    res = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_pin(cpu))
    if res.returncode != 0:
        line = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        if res.returncode == 2:
            raise InputError(f"{line} ({spike_file.name})")
        raise TinySNNError(f"c_floor: the C program failed ({line}, exit status "
                           f"{res.returncode})")
    out = {}
    for line in res.stdout.splitlines():
        key, _, val = line.partition(" ")
        vals = val.split()
        nums = []
        for v in vals:
            try:
                nums.append(int(v))
            except ValueError:
                try:
                    nums.append(float(v))
                except ValueError:
                    nums.append(v)
        out[key] = nums[0] if len(nums) == 1 else nums
    return out


def check_counts(spk: SpikeSet, rec: dict) -> None:
    """What the C program read and did against what was written (raises on a mismatch)."""
    K, R = spk.per_presentation.shape
    pres = np.atleast_1d(np.asarray(rec["sample_presentations"], dtype=np.int64))
    used = int(sum(spk.per_presentation[s, :pres[s]].sum() for s in range(K)))
    problems = []
    if rec["draw_mismatch_steps"] != 0:
        problems.append(f"{rec['draw_mismatch_steps']} steps whose spikes its own counter-based "
                        "draws do not reproduce")
    if rec["file_input_spikes"] != spk.total:
        problems.append(f"read {rec['file_input_spikes']} input spikes, wrote {spk.total}")
    if (pres.size != K or pres.min() < 1 or pres.max() > R
            or int(pres.sum()) != rec["presentations"]):
        problems.append(f"presentations per sample {pres.tolist()[:8]}... inconsistent")
    elif rec["input_spikes"] != used:
        problems.append(f"consumed {rec['input_spikes']} input spikes, its presentations hold "
                        f"{used}")
    if not 0 <= rec["exc_spikes"] <= rec["presentations"] * rec["time_steps"]:
        problems.append(f"{rec['exc_spikes']} excitatory spikes in {rec['presentations']} "
                        f"presentations of {rec['time_steps']} steps (one-spike rule)")
    if rec["stdp_updates"] % spk.net.n_inputs or rec["stdp_updates"] > (
            rec["presentations"] * spk.net.n_inputs * spk.net.n_neurons):
        problems.append(f"{rec['stdp_updates']} weight updates is not whole columns")
    if problems:
        raise TinySNNError("c_floor: the C program's counts disagree with its input: "
                           + "; ".join(problems))


def run_floor(spk: SpikeSet, dtype: str = "float64", repeats: int = 5, cpu: int | None = 0,
              cc: str | None = None, build_dir: Path | str | None = None,
              with_weights: bool = False) -> dict:
    """Build and run the floor on a prepared spike file; the record (JSON-able), and with
    ``with_weights`` the trained weights and theta under "w" and "theta"."""
    binary, info = build(dtype, cc, build_dir)
    load0 = bb._loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "weights.bin" if with_weights else None
        rec = run_binary(binary, spk.path, repeats, dump, cpu)
        arrays = {}
        if dump is not None:
            raw = np.fromfile(dump, dtype=np.float64 if dtype == "float64" else np.float32)
            n_w = spk.net.n_inputs * spk.net.n_neurons
            arrays = {"w": raw[:n_w].reshape(spk.net.w.shape), "theta": raw[n_w:]}
    check_counts(spk, rec)
    K = len(spk.images)
    out = {"dtype": dtype, "n_exc": spk.net.n_neurons, "time_steps": rec["time_steps"],
           "samples": K, "seed": spk.seed, "repeats": repeats,
           "us_per_sample": rec["train_us_per_sample"],
           "rows_us_per_sample": rec["rows_us_per_sample"],
           "with_draws_us_per_sample": rec["train_draw_us_per_sample"],
           "draw_mismatch_steps": rec["draw_mismatch_steps"],
           "train_s": list(np.atleast_1d(rec["train_s"])),
           "train_cpu_s": list(np.atleast_1d(rec["train_cpu_s"])),
           "rows_s": list(np.atleast_1d(rec["rows_s"])),
           "with_draws_s": list(np.atleast_1d(rec["train_draw_s"])),
           "exc_spikes": rec["exc_spikes"], "input_spikes": rec["input_spikes"],
           "presentations": rec["presentations"], "stdp_updates": rec["stdp_updates"],
           "norm_ops": rec["norm_ops"], "file_input_spikes": rec["file_input_spikes"],
           "sample_presentations": [int(x) for x in np.atleast_1d(rec["sample_presentations"])],
           "written_input_spikes": spk.total, "spike_file_bytes": spk.nbytes,
           "cpu": cpu, "loadavg": [load0, bb._loadavg()], **info}
    out.update(arrays)
    return out


def measure_floor(n_exc: int = 400, time_steps: int = 350, samples: int = 200,
                  dtype: str = "float64", *, seed: int = 0, repeats: int = 5,
                  cpu: int | None = 0, cc: str | None = None) -> dict:
    """The C floor of training the reduced network (configs/tinysnn.toml at N = ``n_exc``,
    T = ``time_steps``) on the first ``samples`` mnist-5k training images: best microseconds
    per sample over ``repeats`` runs pinned to CPU ``cpu`` (``us_per_sample``), the row
    accumulation alone (``rows_us_per_sample``), what it did (``exc_spikes``,
    ``stdp_updates``, ``input_spikes``, ``presentations``), compiler and flags."""
    with tempfile.TemporaryDirectory() as tmp:
        spk = prepare(n_exc, time_steps, samples, seed, tmp)
        return run_floor(spk, dtype, repeats, cpu, cc)


# --------------------------------------------------------------------------------------------
# numba on the same samples
# --------------------------------------------------------------------------------------------

def measure_numba(spk: SpikeSet, repeats: int = 5, cpu: int | None = 0) -> dict:
    """The numba backend's training of the same network on the same samples (seed, ids): best
    wall time over ``repeats`` runs from the untrained network, this process pinned to ``cpu``
    (training is one sequential kernel call); compilation excluded (a warm-up on other
    samples, as compare.py). Its counts and trained network ("net") come with it."""
    from tinysnn_core.ops import OpCounts
    from tinysnn_core.registry import get_registry

    be = get_registry().get("backend", "numba")()
    ok, why = be.available()
    if not ok:
        raise TinySNNError(f"c_floor: the numba backend is not available ({why})")
    old = _pin_self(cpu)
    try:
        be.run(copy.deepcopy(spk.net), spk.images[:2], np.arange(2) + 10**6, learn=True,
               seed=spk.seed, ops=OpCounts())
        load0 = bb._loadavg()
        times, cpu_times, net, ops = [], [], None, None
        for _ in range(repeats):
            net, ops = copy.deepcopy(spk.net), OpCounts()
            t0, c0 = time.perf_counter(), time.thread_time()
            be.run(net, spk.images, spk.sample_ids, learn=True, seed=spk.seed, ops=ops)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.thread_time() - c0)
        load1 = bb._loadavg()
    finally:
        _unpin_self(old)
    K = len(spk.images)
    return {"us_per_sample": 1e6 * min(times) / K, "train_s": times, "train_cpu_s": cpu_times,
            "samples": K,
            "exc_spikes": ops.exc_spikes,
            "input_spikes": ops.input_spikes, "presentations": ops.presentations,
            "stdp_updates": ops.stdp_updates, "norm_ops": ops.norm_ops,
            "loadavg": [load0, load1], "net": net}


def numba_rows_time(spk: SpikeSet, w: np.ndarray, sample_presentations, repeats: int = 5,
                    cpu: int | None = 0) -> float | None:
    """us per sample of numba's own row accumulation (``kernels._sum_rows``, called from a
    compiled loop) over the same steps as the C program's rows-only pass: the presentations
    ``sample_presentations`` (per sample, as the C program reports them) with weights ``w``.
    None when the kernels no longer have ``_sum_rows``."""
    from numba import njit

    from tinysnn_numba import kernels

    sum_rows = getattr(kernels, "_sum_rows", None)
    if sum_rows is None:
        return None
    K, R = spk.per_presentation.shape
    T = int(spk.net.config.train.time_steps)
    pres = np.atleast_1d(np.asarray(sample_presentations, dtype=np.int64))
    steps = np.concatenate([np.arange(s * R * T, (s * R + int(pres[s])) * T) for s in range(K)])

    @njit(cache=False)
    def loop(w, rows, off, steps, out):
        chk = 0.0
        for q in range(steps.size):
            st = steps[q]
            sum_rows(w, rows, off[st], off[st + 1], out)
            chk += out[q % out.size]
        return chk

    w = np.ascontiguousarray(w, dtype=np.float64)
    out = np.zeros(w.shape[1])
    loop(w, spk.pixels, spk.step_off, steps[:1], out)        # compile
    old = _pin_self(cpu)
    try:
        best = min(_timed(loop, w, spk.pixels, spk.step_off, steps, out) for _ in range(repeats))
    finally:
        _unpin_self(old)
    return 1e6 * best / K


def _pin_self(cpu):
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    return old


def _unpin_self(old) -> None:
    if old is not None:
        os.sched_setaffinity(0, old)


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="The C floor of the reduced tinysnn network's training (one core, the "
                    "project's own input spikes) against numba's training on the same samples.")
    p.add_argument("--neurons", type=int, default=400, help="excitatory neurons N (400)")
    p.add_argument("--time", type=int, default=350, help="time steps per presentation (350)")
    p.add_argument("--samples", type=int, default=200,
                   help="first mnist-5k training images (200)")
    p.add_argument("--seed", type=int, default=0, help="mnist-5k split, weights, spikes (0)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed runs per round; the best of all counts (5)")
    p.add_argument("--rounds", type=int, default=4,
                   help="rounds, each running every variant and numba in turn (4)")
    p.add_argument("--dtypes", default="float64,float32", help="C variants (float64,float32)")
    p.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: no pinning; 0)")
    p.add_argument("--cc", default=None, help="C compiler (default: $CC or cc)")
    p.add_argument("--skip-numba", action="store_true", help="the C floor only")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p


def _busy(rec: dict) -> str:
    """The best repeat's CPU time as a share of its wall time (below 100%: preempted), and
    the least CPU time of a repeat per sample (the steadier figure on a busy machine)."""
    k = int(np.argmin(rec["train_s"]))
    return (f"{100.0 * rec['train_cpu_s'][k] / rec['train_s'][k]:.0f}% on CPU, least CPU time "
            f"{_cpu_us(rec):.1f} us/sample")


def _load(rec: dict) -> str:
    """The 1-minute load averages recorded around the rounds of a merged record."""
    ones = [pair[i][0] for pair in rec["loadavg"] for i in (0, 1) if pair and pair[i]]
    return f"1-minute load {min(ones):.2f}-{max(ones):.2f}" if ones else "load unknown"


def _cpu_us(rec: dict) -> float:
    return 1e6 * min(rec["train_cpu_s"]) / rec["samples"]


def _merge(recs: list[dict]) -> dict:
    """One record of several rounds: every repeat's times, the best of them all."""
    out = {k: v for k, v in recs[0].items() if k != "net"}
    K = out["samples"]
    for key, best in (("train_s", "us_per_sample"), ("train_cpu_s", None),
                      ("rows_s", "rows_us_per_sample"),
                      ("with_draws_s", "with_draws_us_per_sample")):
        if key in out:
            out[key] = [float(x) for r in recs for x in r[key]]
            if best:
                out[best] = 1e6 * min(out[key]) / K
    if "rows_s" not in out:     # numba's: one figure per round (None without _sum_rows)
        rows = [r["rows_us_per_sample"] for r in recs if r.get("rows_us_per_sample") is not None]
        out["rows_us_per_sample"] = min(rows) if rows else None
    out["loadavg"] = [r["loadavg"] for r in recs]
    out["rounds"] = len(recs)
    return out


def _same(c: dict, n: dict) -> list[str]:
    keys = ("exc_spikes", "presentations", "input_spikes", "stdp_updates", "norm_ops")
    return [f"{k} {c[k]} vs {n[k]}" for k in keys if c[k] != n[k]]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    cpu = None if args.cpu < 0 else args.cpu
    try:
        for d in dtypes:
            if d not in DTYPES:
                raise ConfigError(f"c_floor: --dtypes: unknown {d!r} (float64, float32)")
        if args.repeats < 1 or args.rounds < 1:
            raise ConfigError("c_floor: --repeats and --rounds must be at least 1")
        spk = prepare(args.neurons, args.time, args.samples, args.seed)
        pin = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
        print(f"machine: {bb._cpu_model()}, {os.cpu_count()} CPUs; load {bb._loadavg()}; {pin}",
              flush=True)
        print(f"network: configs/tinysnn.toml, N = {args.neurons}, T = {args.time}, first "
              f"{args.samples} mnist-5k training images (seed {args.seed}); spike file "
              f"{spk.nbytes / 1e6:.1f} MB, {spk.total} input spikes over "
              f"{spk.per_presentation.size} possible presentations", flush=True)
        results = {"settings": vars(args) | {"json": str(args.json) if args.json else None},
                   "cpu_model": bb._cpu_model(), "floor": {}}
        weights, floors, nbs = {}, {d: [] for d in dtypes}, []
        # rounds interleave the variants over time, so that a burst of work on the shared
        # machine's other core does not slow every repeat of one of them
        for rnd in range(args.rounds):
            for d in dtypes:
                rec = run_floor(spk, d, args.repeats, cpu, args.cc, with_weights=rnd == 0)
                if rnd == 0:
                    weights[d] = (rec.pop("w"), rec.pop("theta"))
                floors[d].append(rec)
            if not args.skip_numba:
                nb = measure_numba(spk, args.repeats, cpu)
                nb["rows_us_per_sample"] = numba_rows_time(
                    spk, nb["net"].w, floors.get("float64", floors[dtypes[0]])[0][
                        "sample_presentations"],
                    args.repeats, cpu)
                nbs.append(nb)
        runs = args.rounds * args.repeats
        for d in dtypes:
            rec = results["floor"][d] = _merge(floors[d])
            print(f"C floor {d} ({rec['compiler']}; {rec['flags']}), best of {runs}: "
                  f"{rec['us_per_sample']:.1f} us/sample on the file's spikes, "
                  f"{rec['with_draws_us_per_sample']:.1f} us/sample drawing them itself, row "
                  f"accumulation alone {rec['rows_us_per_sample']:.1f} us/sample; "
                  f"{rec['exc_spikes']} excitatory "
                  f"spikes, {rec['presentations']} presentations, {rec['stdp_updates']} weight "
                  f"updates; {_busy(rec)}, {_load(rec)}", flush=True)
        if not args.skip_numba:
            net = nbs[0]["net"]
            nb = results["numba"] = _merge(nbs)
            rows = nb["rows_us_per_sample"]
            print(f"numba float64 training, same samples, best of {runs}: "
                  f"{nb['us_per_sample']:.1f} us/sample"
                  + (f", row accumulation alone {rows:.1f} us/sample" if rows else "")
                  + f"; {nb['exc_spikes']} excitatory spikes, {nb['presentations']} "
                  f"presentations, {nb['stdp_updates']} weight updates; {_busy(nb)}, "
                  f"{_load(nb)}",
                  flush=True)
            if "float64" in weights:
                c64 = results["floor"]["float64"]
                diff = _same(c64, nb)
                w, th = weights["float64"]
                dw = float(np.max(np.abs(w - net.w)))
                exact = not diff and np.array_equal(w, net.w) and np.array_equal(th, net.theta)
                results["float64_matches_numba"] = bool(exact)
                results["float64_max_weight_diff"] = dw
                print("C float64 vs numba: " + ("spike counts, updates and trained weights "
                      "bit-identical" if exact else
                      f"differ ({'; '.join(diff) or 'counts equal'}; max |w diff| {dw:.3g})"))
            for d, rec in results["floor"].items():
                pct = 100.0 * rec["us_per_sample"] / nb["us_per_sample"]
                pct_d = 100.0 * rec["with_draws_us_per_sample"] / nb["us_per_sample"]
                line = (f"numba reaches {pct:.0f}% of the C floor ({d}); {pct_d:.0f}% of the "
                        "floor that draws its spikes too, as numba does")
                if rows:
                    line += (f"; row accumulation alone: "
                             f"{100.0 * rec['rows_us_per_sample'] / rows:.0f}%")
                pct_cpu = 100.0 * _cpu_us(rec) / _cpu_us(nb)
                print(line + f" (on CPU time: {pct_cpu:.0f}%)")
                rec["numba_reaches_pct"] = pct
                rec["numba_reaches_pct_cpu_time"] = pct_cpu
                rec["numba_reaches_pct_with_draws"] = pct_d
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    except TinySNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
