"""The ``numba`` backend: the NumPy reference's simulation, compiled.

``NumbaBackend.run`` has the contract of every backend (``tinysnn_core.train``)::

    run(net, images, sample_ids, *, learn, seed, ops) -> int64 counts [B, N]

Learning runs the samples one after the other in one compiled call (weights and thresholds are
updated in place, exactly as the NumPy backend does); inference runs the samples of a batch in
parallel (``prange``), the weights being read-only there. Float mode is bit-identical to the
NumPy backend (see ``kernels.py`` and ``docs/backends.md``).
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

from tinysnn_core import counter_rng
from tinysnn_core.errors import TinySNNError
from tinysnn_core.ops import OpCounts


class UnsupportedNetwork(TinySNNError):
    """The network uses a plugin (or setting) that the numba backend does not implement."""


def _numba_status():
    if importlib.util.find_spec("numba") is None:
        return False, ("numba is not installed: pip install 'numba>=0.60,<0.70' "
                       "(or use backend = \"numpy\")")
    try:
        import numba  # noqa: F401
    except Exception as exc:  # a broken numba / llvmlite install
        return False, f"numba failed to import ({type(exc).__name__}: {exc}); use backend = \"numpy\""
    return True, ""


def _kernels():
    from . import kernels
    return kernels


def _describe(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


#: quantization groups the NumPy reference rounds while it simulates: while learning, and in
#: inference (where weights, theta and traces are not written)
SIMULATED_GROUPS = {True: ("weights", "potential", "theta", "traces"), False: ("potential",)}


def unsupported_reasons(net, learn: bool = True) -> list[str]:
    """What in ``net`` the numba backend cannot simulate (empty: everything is supported).

    ``learn=False`` asks about inference only, where a post-training quantization of the stored
    parameters alone (weights, theta, inhibition, decay factors) is fine: those are rounded once,
    before the simulation, and the kernels read them as they are."""
    from tinysnn_core.builtin.encoders import PoissonEncoder
    from tinysnn_core.builtin.learning import PostPre, TinySNNSTDP, WeightDependentPostPre
    from tinysnn_core.builtin.neurons import LIF, AdaptiveLIF

    cfg = net.config
    problems = []
    layers = [("exc_neuron", net.exc)]
    if net.inh is not None:
        layers.append(("inh_neuron", net.inh))
    for slot, model in layers:
        if type(model) not in (LIF, AdaptiveLIF):
            problems.append(f"neuron model {cfg.plugin_name(slot)!r} ({_describe(model)}) in "
                            f"[{slot}]: only 'lif' and 'adaptive-lif' are compiled")
    if type(net.rule) not in (PostPre, WeightDependentPostPre, TinySNNSTDP):
        problems.append(f"learning rule {cfg.plugin_name('learning')!r} ({_describe(net.rule)}): "
                        "only 'postpre', 'weight-dependent' and 'tinysnn-stdp' are compiled")
    if type(net.encoder) is not PoissonEncoder:
        problems.append(f"encoder {cfg.plugin_name('encoder')!r} ({_describe(net.encoder)}): "
                        "only 'poisson' is compiled")
    qr = getattr(net, "quant", None)
    if qr is not None:
        # the reference puts these groups on their grids during the simulation (simulated
        # fixed point, tinysnn_core.quant.QuantRuntime); constants such as the decay factors and
        # the inhibition strengths are rounded once beforehand and are read as they are
        try:
            groups = [g for g in SIMULATED_GROUPS[bool(learn)] if qr.has(g)]
        except Exception:
            groups = list(SIMULATED_GROUPS[bool(learn)])
        if groups:
            problems.append(f"simulated fixed point (quant.scheme {cfg.quant.scheme!r}, groups "
                            f"{', '.join(groups)}): the compiled kernels run float64 only, "
                            "an integer mode is planned")
    return problems


def check_supported(net, learn: bool = True) -> None:
    problems = unsupported_reasons(net, learn)
    if problems:
        raise UnsupportedNetwork(
            "the numba backend does not support this network: " + "; ".join(problems)
            + ". Use backend = \"numpy\" (the reference simulator, which runs every plugin), "
            "e.g. --set backend=numpy")


RULE_IDS = {"PostPre": 0, "WeightDependentPostPre": 1, "TinySNNSTDP": 2}


def pack_params(net):
    """The network's constants as the kernels' (fp float64[N_FP], ip int64[N_IP]) arrays."""
    k = _kernels()
    cfg, topo = net.config, net.topology
    fp = np.zeros(k.N_FP)
    ip = np.zeros(k.N_IP, dtype=np.int64)

    def neuron(model, rest, reset, thresh, decay, refrac, theta_decay, theta_plus, adaptive, one):
        p = model.p
        fp[rest], fp[reset], fp[thresh] = float(p.rest), float(p.reset), float(p.thresh)
        fp[decay], fp[refrac] = float(model.decay), float(p.refrac)
        fp[theta_decay] = float(getattr(model, "theta_decay", 1.0))
        fp[theta_plus] = float(getattr(p, "theta_plus", 0.0))
        ip[adaptive] = int(bool(model.adaptive))
        ip[one] = int(bool(model.one_spike))

    neuron(net.exc, k.FP_E_REST, k.FP_E_RESET, k.FP_E_THRESH, k.FP_E_DECAY, k.FP_E_REFRAC,
           k.FP_E_THETA_DECAY, k.FP_E_THETA_PLUS, k.IP_E_ADAPTIVE, k.IP_E_ONE_SPIKE)
    if net.inh is not None:
        neuron(net.inh, k.FP_I_REST, k.FP_I_RESET, k.FP_I_THRESH, k.FP_I_DECAY, k.FP_I_REFRAC,
               k.FP_I_THETA_DECAY, k.FP_I_THETA_PLUS, k.IP_I_ADAPTIVE, k.IP_I_ONE_SPIKE)
        ip[k.IP_HAS_INH] = 1
    for model in (net.exc, net.inh):
        if model is not None and float(model.dt) != float(cfg.train.dt):
            raise UnsupportedNetwork("neuron models with a dt other than train.dt are not "
                                     "compiled; use backend = \"numpy\"")
    fp[k.FP_DT] = float(cfg.train.dt)
    fp[k.FP_W_LAT] = float(topo.w_lateral)
    fp[k.FP_W_EXC_INH] = float(topo.w_exc_inh)
    fp[k.FP_WMIN], fp[k.FP_WMAX] = float(topo.wmin), float(topo.wmax)

    rule = net.rule
    rp = rule.p
    ip[k.IP_RULE] = RULE_IDS[type(rule).__name__]
    ip[k.IP_NEEDS_POST] = int(bool(rule.needs_post_trace))
    fp[k.FP_TRACE_DECAY] = float(rule.trace_decay)
    fp[k.FP_NU_POST] = float(rp.nu_post)
    fp[k.FP_NU_PRE] = float(getattr(rp, "nu_pre", 0.0))
    if ip[k.IP_RULE] == k.RULE_TINYSNN:
        fp[k.FP_X_TAR], fp[k.FP_MU] = float(rp.x_tar), float(rp.mu)
        fp[k.FP_TARGET], fp[k.FP_K_MIN], fp[k.FP_K_MAX] = (
            float(rp.target_spikes), float(rp.k_min), float(rp.k_max))
        fp[k.FP_WEIGHT_DECAY] = float(rp.weight_decay)
        ip[k.IP_MIN_POST] = int(rp.min_post_spikes)
        ip[k.IP_ADAPT_POT] = int(bool(rp.adaptive_potentiation))

    enc = net.encoder.params
    ip[k.IP_T] = int(cfg.train.time_steps)
    ip[k.IP_NORMALIZE] = int(bool(cfg.train.normalize))
    fp[k.FP_NORM] = float(cfg.train.norm)
    ip[k.IP_MAX_RETRIES] = int(enc.max_retries)
    ip[k.IP_RETRY_MIN] = int(enc.retry_min_spikes)
    return fp, ip


def _add_ops(ops: OpCounts, counters: np.ndarray) -> None:
    for name, value in zip(_kernels().OP_FIELDS, counters.tolist()):
        setattr(ops, name, getattr(ops, name) + int(value))


class NumbaBackend:
    """Compiled CPU simulator (numba): float64, bit-identical to the NumPy reference."""

    name = "numba"

    def available(self):
        return _numba_status()

    def run(self, net, images, sample_ids, *, learn: bool, seed: int,
            ops: OpCounts) -> np.ndarray:
        ok, why = _numba_status()
        if not ok:
            raise TinySNNError(f"backend 'numba' is not usable here: {why}")
        check_supported(net, learn)
        k = _kernels()
        fp, ip = pack_params(net)
        n_in, N = net.w.shape
        images = np.asarray(images)
        B = len(images)
        if B == 0:
            return np.zeros((0, N), dtype=np.int64)
        images = np.ascontiguousarray(images.reshape(B, -1), dtype=np.int64)
        if images.shape[1] != n_in:
            raise TinySNNError(f"images have {images.shape[1]} pixels, the network "
                               f"{n_in} inputs")
        ids = [int(s) for s in np.asarray(sample_ids).reshape(-1).tolist()]
        if len(ids) != B:
            raise TinySNNError(f"{B} images but {len(ids)} sample ids")
        skeys = np.array([counter_rng.sample_key(seed, s) for s in ids], dtype=np.int64)
        enc = net.encoder
        rate_units = np.array([enc.rate_unit(r) for r in range(enc.params.max_retries + 1)],
                              dtype=np.int64)
        counts = np.zeros((B, N), dtype=np.int64)

        # the kernels write the network's own arrays when they are float64 C-ordered
        w = net.w if _usable(net.w) else np.ascontiguousarray(net.w, dtype=np.float64)
        theta = net.theta if _usable(net.theta) else np.ascontiguousarray(net.theta,
                                                                          dtype=np.float64)
        if learn:
            counters = np.zeros(k.N_OPS, dtype=np.int64)
            if ip[k.IP_RULE] == k.RULE_TINYSNN and fp[k.FP_MU] != 0.0:
                _train_numpy_pow(k, net, w, theta, images, skeys, rate_units, fp, ip, counters,
                                 counts)
            else:
                k.train_batch(w, theta, images, skeys, rate_units, fp, ip, _program(n_in), counters,
                              counts)
            if w is not net.w:
                net.w[...] = w
            if theta is not net.theta:
                net.theta[...] = theta
        else:
            per_sample = np.zeros((B, k.N_OPS), dtype=np.int64)
            k.infer_batch(w, theta, images, skeys, rate_units, fp, ip, per_sample, counts)
            counters = per_sample.sum(axis=0)
        _add_ops(ops, counters)
        return counts


@functools.lru_cache(maxsize=8)
def _program(n_in: int) -> np.ndarray:
    return _kernels().pairwise_program(n_in)


def _usable(a) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
            and a.flags.writeable)


def _train_numpy_pow(k, net, w, theta, images, skeys, rate_units, fp, ip, counters, counts):
    """tinysnn-stdp with mu != 0: presentation by presentation, the weight-dependence factor
    ``np.power(np.clip(wmax - w, 0, None), mu)`` evaluated by NumPy exactly as the reference
    does (NumPy's SIMD power and libm's pow differ in the last bit), the rest compiled."""
    n_in, N = w.shape
    wf, wi, wp, x_pre, acc = k.workspace(n_in, N, n_in)
    wmax, mu = float(net.topology.wmax), float(net.rule.p.mu)
    empty = np.zeros((0, 0))
    prog = _program(n_in)
    for b in range(len(images)):
        for retry in range(int(ip[k.IP_MAX_RETRIES]) + 1):
            n_exc, n_nz = k.present_steps(w, theta, images[b], skeys[b], rate_units[retry],
                                          retry, fp, ip, counters, wf, wi, wp, x_pre, acc)
            cols = k.tinysnn_cols(ip, wi)
            powtab = (np.ascontiguousarray(np.power(np.clip(wmax - w[:, cols], 0.0, None), mu))
                      if cols.size else empty)
            k.present_end(w, n_exc, n_nz, fp, ip, counters, wf, wi, wp, acc, powtab, prog)
            if n_exc >= ip[k.IP_RETRY_MIN]:
                break
        counters[k.OP_SAMPLES] += 1
        counts[b] = wi[k.WI_COUNTS]
