"""The ``cupy`` backend: the NumPy reference's simulation as CUDA kernels (``cuda/snn_kernels.cu``).

``CupyBackend.run`` has the contract of every backend (``tinysnn_core.train``)::

    run(net, images, sample_ids, *, learn, seed, ops) -> int64 counts [B, N]

Inference runs one thread block per sample, all T steps (and the retries) in one launch.
``CupyBackend.run_many`` evaluates many networks of the same shape (for example the weight
matrices of many quantization points) on the same samples in one launch::

    run_many(net, weight_stack [K, n_in, N], theta_stack [K, N] | None, images, sample_ids,
             *, seed, ops=None) -> int64 counts [K, B, N]

Learning runs the samples of a call one after the other in one block (the weights are shared
state), updating ``net.w`` and ``net.theta`` in place like the NumPy backend.

Integer mode (``docs/fixed-point.md``; ``cuda/snn_int_kernels.cu``) runs exported
``tinysnn_core.intsim.IntegerModel`` s bit-exactly with ``intsim.infer``::

    run_integer(model, images, seed, sample_ids=None, *, with_ops=False)
        -> (preds int64 [B], counts int64 [B, N]) [+ ops {name: int64 [B]}]
    run_integer_many(models, images, seed, sample_ids=None, *, with_ops=False)
        -> (preds [K, B], counts [K, B, N]) [+ ops {name: int64 [K, B]}]

early exit included (``integer_features``); ``ops`` are ``intsim.INFER_OPS``, as
``intsim.infer(..., with_ops=True)`` gives them.

CuPy is optional: without it (or without a CUDA device) the module still imports,
``available()`` says why, and ``run`` raises :class:`CupyUnavailable` with that reason.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from tinysnn_core import counter_rng
from tinysnn_core.errors import TinySNNError
from tinysnn_core.ops import OpCounts

KERNEL_SOURCE = Path(__file__).with_name("cuda") / "snn_kernels.cu"
INT_KERNEL_SOURCE = Path(__file__).with_name("cuda") / "snn_int_kernels.cu"


def cuda_source(path: Path) -> str:
    """The text NVRTC compiles: ``path`` with each ``#include "x"`` of a file next to it replaced
    by that file (once; the kernels share ``snn_rng.cuh``). NVRTC gets source text, not a file, so
    it has no directory to look in."""
    seen: set[str] = set()

    def expand(p: Path) -> str:
        out = []
        for line in p.read_text().splitlines():
            parts = line.split('"')
            if line.startswith("#include \"") and len(parts) >= 3 and (p.parent / parts[1]).is_file():
                if parts[1] not in seen:
                    seen.add(parts[1])
                    out.append(f"// ---- {parts[1]} ----")
                    out.append(expand(p.parent / parts[1]))
                continue
            out.append(line)
        return "\n".join(out)

    return expand(path) + "\n"

#: packed float parameters, in the order of the FP_* indices of snn_kernels.cu
FP_NAMES = ("e_rest", "e_reset", "e_thresh", "e_decay", "e_refrac", "e_theta_decay",
            "e_theta_plus", "i_rest", "i_reset", "i_thresh", "i_decay", "i_refrac",
            "i_theta_decay", "i_theta_plus", "dt", "w_lat", "w_exc_inh", "wmin", "wmax",
            "trace_decay", "nu_pre", "nu_post", "x_tar", "mu", "target", "k_min", "k_max",
            "weight_decay", "norm")
#: packed integer parameters (IP_* indices)
IP_NAMES = ("T", "N", "n_in", "e_adaptive", "e_one_spike", "i_adaptive", "i_one_spike",
            "has_inh", "rule", "needs_post", "min_post", "adapt_pot", "normalize", "max_retries",
            "retry_min")
#: per-sample counters written by the kernels (OP_* indices)
OPS_NAMES = ("presentations", "input_spikes", "exc_spikes", "inh_spikes", "lateral_events",
             "stdp_updates", "stdp_accumulates", "norm_ops")
#: per-model integer parameters of the integer kernel (IM_* indices of snn_int_kernels.cu)
INT_MP_NAMES = ("T", "n_rates", "retry_min", "has_inh", "shift", "lateral", "exc_to_inh",
                "n_classes") + tuple(f"{p}_{n}" for p in ("e", "i") for n in (
                    "u_min", "u_max", "decay", "decay_frac", "bias", "reset", "refrac",
                    "one_spike")) + ("exit_margin",)
#: per-sample operation counts of the integer kernel (IO_* indices), intsim.INFER_OPS's order
INT_OP_NAMES = ("presentations", "steps", "draws", "input_spikes", "exc_spikes", "exit_early")
#: classes the integer kernel's in-block vote supports (SI_MAX_CLASSES)
INT_MAX_CLASSES = 64
RULE_IDS = {"PostPre": 0, "WeightDependentPostPre": 1, "TinySNNSTDP": 2}
INSTALL_HINT = "pip install 'tinysnn-cupy[cuda12]' (CuPy for CUDA 12), or use backend = \"numpy\""


class CupyUnavailable(TinySNNError):
    """CuPy or a CUDA device is missing: the backend cannot run here."""


class UnsupportedNetwork(TinySNNError):
    """The network uses a plugin (or setting) that the CUDA kernels do not implement."""


# -- availability ---------------------------------------------------------------------------------
def cupy_status() -> tuple[bool, str]:
    """(True, "") when CuPy imports and sees a CUDA device, else (False, the reason)."""
    if importlib.util.find_spec("cupy") is None:
        return False, f"CuPy is not installed: {INSTALL_HINT}"
    try:
        import cupy
    except Exception as exc:  # a broken CuPy install (wrong CUDA wheel, missing libraries)
        return False, (f"CuPy failed to import ({type(exc).__name__}: {exc}); reinstall the CuPy "
                       f"wheel that matches your CUDA driver, or use backend = \"numpy\"")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, (f"no CUDA device found (CuPy {cupy.__version__}: "
                       f"{type(exc).__name__}: {exc}); use backend = \"numpy\" or \"numba\"")
    if n < 1:
        return False, "no CUDA device found; use backend = \"numpy\" or \"numba\""
    return True, ""


# -- what the kernels support -----------------------------------------------------------------------
def _describe(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def unsupported_reasons(net, learn: bool = True) -> list[str]:
    """What in ``net`` the CUDA kernels cannot simulate (empty: everything is supported)."""
    from tinysnn_core.builtin.encoders import PoissonEncoder
    from tinysnn_core.builtin.learning import PostPre, TinySNNSTDP, WeightDependentPostPre
    from tinysnn_core.builtin.neurons import LIF, AdaptiveLIF

    cfg = net.config
    problems = []
    layers = [("exc_neuron", net.exc)] + ([("inh_neuron", net.inh)] if net.inh is not None else [])
    for slot, model in layers:
        if type(model) not in (LIF, AdaptiveLIF):
            problems.append(f"neuron model {cfg.plugin_name(slot)!r} ({_describe(model)}) in "
                            f"[{slot}]: only 'lif' and 'adaptive-lif' have CUDA kernels")
        elif float(model.dt) != float(cfg.train.dt):
            problems.append(f"[{slot}] dt {model.dt} differs from train.dt {cfg.train.dt}")
    if learn and type(net.rule) not in (PostPre, WeightDependentPostPre, TinySNNSTDP):
        problems.append(f"learning rule {cfg.plugin_name('learning')!r} ({_describe(net.rule)}): "
                        "only 'postpre', 'weight-dependent' and 'tinysnn-stdp' have CUDA kernels")
    if type(net.encoder) is not PoissonEncoder:
        problems.append(f"encoder {cfg.plugin_name('encoder')!r} ({_describe(net.encoder)}): "
                        "only 'poisson' has a CUDA kernel")
    scheme = str(getattr(cfg.quant, "scheme", "none") or "none")
    if learn and scheme.lower() != "none":
        try:
            from tinysnn_core.registry import get_registry
            in_training = bool(getattr(get_registry().get("quantizer", scheme), "in_training", True))
        except Exception:
            in_training = True
        if in_training:
            problems.append(f"in-training quantization {scheme!r}: the learning rules' weight "
                            "writes are not put on a grid by the CUDA kernels")
    return problems


def check_supported(net, learn: bool = True) -> None:
    problems = unsupported_reasons(net, learn)
    if problems:
        raise UnsupportedNetwork("the cupy backend does not support this network: "
                                 + "; ".join(problems) + ". Use backend = \"numpy\" (the "
                                 "reference, which runs every plugin), e.g. --set backend=numpy")


# -- packing ----------------------------------------------------------------------------------------
def pack_params(net) -> tuple[np.ndarray, np.ndarray]:
    """The network's constants as the kernels' (fp float64[29], ip int64[15])."""
    cfg, topo = net.config, net.topology
    f = dict.fromkeys(FP_NAMES, 0.0)
    i = dict.fromkeys(IP_NAMES, 0)

    def neuron(prefix, model):
        p = model.p
        f[prefix + "rest"], f[prefix + "reset"] = float(p.rest), float(p.reset)
        f[prefix + "thresh"], f[prefix + "decay"] = float(p.thresh), float(model.decay)
        f[prefix + "refrac"] = float(p.refrac)
        f[prefix + "theta_decay"] = float(getattr(model, "theta_decay", 1.0))
        f[prefix + "theta_plus"] = float(getattr(p, "theta_plus", 0.0))
        i[prefix + "adaptive"] = int(bool(model.adaptive))
        i[prefix + "one_spike"] = int(bool(model.one_spike))

    neuron("e_", net.exc)
    if net.inh is not None:
        neuron("i_", net.inh)
        i["has_inh"] = 1
    f["dt"] = float(cfg.train.dt)
    f["w_lat"], f["w_exc_inh"] = float(topo.w_lateral), float(topo.w_exc_inh)
    f["wmin"], f["wmax"] = float(topo.wmin), float(topo.wmax)

    rule = net.rule
    rp = getattr(rule, "p", None)
    i["rule"] = RULE_IDS.get(type(rule).__name__, -1)
    i["needs_post"] = int(bool(getattr(rule, "needs_post_trace", False)))
    f["trace_decay"] = float(getattr(rule, "trace_decay", 1.0))
    f["nu_post"] = float(getattr(rp, "nu_post", 0.0))
    f["nu_pre"] = float(getattr(rp, "nu_pre", 0.0))
    if i["rule"] == RULE_IDS["TinySNNSTDP"]:
        f["x_tar"], f["mu"] = float(rp.x_tar), float(rp.mu)
        f["target"], f["k_min"], f["k_max"] = (float(rp.target_spikes), float(rp.k_min),
                                               float(rp.k_max))
        f["weight_decay"] = float(rp.weight_decay)
        i["min_post"] = int(rp.min_post_spikes)
        i["adapt_pot"] = int(bool(rp.adaptive_potentiation))

    enc = net.encoder.params
    i["T"], i["N"], i["n_in"] = int(cfg.train.time_steps), int(net.n_neurons), int(net.n_inputs)
    i["normalize"] = int(bool(cfg.train.normalize))
    f["norm"] = float(cfg.train.norm)
    i["max_retries"], i["retry_min"] = int(enc.max_retries), int(enc.retry_min_spikes)
    return (np.array([f[k] for k in FP_NAMES], dtype=np.float64),
            np.array([i[k] for k in IP_NAMES], dtype=np.int64))


def rate_units(net) -> np.ndarray:
    """The encoder's integer spike threshold per intensity unit, per presentation (uint32)."""
    enc = net.encoder
    units = [enc.rate_unit(r) for r in range(enc.params.max_retries + 1)]
    if max(units) * 255 >= 2 ** 32:
        raise UnsupportedNetwork("encoder rate too high for 32-bit thresholds")
    return np.array(units, dtype=np.uint32)


