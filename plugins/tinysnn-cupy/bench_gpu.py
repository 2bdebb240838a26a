"""GPU benchmark of the cupy backend (called by gpu_check.sh; runs without mlxtend or downloads).

Measures, on the digits of testdata/mnist_2k.npz (reused cyclically with distinct sample ids):
- equivalence: GPU vs NumPy reference spike counts on a subset (inference and training);
- batched inference of --n-samples samples (N, T as given) in one call, vs the NumPy reference
  (per-sample time on --ref-samples, extrapolated) and, when numba and tinysnn-numba import,
  the compiled CPU backend on --numba-samples samples of the same data;
- batched exploration: --points quantization points (uQ0.f weights, truncation / nearest) of one
  network evaluated on --explore-samples samples in one run_many call; accuracy per point;
- training samples per second (GPU, one block) vs the NumPy reference;
- integer mode (docs/fixed-point.md): the trained network labelled and quantized post-training
  (uQ0.--int-wbits weights, 16-bit neuron groups), exported with intsim.from_network; batched
  run_integer of --n-samples samples (NPT tried from --int-npt), bit-exactness vs intsim on
  --int-ref-samples, numba's run_integer on the same data on this host's CPU when it imports,
  and --points integer models (weights uQ0.1..16, potential truncation / nearest) in one
  run_integer_many call. The quantized network is saved to --int-model-out (to rerun numba on
  another machine with the same model, images and ids).
Prints a JSON summary and writes it to --out (if given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quantize(w, frac_bits, rounding):
    eps = 2.0 ** -frac_bits
    q = np.floor(w / eps + (0.5 if rounding == "nearest" else 0.0)) * eps
    return np.clip(q, 0.0, 1.0 - eps)


def int_groups(wbits, rounding):
    from tinysnn_core.explore import make_groups
    return make_groups(("weights", "potential", "theta", "inhibition", "decay"), wbits, rounding,
                       {"inhibition": 17.5}, neuron_bits=16)

def int_model_of(base, wbits, rounding):
    import copy as _copy

    from tinysnn_core import intsim
    from tinysnn_core import train as flow
    from tinysnn_core.config import QuantSettings
    q = _copy.deepcopy(base)
    q.config.quant = QuantSettings("ptq", int_groups(wbits, rounding))
    quantizer, plan = flow.quantizer_for(q.config)
    quantizer.prepare(q, plan)
    return q, intsim.from_network(q)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(HERE / "testdata" / "mnist_2k.npz"))
    ap.add_argument("--n-neurons", type=int, default=400)
    ap.add_argument("--time-steps", type=int, default=350)
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--ref-samples", type=int, default=12)
    ap.add_argument("--numba-samples", type=int, default=400)
    ap.add_argument("--train-samples", type=int, default=200)
    ap.add_argument("--ref-train-samples", type=int, default=3)
    ap.add_argument("--points", type=int, default=32)
    ap.add_argument("--explore-samples", type=int, default=1000)
    ap.add_argument("--npt", default="1,2,4", help="neurons-per-thread values to try")
    ap.add_argument("--int-npt", default="2,4,8", help="integer kernel NPT values to try")
    ap.add_argument("--int-wbits", type=int, default=8)
    ap.add_argument("--int-ref-samples", type=int, default=8)
    ap.add_argument("--int-numba-samples", type=int, default=10000)
    ap.add_argument("--int-model-out", default=None)
    ap.add_argument("--skip-float", action="store_true", help="integer mode only")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import cupy as cp

    from tinysnn_core.builtin.backend_numpy import NumpyBackend
    from tinysnn_core.config import Config
    from tinysnn_core.evaluate import assign_labels, predict
    from tinysnn_core.network import Network
    from tinysnn_core.ops import OpCounts
    from tinysnn_cupy import CupyBackend

    res = {"ok": True, "errors": []}
    props = cp.cuda.runtime.getDeviceProperties(0)
    res["machine"] = {
        "gpu": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
        "cupy": cp.__version__, "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cp.cuda.runtime.driverGetVersion(), "python": platform.python_version(),
        "numpy": np.__version__, "cpu_count": os.cpu_count(), "cpu": platform.processor()}
    log(f"device {res['machine']}")

    data = np.load(args.data)
    images, labels = data["images"], data["labels"]
    N, T = args.n_neurons, args.time_steps
    cfg = Config.from_dict({"n_neurons": N, "train": {"time_steps": T}})
    res["config"] = {"n_neurons": N, "time_steps": T, "topology": "tinysnn",
                     "learning": "tinysnn-stdp", "float": "float64"}

    def step(name, fn):
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # keep going: report what failed
            res["ok"] = False
            res["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            log(f"{name} FAILED\n{traceback.format_exc()}")
        log(f"{name} done in {time.perf_counter() - t0:.1f} s")

    gpu = CupyBackend()
    net = Network.build(cfg)

    # -- compile + training --------------------------------------------------------------------
    def training():
        t0 = time.perf_counter()
        gpu.run(Network.build(cfg), images[:1], [0], learn=True, seed=1, ops=OpCounts())
        cp.cuda.Device().synchronize()
        res["compile_train_seconds"] = time.perf_counter() - t0
        ref = Network.build(cfg)
        n_ref = args.ref_train_samples
        t0 = time.perf_counter()
        c_ref = NumpyBackend().run(ref, images[:n_ref], np.arange(n_ref), learn=True, seed=1,
                                   ops=OpCounts())
        t_ref = (time.perf_counter() - t0) / n_ref
        t0 = time.perf_counter()
        c_gpu = gpu.run(net, images[:n_ref], np.arange(n_ref), learn=True, seed=1, ops=OpCounts())
        same = bool(np.array_equal(c_ref, c_gpu) and np.array_equal(ref.w, net.w)
                    and np.array_equal(ref.theta, net.theta))
        n_more = args.train_samples
        ids = np.arange(n_ref, n_ref + n_more)
        imgs = images[np.arange(n_ref, n_ref + n_more) % len(images)]
        t0 = time.perf_counter()
        for s in range(0, n_more, 32):   # train.py's call size
            gpu.run(net, imgs[s:s + 32], ids[s:s + 32], learn=True, seed=1, ops=OpCounts())
        t_gpu = (time.perf_counter() - t0) / n_more
        res["training"] = {"numpy_seconds_per_sample": t_ref, "gpu_seconds_per_sample": t_gpu,
                           "gpu_samples_per_second": 1 / t_gpu, "speedup_vs_numpy": t_ref / t_gpu,
                           "bit_identical_to_numpy": same, "numpy_samples": n_ref,
                           "gpu_samples": n_more + n_ref}
        log(f"training {res['training']}")
        if not same:
            res["ok"] = False
            res["errors"].append("training differs from the NumPy reference")

    step("training", training)

    # -- inference: geometry choice, equivalence, 10k samples -------------------------------------
    n = args.n_samples
    ids = np.arange(n)
    imgs = images[ids % len(images)]

    def inference():
        trials = {}
        best = None
        for npt in [int(x) for x in args.npt.split(",") if x]:
            be = CupyBackend(neurons_per_thread=npt)
            t0 = time.perf_counter()
            be.run(net, imgs[:64], ids[:64], learn=False, seed=2, ops=OpCounts())
            t_compile = time.perf_counter() - t0
            m = min(n, 2000)
            t0 = time.perf_counter()
            be.run(net, imgs[:m], ids[:m], learn=False, seed=2, ops=OpCounts())
            t = time.perf_counter() - t0
            trials[npt] = {"geometry": list(be.geometry(net)), "compile_and_first_call_s": t_compile,
                           f"seconds_{m}_samples": t}
            if best is None or t < best[1]:
                best = (npt, t, be)
        res["geometry_trials"] = trials
        npt, _, be = best
        ops = OpCounts()
        t0 = time.perf_counter()
        counts = be.run(net, imgs, ids, learn=False, seed=2, ops=ops)
        t_gpu = time.perf_counter() - t0
        k = args.ref_samples
        t0 = time.perf_counter()
        ref = NumpyBackend().run(net, imgs[:k], ids[:k], learn=False, seed=2, ops=OpCounts())
        t_ref = (time.perf_counter() - t0) / k
        same = bool(np.array_equal(ref, counts[:k]))
        res["inference"] = {
            "samples": n, "neurons_per_thread": npt, "geometry": list(be.geometry(net)),
            "gpu_seconds": t_gpu, "gpu_samples_per_second": n / t_gpu,
            "numpy_seconds_per_sample": t_ref, "numpy_samples_measured": k,
            "numpy_extrapolated_seconds": t_ref * n, "speedup_vs_numpy": t_ref * n / t_gpu,
            "bit_identical_to_numpy_on_subset": same, "presentations": ops.presentations,
            "exc_spikes_per_sample": ops.exc_spikes / n}
        log(f"inference {res['inference']}")
        if not same:
            res["ok"] = False
            res["errors"].append("inference counts differ from the NumPy reference")
        res["_counts_head"] = counts[:args.numba_samples]

    if not args.skip_float:
        step("inference", inference)

    # -- the compiled CPU backend on the same data, when present -----------------------------------
    def numba_cpu():
        sys.path.insert(0, str(HERE.parent / "tinysnn-numba"))
        try:
            import numba  # noqa: F401
            from tinysnn_numba.backend import NumbaBackend
        except Exception as exc:
            res["numba"] = {"skipped": f"numba backend not importable here: {exc}"}
            return
        be = NumbaBackend()
        t0 = time.perf_counter()
        be.run(net, imgs[:4], ids[:4], learn=False, seed=2, ops=OpCounts())
        t_compile = time.perf_counter() - t0
        m = args.numba_samples
        t0 = time.perf_counter()
        c = be.run(net, imgs[:m], ids[:m], learn=False, seed=2, ops=OpCounts())
        t = (time.perf_counter() - t0) / m
        head = res.get("_counts_head")
        entry = {"samples": m, "seconds_per_sample": t, "threads": os.cpu_count(),
                 "compile_seconds": t_compile,
                 "same_counts_as_gpu": bool(head is not None and np.array_equal(c, head[:m]))}
        if "inference" in res:
            gps = res["inference"]["gpu_samples_per_second"]
            entry["gpu_speedup_vs_numba"] = gps * t
        res["numba"] = entry
        log(f"numba {entry}")

    if args.numba_samples > 0 and not args.skip_float:
        step("numba", numba_cpu)
    res.pop("_counts_head", None)

    # -- batched exploration ---------------------------------------------------------------------------
    def exploration():
        points = []
        f_bits = list(range(1, 17))
        for f in f_bits:
            for rounding in ("truncate", "nearest"):
                points.append((f, rounding))
        points = points[:args.points]
        stack = np.stack([quantize(net.w, f, r) for f, r in points])
        m = args.explore_samples
        half = m // 2
        e_imgs, e_lab = images[:m], labels[:m]
        e_ids = np.arange(50_000, 50_000 + m)
        be = CupyBackend(neurons_per_thread=res.get("inference", {}).get("neurons_per_thread"))
        be.run_many(net, stack[:1], None, e_imgs[:8], e_ids[:8], seed=3)   # compiled already
        ops = OpCounts()
        t0 = time.perf_counter()
        counts = be.run_many(net, stack, None, e_imgs, e_ids, seed=3, ops=ops)
        t = time.perf_counter() - t0
        table = []
        for k, (f, r) in enumerate(points):
            assign, prop, _ = assign_labels(counts[k, :half], e_lab[:half], 10)
            pred = predict(counts[k, half:], assign, prop, "all-activity", 10)
            table.append({"format": f"uQ0.{f}", "rounding": r,
                          "accuracy": float((pred == e_lab[half:]).mean()),
                          "spikes_per_sample": float(counts[k].sum() / m)})
        # one point checked against a single-network call
        net_k = Network(net.config, stack[-1].copy(), net.theta.copy(), net.topology)
        single = be.run(net_k, e_imgs[:32], e_ids[:32], learn=False, seed=3, ops=OpCounts())
        res["exploration"] = {
            "points": len(points), "samples_per_point": m, "seconds": t,
            "network_samples_per_second": len(points) * m / t,
            "single_launch_per_chunk": True, "matches_single_network_call": bool(
                np.array_equal(single, counts[-1, :32])),
            "note": "network barely trained (a few hundred STDP samples): accuracies are only a "
                    "sanity check of the pipeline, assigned on the first half, tested on the second",
            "table": table}
        log(f"exploration {len(points)} points x {m} samples in {t:.2f} s")

    if not args.skip_float:
        step("exploration", exploration)

    # -- integer mode ---------------------------------------------------------------------------------
    def integer():
        from tinysnn_core import intsim
        # label the trained network on 1,000 digits (float GPU inference), then quantize
        lab_imgs, lab = images[:1000], labels[:1000]
        c = gpu.run(net, lab_imgs, np.arange(70_000, 71_000), learn=False, seed=5, ops=OpCounts())
        net.assignments, net.proportions, _ = assign_labels(c, lab, 10)
        qnet, model = int_model_of(net, args.int_wbits, "nearest")
        if args.int_model_out:      # a model file: bench_numba_int.py rebuilds the integer model
            from tinysnn_core.modelfile import save_network

            save_network(qnet, args.int_model_out)
        from tinysnn_cupy.backend import int_storage
        wt, at = int_storage([np.asarray(model.w_codes)])[1:]
        trials, best = {}, None
        for npt in [int(x) for x in args.int_npt.split(",") if x]:
            be = CupyBackend(int_neurons_per_thread=npt)
            t0 = time.perf_counter()
            be.run_integer(model, imgs[:64], 2, ids[:64])
            t_compile = time.perf_counter() - t0
            m = min(n, 2000)
            t0 = time.perf_counter()
            be.run_integer(model, imgs[:m], 2, ids[:m])
            t = time.perf_counter() - t0
            trials[npt] = {"geometry": list(be.int_geometry(N, 784)),
                           "compile_and_first_call_s": t_compile, f"seconds_{m}_samples": t}
            if best is None or t < best[1]:
                best = (npt, t, be)
        npt, _, be = best
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            preds, counts = be.run_integer(model, imgs, 2, ids)
            times.append(time.perf_counter() - t0)
        t_gpu = min(times)
        k = args.int_ref_samples
        t0 = time.perf_counter()
        ref_p, ref_c = intsim.infer(model, imgs[:k], 2, ids[:k])
        t_ref = (time.perf_counter() - t0) / k
        same = bool(np.array_equal(ref_c, counts[:k]) and np.array_equal(ref_p, preds[:k]))
        entry = {"samples": n, "formats": model.formats, "weight_storage": wt, "accumulator": at,
                 "geometry_trials": trials, "neurons_per_thread": npt,
                 "geometry": list(be.int_geometry(N, 784)), "gpu_seconds_runs": times,
                 "gpu_seconds": t_gpu, "gpu_samples_per_second": n / t_gpu,
                 "intsim_seconds_per_sample": t_ref, "bit_identical_to_intsim_on_subset": same,
                 "intsim_samples_checked": k, "exc_spikes_per_sample": float(counts.sum() / n),
                 "accuracy_on_cycled_digits": float((preds == labels[ids % len(labels)]).mean()),
                 "counts_checksum": int((counts * np.arange(1, N + 1)).sum() % 1_000_000_007),
                 "preds_checksum": int((preds * np.arange(1, n + 1)).sum() % 1_000_000_007)}
        if not same:
            res["ok"] = False
            res["errors"].append("integer inference differs from intsim")
        # numba's run_integer on this host's CPU, same model / images / ids
        sys.path.insert(0, str(HERE.parent / "tinysnn-numba"))
        try:
            import numba  # noqa: F401
            from tinysnn_numba.backend import NumbaBackend
        except Exception as exc:
            entry["numba"] = {"skipped": f"numba backend not importable here: {exc}"}
        else:
            nb = NumbaBackend()
            t0 = time.perf_counter()
            nb.run_integer(model, imgs[:4], 2, ids[:4])
            t_c = time.perf_counter() - t0
            m = min(n, args.int_numba_samples)
            t0 = time.perf_counter()
            np_, nc = nb.run_integer(model, imgs[:m], 2, ids[:m])
            t = time.perf_counter() - t0
            entry["numba"] = {"samples": m, "seconds": t, "samples_per_second": m / t,
                              "threads": numba.get_num_threads(), "compile_seconds": t_c,
                              "same_as_gpu": bool(np.array_equal(nc, counts[:m])
                                                  and np.array_equal(np_, preds[:m])),
                              "gpu_speedup": (n / t_gpu) / (m / t)}
        res["integer"] = entry
        log(f"integer {entry}")

        # batched exploration in integer mode: K models in one run_integer_many call
        pts = [(f, r) for f in range(1, 17) for r in ("truncation", "nearest")][:args.points]
        models = [int_model_of(net, f, r)[1] for f, r in pts]
        m = args.explore_samples
        e_imgs, e_ids = images[:m], np.arange(50_000, 50_000 + m)
        be.run_integer_many(models[:2], e_imgs[:8], 3, e_ids[:8])
        t0 = time.perf_counter()
        p_many, c_many = be.run_integer_many(models, e_imgs, 3, e_ids)
        t = time.perf_counter() - t0
        chk = intsim.infer(models[-1], e_imgs[:2], 3, e_ids[:2])
        res["integer_exploration"] = {
            "points": len(pts), "samples_per_point": m, "seconds": t,
            "model_samples_per_second": len(pts) * m / t,
            "matches_intsim_last_point_2_samples": bool(
                np.array_equal(chk[1], c_many[-1, :2]) and np.array_equal(chk[0], p_many[-1, :2])),
            "accuracy": {f"uQ0.{f}-{r}": float((p_many[i] == labels[:m]).mean())
                         for i, (f, r) in enumerate(pts)}}
        log(f"integer exploration {len(pts)} x {m} in {t:.2f} s")

    step("integer", integer)

    text = json.dumps(res, indent=2, default=float)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
