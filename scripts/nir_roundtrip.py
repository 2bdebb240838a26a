#!/usr/bin/env python3
"""The NIR round trip: export a model to NIR, simulate the NIR graph with a NIR consumer
(nirtorch's graph interpreter running Norse's LIF neurons), and compare it with our NumPy
reference on the same input spikes (docs/nir.md).

    .venv/bin/python scripts/nir_roundtrip.py --model runs/results/mnist5k_ts_n400.tsnn \\
        --n-test 1000 --json benchmarks/out/nir_roundtrip.json

Two halves in one file, as benchmarks/bindsnet_baseline.py:

* the **outer** half (default) runs under the project's Python. It builds (once) the side
  virtual environment ``benchmarks/.venv-nir`` (torch 2.13.0, this machine's CPU wheel, pinned
  by a constraints file; nir; nirtorch; Norse without its dependencies, which would pull
  torchvision), exports the model with ``tinysnn export``'s implementation, simulates the test
  samples with the NumPy backend's ``present`` (the retry rule as ``run_sample``) and writes the
  input spikes of each sample's last presentation, the one its counts come from;
* the **inner** half (``--inner``) runs in the side venv. It never imports ``tinysnn_core``: it
  reads the graph with ``nir.read``, maps it with ``nirtorch.nir_to_torch`` (Linear: nirtorch's
  own mapping; LIF: Norse's ``LIFBoxCell``, given every field of the NIR node; Delay: a
  one-step buffer, or nothing where nirtorch's interpreter already spends that step closing the
  cycle, ``_absorbed_delays``), runs the spikes through it and returns the spike counts.

Our side is simulated three more times on the same spikes with what NIR cannot express
switched off (the one-spike winner, the refractory period, both), so the disagreement can be
attributed: with both off our simulator and the consumer must agree (the check, exit status 1
when they do not, within the tolerance given by ``--min-identical``).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import side_venv  # noqa: E402  (standard library only: the side venv's half imports it too)
from side_venv import SetupError, run_step  # noqa: E402
VENV_DIR = ROOT / "benchmarks" / ".venv-nir"
VENV_MARKER = VENV_DIR / ".nir-roundtrip-ready"
TORCH_VERSION = "2.13.0"      # this machine's local CPU wheel; never let pip resolve another torch
PACKAGES = ["nir==1.0.8", "nirtorch==2.6"]
NORSE = "norse==1.1.0"         # --no-deps: its metadata asks for torchvision, which is not needed
SETUP_SPEC = json.dumps({"torch": TORCH_VERSION, "packages": PACKAGES, "norse": NORSE},
                        sort_keys=True)


# --------------------------------------------------------------------------------------------
# inner half: the NIR consumer (side venv; no tinysnn_core here)
# --------------------------------------------------------------------------------------------

def _absorbed_delays(graph) -> list:
    """The Delay nodes whose step nirtorch's interpreter already takes.

    ``nir_to_torch`` breaks a cycle at a node with several inputs (here ``exc``: the input
    weights and the inhibition), giving it the recurrent input's output of the previous step.
    A Delay from which that node is reached through connections only (no neuron in between) is
    that step and maps to an identity; any other Delay (Diehl & Cook's exc -> inh) is a real
    one-step buffer."""
    import nir

    inputs: dict = {}
    for a, b in graph.edges:
        inputs.setdefault(b, []).append(a)
    out = []
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.Delay):
            continue
        frontier, seen = [name], set()
        while frontier:
            current = frontier.pop()
            for a, b in graph.edges:
                if a != current or b in seen:
                    continue
                seen.add(b)
                target = graph.nodes[b]
                if isinstance(target, (nir.LIF, nir.IF)):
                    if len(inputs.get(b, [])) > 1:
                        out.append(node)
                elif isinstance(target, (nir.Linear, nir.Affine, nir.Delay)):
                    frontier.append(b)
    return out


def build_consumer(graph_path: str, discretisation: str):
    """The NIR graph as a torch module: nirtorch's interpreter, Norse's LIF cells."""
    import nir
    import nirtorch
    import numpy as np
    import torch
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.functional.reset import reset_value
    from norse.torch.module.lif_box import LIFBoxCell

    graph = nir.read(graph_path)
    dt = float(graph.metadata["tinysnn"]["dt_s"])
    absorbed = _absorbed_delays(graph)

    class NirLIF(torch.nn.Module):
        """Norse's LIFBoxCell with NIR's r (an input scale, as Norse's own CubaLIF import
        applies it) and v_reset, which norse.torch.from_nir leaves out of a LIF."""

        def __init__(self, node):
            super().__init__()
            tau = torch.as_tensor(node.tau, dtype=torch.float64)
            if discretisation == "exact":
                # Norse integrates with forward Euler; this rate makes one Euler step of dt
                # the exact solution over dt (decay exp(-dt/tau), input held for dt)
                rate = -torch.expm1(-dt / tau) / dt
            else:
                rate = 1.0 / tau   # what norse.torch.from_nir sets
            self.register_buffer("r", torch.as_tensor(node.r, dtype=torch.float64))
            self.cell = LIFBoxCell(LIFBoxParameters(
                tau_mem_inv=rate, v_leak=torch.as_tensor(node.v_leak, dtype=torch.float64),
                v_th=torch.as_tensor(node.v_threshold, dtype=torch.float64),
                v_reset=torch.as_tensor(node.v_reset, dtype=torch.float64),
                reset_method=reset_value), dt=dt)

        def forward(self, x, state=None):
            return self.cell(self.r * x, state)

    class StepDelay(torch.nn.Module):
        """A one-step delay: returns the previous step's input (zeros at the first step)."""

        def forward(self, x, state=None):
            return (torch.zeros_like(x) if state is None else state), x

    def delay(node):
        steps = np.asarray(node.delay) / dt
        if not np.allclose(steps, 1.0):
            raise SystemExit(f"error: a Delay of {steps.min():g}..{steps.max():g} steps; the "
                             "round trip maps one-step delays only")
        # nir_to_torch maps a node by its type alone: tell the two kinds apart by identity
        return torch.nn.Identity() if any(node is d for d in absorbed) else StepDelay()

    module = nirtorch.nir_to_torch(graph, {nir.LIF: NirLIF, nir.Delay: delay},
                                   dtype=torch.float64)
    return module, graph


def inner_main(args) -> int:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    data = np.load(args.inner)
    packed, n_in, steps = data["spikes"], int(data["n_inputs"]), int(data["time_steps"])
    out = {}
    for disc in args.discretisations.split(","):
        module, graph = build_consumer(str(data["nir_path"]), disc)
        n = int(graph.metadata["tinysnn"]["n_neurons"])
        counts = np.zeros((len(packed), n), dtype=np.int64)
        started = time.perf_counter()
        with torch.no_grad():
            for lo in range(0, len(packed), args.batch):
                spikes = np.unpackbits(packed[lo:lo + args.batch], axis=-1, count=n_in)
                spikes = torch.from_numpy(spikes.astype(np.float64))     # [B, T, n_in]
                state, total = None, torch.zeros(len(spikes), n, dtype=torch.float64)
                for t in range(steps):
                    z, state = module(spikes[:, t], state)
                    total += z
                counts[lo:lo + len(spikes)] = total.round().to(torch.int64).numpy()
        out[disc] = counts
        print(f"[inner] {disc}: {len(packed)} samples in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
    np.savez(args.inner_out, **out)
    import nir
    import nirtorch
    import norse
    print(json.dumps({"torch": torch.__version__, "nir": nir.version,
                      "nirtorch": nirtorch.__version__,
                      "norse": getattr(norse, "__version__", "1.1.0")}))
    return 0


# --------------------------------------------------------------------------------------------
# outer half: side venv, our simulation, comparison
# --------------------------------------------------------------------------------------------

def _inner_env(threads: int) -> dict:
    return side_venv.isolated_env(threads)


def ensure_venv() -> Path:
    """Create benchmarks/.venv-nir once; return its python. Idempotent."""
    if side_venv.is_ready(VENV_DIR, VENV_MARKER, SETUP_SPEC):
        return VENV_DIR / "bin" / "python"
    py = side_venv.create(VENV_DIR)
    pip = side_venv.pinned_pip(py, VENV_DIR, TORCH_VERSION)
    run_step("pip install " + " ".join(PACKAGES), pip + PACKAGES, env=_inner_env(1))
    run_step(f"pip install --no-deps {NORSE}", pip + ["--no-deps", NORSE], env=_inner_env(1))
    out = run_step("checking the consumer's imports", [str(py), "-c", (
        "import torch, nir, nirtorch; from norse.torch.module.lif_box import LIFBoxCell; "
        "print(torch.__version__)")], env=_inner_env(1))
    side_venv.check_torch(VENV_DIR, out.strip().splitlines()[-1], TORCH_VERSION)
    VENV_MARKER.write_text(SETUP_SPEC)
    return py


def simulate_ours(net, images, seed: int, *, variants: dict):
    """Our NumPy reference: each sample's presentations by the retry rule, the input spikes of
    its last one, and on those very spikes the ``variants`` (networks with rules switched off).
    Returns (counts, retries, packed spikes, {variant: counts})."""
    import numpy as np

    from tinysnn_core.builtin.backend_numpy import present
    from tinysnn_core.ops import OpCounts

    enc, steps = net.encoder, net.config.train.time_steps
    n = len(images)
    counts = np.zeros((n, net.n_neurons), dtype=np.int64)
    retries = np.zeros(n, dtype=np.int64)
    packed = np.zeros((n, steps, (net.n_inputs + 7) // 8), dtype=np.uint8)
    other = {k: np.zeros_like(counts) for k in variants}
    ops = OpCounts()
    for i, image in enumerate(images):
        for retry in range(enc.params.max_retries + 1):     # backend_numpy.run_sample's rule
            c = present(net, image, i, retry, learn=False, seed=seed, ops=ops)
            if c.sum() >= enc.params.retry_min_spikes:
                break
        counts[i], retries[i] = c, retry
        packed[i] = np.packbits(enc.encode_dense(image, seed, i, retry, steps), axis=-1)
        for k, variant in variants.items():
            other[k][i] = present(variant, image, i, retry, learn=False, seed=seed, ops=ops)
    return counts, retries, packed, other


def agreement(a, b, labels, assignments) -> dict:
    """How far two count matrices [samples, N] agree, with the same label assignments."""
    import numpy as np

    from tinysnn_core.evaluate import predict_all_activity

    pa, pb = predict_all_activity(a, assignments), predict_all_activity(b, assignments)
    ta, tb = a.sum(axis=1), b.sum(axis=1)
    return {
        "accuracy_a": float((pa == labels).mean()), "accuracy_b": float((pb == labels).mean()),
        "same_prediction": float((pa == pb).mean()),
        "identical_counts": float((a == b).all(axis=1).mean()),
        "mean_abs_count_diff_per_neuron_sum": float(np.abs(a - b).sum(axis=1).mean()),
        "mean_abs_total_spike_diff": float(np.abs(ta - tb).mean()),
        "mean_total_spikes_a": float(ta.mean()), "mean_total_spikes_b": float(tb.mean()),
    }


def outer_main(args) -> int:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from tinysnn_core import train as flow
    from tinysnn_core.export import export_model
    from tinysnn_core.modelfile import load_network
    from tinysnn_core.network import Network

    try:
        py = ensure_venv()
    except SetupError as exc:
        raise SystemExit(f"error: NIR side venv setup failed: {exc}") from exc
    if args.setup_only:
        print(f"NIR side venv ready: {VENV_DIR.relative_to(ROOT)}")
        return 0
    net = load_network(args.model)
    if net.assignments is None:
        raise SystemExit(f"error: {args.model} has no label assignments: evaluate it first")
    cfg = net.config
    data = flow.load_dataset(cfg)
    images, labels = data.test_images[:args.n_test], data.test_labels[:args.n_test]
    seed = flow.stream_seed(cfg.seed, "test")

    def variant(one_spike=None, refrac=None):
        sets = [] if one_spike is None else [f"exc_neuron.one_spike={json.dumps(one_spike)}"]
        if refrac is not None:   # every layer's (Diehl & Cook: the inhibitory one too)
            sets += [f"{layer}.refrac={refrac}" for layer in ("exc_neuron", "inh_neuron")
                     if layer == "exc_neuron" or net.inh is not None]
        return Network(cfg.with_overrides(sets), net.w, net.theta, net.topology,
                       net.assignments, net.proportions)

    variants = {"no_one_spike": variant(one_spike=False), "no_refractory": variant(refrac=0),
                "neither": variant(one_spike=False, refrac=0)}
    started = time.perf_counter()
    ours, retries, packed, other = simulate_ours(net, images, seed, variants=variants)
    ours_seconds = time.perf_counter() - started
    print(f"[outer] NumPy: {len(images)} samples x 4 networks in {ours_seconds:.0f} s",
          file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="nir-roundtrip-") as tmp:
        nir_path = Path(args.nir) if args.nir else Path(tmp) / "model.nir"
        nir_path = export_model(net, "nir", nir_path)
        spikes = Path(tmp) / "spikes.npz"
        np.savez(spikes, spikes=packed, n_inputs=net.n_inputs, time_steps=cfg.train.time_steps,
                 nir_path=str(nir_path.resolve()))
        counts_out = Path(tmp) / "counts.npz"
        cmd = [str(py), str(Path(__file__).resolve()), "--inner", str(spikes), "--inner-out",
               str(counts_out), "--threads", str(args.threads), "--batch", str(args.batch),
               "--discretisations", "exact,euler"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=_inner_env(args.threads), stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"error: the NIR consumer failed (exit {proc.returncode})")
        versions = json.loads(proc.stdout.strip().splitlines()[-1])
        consumer_seconds = time.perf_counter() - started
        theirs = dict(np.load(counts_out))
        nir_bytes = nir_path.stat().st_size

    a = net.assignments
    result = {
        "model": str(args.model), "topology": cfg.plugin_name("topology"),
        "n_test": int(len(images)), "seed": int(cfg.seed),
        "test_stream_seed": int(seed), "time_steps": int(cfg.train.time_steps),
        "retried_samples": int((retries > 0).sum()), "nir_file_bytes": int(nir_bytes),
        "consumer": {"what": "nirtorch.nir_to_torch with Norse LIFBoxCell (r and v_reset "
                             "given), float64", **versions},
        "machine": f"{platform.machine()} {platform.processor() or ''} "
                   f"{os.cpu_count()} cores".strip(),
        "seconds": {"numpy_4_networks": round(ours_seconds, 1),
                    "consumer_both_discretisations": round(consumer_seconds, 1)},
        # a = our full model (the reference), b = the NIR consumer
        "full_vs_nir_exact": agreement(ours, theirs["exact"], labels, a),
        "full_vs_nir_euler": agreement(ours, theirs["euler"], labels, a),
        # a = our model with rules switched off, on the same spikes, b = the NIR consumer
        "neither_vs_nir_exact": agreement(other["neither"], theirs["exact"], labels, a),
        "neither_vs_nir_euler": agreement(other["neither"], theirs["euler"], labels, a),
        # what each rule alone changes in our own simulator
        "full_vs_no_one_spike": agreement(ours, other["no_one_spike"], labels, a),
        "full_vs_no_refractory": agreement(ours, other["no_refractory"], labels, a),
        "full_vs_neither": agreement(ours, other["neither"], labels, a),
        "model_accuracy_in_file": net.metrics.get("accuracy"),
    }
    check = result["neither_vs_nir_exact"]
    result["check"] = {"min_identical": args.min_identical,
                       "passed": check["identical_counts"] >= args.min_identical}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    if not result["check"]["passed"]:
        print(f"error: with the one-spike winner and the refractory period off, our simulator "
              f"and the NIR consumer give identical counts on {check['identical_counts']:.1%} "
              f"of the samples, below --min-identical {args.min_identical:.1%}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="runs/results/mnist5k_ts_n400.tsnn",
                   help="a trained float model with label assignments (either topology)")
    p.add_argument("--n-test", type=int, default=1000, help="first n test samples (1000)")
    p.add_argument("--nir", metavar="FILE", help="keep the exported NIR file here")
    p.add_argument("--json", metavar="OUT", help="also write the result JSON here")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on a shared 2-core machine more threads only spin)")
    p.add_argument("--batch", type=int, default=250, help="samples per consumer batch (250)")
    p.add_argument("--min-identical", type=float, default=0.99,
                   help="the check: the least fraction of samples whose count vectors are "
                        "identical with both rules off (0.99)")
    p.add_argument("--setup-only", action="store_true", help="only build/check the side venv")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    p.add_argument("--inner-out", help=argparse.SUPPRESS)
    p.add_argument("--discretisations", default="exact,euler", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inner:
        return inner_main(args)
    if args.n_test < 1 or args.batch < 1 or args.threads < 1:
        raise SystemExit("error: --n-test, --batch and --threads must be >= 1")
    return outer_main(args)


if __name__ == "__main__":
    sys.exit(main())
