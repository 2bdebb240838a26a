#!/usr/bin/env python3
"""Side-by-side speed: BindsNET's DiehlAndCook2015 and Brian2's cpp_standalone device against
tinysnn's backends, in one run.

Run it with the project's interpreter::

    .venv/bin/python benchmarks/compare.py --json benchmarks/out/compare.json

For every size N (``--sizes``, default 100, 400, 1600) at T = ``--time`` steps (350), on the
same mnist-5k samples (``load_mnist_5k(seed)``: the first training images for training, the
first test images for inference), it measures training and inference samples per second of

* **BindsNET** 0.3.4 ``DiehlAndCook2015`` (torch CPU, float32) in the side venv that
  ``benchmarks/bindsnet_baseline.py`` builds (``benchmarks/.venv-bindsnet``), once per torch
  thread count in ``--threads`` (default ``1,all``). Training: learning on, one sample at a
  time (``network.run`` + ``reset_state_variables``, Poisson encoding included), as eth_mnist.
  Inference: learning off, one sample at a time *and* batched (``[T, B, 1, 28, 28]`` in one
  ``network.run``);
* **Brian2** (``benchmarks/brian2_baseline.py``, side venv ``benchmarks/.venv-brian2``) with its
  ``cpp_standalone`` device: the same Diehl & Cook network, training only (learning on), all
  ``--brian2-train`` samples in one compiled program, at each OpenMP setting in
  ``--brian2-threads`` (1 = no OpenMP, Brian2's default). Compilation is timed apart and
  excluded. What is and is not identical to our network: that module's docstring;
* **tinysnn's NumPy reference** (``numpy``) on a few samples (``--numpy-samples``);
* **tinysnn's compiled backend** (``numba``): training sequentially over ``--ours-train``
  samples in one call from a fresh network, batched inference over ``--ours-infer`` samples in
  one call (parallel over samples), and inference one sample per call over
  ``--ours-infer-sample`` samples; kernels compiled / loaded before timing; each measurement
  run ``--ours-repeats`` times and its median run kept (a run of 0.1-0.3 s is at the mercy of a
  shared machine; BindsNET's and Brian2's runs last seconds);
* **CuPy** (``cupy``) the same way, when ``available()`` says a GPU is there; otherwise the
  reason is printed;
* **the C floor** of the reduced network's training (``benchmarks/c_floor.py``: a C program
  doing only that work on the project's own input spikes, float64 and float32, best of its
  pinned runs) on the same ``--ours-train`` samples, unless ``--no-floor``.

Network: Diehl & Cook topology (``diehl-cook``, exc 22.5, inh 120, theta_plus 0.05, rule
``postpre``, norm 78.4, input rate ``pixel/255 * 128 Hz``, no retries): BindsNET's eth_mnist
settings, for all simulators. tinysnn's own network (``configs/tinysnn.toml``: ``tinysnn``
topology, ``tinysnn-stdp``) is measured too, on our backends only (``--networks``).

Ratios are printed like for like and named for what they divide: training by training,
batched inference by BindsNET's batched mode, one-by-one inference by BindsNET one by one, on
the ``diehl-cook`` network only (the one every simulator runs), and the reduced network's numba
training by its C floor; each against the fastest thread count of the other simulator, with the
per-thread-count figures beside it.

Timing excludes set-up: venv creation, imports, network construction, numba compilation (a
warm-up call per network), BindsNET's first sample / first batch (a warm-up run on a sample
outside the measured ones) and Brian2's code generation and compilation (recorded as
``compile_s``). Wall-clock and process CPU seconds are both recorded; the machine is
shared, so the load average is recorded at the start and end of every measurement.

Results go to ``--json`` (default ``benchmarks/out/compare.json``), rewritten atomically after
every measurement. Re-running with the same settings skips the measurements already there
(``--fresh`` starts over), so a killed run loses at most the measurement in progress.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_JSON = HERE / "out" / "compare.json"
NETWORKS = ("diehl-cook", "tinysnn")
INTENSITY = 128.0  # eth_mnist: pixel/255 * 128 Hz

sys.path.insert(0, str(HERE))
import bindsnet_baseline as bb  # noqa: E402  (stdlib-only at import: usable from both venvs)
import brian2_baseline as b2b  # noqa: E402  (stdlib-only at import, like bb)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Training and inference samples/s: BindsNET DiehlAndCook2015 vs tinysnn's "
                    "backends (numpy, numba, cupy) on the same mnist-5k samples.")
    p.add_argument("--sizes", default="100,400,1600", help="excitatory neurons N (100,400,1600)")
    p.add_argument("--time", type=int, default=350, help="time steps per sample, dt=1 ms (350)")
    p.add_argument("--seed", type=int, default=0, help="mnist-5k split and simulation seed (0)")
    p.add_argument("--bindsnet-train", type=int, default=40,
                   help="BindsNET training samples per (N, threads) (40)")
    p.add_argument("--bindsnet-infer", type=int, default=40,
                   help="BindsNET inference samples, per sample and batched (40)")
    p.add_argument("--bindsnet-batch", type=int, default=0,
                   help="BindsNET inference batch size (0: all --bindsnet-infer samples in one)")
    p.add_argument("--threads", default="1,all",
                   help="BindsNET torch thread counts, comma-separated; 'all' = os.cpu_count() "
                        "(1,all)")
    p.add_argument("--ours-train", type=int, default=1000,
                   help="training samples for numba / cupy, one sequential call (1000)")
    p.add_argument("--ours-infer", type=int, default=1000,
                   help="inference samples for numba / cupy, one batched call (1000; beyond the "
                        "1000 test images they are reused with distinct sample ids)")
    p.add_argument("--numpy-samples", type=int, default=8,
                   help="training and inference samples for the NumPy reference (8)")
    p.add_argument("--networks", default=",".join(NETWORKS),
                   help="our networks: diehl-cook (BindsNET's) and/or tinysnn (both)")
    p.add_argument("--brian2", action=argparse.BooleanOptionalAction, default=True,
                   help="measure Brian2 cpp_standalone training (default on; left out with a "
                        "message when its venv cannot be built; --no-brian2 to skip)")
    p.add_argument("--brian2-train", type=int, default=200,
                   help="Brian2 training samples per N, one compiled program (200)")
    p.add_argument("--brian2-threads", default="1",
                   help="Brian2 OpenMP thread counts, comma-separated; 1 = no OpenMP, "
                        "'all' = os.cpu_count() (1)")
    p.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the C floor of the reduced network's training "
                        "(benchmarks/c_floor.py, float64 and float32) on the --ours-train "
                        "samples (default on; --no-floor to skip)")
    p.add_argument("--ours-infer-sample", type=int, default=200,
                   help="inference samples for numba / cupy one sample per call, for the "
                        "one-by-one ratio (200)")
    p.add_argument("--ours-repeats", type=int, default=3,
                   help="runs of each of our measurements; the median run's figures are kept, "
                        "with every run's speed (3: one run of 0.1-0.3 s moves by 10-40%% on "
                        "a shared machine)")
    p.add_argument("--skip-bindsnet", action="store_true", help="measure our backends only")
    p.add_argument("--skip-numpy", action="store_true", help="leave out the NumPy reference")
    p.add_argument("--json", default=str(DEFAULT_JSON),
                   help="results file, rewritten after every measurement "
                        "(default benchmarks/out/compare.json)")
    p.add_argument("--fresh", action="store_true",
                   help="ignore the measurements already in --json and start over")
    p.add_argument("--bindsnet-inner", metavar="NPZ", help=argparse.SUPPRESS)  # internal
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)                     # internal
    p.add_argument("--torch-threads", type=int, help=argparse.SUPPRESS)         # internal
    p.add_argument("--phases", default="train,infer_sample,infer_batch", help=argparse.SUPPRESS)
    return p


def parse_list(text: str, what: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if what.endswith("threads") and part == "all":
            out.append(os.cpu_count() or 1)
            continue
        try:
            v = int(part)
        except ValueError:
            raise SystemExit(f"error: --{what}: {part!r} is not an integer")
        if v < 1:
            raise SystemExit(f"error: --{what}: {v} must be >= 1")
        out.append(v)
    if not out:
        raise SystemExit(f"error: --{what} is empty")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------
# machine, load, results file
# --------------------------------------------------------------------------------------------

# vector extensions that decide how fast compiled kernels can be, when the CPU has them
CPU_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx2", "fma", "avx", "sse4_2")


def cpu_flags() -> list[str]:
    """The CPU_FLAGS this machine has (the ``flags`` line of /proc/cpuinfo, as lscpu shows)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in CPU_FLAGS if f in have]
    except OSError:
        pass
    return []


