#!/usr/bin/env python3
"""BindsNET baseline: DiehlAndCook2015 on the same mnist-5k split tinysnn uses.

Run it with the project's interpreter (it needs ``tinysnn_core`` for the data split)::

    .venv/bin/python benchmarks/bindsnet_baseline.py --n-neurons 100 --json benchmarks/out/bindsnet_n100.json

Two halves live in this one file:

* the **outer** half (default) runs under the project's Python. It builds (once) a separate
  virtual environment ``benchmarks/.venv-bindsnet`` with torch 2.13.0 and BindsNET, writes the
  mnist-5k split to a temporary ``.npz`` and starts the inner half with that venv's Python;
* the **inner** half (``--inner NPZ``) runs under the BindsNET venv. It never imports
  ``tinysnn_core``; it follows BindsNET's ``examples/mnist/eth_mnist.py`` (train one pass with
  STDP, assign labels every ``update_interval`` samples, test with learning off) and prints
  one JSON object on stdout.

BindsNET is never a dependency of tinysnn: it lives only in that side venv.
See docs/bindsnet-baseline.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import side_venv  # noqa: E402  (standard library only, like this module at import)
from side_venv import SetupError, run_step  # noqa: E402,F401
from side_venv import cpu_model as _cpu_model, loadavg as _loadavg  # noqa: E402  (compare.py uses bb.SetupError)
VENV_DIR = HERE / ".venv-bindsnet"
# Written after a successful setup; its content must match SETUP_SPEC or the setup is redone.
VENV_MARKER = VENV_DIR / ".bindsnet-baseline-ready"

TORCH_VERSION = "2.13.0"  # this machine's local CPU wheel; never let pip resolve another torch
BINDSNET_VERSION = "0.3.4"
# What `import bindsnet` really imports (bindsnet/__init__.py pulls in every subpackage:
# evaluation -> scikit-learn, models -> scipy, analysis -> matplotlib/pandas/tensorboardX,
# datasets -> opencv/Pillow/tqdm, environment -> gymnasium/ale-py). Found by trying.
# torchvision is NOT here: it is replaced by an inert stand-in (see _install_torchvision_standin).
# scikit-image, listed in bindsnet's metadata, is not imported by it and is left out.
RUNTIME_PACKAGES = [
    "tqdm", "scipy", "scikit-learn", "matplotlib", "pandas", "tensorboardX",
    "opencv-python-headless", "gymnasium", "ale-py",
]
SETUP_SPEC = json.dumps({"torch": TORCH_VERSION, "bindsnet": BINDSNET_VERSION,
                         "packages": RUNTIME_PACKAGES}, sort_keys=True)

N_CLASSES = 10


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Measure BindsNET's DiehlAndCook2015 (eth_mnist procedure) on mnist-5k.")
    p.add_argument("--n-neurons", type=int, default=400, help="excitatory neurons (default 400)")
    p.add_argument("--time", type=int, default=350, help="time steps per sample, dt=1 ms (350)")
    p.add_argument("--n-train", type=int, default=4000, help="training samples per epoch (4000)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training samples (1)")
    p.add_argument("--n-test", type=int, default=1000, help="test samples (1000)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the mnist-5k split and of torch (default 0)")
    p.add_argument("--intensity", type=float, default=128.0,
                   help="max Poisson rate in Hz: pixel/255*intensity (eth_mnist: 128; "
                        "Diehl & Cook's pixel/4 is 63.75)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads (default 1, comparable to a single-core run)")
    p.add_argument("--update-interval", type=int, default=250,
                   help="re-assign neuron labels every this many training samples (250)")
    p.add_argument("--progress-interval", type=int, default=100,
                   help="print progress every this many samples (100)")
    p.add_argument("--eth-monitors", action="store_true",
                   help="also record what eth_mnist records for its plots (Ae/Ai voltages, "
                        "spikes of every layer); costs time, does not change results")
    p.add_argument("--json", metavar="OUT", help="also write the result JSON to this file "
                                                 "(after training and again after testing)")
    p.add_argument("--setup-only", action="store_true", help="only build/check the BindsNET venv")
    p.add_argument("--inner", metavar="NPZ", help=argparse.SUPPRESS)  # internal: inner half
    return p


def check_args(args: argparse.Namespace) -> None:
    for name in ("n_neurons", "time", "n_train", "epochs", "n_test", "threads",
                 "update_interval", "progress_interval"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1")
    if args.intensity <= 0:
        raise SystemExit("error: --intensity must be > 0")


# --------------------------------------------------------------------------------------------
# outer half: venv setup, data split, launching the inner half
# --------------------------------------------------------------------------------------------

def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def _venv_torch_version(py: Path) -> str:
    out = run_step("checking torch in the venv",
                   [str(py), "-c", "import torch; print(torch.__version__)"])
    return out.strip().splitlines()[-1]


def ensure_venv() -> Path:
    """Create benchmarks/.venv-bindsnet once; return its python. Idempotent."""
    if side_venv.is_ready(VENV_DIR, VENV_MARKER, SETUP_SPEC):
        return venv_python()
    py = side_venv.create(VENV_DIR)
    pip = side_venv.pinned_pip(py, VENV_DIR, TORCH_VERSION)
    # --no-deps: bindsnet's metadata asks for torch>=2.14 and torchvision, neither of which we
    # may install; the packages it really imports are installed explicitly next.
    run_step(f"pip install --no-deps bindsnet=={BINDSNET_VERSION}",
             pip + ["--no-deps", f"bindsnet=={BINDSNET_VERSION}"])
    run_step("pip install " + " ".join(RUNTIME_PACKAGES), pip + RUNTIME_PACKAGES)
    side_venv.check_torch(VENV_DIR, _venv_torch_version(py), TORCH_VERSION)
    # Prove that `import bindsnet` works with the torchvision stand-in before a long run.
    out = run_step("checking `import bindsnet` (with the torchvision stand-in)",
                   [str(py), str(Path(__file__).resolve()), "--inner", "-"],
                   env=_inner_env(1))
    print(f"[setup] ok: {out.strip().splitlines()[-1]}", file=sys.stderr)
    VENV_MARKER.write_text(SETUP_SPEC)
    return py


def _inner_env(threads: int) -> dict:
    # bindsnet imports matplotlib.pyplot: no display needed
    return side_venv.isolated_env(threads, MPLBACKEND="Agg")


def write_split_npz(seed: int, path: Path) -> dict:
    """Load mnist-5k exactly as tinysnn does and store it for the inner half."""
    try:
        from tinysnn_core.builtin.datasets import load_mnist_5k
    except ImportError as exc:
        raise SystemExit(f"error: cannot import tinysnn_core ({exc}). Run this script with the "
                         "project's interpreter, e.g. .venv/bin/python "
                         "benchmarks/bindsnet_baseline.py") from exc
    import numpy as np

    ds = load_mnist_5k(seed)
    np.savez(path, train_images=ds.train_images, train_labels=ds.train_labels,
             test_images=ds.test_images, test_labels=ds.test_labels)
    return {"n_train_available": int(len(ds.train_labels)),
            "n_test_available": int(len(ds.test_labels))}


def forwarded_flags(args: argparse.Namespace, json_path: Path | None) -> list[str]:
    flags = ["--n-neurons", str(args.n_neurons), "--time", str(args.time),
             "--n-train", str(args.n_train), "--epochs", str(args.epochs),
             "--n-test", str(args.n_test), "--seed", str(args.seed),
             "--intensity", repr(args.intensity), "--threads", str(args.threads),
             "--update-interval", str(args.update_interval),
             "--progress-interval", str(args.progress_interval)]
    if args.eth_monitors:
        flags.append("--eth-monitors")
    if json_path is not None:
        flags += ["--json", str(json_path)]
    return flags


def print_table(r: dict) -> None:
    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    rows = [
        ("model", f"BindsNET {r.get('bindsnet_version')} DiehlAndCook2015, "
                  f"N={r['n_neurons']}, T={r['time']}, intensity={r['intensity']:g}"),
        ("data", f"mnist-5k seed {r['seed']}: {r['n_train_samples']} train samples "
                 f"({r['epochs']} epoch(s)), {r['n_test']} test"),
        ("torch threads", str(r["threads"])),
        ("train", f"{f(r.get('train_seconds'), '.1f')} s wall "
                  f"({f(r.get('train_cpu_seconds'), '.1f')} s CPU), "
                  f"{f(r.get('train_samples_per_s'), '.2f')} samples/s"),
        ("inference", f"{f(r.get('test_seconds'), '.1f')} s wall "
                      f"({f(r.get('test_cpu_seconds'), '.1f')} s CPU), "
                      f"{f(r.get('test_samples_per_s'), '.2f')} samples/s"),
        ("load average", f"{r.get('loadavg_start')} -> {r.get('loadavg_end')}"),
        ("acc all_activity", f(r.get("accuracy_all_activity"), ".2%")),
        ("acc proportion_weighting", f(r.get("accuracy_proportion_weighting"), ".2%")),
        ("no-spike abstentions", str(r.get("test_abstained_all_activity", "-"))),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def outer_main(args: argparse.Namespace) -> dict | None:
    try:
        py = ensure_venv()
    except SetupError as exc:
        raise SystemExit(f"error: BindsNET venv setup failed: {exc}") from exc
    if args.setup_only:
        print(f"BindsNET venv ready: {VENV_DIR}")
        return None

    json_path = Path(args.json).resolve() if args.json else None
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="bindsnet-baseline-") as tmp:
        npz = Path(tmp) / "mnist5k.npz"
        avail = write_split_npz(args.seed, npz)
        if args.n_train > avail["n_train_available"] or args.n_test > avail["n_test_available"]:
            raise SystemExit(f"error: mnist-5k has {avail['n_train_available']} training and "
                             f"{avail['n_test_available']} test samples")
        cmd = [str(py), str(Path(__file__).resolve()), "--inner", str(npz)]
        cmd += forwarded_flags(args, json_path)
        # The inner half prints progress on stderr (passed through) and the JSON on stdout.
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=_inner_env(args.threads))
    if proc.returncode != 0:
        raise SystemExit(f"error: the BindsNET run failed (exit {proc.returncode}); "
                         "see its messages above")
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise SystemExit(f"error: the BindsNET run printed no JSON result: {proc.stdout[-500:]!r}")
    print(json.dumps(result))
    print_table(result)
    return result


# --------------------------------------------------------------------------------------------
# inner half: runs under benchmarks/.venv-bindsnet, never imports tinysnn_core
# --------------------------------------------------------------------------------------------

def _install_torchvision_standin() -> None:
    """Put an inert ``torchvision`` into sys.modules before bindsnet is imported.

    bindsnet/__init__ imports bindsnet.datasets, which does ``from torchvision import
    datasets`` and wraps ~20 torchvision dataset classes at import time, and
    bindsnet.analysis imports ``torchvision.utils.make_grid``; bindsnet.datasets.preprocess
    imports ``torchvision.transforms``. No PyPI torchvision runs beside the local torch
    2.13.0, and we load and encode the data ourselves, so every name resolves to a class
    that refuses to be instantiated: any torchvision code path that is really reached fails
    loudly instead of silently doing something.
    """

    class _Inert:
        def __init__(self, *args, **kwargs):
            raise RuntimeError(f"{type(self).__name__}: torchvision is a stand-in in this "
                               "benchmark; no torchvision code may run")

    def module_getattr(name: str):
        if name.startswith("__"):  # keep introspection (__path__, __file__, ...) honest
            raise AttributeError(name)
        return type(name, (_Inert,), {})

    root = types.ModuleType("torchvision")
    root.__version__ = "0.0-standin"
    root.__path__ = []  # a package, so "torchvision.x" imports resolve via sys.modules
    sys.modules["torchvision"] = root
    for sub in ("datasets", "transforms", "utils"):
        mod = types.ModuleType(f"torchvision.{sub}")
        mod.__getattr__ = module_getattr  # PEP 562: any attribute is an inert class
        setattr(root, sub, mod)
        sys.modules[f"torchvision.{sub}"] = mod


def _write_json(path: str | None, result: dict) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def inner_main(args: argparse.Namespace) -> dict:
    _install_torchvision_standin()
    import numpy as np
    import torch
    import bindsnet
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.evaluation import all_activity, assign_labels, proportion_weighting
    from bindsnet.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor

    if args.inner == "-":  # import check used by the setup
        msg = f"bindsnet {getattr(bindsnet, '__version__', BINDSNET_VERSION)} on torch {torch.__version__}"
        print(msg)
        return {}

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    T, N, dt = args.time, args.n_neurons, 1.0

    data = np.load(args.inner)
    # eth_mnist: ToTensor() (pixel/255) then * intensity -> Poisson rates in Hz.
    def to_rates(images):
        x = torch.from_numpy(images.astype(np.float32)) / 255.0 * args.intensity
        return x.view(-1, 1, 28, 28)

    train_x = to_rates(data["train_images"][: args.n_train])
    train_y = torch.from_numpy(data["train_labels"][: args.n_train].astype(np.int64))
    test_x = to_rates(data["test_images"][: args.n_test])
    test_y = torch.from_numpy(data["test_labels"][: args.n_test].astype(np.int64))

    # eth_mnist's network: exc 22.5, inh 120 (its override of the model's 17.5), theta+ 0.05.
    network = DiehlAndCook2015(n_inpt=784, n_neurons=N, exc=22.5, inh=120.0, dt=dt, norm=78.4,
                               theta_plus=0.05, inpt_shape=(1, 28, 28))
    spikes = {"Ae": Monitor(network.layers["Ae"], state_vars=["s"], time=int(T / dt))}
    network.add_monitor(spikes["Ae"], name="Ae_spikes")
    if args.eth_monitors:  # the plotting-only monitors eth_mnist also attaches
        for layer in ("X", "Ai"):
            spikes[layer] = Monitor(network.layers[layer], state_vars=["s"], time=int(T / dt))
            network.add_monitor(spikes[layer], name=f"{layer}_spikes")
        for layer in ("Ae", "Ai"):
            network.add_monitor(Monitor(network.layers[layer], ["v"], time=int(T / dt)),
                                name=f"{layer}_voltage")
    encoder = PoissonEncoder(time=T, dt=dt)

    result = {
        "framework": "bindsnet",
        "bindsnet_version": BINDSNET_VERSION,
        "torch_version": torch.__version__,
        "model": "DiehlAndCook2015(exc=22.5, inh=120, theta_plus=0.05, norm=78.4, dt=1)",
        "procedure": "examples/mnist/eth_mnist.py",
        "n_neurons": N, "time": T, "dt": dt, "intensity": args.intensity,
        "n_train": args.n_train, "epochs": args.epochs,
        "n_train_samples": args.n_train * args.epochs, "n_test": args.n_test,
        "seed": args.seed, "threads": args.threads, "update_interval": args.update_interval,
        "eth_monitors": args.eth_monitors,
        "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "phase": "training",
    }

    # ---- training: eth_mnist's loop ----------------------------------------------------------
    U = args.update_interval
    spike_record = torch.zeros(U, int(T / dt), N)
    assignments = -torch.ones(N, dtype=torch.long)
    proportions = torch.zeros(N, N_CLASSES)
    rates = torch.zeros(N, N_CLASSES)
    block_acc = {"all": [], "proportion": []}  # eth_mnist's running accuracy on each block
    encode_s = 0.0
    train_spikes = 0.0
    network.train(True)
    result["loadavg_start"] = _loadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    for epoch in range(args.epochs):
        order = torch.randperm(args.n_train)  # eth_mnist's DataLoader uses shuffle=True
        labels = []
        for step, idx in enumerate(order.tolist()):
            if step % U == 0 and step > 0:
                # Score the last block with the old assignments, then re-assign (as eth_mnist).
                lab = torch.tensor(labels)
                a = all_activity(spikes=spike_record, assignments=assignments, n_labels=N_CLASSES)
                p = proportion_weighting(spikes=spike_record, assignments=assignments,
                                         proportions=proportions, n_labels=N_CLASSES)
                block_acc["all"].append(round(float((a == lab).float().mean()), 4))
                block_acc["proportion"].append(round(float((p == lab).float().mean()), 4))
                assignments, proportions, rates = assign_labels(
                    spikes=spike_record, labels=lab, n_labels=N_CLASSES, rates=rates)
                labels = []
            labels.append(int(train_y[idx]))
            te = time.perf_counter()
            x = encoder(train_x[idx]).view(int(T / dt), 1, 1, 28, 28)
            encode_s += time.perf_counter() - te
            network.run(inputs={"X": x}, time=T)
            s = spikes["Ae"].get("s").view(int(T / dt), N)
            spike_record[step % U] = s
            train_spikes += float(s.sum())
            network.reset_state_variables()  # fresh v, traces, refractory per sample
            done += 1
            if done % args.progress_interval == 0:
                el = time.perf_counter() - t0
                total = args.n_train * args.epochs
                _log(f"train {done}/{total}  {done / el:.2f} samples/s  "
                     f"eta {(total - done) * el / done / 60:.1f} min")
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    # Note: like eth_mnist, the final assignments come from the last update (at step
    # n_train - U for n_train a multiple of U); the spikes of the last block are not used.
    result.update({
        "phase": "trained",
        "train_seconds": train_s,
        "train_samples_per_s": done / train_s,
        # CPU seconds of this process: less sensitive than wall time to other load on a
        # shared machine (with --threads 1 they agree on an idle one).
        "train_cpu_seconds": train_cpu,
        "train_encode_seconds": encode_s,
        "train_mean_exc_spikes_per_sample": train_spikes / max(done, 1),
        "train_block_accuracy": block_acc,
        "n_assigned_neurons": int((assignments >= 0).sum()),
        "assignment_class_counts": [int((assignments == c).sum()) for c in range(N_CLASSES)],
    })
    _log(f"training done: {train_s:.1f} s, {done / train_s:.2f} samples/s")
    _write_json(args.json, result)

    # ---- test: learning off, all_activity and proportion_weighting ---------------------------
    network.train(False)
    record = torch.zeros(1, int(T / dt), N)
    correct_all = correct_prop = abstained = 0
    test_spikes = 0.0
    encode_s = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.n_test):
        te = time.perf_counter()
        x = encoder(test_x[i]).view(int(T / dt), 1, 1, 28, 28)
        encode_s += time.perf_counter() - te
        network.run(inputs={"X": x}, time=T)
        record[0] = spikes["Ae"].get("s").view(int(T / dt), N)
        test_spikes += float(record.sum())
        a = all_activity(spikes=record, assignments=assignments, n_labels=N_CLASSES)
        p = proportion_weighting(spikes=record, assignments=assignments,
                                 proportions=proportions, n_labels=N_CLASSES)
        correct_all += int(a[0] == test_y[i])
        correct_prop += int(p[0] == test_y[i])
        abstained += int(a[0] < 0)
        network.reset_state_variables()
        if (i + 1) % args.progress_interval == 0:
            el = time.perf_counter() - t0
            _log(f"test {i + 1}/{args.n_test}  {(i + 1) / el:.2f} samples/s  "
                 f"acc(all) {correct_all / (i + 1):.3f}")
    test_s, test_cpu = time.perf_counter() - t0, time.process_time() - c0
    result.update({
        "phase": "done",
        "test_seconds": test_s,
        "test_samples_per_s": args.n_test / test_s,
        "test_cpu_seconds": test_cpu,
        "test_encode_seconds": encode_s,
        "test_mean_exc_spikes_per_sample": test_spikes / args.n_test,
        "accuracy_all_activity": correct_all / args.n_test,
        "accuracy_proportion_weighting": correct_prop / args.n_test,
        "test_abstained_all_activity": abstained,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_end": _loadavg(),
    })
    _write_json(args.json, result)
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_args(args)
    if args.inner:
        inner_main(args)
    else:
        outer_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
