#!/usr/bin/env python3
"""Brian2 baseline: the Diehl & Cook network trained by Brian2's ``cpp_standalone`` device.

Run it with the project's interpreter (it needs ``tinysnn_core`` for the data and the initial
weights)::

    .venv/bin/python benchmarks/brian2_baseline.py --n-neurons 400 --n-train 200

``benchmarks/compare.py`` calls :func:`measure` for its "Brian2 cpp_standalone" rows.

Two halves live in this one file, as in ``bindsnet_baseline.py``:

* the **outer** half (project Python) builds once a side virtual environment
  ``benchmarks/.venv-brian2`` with Brian2 pinned (``BRIAN2_VERSION``), writes the training
  images and the initial weights of our own ``diehl-cook`` network (``Network.build`` of the
  configuration ``compare.our_config`` makes, same seed) to a temporary ``.npz`` and starts the
  inner half with that venv's Python;
* the **inner** half (``--inner NPZ``) never imports ``tinysnn_core``. It writes the network
  in Brian2 with ``set_device('cpp_standalone', build_on_run=False)``, one ``run()`` over all
  training samples, then ``device.build(run=False)`` (code generation and compilation, timed
  apart) and ``device.run()``: one compiled program trains on every sample, as a user who wants
  Brian2's speed would run it (no ``network_operation``: standalone has none). It prints one
  JSON object.

**The network** (compare.py's ``diehl-cook`` settings: BindsNET's eth_mnist values): 784 Poisson
inputs at ``pixel/255 * intensity`` Hz (128 Hz by default, as compare.py; Diehl & Cook's own
``pixel/4`` is 63.75 Hz, ``--intensity 63.75``), N excitatory adaptive-threshold LIF neurons
(rest -65, reset -60, threshold -52 + theta mV, 100 ms, 5 steps refractory, theta_plus 0.05 mV,
theta decay 1e7 ms), N inhibitory LIF (rest -60, reset -45, threshold -40 mV, 10 ms, 2 steps),
exc -> inh one-to-one 22.5, inh -> every other exc -120, current-based (a spike adds its weight
to v). Learning: pair STDP (postpre: nu_pre 1e-4, nu_post 1e-2, traces of 20 ms set to 1 at a
spike), weights clipped to [0, 1]; after each sample every column of the input weights is scaled
to sum to 78.4. T = ``--time`` steps of dt = 1 ms per sample; potentials, refractory counters and
traces reset at each sample's start, theta carried over. The STDP traces live on the neurons (one
per input, one per excitatory neuron, as ours), not on each synapse as in Brian2's STDP examples:
no per-synapse trace update or exp() per synaptic event, the faster way to write it. The numbers
are in ``NET``; :func:`our_network` refuses to run when our configuration has drifted from them.

How a sample is presented inside one standalone program:

* the input group's rates come from a 2-D ``TimedArray`` (one row per sample, ``dt = T ms``);
  a spike is a Bernoulli draw ``rand() < rate * dt`` per input and step (what PoissonGroup does;
  a NeuronGroup because the inputs also carry the STDP trace and the sample events);
* the per-sample reset is ``run_regularly(dt=T ms, when='start')``, and the exc <-> inh
  pathways deliver nothing at a sample's first step (the previous sample's last spikes are not
  carried over, as ours);
* the normalisation is two synaptic pathways over all 784 x N weights, triggered by custom
  events of the input group: at a sample's last step ``wsum_post += w``, at the next sample's
  first step (after the factor ``norm / wsum`` is computed per neuron) ``w *= wfac_post``. The
  program runs ``n_train * T + 1`` steps so the last sample's normalisation happens too;
* the one-spike rule (ours and BindsNET's ``DiehlAndCookNodes``: of the excitatory neurons that
  cross threshold in a step, all reset and adapt, one drawn at random emits the spike): the
  crossing is a custom event ``cross``; a one-neuron ``arbiter`` counts the crossing neurons
  through a synaptic pathway, draws ``pick`` in ``[0, count)``, a second pathway finds the
  pick-th crossing neuron (index order), and only that one passes the ``spike`` threshold
  ``i == winner``. No reduction over a group is expressible in Brian2's generated code
  otherwise; the two pathways cost about two operations per crossing neuron.

The schedule is set so that one Brian2 step does what one step of our simulator does, in our
order (backend_numpy.py): decay (exact integration of the linear equations: the same factors
``exp(-dt/tau)``) -> input spikes of this step, inhibition from the inhibitory spikes of the
previous step and exc -> inh from the excitatory spikes of the previous step added to v where
the neuron is not refractory -> crossing (``v >= thresh + theta``), the winner, resets ->
depression at the input spikes (with the post traces of this step) -> potentiation at the
output spikes.

**What is not identical** to our network:

* **random numbers**: Brian2's own generator (``seed(--seed)``) draws the input spikes and the
  one-spike winner instead of our counter-based draws: same rates and rule, other samples of
  them, so spike counts and weights differ run to run as between two seeds;
* floating point: Brian2 compiles with ``-ffast-math`` and sums a step's input into v one
  synapse at a time, we add a row sum; the equations are continuous-time, integrated exactly,
  which at dt = 1 ms is our per-step update up to rounding;
* no retries in either (compare.py's ``max_retries = 0``).

``--check`` tests that claim: it drives Brian2 with *our* input spikes (a dense 0/1
``TimedArray`` instead of the Bernoulli draws) and our one-spike draws, and compares the
spikes, theta and the trained weights with our NumPy reference (docs/brian2-baseline.md has
the result).

Timing: ``compile_s`` is the wall time of ``device.build(compile=True, run=False)`` (code
generation and ``make``); ``wall_s`` the wall time of ``device.run()`` (the compiled program:
loading its arrays, training, writing its results), ``cpu_s`` that program's CPU time
(``RUSAGE_CHILDREN``), ``network_run_s`` the time the program itself reports for its
simulation loop. Samples per second are ``samples / wall_s``. Brian2 is never a dependency of
tinysnn: it lives only in the side venv. See docs/brian2-baseline.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import side_venv  # noqa: E402  (standard library only, like this module at import)
from side_venv import SetupError, run_step  # noqa: E402,F401
from side_venv import cpu_model as _cpu_model, loadavg as _loadavg  # noqa: E402  (compare.py uses b2.SetupError)

VENV_DIR = HERE / ".venv-brian2"
VENV_MARKER = VENV_DIR / ".brian2-baseline-ready"
BRIAN2_VERSION = "2.9.0"   # the newest 2.x wheel for Python 3.11 on the index
# Brian2 2.9.0 still wraps ndarray.ptp, which NumPy 2.4 removed: `import brian2` fails with it.
NUMPY_VERSION = "2.3.5"
SETUP_SPEC = json.dumps({"brian2": BRIAN2_VERSION, "numpy": NUMPY_VERSION}, sort_keys=True)
INTENSITY = 128.0          # compare.py's input rate: pixel/255 * 128 Hz (eth_mnist)

# The network (see the module docstring); our defaults, written out so the inner half needs no
# tinysnn import. --check compares them against our NumPy reference.
NET = {
    "exc_rest_mV": -65.0, "exc_reset_mV": -60.0, "exc_thresh_mV": -52.0, "exc_tau_ms": 100.0,
    "exc_refrac": 5, "theta_plus_mV": 0.05, "theta_tau_ms": 1e7,
    "inh_rest_mV": -60.0, "inh_reset_mV": -45.0, "inh_thresh_mV": -40.0, "inh_tau_ms": 10.0,
    "inh_refrac": 2, "w_exc_inh": 22.5, "w_inh": 120.0,
    "nu_pre": 1e-4, "nu_post": 1e-2, "tc_trace_ms": 20.0, "wmin": 0.0, "wmax": 1.0, "norm": 78.4,
}


# --------------------------------------------------------------------------------------------
# outer half: venv, inputs, launching the inner half
# --------------------------------------------------------------------------------------------

def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def inner_env(threads: int = 1) -> dict:
    return side_venv.isolated_env(threads)


def ensure_venv() -> Path:
    """Create benchmarks/.venv-brian2 once; return its python. Idempotent."""
    if side_venv.is_ready(VENV_DIR, VENV_MARKER, SETUP_SPEC):
        return venv_python()
    missing = [tool for tool in ("g++", "make") if shutil.which(tool) is None]
    if missing:  # cpp_standalone compiles a C++ program with make and g++
        raise SetupError(f"Brian2's cpp_standalone device needs {' and '.join(missing)} "
                         "(Debian: apt-get install g++ make)")
    py = side_venv.create(VENV_DIR)
    run_step(f"pip install brian2=={BRIAN2_VERSION} numpy=={NUMPY_VERSION}",
             [str(py), "-m", "pip", "install", "--disable-pip-version-check",
              f"brian2=={BRIAN2_VERSION}", f"numpy=={NUMPY_VERSION}"])
    out = run_step("checking `import brian2`",
                   [str(py), str(Path(__file__).resolve()), "--inner", "-"], env=inner_env())
    print(f"[setup] ok: {out.strip().splitlines()[-1]}", file=sys.stderr)
    VENV_MARKER.write_text(SETUP_SPEC)
    return py


def our_network(n: int, T: int, seed: int):
    """Our ``diehl-cook`` network as compare.py builds it (its initial weights go to Brian2)."""
    import compare
    from tinysnn_core.network import Network

    net = Network.build(compare.our_config("diehl-cook", n, T, seed))
    ours = {
        "exc_rest_mV": net.exc.p.rest, "exc_reset_mV": net.exc.p.reset,
        "exc_thresh_mV": net.exc.p.thresh, "exc_tau_ms": net.exc.p.tc_decay,
        "exc_refrac": net.exc.p.refrac, "theta_plus_mV": net.exc.p.theta_plus,
        "theta_tau_ms": net.exc.p.tc_theta_decay,
        "inh_rest_mV": net.inh.p.rest, "inh_reset_mV": net.inh.p.reset,
        "inh_thresh_mV": net.inh.p.thresh, "inh_tau_ms": net.inh.p.tc_decay,
        "inh_refrac": net.inh.p.refrac, "w_exc_inh": net.topology.w_exc_inh,
        "w_inh": -net.topology.w_lateral, "nu_pre": net.rule.p.nu_pre,
        "nu_post": net.rule.p.nu_post, "tc_trace_ms": net.rule.p.tc_trace,
        "wmin": net.topology.wmin, "wmax": net.topology.wmax, "norm": net.config.train.norm,
    }
    drift = {k: (v, NET[k]) for k, v in ours.items() if v != NET[k]}
    if drift or not net.exc.one_spike or net.encoder.params.max_retries or net.exc.dt != 1.0:
        raise SetupError(f"brian2_baseline.NET no longer matches compare.py's diehl-cook network "
                         f"(ours, NET): {drift or 'one_spike / retries / dt'}; update NET")
    return net


def write_inputs(path: Path, images, w0, spikes=None, draws=None) -> None:
    """The inner half's input: training images [n, 784], initial weights [784, N] and, for
    --check, our input spikes [n * T, 784] (0/1) and one-spike draws [n * T] to use instead of
    Brian2's random numbers."""
    import numpy as np

    arrays = {"images": np.asarray(images, dtype=np.uint8), "w0": np.asarray(w0, dtype=np.float64)}
    if spikes is not None:
        arrays["spikes"] = np.asarray(spikes, dtype=np.uint8)
        arrays["draws"] = np.asarray(draws, dtype=np.int64)
    np.savez(path, **arrays)