def lscpu() -> dict:
    info = {"model": bb._cpu_model(), "cpus": os.cpu_count(), "flags": cpu_flags()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return info
    for line in out.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "Model name" and info["model"] == "unknown":  # /proc/cpuinfo's name first
            info["model"] = val
        elif key == "CPU(s)":
            info["cpus"] = int(val) if val.isdigit() else val
        elif key in ("Thread(s) per core", "Core(s) per socket", "Socket(s)",
                     "Hypervisor vendor", "L3 cache"):
            info[key.lower().replace("(s)", "s").replace(" ", "_")] = val
    return info


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


class Results:
    """The JSON results file: settings, machine, and one record per measurement (by key)."""

    def __init__(self, path: Path, settings: dict, fresh: bool):
        self.path = path
        self.data = None
        if path.is_file() and not fresh:
            try:
                old = json.loads(path.read_text())
            except json.JSONDecodeError:
                old = None
            if old and old.get("settings") == settings:
                self.data = old
                print(f"resuming: {len(old.get('measurements', {}))} measurements already in "
                      f"{path} (--fresh to start over)", flush=True)
            elif old:
                raise SystemExit(f"error: {path} holds a run with other settings; pass --fresh "
                                 "to overwrite it or choose another --json")
        if self.data is None:
            self.data = {"settings": settings, "runs": [], "measurements": {}}
        self.data["runs"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                  "uptime_start": uptime(), "machine": lscpu(),
                                  "python": platform.python_version()})
        self.save()

    @property
    def run(self) -> dict:
        return self.data["runs"][-1]

    def has(self, key: str) -> bool:
        return key in self.data["measurements"]

    def get(self, key: str) -> dict | None:
        return self.data["measurements"].get(key)

    def put(self, key: str, rec: dict) -> None:
        rec = dict(rec, key=key, run=len(self.data["runs"]) - 1)
        self.data["measurements"][key] = rec
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(tmp, self.path)


def key_of(sim: str, net: str, n: int, phase: str, threads: int | None = None) -> str:
    k = f"{sim}/{net}/N={n}/{phase}"
    return k if threads is None else f"{k}/threads={threads}"


def loadavg() -> list[float] | None:
    return bb._loadavg()


# --------------------------------------------------------------------------------------------
# BindsNET (outer: launch; inner: runs in benchmarks/.venv-bindsnet)
# --------------------------------------------------------------------------------------------

def bindsnet_phases(res: Results, n: int, threads: int) -> list[str]:
    return [ph for ph in ("train", "infer_sample", "infer_batch")
            if not res.has(key_of("bindsnet", "diehl-cook", n, ph, threads))]