def sample_keys(seed: int, sample_ids) -> np.ndarray:
    """``counter_rng.sample_key(seed, id)`` for every id (uint32), vectorised."""
    ids = np.asarray(sample_ids, dtype=np.int64).astype(np.uint64)   # two's complement mod 2**64
    x = (np.uint64(int(seed) & counter_rng.M32) + ids * np.uint64(counter_rng.GOLDEN))
    return counter_rng.fmix32((x & np.uint64(counter_rng.M32)).astype(np.uint32))


def as_batch(images, sample_ids, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 [B, n_in] and sample ids as int64 [B], checked by the core's
    ``check_batch`` (the one check of every backend's inputs)."""
    from tinysnn_core.data import check_batch

    return check_batch(images, sample_ids, n_in)


# -- launch geometry ------------------------------------------------------------------------------------
def launch_config(n_neurons: int, n_inputs: int, npt: int | None = None) -> tuple[int, int, int]:
    """(NPT neurons per thread, threads per block, MAXCH input chunks) for a network size.

    Default: at most 256 threads per block (NPT = ceil(N / 256)), at least 32."""
    if npt is None:
        npt = max(1, math.ceil(n_neurons / 256))
    npt = int(npt)
    if not 1 <= npt <= 16:
        raise ValueError(f"neurons per thread must be in 1..16, got {npt}")
    threads = max(32, 32 * math.ceil(math.ceil(n_neurons / npt) / 32))
    if threads > 1024:
        raise UnsupportedNetwork(f"N = {n_neurons} needs {threads} threads per block at "
                                 f"{npt} neurons per thread; use more neurons per thread")
    maxch = max(1, math.ceil(n_inputs / threads))
    return npt, threads, maxch


def shared_bytes(n_neurons: int, n_inputs: int, learn: bool, npt: int, maxch: int) -> int:
    """Dynamic shared memory of one block (mirrors the carving in snn_run_sample)."""
    L = 1 if learn else 0
    return 8 * n_inputs * L + 4 * (4 * n_inputs + L * (n_inputs + 2 * n_neurons)
                                   + 32 * (maxch + 3 * npt))


def add_ops(ops: OpCounts | None, per_sample: np.ndarray, net, learn: bool) -> None:
    """Fold the kernels' per-sample counters [..., 8] into ``ops`` (the NumPy backend's fields)."""
    if ops is None:
        return
    tot = per_sample.reshape(-1, len(OPS_NAMES)).sum(axis=0, dtype=np.int64)
    c = dict(zip(OPS_NAMES, (int(x) for x in tot)))
    T, N, n_in = net.config.train.time_steps, net.n_neurons, net.n_inputs
    pres = c["presentations"]
    ops.samples += per_sample.reshape(-1, len(OPS_NAMES)).shape[0]
    ops.presentations += pres
    ops.time_steps += pres * T
    ops.neuron_updates_exc += pres * T * N
    if net.inh is not None:
        ops.neuron_updates_inh += pres * T * N
        ops.inh_spikes += c["inh_spikes"]
    ops.input_spikes += c["input_spikes"]
    ops.exc_spikes += c["exc_spikes"]
    ops.synaptic_events += c["input_spikes"] * N
    ops.lateral_events += c["lateral_events"]
    if learn:
        ops.trace_updates += pres * T * (n_in + (N if net.rule.needs_post_trace else 0))
        ops.stdp_updates += c["stdp_updates"]
        ops.stdp_accumulates += c["stdp_accumulates"]
        ops.norm_ops += c["norm_ops"]


# -- integer mode: packing and geometry -------------------------------------------------------------
#: weight code storage of the integer kernel: (numpy dtype, CUDA type), narrowest first
INT_CODE_TYPES = ((np.uint8, "si_u8"), (np.int16, "short"), (np.uint16, "si_u16"),
                  (np.int32, "int"), (np.int64, "si_i64"))


def int_storage(w_codes: list) -> tuple[type, str, str]:
    """(numpy dtype, CUDA type) of the narrowest storage holding every code of every model, and
    the accumulator type (snn_int_kernels.cu's names): ``int`` when every column's sum of |codes| is below 2**31 (that bounds
    every partial sum of any subset of the column's rows, so int32 sums equal intsim's int64
    sums exactly), else ``long long``."""
    lo = min((int(w.min()) for w in w_codes if w.size), default=0)
    hi = max((int(w.max()) for w in w_codes if w.size), default=0)
    for dt, ctype in INT_CODE_TYPES:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            break
    bound = max((int(np.abs(w).sum(axis=0, dtype=object).max()) for w in w_codes if w.size),
                default=0)
    return dt, ctype, ("int" if bound < (1 << 31) else "si_i64")


def int_launch_config(n_neurons: int, n_inputs: int, npt: int | None = None
                      ) -> tuple[int, int, int, int]:
    """(NPT, threads per block, MAXCH input chunks, Np padded row length) of the integer kernel.
    Neurons are thread-major (j = thread * NPT + slot); default NPT: the power of two reaching
    ceil(N / 128), so about 128 threads per block (N = 400: NPT 4, 128 threads)."""
    if npt is None:
        need = max(1, math.ceil(n_neurons / 128))
        npt = 1 << (need - 1).bit_length()
    npt = int(npt)
    if not 1 <= npt <= 16:
        raise ValueError(f"neurons per thread must be in 1..16, got {npt}")
    n_pad = npt * math.ceil(n_neurons / npt)
    threads = max(32, 32 * math.ceil(n_pad // npt / 32))
    if threads > 1024:
        raise UnsupportedNetwork(f"N = {n_neurons} needs {threads} threads per block at "
                                 f"{npt} neurons per thread; use more neurons per thread")
    maxch = max(1, math.ceil(n_inputs / threads))
    return npt, threads, maxch, n_pad


def int_shared_bytes(n_inputs: int, maxch: int) -> int:
    """Dynamic shared memory of one integer block (mirrors the carving in snn_int_infer)."""
    return 4 * (4 * n_inputs + 32 * maxch + 64 + 2 * INT_MAX_CLASSES + 1)


def pack_integer_models(models, n_pad: int) -> dict:
    """``IntegerModel`` s of one shape as the integer kernel's arrays (rows padded to ``n_pad``
    columns). Raises ``UnsupportedNetwork`` / ``TinySNNError`` for what the kernel cannot run
    exactly, before any work."""
    models = list(models)
    if not models:
        raise TinySNNError("no integer models given")
    n_in, N = int(models[0].n_inputs), int(models[0].n_neurons)
    K = len(models)
    R = max(len(m.rate_units) for m in models)
    codes, th = [], np.zeros((K, 2, n_pad), dtype=np.int64)
    assign = np.full((K, n_pad), -1, dtype=np.int32)
    csize = np.zeros((K, INT_MAX_CLASSES), dtype=np.int64)
    mp = np.zeros((K, len(INT_MP_NAMES)), dtype=np.int64)
    rates = np.zeros((K, R), dtype=np.uint32)
    for k, m in enumerate(models):
        if (int(m.n_inputs), int(m.n_neurons)) != (n_in, N):
            raise TinySNNError(f"integer models of different shapes: ({m.n_inputs}, "
                               f"{m.n_neurons}) and ({n_in}, {N})")
        wc = np.asarray(m.w_codes)
        if wc.shape != (n_in, N):
            raise TinySNNError(f"integer model: weight codes of shape {wc.shape}, expected "
                               f"({n_in}, {N})")
        codes.append(wc.astype(np.int64))
        units = np.asarray(m.rate_units).astype(np.int64)
        if units.size == 0 or units.min() < 0 or units.max() * 255 >= 2 ** 32:
            raise UnsupportedNetwork("integer model: encoder rate units outside 0 .. 2**32 / 255")
        rates[k, :units.size] = units
        n_classes = int(m.n_classes)
        if not 1 <= n_classes <= INT_MAX_CLASSES:
            raise UnsupportedNetwork(f"integer model: {n_classes} classes (the GPU vote "
                                     f"supports 1 .. {INT_MAX_CLASSES})")
        a = np.asarray(m.assignments, dtype=np.int64)
        if a.shape != (N,):
            raise TinySNNError(f"integer model: {a.size} assignments for {N} neurons")
        # -1: no class; n_classes: assigned beyond the classes (counts towards the early-exit
        # total as in intsim's class_sums, in no class)
        assign[k, :N] = np.where(a < 0, -1, np.minimum(a, n_classes))
        csize[k, :n_classes] = [(a == c).sum() for c in range(n_classes)]
        shift = int(m.exc.v_frac) - int(m.w_format.frac_bits)
        if abs(shift) > 62:
            raise UnsupportedNetwork(f"integer model: weight/potential alignment shift {shift}")
        margin = int(getattr(m, "exit_margin", 0))
        if not 0 <= margin < 2 ** 31:
            raise UnsupportedNetwork(f"integer model: early-exit margin {margin} outside "
                                     "0 .. 2**31 - 1")
        p = dict(T=int(m.time_steps), n_rates=int(units.size), exit_margin=margin,
                 retry_min=int(m.retry_min_spikes), has_inh=int(m.inh is not None), shift=shift,
                 lateral=int(m.lateral), exc_to_inh=int(m.exc_to_inh), n_classes=n_classes)
        for prefix, L in (("e", m.exc), ("i", m.inh)):
            if L is None:
                continue
            fd = int(L.decay_frac)
            if not 0 <= fd <= 62:
                raise UnsupportedNetwork(f"integer model: decay fraction bits {fd}")
            p.update({f"{prefix}_u_min": int(L.u_min), f"{prefix}_u_max": int(L.u_max),
                      f"{prefix}_decay": int(L.decay), f"{prefix}_decay_frac": fd,
                      f"{prefix}_bias": (1 << (fd - 1)) if (L.decay_round and fd > 0) else 0,
                      f"{prefix}_reset": int(L.reset), f"{prefix}_refrac": int(L.refrac),
                      f"{prefix}_one_spike": int(bool(L.one_spike))})
            th[k, 0 if prefix == "e" else 1, :N] = np.broadcast_to(
                np.asarray(L.thresh, dtype=np.int64), (N,))
        for lim in ("e_u_min", "e_u_max", "i_u_min", "i_u_max"):
            if lim in p and abs(p[lim]) >= 1 << 62:
                raise UnsupportedNetwork(f"integer model: potential range {p[lim]} beyond 62 bits")
        mp[k] = [p.get(name, 0) for name in INT_MP_NAMES]
    dt, ctype, atype = int_storage(codes)
    W = np.zeros((K, n_in, n_pad), dtype=dt)
    for k, wc in enumerate(codes):
        W[k, :, :N] = wc
    return {"W": W, "TH": th, "ASSIGN": assign, "CSIZE": csize, "MP": mp, "RATES": rates,
            "wtype": ctype, "atype": atype, "n_in": n_in, "N": N}


# -- executing the kernels ---------------------------------------------------------------------------
class CupyExecutor:
    """Compiles ``snn_kernels.cu`` with NVRTC (one module per NPT/MAXCH) and launches it."""

    def __init__(self):
        import cupy

        self.cp = cupy
        self._modules = {}

    def module(self, npt: int, maxch: int):
        key = (npt, maxch)
        if key not in self._modules:
            self._modules[key] = self.cp.RawModule(
                code=cuda_source(KERNEL_SOURCE),
                options=("--fmad=false", "-std=c++14", f"-DNPT={npt}", f"-DMAXCH={maxch}"))
        return self._modules[key]

    def int_module(self, npt: int, maxch: int, wtype: str, atype: str):
        key = ("int", npt, maxch, wtype, atype)
        if key not in self._modules:
            self._modules[key] = self.cp.RawModule(
                code=cuda_source(INT_KERNEL_SOURCE),
                options=("-std=c++14", f"-DNPT={npt}", f"-DMAXCH={maxch}",
                         f"-DWT={wtype}", f"-DAT={atype}"))
        return self._modules[key]

    def infer_int(self, packed, images, skeys, geometry):
        """Integer inference of the packed models on all images: (preds [K, B] int64,
        counts [K, B, N] int32, ops [K, B, len(INT_OP_NAMES)] int64), in launches of at most
        ``chunk`` samples."""
        cp = self.cp
        npt, threads, maxch, n_pad = geometry
        K = packed["W"].shape[0]
        B, n_in, N = images.shape[0], packed["n_in"], packed["N"]
        smem = int_shared_bytes(n_in, maxch)
        kern = self.int_module(npt, maxch, packed["wtype"], packed["atype"]).get_function(
            "snn_int_infer")
        d = {name: cp.asarray(packed[name]) for name in ("W", "TH", "ASSIGN", "CSIZE", "MP",
                                                          "RATES")}
        d_img, d_keys = cp.asarray(images), cp.asarray(skeys)
        R = packed["RATES"].shape[1]
        counts = cp.zeros((K, B, N), dtype=cp.int32)
        preds = cp.zeros((K, B), dtype=cp.int64)
        ops = cp.zeros((K, B, len(INT_OP_NAMES)), dtype=cp.int64)
        chunk = max(1, min(B, CupyBackend.max_count_elems // max(1, K * N)))
        for b0 in range(0, B, chunk):
            nb = min(chunk, B - b0)
            c_out = counts if nb == B else cp.zeros((K, nb, N), dtype=cp.int32)
            p_out = preds if nb == B else cp.zeros((K, nb), dtype=cp.int64)
            o_out = ops if nb == B else cp.zeros((K, nb, len(INT_OP_NAMES)), dtype=cp.int64)
            kern((nb, K), (threads,), (d["W"], d["TH"], d["ASSIGN"], d["CSIZE"], d["MP"],
                                       d["RATES"], np.int32(R), d_img, d_keys, np.int32(b0),
                                       np.int32(nb), np.int32(n_in), np.int32(N),
                                       np.int32(n_pad), c_out, p_out, o_out), shared_mem=smem)
            if nb != B:
                counts[:, b0:b0 + nb] = c_out
                preds[:, b0:b0 + nb] = p_out
                ops[:, b0:b0 + nb] = o_out
        return cp.asnumpy(preds), cp.asnumpy(counts), cp.asnumpy(ops)

    def _kernel(self, name, npt, maxch, smem):
        kern = self.module(npt, maxch).get_function(name)
        if smem > 48 * 1024:
            kern.max_dynamic_shared_size_bytes = smem
        return kern

    def infer(self, W, theta, images, skeys, units, fp, ip, geometry):
        cp = self.cp
        npt, threads, maxch = geometry
        K, n_in, N = W.shape
        B = images.shape[0]
        smem = shared_bytes(N, n_in, False, npt, maxch)
        kern = self._kernel("snn_infer", npt, maxch, smem)
        d = [cp.asarray(a) for a in (W, theta, images, skeys, units, fp, ip)]
        counts = cp.zeros((K, B, N), dtype=cp.int32)
        ops = cp.zeros((K, B, len(OPS_NAMES)), dtype=cp.int64)
        kern((B, K), (threads,), (*d, np.int32(B), counts, ops), shared_mem=smem)
        return cp.asnumpy(counts), cp.asnumpy(ops)

    def train(self, W, theta, images, skeys, units, fp, ip, geometry):
        cp = self.cp
        npt, threads, maxch = geometry
        n_in, N = W.shape
        B = images.shape[0]
        smem = shared_bytes(N, n_in, True, npt, maxch)
        kern = self._kernel("snn_train", npt, maxch, smem)
        dW, dtheta = cp.asarray(W), cp.asarray(theta)
        d = [cp.asarray(a) for a in (images, skeys, units, fp, ip)]
        acc = cp.zeros((N, n_in), dtype=cp.float64)
        factor = cp.zeros(N, dtype=cp.float64)
        colcnt = cp.zeros(N, dtype=cp.int32)
        counts = cp.zeros((B, N), dtype=cp.int32)
        ops = cp.zeros((B, len(OPS_NAMES)), dtype=cp.int64)
        kern((1,), (threads,), (dW, dtheta, *d, np.int32(B), acc, factor, colcnt, counts, ops),
             shared_mem=smem)
        return cp.asnumpy(dW), cp.asnumpy(dtheta), cp.asnumpy(counts), cp.asnumpy(ops)

    def synchronize(self):
        self.cp.cuda.Device().synchronize()


class CupyBackend:
    """CUDA kernels through CuPy (float64): batched inference, batched exploration, training.

    ``executor``: what runs the kernels (default: CuPy on the current CUDA device; the tests pass
    a CPU emulation). ``neurons_per_thread``: NPT of the launch geometry (default ceil(N/256));
    ``int_neurons_per_thread``: NPT of the integer kernel (default: about 128 threads).
    """

    name = "cupy"
    #: samples per inference launch are limited so that counts stay below this many int32s
    max_count_elems = 1 << 26

    def __init__(self, executor=None, neurons_per_thread: int | None = None,
                 int_neurons_per_thread: int | None = None):
        self._executor = executor
        self.neurons_per_thread = neurons_per_thread
        self.int_neurons_per_thread = int_neurons_per_thread

    def available(self):
        if self._executor is not None:
            return True, ""
        return cupy_status()

    def _get_executor(self):
        if self._executor is None:
            ok, why = cupy_status()
            if not ok:
                raise CupyUnavailable(f"backend 'cupy' is not usable here: {why}")
            self._executor = CupyExecutor()
        return self._executor

    def geometry(self, net):
        return launch_config(net.n_neurons, net.n_inputs, self.neurons_per_thread)

    def run(self, net, images, sample_ids, *, learn: bool, seed: int, ops: OpCounts) -> np.ndarray:
        images, ids = as_batch(images, sample_ids, net.n_inputs)   # bad input first, CuPy or not
        ex = self._get_executor()
        check_supported(net, learn)
        if len(images) == 0:
            return np.zeros((0, net.n_neurons), dtype=np.int64)
        if not learn:
            return self.run_many(net, net.w[None], np.asarray(net.theta)[None], images, ids,
                                 seed=seed, ops=ops)[0]
        fp, ip = pack_params(net)
        W, theta, counts, per_sample = ex.train(
            np.ascontiguousarray(net.w, dtype=np.float64),
            np.ascontiguousarray(net.theta, dtype=np.float64), images, sample_keys(seed, ids),
            rate_units(net), fp, ip, self.geometry(net))
        net.w[...] = W                  # in place, as the NumPy backend
        net.theta[...] = theta
        add_ops(ops, per_sample, net, True)
        return counts.astype(np.int64)

    def run_many(self, net, weight_stack, theta_stack, images, sample_ids, *, seed: int,
                 ops: OpCounts | None = None) -> np.ndarray:
        """Inference of K networks (``net``'s configuration with weights ``weight_stack[k]``
        [n_in, N] and thresholds ``theta_stack[k]`` [N]; ``None``: ``net.theta`` for all) on the
        same samples, in one launch per chunk of samples. Returns int64 counts [K, B, N].
        ``ops`` (optional) receives the counters of all K x B presentations."""
        ex = self._get_executor()
        check_supported(net, learn=False)
        W = np.ascontiguousarray(weight_stack, dtype=np.float64)
        if W.ndim == 2:
            W = W[None]
        K = W.shape[0]
        if W.shape[1:] != (net.n_inputs, net.n_neurons):
            raise TinySNNError(f"weight stack has shape {list(W.shape)}, expected "
                               f"[K, {net.n_inputs}, {net.n_neurons}]")
        if theta_stack is None:
            theta_stack = np.broadcast_to(np.asarray(net.theta, dtype=np.float64), (K, net.n_neurons))
        theta = np.ascontiguousarray(theta_stack, dtype=np.float64).reshape(K, net.n_neurons)
        if not (np.isfinite(W).all() and np.isfinite(theta).all()):
            raise TinySNNError("weights and thresholds must be finite")
        images, ids = as_batch(images, sample_ids, net.n_inputs)
        fp, ip = pack_params(net)
        units, keys, geom = rate_units(net), sample_keys(seed, ids), self.geometry(net)
        B, N = len(images), net.n_neurons
        out = np.zeros((K, B, N), dtype=np.int64)
        chunk = max(1, min(B, self.max_count_elems // max(1, K * N)))
        for start in range(0, B, chunk):
            stop = min(B, start + chunk)
            counts, per_sample = ex.infer(W, theta, images[start:stop], keys[start:stop], units,
                                          fp, ip, geom)
            out[:, start:stop] = counts
            add_ops(ops, per_sample, net, False)
        return out

    # -- integer mode (docs/fixed-point.md) ----------------------------------------------------------
    def int_geometry(self, n_neurons: int, n_inputs: int):
        return int_launch_config(n_neurons, n_inputs, self.int_neurons_per_thread)

    #: the parts of the integer contract beyond the base time step that ``run_integer`` and
    #: ``run_integer_many`` implement (``intsim.run_integer`` picks this backend when the model
    #: needs no more)
    integer_features = frozenset({"early_exit", "ops"})

    def run_integer(self, model, images, seed: int, sample_ids=None, *, with_ops: bool = False):
        """Integer inference of ``model`` (a ``tinysnn_core.intsim.IntegerModel``): the same
        (predictions int64 [B], counts int64 [B, N]) as ``intsim.infer(model, images, seed,
        sample_ids)``, bit for bit, early exit included; all samples in one launch (per chunk of
        samples). ``with_ops``: (preds, counts, ops), ops a dict of int64 [B] per name of
        ``intsim.INFER_OPS``, as ``intsim.infer(..., with_ops=True)``."""
        out = self.run_integer_many([model], images, seed, sample_ids, with_ops=with_ops)
        if with_ops:
            return out[0][0], out[1][0], {name: v[0] for name, v in out[2].items()}
        return out[0][0], out[1][0]

    def run_integer_many(self, models, images, seed: int, sample_ids=None, *,
                         with_ops: bool = False):
        """Integer inference of K models of one shape (``n_inputs``, ``n_neurons``; formats, T,
        retries, early exit, topology may differ, e.g. K quantization points) on the same
        samples, in one launch: (predictions int64 [K, B], counts int64 [K, B, N]); ``[k]``
        equals ``intsim.infer(models[k], images, seed, sample_ids)``. ``with_ops`` adds the
        per-sample operation counts, a dict of int64 [K, B] per name of ``intsim.INFER_OPS``."""
        models = list(models)
        if not models:
            raise TinySNNError("run_integer_many needs at least one integer model")
        n_in, N = int(models[0].n_inputs), int(models[0].n_neurons)
        images, ids = as_batch(images, sample_ids, n_in)
        geom = self.int_geometry(N, n_in)
        packed = pack_integer_models(models, geom[3])       # refusals before any work
        K, B = len(models), len(images)
        if B == 0:
            preds = np.zeros((K, 0), dtype=np.int64)
            counts = np.zeros((K, 0, N), dtype=np.int64)
            ops = np.zeros((K, 0, len(INT_OP_NAMES)), dtype=np.int64)
        else:
            ex = self._get_executor()
            preds, counts, ops = ex.infer_int(packed, np.ascontiguousarray(images),
                                              sample_keys(seed, ids), geom)
        preds, counts = preds.astype(np.int64), counts.astype(np.int64)
        if not with_ops:
            return preds, counts
        return preds, counts, {name: np.ascontiguousarray(ops[:, :, i], dtype=np.int64)
                               for i, name in enumerate(INT_OP_NAMES)}