def run_inner(npz: Path, *, n: int, T: int, seed: int, intensity: float, threads: int = 1,
              check: bool = False, out: Path | None = None) -> dict:
    """Start the inner half under the side venv; return its JSON record."""
    py = ensure_venv()
    cmd = [str(py), str(Path(__file__).resolve()), "--inner", str(npz), "--n-neurons", str(n),
           "--time", str(T), "--seed", str(seed), "--intensity", repr(intensity),
           "--threads", str(threads)]
    if check:
        cmd.append("--check")
    if out is not None:
        cmd += ["--weights-out", str(out)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=inner_env(threads))
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SetupError(f"the Brian2 run failed (exit {proc.returncode}); see its messages "
                         f"above{': ' + proc.stdout[-400:] if proc.stdout else ''}")
    return json.loads(lines[-1])


def measure(n: int, T: int, seed: int, n_train: int, *, intensity: float = INTENSITY,
            threads: int = 1) -> dict:
    """Brian2 cpp_standalone training of N = ``n`` on the first ``n_train`` mnist-5k training
    images (compare.py's samples), learning on. Needs tinysnn_core (the project's Python)."""
    from tinysnn_core.builtin.datasets import load_mnist_5k

    data = load_mnist_5k(seed)
    if n_train > len(data.train_images):
        raise SystemExit(f"error: --n-train {n_train}: mnist-5k has "
                         f"{len(data.train_images)} training images")
    w0 = our_network(n, T, seed).w
    with tempfile.TemporaryDirectory(prefix="tinysnn-brian2-") as tmp:
        npz = Path(tmp) / "inputs.npz"
        write_inputs(npz, data.train_images[:n_train], w0)
        return run_inner(npz, n=n, T=T, seed=seed, intensity=intensity, threads=threads)