def run_bindsnet(args, res: Results, sizes: list[int], threads_list: list[int]) -> None:
    todo = [(n, t, bindsnet_phases(res, n, t)) for n in sizes for t in threads_list]
    todo = [x for x in todo if x[2]]
    if not todo:
        return
    try:
        py = bb.ensure_venv()
    except bb.SetupError as exc:
        print(f"bindsnet: venv setup failed, BindsNET left out: {exc}", flush=True)
        res.run["bindsnet_error"] = str(exc)
        res.save()
        return
    with tempfile.TemporaryDirectory(prefix="tinysnn-compare-") as tmp:
        npz = Path(tmp) / "mnist5k.npz"
        bb.write_split_npz(args.seed, npz)
        for n, t, phases in todo:
            print(f"bindsnet: N={n} threads={t} phases={','.join(phases)} "
                  f"({args.bindsnet_train} train, {args.bindsnet_infer} inference samples)",
                  flush=True)
            cmd = [str(py), str(Path(__file__).resolve()), "--bindsnet-inner", str(npz),
                   "--n", str(n), "--time", str(args.time), "--seed", str(args.seed),
                   "--torch-threads", str(t), "--bindsnet-train", str(args.bindsnet_train),
                   "--bindsnet-infer", str(args.bindsnet_infer),
                   "--bindsnet-batch", str(args.bindsnet_batch), "--phases", ",".join(phases)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                    env=bb._inner_env(t), cwd=str(ROOT))
            try:
                for line in proc.stdout:  # one JSON object per finished measurement
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    rec = json.loads(line)
                    res.put(key_of("bindsnet", "diehl-cook", n, rec["phase"], t), rec)
                    print("  " + describe(rec), flush=True)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if proc.wait() != 0:
                print(f"bindsnet: N={n} threads={t}: the inner run failed (exit "
                      f"{proc.returncode}), see its messages above", flush=True)


def bindsnet_inner(args) -> None:
    """Runs under benchmarks/.venv-bindsnet: never imports tinysnn_core."""
    bb._install_torchvision_standin()
    import numpy as np
    import torch
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor

    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    T, N = args.time, args.n
    data = np.load(args.bindsnet_inner)

    def rates(images):  # eth_mnist: ToTensor() then * intensity
        return torch.from_numpy(images.astype(np.float32)).div(255.0).mul(INTENSITY).view(
            -1, 1, 28, 28)

    n_tr, n_te = args.bindsnet_train, args.bindsnet_infer
    train_x = rates(data["train_images"][: n_tr + 1])   # the last one only for the warm-up
    test_x = rates(data["test_images"][:n_te])
    warm_x = rates(data["train_images"][-n_te:])          # never measured
    network = DiehlAndCook2015(n_inpt=784, n_neurons=N, exc=22.5, inh=120.0, dt=1.0, norm=78.4,
                               theta_plus=0.05, inpt_shape=(1, 28, 28))
    mon = Monitor(network.layers["Ae"], state_vars=["s"], time=T)
    network.add_monitor(mon, name="Ae_spikes")
    encoder = PoissonEncoder(time=T, dt=1.0)
    phases = args.phases.split(",")
    base = {"sim": "bindsnet", "network": "diehl-cook", "n": N, "time": T,
            "threads": args.torch_threads, "torch": torch.__version__,
            "bindsnet": bb.BINDSNET_VERSION}

    def emit(phase, samples, wall, cpu, spikes, load0, **extra):
        rec = dict(base, phase=phase, samples=samples, wall_s=wall, cpu_s=cpu,
                   samples_per_s=samples / wall, ms_per_sample=1e3 * wall / samples,
                   cpu_ms_per_sample=1e3 * cpu / samples,
                   exc_spikes_per_sample=spikes / samples, loadavg=[load0, loadavg()], **extra)
        print(json.dumps(rec), flush=True)

    def one(x):
        network.run(inputs={"X": encoder(x).view(T, 1, 1, 28, 28)}, time=T)
        s = float(mon.get("s").sum())
        network.reset_state_variables()
        return s

    # ---- training, learning on, one sample at a time ----------------------------------------
    network.train(True)
    one(train_x[n_tr])  # warm-up (first-call allocations), a sample that is not measured
    if "train" in phases:
        load0 = loadavg()
        t0, c0, spikes = time.perf_counter(), time.process_time(), 0.0
        for i in range(n_tr):
            spikes += one(train_x[i])
            if (i + 1) % 10 == 0:
                bb._log(f"    bindsnet N={N} train {i + 1}/{n_tr}  "
                        f"{(i + 1) / (time.perf_counter() - t0):.2f} samples/s")
        emit("train", n_tr, time.perf_counter() - t0, time.process_time() - c0, spikes, load0)

    # ---- inference, learning off, one sample at a time --------------------------------------
    network.train(False)
    if "infer_sample" in phases:
        one(warm_x[0])
        load0 = loadavg()
        t0, c0, spikes = time.perf_counter(), time.process_time(), 0.0
        for i in range(n_te):
            spikes += one(test_x[i])
        emit("infer_sample", n_te, time.perf_counter() - t0, time.process_time() - c0, spikes,
             load0, batch=1)

    # ---- inference, batched: [T, B, 1, 28, 28] in one network.run ----------------------------
    if "infer_batch" in phases:
        B = args.bindsnet_batch or n_te
        try:
            def batch(x):
                network.run(inputs={"X": encoder(x)}, time=T)  # encoder: [T, B, 1, 28, 28]
                s = float(mon.get("s").sum())
                network.reset_state_variables()
                return s

            batch(warm_x[:B])  # warm-up: the batch-size change re-allocates the state
            load0 = loadavg()
            t0, c0, spikes = time.perf_counter(), time.process_time(), 0.0
            for a in range(0, n_te, B):
                spikes += batch(test_x[a:a + B])
            emit("infer_batch", n_te, time.perf_counter() - t0, time.process_time() - c0,
                 spikes, load0, batch=B)
        except Exception as exc:  # report and go on: per-sample inference is still there
            print(json.dumps(dict(base, phase="infer_batch", error=repr(exc))), flush=True)