def check_equivalence(n: int, T: int, seed: int, n_train: int, threads: int = 1) -> dict:
    """Both simulators on our input spikes and one-spike draws: how far apart they end."""
    import numpy as np

    from tinysnn_core.builtin.backend_numpy import winner_draws
    from tinysnn_core.builtin.datasets import load_mnist_5k
    from tinysnn_core.monitors import Record
    from tinysnn_core.ops import OpCounts
    from tinysnn_core.registry import get_registry

    data = load_mnist_5k(seed)
    net = our_network(n, T, seed)
    w0 = net.w.copy()
    images = data.train_images[:n_train]
    spikes = np.concatenate([net.encoder.encode_dense(im, seed, k, 0, T)
                             for k, im in enumerate(images)])
    draws = np.concatenate([winner_draws(seed, k, 0, T) for k in range(n_train)])
    record = Record()
    counts = get_registry().get("backend", "numpy")().run(
        net, images, np.arange(n_train), learn=True, seed=seed, ops=OpCounts(), record=record)
    ours = sorted((p["sample"] * T + int(st), int(j)) for p in record.presentations
                  for st, j in zip(p["steps"], p["neurons"]))
    with tempfile.TemporaryDirectory(prefix="tinysnn-brian2-check-") as tmp:
        npz, out = Path(tmp) / "inputs.npz", Path(tmp) / "brian2.npz"
        write_inputs(npz, images, w0, spikes, draws)
        rec = run_inner(npz, n=n, T=T, seed=seed, intensity=INTENSITY, threads=threads,
                        check=True, out=out)
        b = np.load(out)
        w_b, theta_b, counts_b = b["w"], b["theta"], b["counts"]
        theirs = sorted(zip(b["spike_step"].astype(np.int64).tolist(), b["spike_i"].tolist()))
    first = next((k for k, (a, c) in enumerate(zip(ours, theirs)) if a != c),
                 None if len(ours) == len(theirs) else min(len(ours), len(theirs)))
    ours_counts = counts.sum(axis=0)
    return {
        "n": n, "time": T, "samples": n_train, "threads": threads,
        "input_spikes": int(spikes.sum()),
        "exc_spikes_ours": int(ours_counts.sum()), "exc_spikes_brian2": int(counts_b.sum()),
        "neurons_with_other_counts": int((ours_counts != counts_b).sum()),
        "max_abs_weight_diff": float(np.abs(net.w - w_b).max()),
        "max_abs_theta_diff_mV": float(np.abs(net.theta - theta_b).max()),
        # (global step, neuron) of the first spike that differs, and the spikes around it
        "first_divergence": None if first is None else {
            "ours": ours[max(0, first - 2):first + 3], "brian2": theirs[max(0, first - 2):first + 3]},
        "brian2_compile_s": rec["compile_s"],
    }