# --------------------------------------------------------------------------------------------
# Brian2 cpp_standalone (benchmarks/brian2_baseline.py, side venv benchmarks/.venv-brian2)
# --------------------------------------------------------------------------------------------

def run_brian2(args, res: Results, n: int, threads_list: list[int]) -> None:
    todo = [t for t in threads_list if not res.has(key_of("brian2", "diehl-cook", n, "train", t))]
    if not todo or res.run.get("brian2_error"):
        return
    for t in todo:
        print(f"brian2: N={n} threads={t}: cpp_standalone, {args.brian2_train} training "
              f"samples in one program (compilation is timed apart)", flush=True)
        try:
            rec = b2b.measure(n, args.time, args.seed, args.brian2_train, intensity=INTENSITY,
                              threads=t)
        except b2b.SetupError as exc:  # no venv, no compiler, or the program failed
            print(f"brian2: left out: {exc}", flush=True)
            res.run["brian2_error"] = str(exc)
            res.save()
            return
        res.put(key_of("brian2", "diehl-cook", n, "train", t), rec)
        print("  " + describe(rec) + f"; compiled in {rec['compile_s']:.0f} s", flush=True)


# --------------------------------------------------------------------------------------------
# the C floor of the reduced network's training (benchmarks/c_floor.py)
# --------------------------------------------------------------------------------------------

FLOOR_DTYPES = ("float64", "float32")


def floor_key(n: int, dtype: str) -> str:
    return f"{key_of('cfloor', 'tinysnn', n, 'train')}/dtype={dtype}"


def run_floor(args, res: Results, n: int) -> None:
    todo = [d for d in FLOOR_DTYPES if not res.has(floor_key(n, d))]
    if not todo or res.run.get("cfloor_error"):
        return
    import c_floor
    from tinysnn_core.errors import TinySNNError

    print(f"cfloor: N={n}: the C floor on the first {args.ours_train} training samples "
          f"({', '.join(todo)}; best of 5 runs pinned to one CPU)", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="tinysnn-compare-floor-") as tmp:
            spk = c_floor.prepare(n, args.time, args.ours_train, args.seed, tmp)
            for dtype in todo:
                r = c_floor.run_floor(spk, dtype)
                k = r["samples"]
                rec = dict(r, sim="cfloor", network="tinysnn", n=n, phase="train",
                           samples_per_s=1e6 / r["us_per_sample"],
                           wall_s=r["us_per_sample"] * k / 1e6, cpu_s=min(r["train_cpu_s"]),
                           ms_per_sample=r["us_per_sample"] / 1e3,
                           exc_spikes_per_sample=r["exc_spikes"] / k)
                res.put(floor_key(n, dtype), rec)
                print("  " + describe(rec), flush=True)
    except (TinySNNError, OSError) as exc:  # no C compiler, or the program disagreed
        print(f"cfloor: left out: {exc}", flush=True)
        res.run["cfloor_error"] = str(exc)
        res.save()


# --------------------------------------------------------------------------------------------
# our backends
# --------------------------------------------------------------------------------------------

def our_config(net_name: str, n: int, T: int, seed: int):
    from tinysnn_core.config import Config

    if net_name == "diehl-cook":  # BindsNET's eth_mnist settings
        d = {"n_neurons": n, "seed": seed,
             "topology": {"name": "diehl-cook", "exc": 22.5, "inh": 120.0},
             "exc_neuron": {"name": "adaptive-lif", "theta_plus": 0.05},
             "learning": {"name": "postpre"},
             "encoder": {"name": "poisson", "max_rate_hz": INTENSITY, "max_retries": 0},
             "train": {"time_steps": T, "norm": 78.4}}
        return Config.from_dict(d)
    if net_name == "tinysnn":  # the project's reduced network, as configured
        cfg = Config.load(ROOT / "configs" / "tinysnn.toml")
        return cfg.with_overrides([f"n_neurons={n}", f"seed={seed}", f"train.time_steps={T}"])
    raise SystemExit(f"error: unknown network {net_name!r} (diehl-cook, tinysnn)")


def measure(backend, net, images, ids, *, learn: bool, seed: int):
    from tinysnn_core.ops import OpCounts

    load0 = loadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    counts = backend.run(net, images, ids, learn=learn, seed=seed, ops=OpCounts())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    B = len(ids)
    return {"samples": B, "wall_s": wall, "cpu_s": cpu, "samples_per_s": B / wall,
            "ms_per_sample": 1e3 * wall / B, "cpu_ms_per_sample": 1e3 * cpu / B,
            "exc_spikes_per_sample": float(counts.sum()) / B, "loadavg": [load0, loadavg()]}


def median_run(run, repeats: int) -> dict:
    """``run()`` (a measurement's record) ``repeats`` times: the record of the run whose speed
    is the median, with every run's samples per second (``runs_samples_per_s``, ascending)."""
    recs = sorted((run() for _ in range(repeats)), key=lambda r: r["samples_per_s"])
    rec = dict(recs[len(recs) // 2])
    rec["runs_samples_per_s"] = [r["samples_per_s"] for r in recs]
    return rec


def measure_one_by_one(backend, net, images, ids, *, seed: int):
    """Inference one sample per call (learning off, so the network is the same every call)."""
    from tinysnn_core.ops import OpCounts

    load0 = loadavg()
    t0, c0, spikes = time.perf_counter(), time.process_time(), 0.0
    for b in range(len(ids)):
        spikes += float(backend.run(net, images[b:b + 1], ids[b:b + 1], learn=False, seed=seed,
                                    ops=OpCounts()).sum())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    B = len(ids)
    return {"samples": B, "wall_s": wall, "cpu_s": cpu, "samples_per_s": B / wall,
            "ms_per_sample": 1e3 * wall / B, "cpu_ms_per_sample": 1e3 * cpu / B,
            "exc_spikes_per_sample": spikes / B, "loadavg": [load0, loadavg()], "batch": 1}


class Ours:
    """Our backends, set up once: the data, the usable backends (numba first: its trained
    network is the one every backend's inference runs on)."""

    ORDER = ("numba", "numba-f32", "numba-f32c", "numpy", "cupy")
    #: measured names that are a registered backend built with arguments: numba's float32
    #: weights (float64 sums), and float32 weights with float32 current sums (BindsNET's
    #: float32 matrix product)
    VARIANTS = {"numba-f32": ("numba", {"precision": "float32"}),
                "numba-f32c": ("numba", {"precision": "float32-currents"})}

    def __init__(self, args, res: Results):
        import numpy as np

        from tinysnn_core.builtin.datasets import load_mnist_5k
        from tinysnn_core.registry import get_registry

        self.args, self.res, self.np = args, res, np
        self.data = load_mnist_5k(args.seed)
        reg = get_registry()
        self.backends, unavailable = {}, {}
        for name in self.ORDER:
            if name == "numpy" and args.skip_numpy:
                continue
            try:
                base, kwargs = self.VARIANTS.get(name, (name, {}))
                be = reg.get("backend", base)(**kwargs)
                ok, why = be.available()
            except Exception as exc:  # plugin not installed at all
                ok, why, be = False, f"backend not registered ({exc})", None
            if ok:
                self.backends[name] = be
            else:
                unavailable[name] = why
                print(f"{name}: not available here ({why})", flush=True)
        res.run["unavailable"] = unavailable
        if "numba" in self.backends:
            import numba
            res.run["numba"] = {"version": numba.__version__, "threads": numba.get_num_threads()}
        res.save()
        n_te = len(self.data.test_images)
        k = max(args.ours_infer, args.ours_infer_sample)
        self.infer_imgs = self.data.test_images[np.arange(k) % n_te]
        self.infer_ids = np.arange(k)  # reused images get distinct sample ids

    def run(self, net_name: str, n: int) -> None:
        from tinysnn_core.network import Network
        from tinysnn_core.ops import OpCounts

        np, args, res, data = self.np, self.args, self.res, self.data
        net0 = Network.build(our_config(net_name, n, args.time, args.seed))
        trained, trained_by = None, None
        for name, be in self.backends.items():
            phases = ("train", "infer_batch") if name == "numpy" else \
                ("train", "infer_batch", "infer_sample")  # numpy's batch is one by one anyway
            keys = {ph: key_of(name, net_name, n, ph) for ph in phases}
            if all(res.has(k) for k in keys.values()):
                continue
            k_tr = args.numpy_samples if name == "numpy" else args.ours_train
            k_in = args.numpy_samples if name == "numpy" else args.ours_infer
            extra = {"sim": name, "network": net_name, "n": n, "time": args.time}
            if name != "numpy":  # compile or load the kernels: excluded from timing
                warm = copy.deepcopy(net0)
                tw = time.perf_counter()
                be.run(warm, data.train_images[-2:], np.arange(2) + 10**6, learn=True,
                       seed=args.seed, ops=OpCounts())
                be.run(warm, data.train_images[-4:], np.arange(4) + 10**6, learn=False,
                       seed=args.seed, ops=OpCounts())
                # one sample per call may take another kernel (compiled on first use)
                be.run(warm, data.train_images[-1:], np.arange(1) + 10**6, learn=False,
                       seed=args.seed, ops=OpCounts())
                extra["warmup_s"] = time.perf_counter() - tw
            nets = []       # every run trains the same network (deterministic): keep one

            def train_once():
                nets.append(copy.deepcopy(net0))
                return measure(be, nets[-1], data.train_images[:k_tr], np.arange(k_tr),
                               learn=True, seed=args.seed)
            # (a resumed run that has the training figure trains once, for the network)
            rec = median_run(train_once, 1 if res.has(keys["train"]) else args.ours_repeats)
            net = nets[-1]
            if not res.has(keys["train"]):
                res.put(keys["train"], dict(extra, phase="train", **rec))
                print("  " + describe(res.get(keys["train"])), flush=True)
            if trained is None:  # numba's network (or, without numba, the first backend's)
                trained, trained_by = net, f"{name}, {k_tr} samples"
            if not res.has(keys["infer_batch"]):
                rec = median_run(lambda: measure(
                    be, copy.deepcopy(trained), self.infer_imgs[:k_in], self.infer_ids[:k_in],
                    learn=False, seed=args.seed + 1), args.ours_repeats)
                res.put(keys["infer_batch"],
                        dict(extra, phase="infer_batch", trained_by=trained_by, **rec))
                print("  " + describe(res.get(keys["infer_batch"])), flush=True)
            if "infer_sample" in keys and not res.has(keys["infer_sample"]):
                k_one = args.ours_infer_sample
                rec = median_run(lambda: measure_one_by_one(
                    be, copy.deepcopy(trained), self.infer_imgs[:k_one], self.infer_ids[:k_one],
                    seed=args.seed + 1), args.ours_repeats)
                res.put(keys["infer_sample"],
                        dict(extra, phase="infer_sample", trained_by=trained_by, **rec))
                print("  " + describe(res.get(keys["infer_sample"])), flush=True)


# --------------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------------

def describe(rec: dict) -> str:
    if "error" in rec:
        return f"{rec['sim']} N={rec['n']} {rec['phase']}: error {rec['error']}"
    th = f" threads={rec['threads']}" if "threads" in rec else ""
    th += f" {rec['dtype']}" if "dtype" in rec else ""
    return (f"{rec['sim']} {rec['network']} N={rec['n']}{th} {rec['phase']}: "
            f"{rec['samples']} samples, {rec['wall_s']:.2f} s wall, {rec['cpu_s']:.2f} s CPU, "
            f"{rec['samples_per_s']:.1f} samples/s ({rec['ms_per_sample']:.3f} ms/sample), "
            f"{rec['exc_spikes_per_sample']:.1f} spikes/sample, load {rec['loadavg'][0]}"
            + (f"; median of {len(runs)} runs ({runs[0]:.1f}-{runs[-1]:.1f} samples/s)"
               if (runs := rec.get("runs_samples_per_s")) else ""))


def sps(rec: dict | None) -> float | None:
    if rec is None or "error" in rec:
        return None
    return rec["samples_per_s"]


def cpu_sps(rec: dict | None) -> float | None:
    """Samples per CPU second of the process (all its threads): steadier on a shared machine,
    but it does not credit a parallel speed-up."""
    if rec is None or "error" in rec or not rec.get("cpu_s"):
        return None
    return rec["samples"] / rec["cpu_s"]


def _ratio(a, b):
    return a / b if a and b else None


def _best(values):
    return max([v for v in values if v], default=None)


# Like-for-like comparisons: (our phase, theirs, their phase, name). The phase is the same on
# both sides, so a batched figure is never divided by a one-by-one one.
COMPARISONS = (
    ("train", "bindsnet", "training: {sim} / BindsNET training"),
    ("train", "brian2", "training: {sim} / Brian2 cpp_standalone training"),
    ("infer_batch", "bindsnet", "inference batched: {sim} batched / BindsNET batched"),
    ("infer_sample", "bindsnet", "inference one by one: {sim} one by one / BindsNET one by one"),
)
THEIR_PHASES = {"bindsnet": ("train", "infer_sample", "infer_batch"), "brian2": ("train",)}
OUR_PHASES = ("train", "infer_batch", "infer_sample")
# issue 13's bars at N = 400 (diehl-cook; the floor's: the reduced network): comparison name, as
# numba's float64 path names it -> minimum ratio. The competitor bars are checked for every
# numba precision measured (the float32 ones are opt-in, their accuracy in docs/backends.md);
# the floor's bar is float64's.
BARS_N400 = {"training: numba / BindsNET training": 300,
             "training: numba / Brian2 cpp_standalone training": 30,
             "inference batched: numba batched / BindsNET batched": 200,
             "reduced-net training: numba / C floor (float64)": 0.8}
FLOAT64_ONLY_BARS = ("reduced-net training: numba / C floor (float64)",)


def summarize(M: dict, sizes, threads_list, networks, brian2_threads=(1,)) -> dict:
    """Samples/s of every simulator and the named like-for-like ratios, from the measurements
    ``M`` (key -> record). Ratios divide by the other simulator's fastest thread count
    (the conservative divisor); ``per_threads`` has the ratio at each one."""
    their_threads = {"bindsnet": list(threads_list), "brian2": list(brian2_threads)}
    summary = {"bindsnet": {}, "brian2": {}, "ours": {}, "ratios": {}, "bars_n400": None}
    for n in sizes:
        for other, threads in their_threads.items():
            summary[other][n] = {}
            for t in threads:
                recs = {ph: M.get(key_of(other, "diehl-cook", n, ph, t))
                        for ph in THEIR_PHASES[other]}
                row = {ph: sps(r) for ph, r in recs.items()}
                row.update({f"cpu_{ph}": cpu_sps(r) for ph, r in recs.items()})
                if other == "brian2" and recs["train"] and "compile_s" in recs["train"]:
                    row["compile_s"] = recs["train"]["compile_s"]
                summary[other][n][t] = row
        for net_name in networks:
            for sim in Ours.ORDER:
                recs = {ph: M.get(key_of(sim, net_name, n, ph)) for ph in OUR_PHASES}
                if all(sps(r) is None for r in recs.values()):
                    continue
                row = {ph: sps(r) for ph, r in recs.items()}
                row.update({f"cpu_{ph}": cpu_sps(r) for ph, r in recs.items()})
                summary["ours"][f"{sim}/{net_name}/N={n}"] = row
        ratios = []
        for sim in Ours.ORDER:  # only diehl-cook is run by every simulator
            ours = summary["ours"].get(f"{sim}/diehl-cook/N={n}")
            if ours is None:
                continue
            for phase, other, name in COMPARISONS:
                theirs = summary[other][n]
                per = {t: _ratio(ours[phase], row.get(phase)) for t, row in theirs.items()}
                fastest = _best([row.get(phase) for row in theirs.values()])
                if ours[phase] is None or fastest is None:
                    continue
                t_fast = next(t for t, row in theirs.items() if row.get(phase) == fastest)
                ratios.append({
                    "name": name.format(sim=sim), "ours": sim, "other": other, "phase": phase,
                    "ours_samples_per_s": ours[phase], "other_samples_per_s": fastest,
                    "ratio": ours[phase] / fastest, "other_threads": t_fast,
                    "per_threads": per,
                    "cpu_ratio": _ratio(ours[f"cpu_{phase}"],
                                        _best([row.get(f"cpu_{phase}") for row in theirs.values()])),
                })
        for dtype in FLOOR_DTYPES:
            # each C precision against the numba precision that does the same arithmetic
            # where it can: float64 with float64; float32 with float32 weights (float64 sums)
            # and with float32 weights and current sums (C's float32 sums its rows in float32)
            for sim in ("numba",) if dtype == "float64" else ("numba", "numba-f32", "numba-f32c"):
                ours = summary["ours"].get(f"{sim}/tinysnn/N={n}", {})
                r = M.get(floor_key(n, dtype))
                if ours.get("train") and sps(r):
                    ratios.append({
                        "name": f"reduced-net training: {sim} / C floor ({dtype})", "ours": sim,
                        "other": "cfloor", "phase": "train",
                        "ours_samples_per_s": ours["train"], "other_samples_per_s": sps(r),
                        "ratio": ours["train"] / sps(r), "other_threads": dtype,
                        "per_threads": {dtype: ours["train"] / sps(r)},
                        "cpu_ratio": _ratio(ours["cpu_train"], cpu_sps(r))})
                    drawn = r.get("with_draws_us_per_sample")
                    if drawn:   # the floor that also draws its input spikes, as numba does
                        ratios.append({
                            "name": f"reduced-net training: {sim} / C floor drawing its spikes "
                                    f"({dtype})", "ours": sim, "other": "cfloor",
                            "phase": "train", "ours_samples_per_s": ours["train"],
                            "other_samples_per_s": 1e6 / drawn,
                            "ratio": ours["train"] * drawn / 1e6, "other_threads": dtype,
                            "per_threads": {dtype: ours["train"] * drawn / 1e6},
                            "cpu_ratio": None})
        summary["ratios"][n] = ratios
    if 400 in summary["ratios"]:
        got = {r["name"]: r["ratio"] for r in summary["ratios"][400]}
        measured = {r["ours"] for r in summary["ratios"][400]}
        bars = {}
        for sim in ("numba", "numba-f32", "numba-f32c"):
            if sim != "numba" and sim not in measured:
                continue
            for name, bar in BARS_N400.items():
                if sim != "numba" and name in FLOAT64_ONLY_BARS:
                    continue
                name = name.replace("numba", sim, 1)
                bars[name] = {"ratio": got.get(name), "bar": bar,
                              "met": got.get(name) is not None and got[name] >= bar}
        summary["bars_n400"] = bars
    return summary


def fmt(x, spec=".1f", none="-"):
    return none if x is None else format(x, spec)


def _x(ratio) -> str:
    """A ratio: two decimals below 10 (the floor's fractions), one above."""
    return "-" if ratio is None else f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def _load(rec: dict) -> str:
    la = rec.get("loadavg") or [None, None]
    one = [" ".join(f"{v:.2f}" for v in x) if x else "-" for x in la]
    return f"{one[0]} -> {one[1]}"


def report_lines(data: dict, summary: dict) -> list[str]:
    """The printed summary: machine and load, samples/s of each simulator, named ratios."""
    M = data["measurements"]
    used = {rec.get("run") for rec in M.values()}
    runs = [r for i, r in enumerate(data["runs"]) if i in used] or data["runs"][-1:]
    out = []
    mach = runs[0]["machine"] if runs else {}
    flags = mach.get("flags")
    out.append(f"machine: {mach.get('model')}, {mach.get('cpus')} CPUs"
               + (f", {mach['cores_per_socket']} cores per socket" if mach.get("cores_per_socket")
                  else "")
               + (f" ({mach['hypervisor_vendor']} guest)" if mach.get("hypervisor_vendor") else "")
               + (f"; flags: {' '.join(flags)}" if flags else
                  "; flags: none of " + " ".join(CPU_FLAGS) if flags is not None else ""))
    for r in runs:
        out.append(f"run {r['started']} .. {r.get('finished', '(killed)')}   numba: "
                   f"{r.get('numba', '-')}")
        out.append(f"  uptime at start: {r['uptime_start']}")
        out.append(f"  uptime at end:   {r.get('uptime_end', '-')}")
        for name, why in r.get("unavailable", {}).items():
            out.append(f"  {name}: not available here ({why})")
        for other in ("bindsnet", "brian2", "cfloor"):
            if r.get(f"{other}_error"):
                out.append(f"  {other}: left out ({r[other + '_error'].splitlines()[0]})")
    out.append("load average (1, 5, 15 min) at the start -> end of each measurement:")
    width = max((len(k) for k in M), default=0)
    for key, rec in M.items():
        out.append(f"  {key:<{width}}  {_load(rec)}")
    s = data["settings"]
    out.append(f"T = {s['time']}; BindsNET {s['bindsnet_train']} train / {s['bindsnet_infer']} "
               f"inference samples; Brian2 {s.get('brian2_train', '-')} train; numba/cupy "
               f"{s['ours_train']} train / {s['ours_infer']} batched / "
               f"{s.get('ours_infer_sample', '-')} one-by-one inference; numpy "
               f"{s['numpy_samples']}")
    out.append("")
    out.append("BindsNET 0.3.4 DiehlAndCook2015 (torch CPU), samples/s (wall clock):")
    out.append(f"{'N':>5} {'threads':>7} {'train':>8} {'infer 1-by-1':>12} {'infer batch':>11}")
    for n, bn in summary["bindsnet"].items():
        for t, b in bn.items():
            out.append(f"{n:>5} {t:>7} {fmt(b['train'], '.2f'):>8} "
                       f"{fmt(b['infer_sample'], '.2f'):>12} {fmt(b['infer_batch'], '.2f'):>11}")
    out.append("")
    out.append(f"Brian2 {b2b.BRIAN2_VERSION} cpp_standalone (diehl-cook), training samples/s "
               "(wall clock of the compiled program; compilation apart):")
    out.append(f"{'N':>5} {'threads':>7} {'train':>8} {'compile s':>9}")
    for n, rows in summary["brian2"].items():
        for t, b in rows.items():
            out.append(f"{n:>5} {t:>7} {fmt(b['train'], '.2f'):>8} "
                       f"{fmt(b.get('compile_s'), '.0f'):>9}")
    out.append("")
    floors = [(k, r) for k, r in M.items() if r.get("sim") == "cfloor" and sps(r)]
    if floors:
        out.append("C floor of the reduced network's training (benchmarks/c_floor.py: best of "
                   f"{floors[0][1].get('repeats', '-')} runs pinned to one CPU):")
        out.append(f"{'N':>5} {'dtype':>7} {'us/sample':>9} {'samples/s':>9}")
        for k, r in floors:
            out.append(f"{r['n']:>5} {r['dtype']:>7} {r['us_per_sample']:>9.1f} "
                       f"{sps(r):>9.1f}")
        out.append("")
    out.append("ours, samples/s (wall clock):")
    out.append(f"{'backend':<10} {'network':<11} {'N':>5} {'train':>9} {'infer batch':>11} "
               f"{'infer 1-by-1':>12}")
    for key, row in summary["ours"].items():
        sim, net_name, n = key.split("/")
        out.append(f"{sim:<10} {net_name:<11} {n[2:]:>5} {fmt(row['train']):>9} "
                   f"{fmt(row['infer_batch']):>11} {fmt(row['infer_sample']):>12}")
    out.append("")
    out.append("like-for-like ratios (ours / theirs in samples/s, wall clock; BindsNET and "
               "Brian2 on diehl-cook, the C floor on the reduced network; against their fastest "
               "thread count, per thread count and in CPU time beside):")
    for n, ratios in summary["ratios"].items():
        out.append(f"  N = {n}:")
        width = max((len(r["name"]) for r in ratios), default=0)
        for r in ratios:
            if r["other"] == "cfloor":
                beside = "the floor: best of its pinned runs"
            else:
                per = ", ".join(f"{t}: {_x(v)}" for t, v in r["per_threads"].items())
                beside = f"their threads {r['other_threads']}; per thread count {per}"
            out.append(f"    {r['name']:<{width}}  {_x(r['ratio']):>8}  ({beside}; "
                       f"CPU time {_x(r['cpu_ratio'])})")
        if not ratios:
            out.append("    (nothing to compare)")
    bars = summary.get("bars_n400") or {}
    if any(b["ratio"] is not None for b in bars.values()):    # none without a competitor
        out.append("")
        out.append("N = 400 bars (issue 13):")
        for name, b in bars.items():
            out.append(f"  {name} >= {b['bar']}x: {_x(b['ratio'])}, "
                       f"{'met' if b['met'] else 'NOT met'}")
    return out


def print_report(data: dict, summary: dict) -> None:
    print()
    print("\n".join(report_lines(data, summary)))


# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bindsnet_inner:
        bindsnet_inner(args)
        return 0
    # a plain `kill` ends the run through SystemExit, so that a running BindsNET child is killed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = parse_list(args.sizes, "sizes")
    threads_list = parse_list(args.threads, "threads")
    brian2_threads = parse_list(args.brian2_threads, "brian2-threads")
    networks = [x.strip() for x in args.networks.split(",") if x.strip()]
    for x in networks:
        if x not in NETWORKS:
            raise SystemExit(f"error: --networks: unknown {x!r} (diehl-cook, tinysnn)")
    for name in ("time", "bindsnet_train", "bindsnet_infer", "ours_train", "ours_infer",
                 "ours_infer_sample", "ours_repeats", "brian2_train", "numpy_samples"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1")
    settings = {"time": args.time, "seed": args.seed, "intensity_hz": INTENSITY,
                "bindsnet_train": args.bindsnet_train, "bindsnet_infer": args.bindsnet_infer,
                "bindsnet_batch": args.bindsnet_batch, "ours_train": args.ours_train,
                "ours_infer": args.ours_infer, "ours_infer_sample": args.ours_infer_sample,
                "ours_repeats": args.ours_repeats,
                "brian2_train": args.brian2_train, "numpy_samples": args.numpy_samples}
    res = Results(Path(args.json), settings, args.fresh)
    print(f"results -> {args.json}", flush=True)
    print(f"machine: {res.run['machine'].get('model')}, {res.run['machine'].get('cpus')} CPUs; "
          f"{res.run['uptime_start']}", flush=True)

    # per size: BindsNET, Brian2, then ours, so that the figures compared are measured close in
    # time
    ours = Ours(args, res)
    for n in sizes:
        if not args.skip_bindsnet:
            run_bindsnet(args, res, [n], threads_list)
        if args.brian2:
            run_brian2(args, res, n, brian2_threads)
        for net_name in networks:
            ours.run(net_name, n)
        if args.floor and "tinysnn" in networks:
            run_floor(args, res, n)
    res.run["uptime_end"] = uptime()
    res.run["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_idx = len(res.data["runs"]) - 1
    if not any(rec.get("run") == run_idx for rec in res.data["measurements"].values()):
        res.data["runs"].pop()  # this invocation only re-rendered the table
    summary = summarize(res.data["measurements"], sizes, threads_list, networks, brian2_threads)
    res.data["summary"] = summary
    res.save()
    print_report(res.data, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