# --------------------------------------------------------------------------------------------
# inner half: runs under benchmarks/.venv-brian2, never imports tinysnn_core
# --------------------------------------------------------------------------------------------

def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build_network(b2, images, w0, *, T: int, intensity: float, spikes=None, winner_draws=None):
    """The Diehl & Cook network in Brian2 (module docstring) as a ``Network``, ready for one
    ``run()``; returns it with the objects the results are read from. ``spikes`` [steps, 784]
    and ``winner_draws`` [steps] (--check): our encoder's input spikes and one-spike draws
    instead of Brian2's random numbers."""
    import numpy as np
    from brian2 import Hz, TimedArray, mV, ms

    p = NET
    n_in, N = w0.shape
    ns = {
        "T_steps": T, "tc_trace": p["tc_trace_ms"] * ms,
        "v_rest_e": p["exc_rest_mV"] * mV, "v_reset_e": p["exc_reset_mV"] * mV,
        "v_thresh_e": p["exc_thresh_mV"] * mV, "tau_e": p["exc_tau_ms"] * ms,
        "refrac_e": p["exc_refrac"], "theta_plus": p["theta_plus_mV"] * mV,
        "tau_theta": p["theta_tau_ms"] * ms,
        "v_rest_i": p["inh_rest_mV"] * mV, "v_reset_i": p["inh_reset_mV"] * mV,
        "v_thresh_i": p["inh_thresh_mV"] * mV, "tau_i": p["inh_tau_ms"] * ms,
        "refrac_i": p["inh_refrac"], "w_exc_inh": p["w_exc_inh"] * mV, "w_inh": p["w_inh"] * mV,
        "nu_pre": p["nu_pre"], "nu_post": p["nu_post"], "wmin": p["wmin"], "wmax": p["wmax"],
        "norm": p["norm"], "never": -10**9,
    }
    if spikes is None:
        ns["rates"] = TimedArray(images.astype(np.float64) / 255.0 * intensity * Hz, dt=T * ms)
        threshold = "rand() < rates(t, i) * dt"
        pick = "int(rand() * count)"                 # uniform over the crossing neurons
    else:
        ns["given"] = TimedArray(spikes.astype(np.float64), dt=1 * ms)
        ns["draw"] = TimedArray(winner_draws.astype(np.float64), dt=1 * ms)  # < 2**32: exact
        threshold = "given(t, i) > 0.5"
        # ours: idx[rand % idx.size]; in float64, as int() is 32 bits and the draws are not
        pick = "int(draw(t) % (count + int(count == 0)))"
    step = "timestep(t, dt)"
    inp = b2.NeuronGroup(
        n_in, "dapre/dt = -apre / tc_trace : 1", threshold=threshold, reset="apre = 1",
        method="exact", namespace=ns, name="inputs",
        events={"sample_first": f"{step} % T_steps == 0 and {step} > 0",
                "sample_last": f"{step} % T_steps == T_steps - 1"})
    # One-spike rule: every neuron that crosses ('cross' event) resets and adapts, one of them,
    # chosen by the one-neuron `arbiter`, emits the spike. spike_step: the step of the last
    # crossing; input reaches v only `refrac` steps after it, as our `refrac <= 0` test before
    # the counter's decrement.
    exc = b2.NeuronGroup(
        N, """dv/dt = (v_rest_e - v) / tau_e : volt
              dtheta/dt = -theta / tau_theta : volt
              dapost/dt = -apost / tc_trace : 1
              spike_step : integer
              winner : integer (linked)
              wsum : 1
              wfac : 1""",
        threshold="i == winner", reset="apost = 1",
        events={"cross": "v >= v_thresh_e + theta"},
        method="exact", namespace=ns, name="exc")
    exc.run_on_event("cross", f"v = v_reset_e; theta += theta_plus; spike_step = {step}",
                     when="resets")
    arb = b2.NeuronGroup(1, """count : integer
                               seen : integer
                               pick : integer
                               winner : integer""", namespace=ns, name="arbiter")
    exc.winner = b2.linked_var(arb, "winner", index=np.zeros(N, dtype=np.int64))
    # the crossing neurons arrive in index order (the thresholder fills its list that way):
    # count them, draw the pick, then the pick-th one is the winner
    choose = b2.Synapses(
        exc, arb, namespace=ns, name="one_spike",
        on_pre={"count": "count_post += 1",
                "choose": "seen_post += 1\n"
                          "winner_post += (i - winner_post) * int(seen_post == pick_post + 1)"},
        on_event={"count": "cross", "choose": "cross"})
    choose.connect()
    arb.run_regularly("count = 0; seen = 0; winner = -1", when="before_thresholds", order=10)
    pick_op = arb.run_regularly(f"pick = {pick}", when="thresholds", order=2)
    inh = b2.NeuronGroup(
        N, """dv/dt = (v_rest_i - v) / tau_i : volt
              spike_step : integer""",
        threshold="v >= v_thresh_i", reset=f"v = v_reset_i; spike_step = {step}",
        method="exact", namespace=ns, name="inh")
    exc.v, exc.spike_step, inh.v, inh.spike_step = ns["v_rest_e"], ns["never"], ns["v_rest_i"], \
        ns["never"]
    open_e = f"int({step} - spike_step_post > refrac_e)"
    # a sample starts without the previous one's spikes in flight (ours: s_prev = 0 at step 0)
    fresh = f"int({step} % T_steps > 0)"
    syn = b2.Synapses(
        inp, exc, "w : 1", namespace=ns, name="input_exc",
        on_pre={"pre": f"v_post += w * mV * {open_e}",
                "depress": "w = clip(w - nu_pre * apost_post, wmin, wmax)",
                "norm_sum": "wsum_post += w",
                "norm_apply": "w = w * wfac_post"},
        on_post="w = clip(w + nu_post * apre_pre, wmin, wmax)",
        on_event={"pre": "spike", "depress": "spike", "norm_sum": "sample_last",
                  "norm_apply": "sample_first"})
    # explicit indices, input-major: synapse k = i * N + j, so w0.ravel() is in order
    syn.connect(i=np.repeat(np.arange(n_in), N), j=np.tile(np.arange(N), n_in))
    syn.w = w0.ravel()
    e2i = b2.Synapses(exc, inh, on_pre=f"v_post += w_exc_inh * int({step} - spike_step_post > "
                                       f"refrac_i) * {fresh}", namespace=ns, name="exc_inh")
    e2i.connect(j="i")
    i2e = b2.Synapses(inh, exc, on_pre=f"v_post -= w_inh * {open_e} * {fresh}", namespace=ns,
                      name="inh_exc")
    i2e.connect(condition="i != j")
    # the emitted spikes: counts, and with --check each spike (the first divergence)
    mon = b2.SpikeMonitor(exc, record=spikes is not None, name="exc_spikes")

    # per sample: reset, and the normalisation factor from the last sample's column sums
    # (a zero sum counts as 1, as ours)
    every = T * ms
    exc.run_regularly("v = v_rest_e; spike_step = never; apost = 0; "
                      "wfac = norm / (wsum + int(wsum == 0)); wsum = 0",
                      dt=every, when="start", order=0)
    inh.run_regularly("v = v_rest_i; spike_step = never", dt=every, when="start", order=0)
    inp.run_regularly("apre = 0", dt=every, when="start", order=0)
    # our order within a step (module docstring)
    sched = [(inp.thresholder["sample_first"], "start", 1), (syn.norm_apply, "start", 2),
             (inp.thresholder["spike"], "after_groups", 0),
             (inp.resetter["spike"], "after_groups", 1),
             (syn.pre, "before_thresholds", 0), (e2i.pre, "before_thresholds", 0),
             (i2e.pre, "before_thresholds", 0),
             (exc.thresholder["cross"], "thresholds", 0), (choose.count, "thresholds", 1),
             (pick_op, "thresholds", 2), (choose.choose, "thresholds", 3),
             (exc.thresholder["spike"], "thresholds", 4), (mon, "after_thresholds", 0),
             (syn.depress, "after_resets", 0), (syn.post, "after_resets", 1),
             (inp.thresholder["sample_last"], "end", 0), (syn.norm_sum, "end", 1)]
    for obj, when, order in sched:
        obj.when, obj.order = when, order
    net = b2.Network(inp, exc, arb, choose, inh, syn, e2i, i2e, mon)  # holds them all
    return {"net": net, "syn": syn, "exc": exc, "mon": mon}


def inner_main(args: argparse.Namespace) -> dict:
    import brian2 as b2
    import numpy as np
    from brian2 import ms

    if args.inner == "-":  # import check used by the setup
        print(f"brian2 {b2.__version__} on numpy {np.__version__}")
        return {}
    data = np.load(args.inner)
    images, w0 = data["images"], data["w0"]
    spikes = data["spikes"] if args.check else None
    draws = data["draws"] if args.check else None
    n_train, T = len(images), args.time
    if w0.shape != (784, args.n_neurons):
        raise SystemExit(f"error: initial weights have shape {w0.shape}, expected "
                         f"(784, {args.n_neurons})")

    # the one-spike pathway depends on the order of the crossing neurons on purpose (index
    # order, as ours): Brian2's warning about order-dependent code is expected there
    b2.BrianLogger.suppress_hierarchy("brian2.codegen.generators.base")
    b2.set_device("cpp_standalone", build_on_run=False)
    # 0 = no OpenMP (Brian2's default); k > 1 = k OpenMP threads
    b2.prefs.devices.cpp_standalone.openmp_threads = args.threads if args.threads > 1 else 0
    b2.defaultclock.dt = 1 * ms
    b2.seed(args.seed)
    objs = build_network(b2, images, w0, T=T, intensity=args.intensity, spikes=spikes,
                         winner_draws=draws)
    objs["net"].run((n_train * T + 1) * ms)  # + 1 step: the last sample's normalisation

    with tempfile.TemporaryDirectory(prefix="tinysnn-brian2-build-") as build_dir:
        t0 = time.perf_counter()
        b2.device.build(directory=build_dir, compile=True, run=False, with_output=False)
        compile_s = time.perf_counter() - t0
        load0, c0 = _loadavg(), _child_cpu()
        t0 = time.perf_counter()
        b2.device.run(directory=build_dir, with_output=False)
        wall = time.perf_counter() - t0
        cpu = _child_cpu() - c0
        load1 = _loadavg()
        w = np.asarray(objs["syn"].w[:]).reshape(784, args.n_neurons)
        counts = np.asarray(objs["mon"].count[:])
        theta_mV = np.asarray(objs["exc"].theta[:]) * 1e3
        network_run_s = float(b2.device._last_run_time)
        if args.weights_out:  # (the results are read from the build directory)
            extra = {}
            if args.check:
                m = objs["mon"]
                extra = {"spike_i": np.asarray(m.i[:]),
                         "spike_step": np.round(np.asarray(m.t[:]) / 1e-3)}
            np.savez(args.weights_out, w=w, theta=theta_mV, counts=counts, **extra)
    col = w.sum(axis=0)
    threads = max(1, args.threads)
    rec = {
        "sim": "brian2", "network": "diehl-cook", "phase": "train", "n": args.n_neurons,
        "time": T, "threads": threads, "brian2": b2.__version__, "device": "cpp_standalone",
        "openmp_threads": b2.prefs.devices.cpp_standalone.openmp_threads,
        "intensity_hz": args.intensity, "input": "given spikes" if args.check else "Bernoulli",
        "samples": n_train, "wall_s": wall, "cpu_s": cpu, "samples_per_s": n_train / wall,
        "ms_per_sample": 1e3 * wall / n_train, "cpu_ms_per_sample": 1e3 * cpu / n_train,
        "network_run_s": network_run_s, "compile_s": compile_s,
        "compile_flags": list(b2.prefs.codegen.cpp.extra_compile_args_gcc),  # Brian2's defaults
        "exc_spikes_per_sample": float(counts.sum()) / n_train,
        # the normalisation did happen: every column sums to norm
        "max_column_sum_error": float(np.abs(col - NET["norm"]).max()),
        "loadavg": [load0, load1], "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
    }
    print(json.dumps(rec), flush=True)
    return rec


# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Brian2 cpp_standalone training speed of the Diehl & Cook network on the "
                    "mnist-5k images compare.py uses.")
    p.add_argument("--n-neurons", type=int, default=400, help="excitatory neurons N (400)")
    p.add_argument("--time", type=int, default=350, help="time steps per sample, dt=1 ms (350)")
    p.add_argument("--n-train", type=int, default=200, help="training samples (200)")
    p.add_argument("--seed", type=int, default=0, help="mnist-5k split, weights, Brian2 seed (0)")
    p.add_argument("--intensity", type=float, default=INTENSITY,
                   help="Poisson rate of a white pixel in Hz (128, as compare.py; Diehl & "
                        "Cook's pixel/4 is 63.75)")
    p.add_argument("--threads", type=int, default=1,
                   help="1: no OpenMP (Brian2's default); k > 1: k OpenMP threads")
    p.add_argument("--check", action="store_true",
                   help="instead of timing: train both simulators on our input spikes (one-spike "
                        "rule off) and print how far apart they end")
    p.add_argument("--json", metavar="OUT", help="also write the result JSON to this file")
    p.add_argument("--setup-only", action="store_true", help="only build/check the Brian2 venv")
    p.add_argument("--inner", metavar="NPZ", help=argparse.SUPPRESS)        # internal
    p.add_argument("--weights-out", metavar="NPZ", help=argparse.SUPPRESS)  # internal
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("n_neurons", "time", "n_train", "threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1")
    if not 0 < args.intensity <= 1000:
        raise SystemExit("error: --intensity must be in (0, 1000] Hz")
    if args.inner:
        inner_main(args)
        return 0
    try:
        if args.setup_only:
            print(f"{ensure_venv()}")
            return 0
        if args.check:
            result = check_equivalence(args.n_neurons, args.time, args.seed, args.n_train,
                                       args.threads)
        else:
            result = measure(args.n_neurons, args.time, args.seed, args.n_train,
                             intensity=args.intensity, threads=args.threads)
    except SetupError as exc:
        raise SystemExit(f"error: {exc}")
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
