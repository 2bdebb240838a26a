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
from dataclasses import dataclass

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
#: the built-in rounding schemes the kernels implement (by function, see ``rounding_mode``)
COMPILED_ROUNDINGS = ("truncation", "nearest", "stochastic")


def rounding_mode(fn):
    """The kernels' ``QM_*`` code of a rounding function, or None for one they do not know
    (a third-party rounding plugin): the built-in functions of ``tinysnn_core.builtin.rounding``
    are recognised by identity, so a plugin that re-registers a built-in name is not mistaken
    for it."""
    from tinysnn_core.builtin import rounding

    for mode, name in enumerate(COMPILED_ROUNDINGS):
        if fn is getattr(rounding, name):
            return mode
    return None


def _rounding_fns(qr) -> dict:
    """group -> the rounding function ``qr`` applies (the runtime's own table when it has one)."""
    fns = getattr(qr, "_fns", None)
    if isinstance(fns, dict):
        return fns
    from tinysnn_core.registry import get_registry

    reg = get_registry()
    return {g: reg.get("rounding", spec.rounding) for g, spec in qr.plan.groups.items()}


def _quant_problems(net, learn: bool) -> list[str]:
    from tinysnn_core.quant import QuantRuntime

    qr = getattr(net, "quant", None)
    if qr is None:
        return []
    scheme = getattr(getattr(net.config, "quant", None), "scheme", "?")
    if type(qr) is not QuantRuntime:
        return [f"simulated fixed point through {_describe(qr)} (quant.scheme {scheme!r}): only "
                "tinysnn_core.quant.QuantRuntime's rounding is compiled"]
    problems = []
    fns = _rounding_fns(qr)
    for group in SIMULATED_GROUPS[bool(learn)]:
        if not qr.has(group):
            continue
        spec = qr.plan.groups[group]
        if rounding_mode(fns.get(group)) is None:
            problems.append(
                f"rounding {spec.rounding!r} of quant group {group!r} (a rounding plugin, "
                f"{getattr(fns.get(group), '__module__', '?')}."
                f"{getattr(fns.get(group), '__qualname__', '?')}): only 'truncation', "
                "'nearest' and 'stochastic' are compiled, because the kernels round this group "
                "inside every compiled time step and a rounding plugin is a Python function "
                "they cannot call; a constant group (decay, inhibition) or integer inference "
                "with this rounding runs compiled")
    return problems


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
    # simulated fixed point: the kernels round the groups the reference rounds during the
    # simulation (weights, potential, theta, traces) with the three built-in schemes; constants
    # such as the decay factors and the inhibition strengths are rounded once beforehand by the
    # quantizer (any rounding) and are read as they are
    problems.extend(_quant_problems(net, learn))
    dt = getattr(getattr(cfg, "train", None), "dt", None)
    for slot, model in layers:
        if dt is not None and float(getattr(model, "dt", dt)) != float(dt):
            problems.append(f"neuron model in [{slot}] with dt = {model.dt} other than "
                            f"train.dt = {dt}: not compiled")
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


def pack_quant(net, learn: bool) -> np.ndarray:
    """Simulated fixed point as the kernels' ``qp`` float64 [N_QG, N_QF] (all zero: float64).

    Only the groups the reference rounds during this kind of run are switched on (inference
    rounds the potential only). Call ``check_supported`` first: it refuses rounding plugins."""
    k = _kernels()
    qp = np.zeros((k.N_QG, k.N_QF))
    qr = getattr(net, "quant", None)
    if qr is None:
        return qp
    fns = _rounding_fns(qr)
    rows = {"weights": k.Q_WEIGHTS, "potential": k.Q_POTENTIAL, "theta": k.Q_THETA,
            "traces": k.Q_TRACES}
    for group in SIMULATED_GROUPS[bool(learn)]:
        if not qr.has(group):
            continue
        fmt = qr.plan.groups[group].fmt
        mode = rounding_mode(fns.get(group))
        if mode is None:        # check_supported refuses this before any work
            raise UnsupportedNetwork(f"rounding of quant group {group!r} is not compiled")
        g = rows[group]
        qp[g, k.QF_ON] = 1.0
        qp[g, k.QF_MODE] = float(mode)
        qp[g, k.QF_SCALE] = 2.0 ** fmt.frac_bits
        qp[g, k.QF_STEP] = fmt.step
        qp[g, k.QF_CMIN] = float(fmt.code_min)
        qp[g, k.QF_CMAX] = float(fmt.code_max)
    return qp


def _add_ops(ops: OpCounts, counters: np.ndarray) -> None:
    for name, value in zip(_kernels().OP_FIELDS, counters.tolist()):
        setattr(ops, name, getattr(ops, name) + int(value))


#: float simulation precisions: what the kernels store the weights in, and sum the input
#: currents in (``NumbaParams``)
PRECISIONS = ("float64", "float32", "float32-currents")
#: precision -> (weights' dtype while the kernels run, input currents' dtype)
PRECISION_DTYPES = {"float64": (np.float64, np.float64),
                    "float32": (np.float32, np.float64),
                    "float32-currents": (np.float32, np.float32)}


@dataclass
class NumbaParams:
    """``[backend]`` parameters of ``numba``.

    ``precision``: ``"float64"`` (the default) is bit-identical to the NumPy reference;
    ``"float32"`` stores the weights in float32 while the kernels run (every write rounds to
    the nearest float32), which halves the memory traffic of the row sums and the STDP writes;
    the arithmetic stays float64. ``"float32-currents"`` also sums the input currents in
    float32 (each row added in float32, then the lateral term, rounded to float32 as well), as
    a float32 matrix product does (BindsNET's): the row sums vectorise twice as wide; neuron
    state, traces and STDP stay float64. Neither float32 mode is bit-identical to the reference
    (their accuracy over 5 seeds: docs/backends.md, "Precision"). The network keeps float64
    weights: each call copies them into float32 (and back after learning), a cost that one
    sample per call pays every time. Integer inference is unaffected."""

    precision: str = "float64"

    def check(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got "
                             f"{self.precision!r}")


def precision_of(net) -> str:
    """The float precision ``net``'s configuration asks of the numba backend (float64 when its
    ``[backend]`` names another backend: the parameters are that backend's)."""
    cfg = getattr(net, "config", None)
    table = getattr(cfg, "backend", None) or {}
    if not isinstance(table, dict) or table.get("name", "numpy") != "numba":
        return "float64"
    return cfg.plugin_params("backend").precision


class NumbaBackend:
    """Compiled CPU simulator (numba): float64 (bit-identical to the NumPy reference, simulated
    fixed point included), optionally float32 weights and float32 current sums (``NumbaParams``),
    and integer inference (bit-identical to ``tinysnn_core.intsim``).

    Every refusal (numba missing, an unsupported plugin or rounding, bad inputs) is raised before
    any work: before numba is imported or a kernel compiled, and before the network is touched.

    ``precision``: None (the default) takes ``[backend] precision`` of the network's
    configuration; one of ``PRECISIONS`` overrides it."""

    name = "numba"
    Params = NumbaParams

    def __init__(self, precision: str | None = None):
        if precision is not None:
            try:
                NumbaParams(precision).check()
            except ValueError as exc:
                raise TinySNNError(f"backend 'numba': {exc}") from None
        self.precision = precision

    def available(self):
        return _numba_status()

    def check(self, net, *, learn: bool = True) -> None:
        """Raise now, without simulating anything, what ``run(net, ..., learn=learn)`` would
        refuse (``learn=True`` also covers inference). A flow may call it before a long run."""
        ok, why = _numba_status()
        if not ok:
            raise TinySNNError(f"backend 'numba' is not usable here: {why}")
        check_supported(net, learn)

    def _dtypes(self, net) -> tuple:
        """(weights' dtype, input currents' dtype) of the precision ``net`` runs in."""
        return PRECISION_DTYPES[self.precision or precision_of(net)]

    def _weights(self, net) -> np.ndarray:
        """The weights the kernels run on: the network's own array when it is float64 and
        C-ordered (written in place), else a copy (float32 with a float32 precision), which the
        caller writes back after learning."""
        if self._dtypes(net)[0] == np.float32:
            return np.ascontiguousarray(net.w, dtype=np.float32)
        return net.w if _usable(net.w) else np.ascontiguousarray(net.w, dtype=np.float64)

    def _cur_proto(self, net) -> np.ndarray:
        """The kernels' prototype of the input current row (shape [0]): its dtype is what they
        sum the currents in (``kernels.current_row``)."""
        return np.zeros(0, dtype=self._dtypes(net)[1])

    def run(self, net, images, sample_ids, *, learn: bool, seed: int,
            ops: OpCounts, record=None) -> np.ndarray:
        if record is not None:      # the monitor's own path; the kernels below never record
            return self._run_recorded(net, images, sample_ids, learn, seed, ops, record)
        # -- everything that can refuse, before any work -------------------------------------
        self.check(net, learn=learn)
        n_in, N = net.w.shape
        images, ids = _batch(images, sample_ids, n_in)
        B = len(images)
        if B == 0:
            return np.zeros((0, N), dtype=np.int64)
        # -- the work ---------------------------------------------------------------------------
        k = _kernels()
        fp, ip = pack_params(net)
        qp = pack_quant(net, learn)
        skeys = np.array([counter_rng.sample_key(seed, s) for s in ids], dtype=np.int64)
        enc = net.encoder
        rate_units = np.array([enc.rate_unit(r) for r in range(enc.params.max_retries + 1)],
                              dtype=np.int64)
        counts = np.zeros((B, N), dtype=np.int64)

        # the kernels write the network's own arrays when they are float64 C-ordered (float32
        # precision: a float32 copy, written back when learning)
        w = self._weights(net)
        cur = self._cur_proto(net)
        theta = net.theta if _usable(net.theta) else np.ascontiguousarray(net.theta,
                                                                          dtype=np.float64)
        if learn:
            counters = np.zeros(k.N_OPS, dtype=np.int64)
            if ip[k.IP_RULE] == k.RULE_TINYSNN and fp[k.FP_MU] != 0.0:
                _train_numpy_pow(k, net, w, theta, images, skeys, rate_units, fp, ip, qp,
                                 counters, counts, cur)
            elif N >= 2:    # the fused path (N = 1: NumPy sums the rows pairwise)
                k.train_batch_fused(w, theta, images, skeys, rate_units, fp, ip, qp,
                                    _program(n_in), counters, counts, cur)
            else:
                k.train_batch(w, theta, images, skeys, rate_units, fp, ip, qp, _program(n_in),
                              counters, counts, cur)
            if w is not net.w:
                net.w[...] = w
            if theta is not net.theta:
                net.theta[...] = theta
        else:
            per_sample = np.zeros((B, k.N_OPS), dtype=np.int64)
            if N >= 2:
                k.infer_batch_tiled(w, theta, images, skeys, rate_units, fp, ip, qp, per_sample,
                                    counts, _threads(), cur)
            else:   # N = 1: NumPy sums the input rows pairwise, the per-step kernel does too
                k.infer_batch(w, theta, images, skeys, rate_units, fp, ip, qp, per_sample, counts,
                              cur)
            counters = per_sample.sum(axis=0)
        _add_ops(ops, counters)
        return counts

    def _run_recorded(self, net, images, sample_ids, learn, seed, ops, record):
        """``run`` with a ``tinysnn_core.monitors.Record``: the samples it wants one by one
        through ``kernels.record_sample`` (the per-step kernel with the monitor compiled in),
        the runs of other samples between them through the fast path, in order (learning
        updates the weights sample after sample)."""
        self.check(net, learn=learn)
        record.check(net, learn)
        n_in, N = net.w.shape
        images, ids = _batch(images, sample_ids, n_in)
        B = len(images)
        counts = np.zeros((B, N), dtype=np.int64)
        want = [record.wants(s) for s in ids]
        b = 0
        while b < B:
            if want[b]:
                counts[b] = self._record_one(net, images[b], ids[b], learn, seed, ops, record)
                b += 1
                continue
            e = b
            while e < B and not want[e]:
                e += 1
            counts[b:e] = self.run(net, images[b:e], ids[b:e], learn=learn, seed=seed, ops=ops)
            b = e
        return counts

    def _record_one(self, net, image, sample: int, learn: bool, seed: int, ops, record):
        k = _kernels()
        n_in, N = net.w.shape
        fp, ip = pack_params(net)
        qp = pack_quant(net, learn)
        enc = net.encoder
        R = enc.params.max_retries + 1
        rate_units = np.array([enc.rate_unit(r) for r in range(R)], dtype=np.int64)
        skey = np.int64(counter_rng.sample_key(seed, sample))
        T = int(ip[k.IP_T])
        idx = np.ascontiguousarray(record.neuron_index(N), dtype=np.int64)
        raster = np.zeros((R, T, N), dtype=np.int8)
        vals = np.zeros((R, 3, T, idx.size))
        counters = np.zeros(k.N_OPS, dtype=np.int64)
        out = np.zeros((1, N), dtype=np.int64)
        w = self._weights(net)
        theta = net.theta if _usable(net.theta) else np.ascontiguousarray(net.theta,
                                                                          dtype=np.float64)
        if learn and ip[k.IP_RULE] == k.RULE_TINYSNN and fp[k.FP_MU] != 0.0:
            recs = [(raster[r], vals[r], idx, np.zeros(idx.size)) for r in range(R)]
            n = _train_numpy_pow(k, net, w, theta, image[None, :], np.array([skey]), rate_units,
                                 fp, ip, qp, counters, out, self._cur_proto(net), recs)
        else:
            n = k.record_sample(w, theta, image, skey, rate_units, bool(learn), fp, ip, qp,
                                _program(n_in), counters, out[0], raster, vals, idx,
                                np.zeros(idx.size), self._cur_proto(net))
        if learn:
            if w is not net.w:
                net.w[...] = w
            if theta is not net.theta:
                net.theta[...] = theta
        _add_ops(ops, counters)
        names = ("v", "theta", "trace")
        for r in range(n):
            steps, neurons = np.nonzero(raster[r])
            record.add_presentation(sample, r, steps, neurons,
                                    {name: vals[r, i] for i, name in enumerate(names)
                                     if name in record.state_variables})
        record.add_sample(sample, out[0])
        return out[0]

    #: the parts of the integer contract beyond the base time step that ``run_integer``
    #: implements (``intsim.run_integer`` picks this backend when the model needs no more)
    integer_features = frozenset({"early_exit", "ops"})

    def run_integer(self, model, images, seed: int, sample_ids=None, *, with_ops: bool = False):
        """Integer inference of ``model`` (a ``tinysnn_core.intsim.IntegerModel``): the same
        (predictions int64 [B], counts int64 [B, N]) as ``intsim.infer(model, images, seed,
        sample_ids)``, bit for bit, early exit included; the samples run in parallel.
        ``with_ops``: also the per-sample operation counts, (preds, counts, ops) with ops a
        dict of int64 arrays [B] named by ``intsim.INFER_OPS``, as ``intsim.infer`` gives."""
        ok, why = _numba_status()
        if not ok:
            raise TinySNNError(f"backend 'numba' is not usable here: {why}")
        n_in, N = int(model.n_inputs), int(model.n_neurons)
        images, ids = _batch(images, sample_ids, n_in)
        packed = pack_integer_model(model)          # refuses what it cannot run, before work
        B = len(images)
        counts = np.zeros((B, N), dtype=np.int64)
        preds = np.zeros(B, dtype=np.int64)
        k = _kernels()
        ops = np.zeros((B, k.N_IO), dtype=np.int64)
        if B:
            skeys = np.array([counter_rng.sample_key(seed, s) for s in ids], dtype=np.int64)
            wc, rate_units, lp, mp, th_e, th_i, assignments, sizes = packed
            wn, acc = narrow_codes(wc)
            k.infer_int_batch_tiled(wn, acc, images, skeys, rate_units, lp, mp, th_e, th_i,
                                    assignments, sizes, counts, preds, ops, _threads(),
                                    k.INFER_STEPS if mp[k.MP_EXIT_MARGIN] == 0
                                    else k.INFER_STEPS_EXIT)
        if not with_ops:
            return preds, counts
        return preds, counts, {name: ops[:, i].copy() for i, name in enumerate(k.INT_OP_FIELDS)}


    def run_group(self, nets, images, sample_ids, *, seed: int, ops_list) -> list[np.ndarray]:
        """Inference (learn=False) of several networks on the same samples and seed: for each,
        the counts and counters ``run(net, images, sample_ids, learn=False, seed=seed,
        ops=ops)`` gives it, bit for bit, with the input spikes drawn once per sample for all
        of them and the weight rows summed once per distinct weight matrix
        (``kernels.infer_batch_group``). Networks that cannot share draws (another T, input
        size, encoder rates or retries), and N = 1, run in calls of their own."""
        for net in nets:
            self.check(net, learn=False)
        k = _kernels()
        out = [None] * len(nets)
        parts: dict = {}
        for i, net in enumerate(nets):
            fp, ip = pack_params(net)
            enc = net.encoder
            rate_units = tuple(int(enc.rate_unit(r)) for r in range(enc.params.max_retries + 1))
            key = (tuple(net.w.shape), int(ip[k.IP_T]), rate_units, self._dtypes(net))
            parts.setdefault(key, []).append((i, fp, ip, pack_quant(net, False)))
        for (shape, _, rate_units, (w_dtype, cur_dtype)), members in parts.items():
            if len(members) == 1 or shape[1] < 2:
                for i, *_ in members:
                    out[i] = self.run(nets[i], images, sample_ids, learn=False, seed=seed,
                                      ops=ops_list[i])
                continue
            imgs, ids = _batch(images, sample_ids, shape[0])
            K, B, N = len(members), len(imgs), shape[1]
            if B == 0:
                for i, *_ in members:
                    out[i] = np.zeros((0, N), dtype=np.int64)
                continue
            wu, wmap = _distinct([np.ascontiguousarray(nets[i].w, dtype=w_dtype)
                                  for i, *_ in members])
            theta = np.stack([np.broadcast_to(np.asarray(nets[i].theta, dtype=np.float64), (N,))
                              for i, *_ in members])
            fp = np.stack([m[1] for m in members])
            ip = np.stack([m[2] for m in members])
            qp = np.ascontiguousarray(np.stack([m[3] for m in members]))
            skeys = np.array([counter_rng.sample_key(seed, s) for s in ids], dtype=np.int64)
            per_sample = np.zeros((K, B, k.N_OPS), dtype=np.int64)
            counts = np.zeros((K, B, N), dtype=np.int64)
            k.infer_batch_group(wu, wmap, theta, imgs, skeys, np.array(rate_units, dtype=np.int64),
                                fp, ip, qp, per_sample, counts, _threads(),
                                np.zeros(0, dtype=cur_dtype))
            for g, (i, *_) in enumerate(members):
                _add_ops(ops_list[i], per_sample[g].sum(axis=0))
                out[i] = counts[g]
        return out

    def run_integer_group(self, models, images, seed: int, sample_ids=None, *,
                          with_ops: bool = False) -> list[tuple]:
        """``run_integer`` of several integer models on the same samples and seed, one result
        tuple per model, bit for bit the same, with the input spikes drawn once per sample for
        all (``kernels.infer_int_batch_group``). Models that cannot share draws (another T,
        input size or encoder rates) run in calls of their own."""
        ok, why = _numba_status()
        if not ok:
            raise TinySNNError(f"backend 'numba' is not usable here: {why}")
        packed = [pack_integer_model(m) for m in models]    # refusals before any work
        k = _kernels()
        out = [None] * len(models)
        parts: dict = {}
        for i, (m, p) in enumerate(zip(models, packed)):
            key = (int(m.n_inputs), int(m.n_neurons), int(p[3][k.MP_T]), tuple(p[1].tolist()))
            parts.setdefault(key, []).append(i)
        for (n_in, N, _, rate_units), members in parts.items():
            if len(members) == 1:
                i = members[0]
                out[i] = self.run_integer(models[i], images, seed, sample_ids, with_ops=with_ops)
                continue
            imgs, ids = _batch(images, sample_ids, n_in)
            K, B = len(members), len(imgs)
            C = max(int(packed[i][3][k.MP_N_CLASSES]) for i in members)
            counts = np.zeros((K, B, N), dtype=np.int64)
            preds = np.zeros((K, B), dtype=np.int64)
            ops = np.zeros((K, B, k.N_IO), dtype=np.int64)
            if B:
                # one storage type and accumulator for all: valid for every column of every model
                wn, acc = narrow_codes(np.concatenate([packed[i][0] for i in members], axis=1))
                wu, wmap = _distinct([wn[:, g * N:(g + 1) * N] for g in range(K)])
                sizes = np.zeros((K, max(1, C)), dtype=np.int64)
                for g, i in enumerate(members):
                    sizes[g, :packed[i][7].size] = packed[i][7]

                def stack(j):
                    return np.ascontiguousarray(np.stack([packed[i][j] for i in members]))

                mp = stack(3)
                skeys = np.array([counter_rng.sample_key(seed, s) for s in ids], dtype=np.int64)
                chunk = k.INFER_STEPS if not mp[:, k.MP_EXIT_MARGIN].any() else k.INFER_STEPS_EXIT
                k.infer_int_batch_group(wu, acc, wmap, imgs, skeys,
                                        np.array(rate_units, dtype=np.int64), stack(2), mp,
                                        stack(4), stack(5), stack(6), sizes, counts, preds, ops,
                                        _threads(), chunk)
            for g, i in enumerate(members):
                if with_ops:
                    out[i] = (preds[g], counts[g], {name: ops[g, :, j].copy()
                                                    for j, name in enumerate(k.INT_OP_FIELDS)})
                else:
                    out[i] = (preds[g], counts[g])
        return out


def _distinct(arrays):
    """The distinct arrays of ``arrays`` (equal bit for bit) stacked [U, ...], and for each
    array the index of its copy: networks that share a weight matrix share its row sums."""
    uniq, wmap = [], np.zeros(len(arrays), dtype=np.int64)
    for g, a in enumerate(arrays):
        bits = np.ascontiguousarray(a).view(np.uint8)
        for u, b in enumerate(uniq):
            if b.shape == a.shape and np.array_equal(np.ascontiguousarray(b).view(np.uint8), bits):
                wmap[g] = u
                break
        else:
            wmap[g] = len(uniq)
            uniq.append(a)
    return np.ascontiguousarray(np.stack(uniq)), wmap

def _batch(images, sample_ids, n_in: int):
    """Images as int64 [B, n_in] and the sample ids as Python ints, checked by the core's
    ``check_batch`` (the one check of every backend's inputs)."""
    from tinysnn_core.data import check_batch

    images, ids = check_batch(images, sample_ids, n_in)
    return np.ascontiguousarray(images, dtype=np.int64), [int(s) for s in ids.tolist()]


def pack_integer_model(model):
    """An ``IntegerModel`` as the integer kernel's arrays:
    (w codes, rate units, lp int64 [2, N_LP], mp int64 [N_MP], TH exc, TH inh, assignments,
    class sizes). Raises ``UnsupportedNetwork`` for what the kernel cannot reproduce exactly."""
    from tinysnn_core.intsim import NeuronCodes

    for L in (model.exc, model.inh):
        if isinstance(L, NeuronCodes):  # intsim.run_integer leaves such a model to intsim
            raise UnsupportedNetwork(f"integer model: neuron model {L.model!r} is a plugin's; "
                                     "the integer kernel has the leaky step only (run it with "
                                     "tinysnn_core.intsim.run_integer, which falls back to "
                                     "intsim)")
    k = _kernels()
    N, n_in = int(model.n_neurons), int(model.n_inputs)
    wc = np.ascontiguousarray(model.w_codes, dtype=np.int64)
    if wc.shape != (n_in, N):
        raise TinySNNError(f"integer model: weight codes of shape {wc.shape}, expected "
                           f"({n_in}, {N})")
    rate_units = np.asarray(model.rate_units).astype(np.int64)
    if rate_units.size == 0 or rate_units.min() < 0 or rate_units.max() * 255 >= 2 ** 32:
        raise TinySNNError("integer model: encoder rate units outside 0 .. 2**32 / 255")
    lp = np.zeros((2, k.N_LP), dtype=np.int64)

    def layer(row, L):
        lp[row, k.LP_V_FRAC] = int(L.v_frac)
        lp[row, k.LP_U_MIN], lp[row, k.LP_U_MAX] = int(L.u_min), int(L.u_max)
        lp[row, k.LP_DECAY], lp[row, k.LP_DECAY_FRAC] = int(L.decay), int(L.decay_frac)
        lp[row, k.LP_BIAS] = (1 << (int(L.decay_frac) - 1)) if (L.decay_round and
                                                                 L.decay_frac > 0) else 0
        lp[row, k.LP_RESET], lp[row, k.LP_REFRAC] = int(L.reset), int(L.refrac)
        lp[row, k.LP_ONE_SPIKE] = int(bool(L.one_spike))
        th = np.ascontiguousarray(np.broadcast_to(np.asarray(L.thresh), (N,)), dtype=np.int64)
        return th

    th_e = layer(0, model.exc)
    th_i = layer(1, model.inh) if model.inh is not None else np.zeros(N, dtype=np.int64)
    mp = np.zeros(k.N_MP, dtype=np.int64)
    mp[k.MP_T] = int(model.time_steps)
    mp[k.MP_W_FRAC] = int(model.w_format.frac_bits)
    mp[k.MP_LATERAL] = int(model.lateral)
    mp[k.MP_EXC_TO_INH] = int(model.exc_to_inh)
    mp[k.MP_HAS_INH] = int(model.inh is not None)
    mp[k.MP_RETRY_MIN] = int(model.retry_min_spikes)
    margin = int(getattr(model, "exit_margin", 0))
    if not 0 <= margin < 2 ** 31:
        raise TinySNNError(f"integer model: early-exit margin {margin} outside 0 .. 2**31 - 1")
    mp[k.MP_EXIT_MARGIN] = margin
    n_classes = int(model.n_classes)
    mp[k.MP_N_CLASSES] = n_classes
    assignments = np.ascontiguousarray(model.assignments, dtype=np.int64)
    if assignments.shape != (N,):
        raise TinySNNError(f"integer model: {assignments.size} assignments for {N} neurons")
    sizes = np.array([(assignments == c).sum() for c in range(n_classes)], dtype=np.int64)
    return wc, rate_units, lp, mp, th_e, th_i, assignments, sizes


def _threads() -> int:
    import numba

    return int(numba.get_num_threads())


def narrow_codes(wc: np.ndarray):
    """The integer kernel's storage of the weight codes and its accumulation type: int16 or
    uint16 codes where they fit (a quarter of the memory traffic of int64), and an int32
    accumulator (a 0-length prototype array) where no sum of codes can leave int32 -- every
    column's sum of |codes| below 2**31 bounds every partial sum of any subset of its rows --
    else int64. Either way the sums equal intsim's int64 sums exactly."""
    lo, hi = (int(wc.min()), int(wc.max())) if wc.size else (0, 0)
    if lo >= -(1 << 15) and hi < (1 << 15):
        wn = wc.astype(np.int16)
    elif lo >= 0 and hi < (1 << 16):
        wn = wc.astype(np.uint16)
    else:
        wn = wc
    bound = int(np.abs(wc).sum(axis=0, dtype=object).max()) if wc.size else 0
    acc = np.zeros(0, dtype=np.int32 if bound < (1 << 31) else np.int64)
    if acc.dtype == np.int64:
        wn = wc
    return np.ascontiguousarray(wn), acc


@functools.lru_cache(maxsize=8)
def _program(n_in: int) -> np.ndarray:
    return _kernels().pairwise_program(n_in)


def _usable(a) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
            and a.flags.writeable)


def _train_numpy_pow(k, net, w, theta, images, skeys, rate_units, fp, ip, qp, counters, counts,
                     cur_proto, recs=None):
    """tinysnn-stdp with mu != 0: presentation by presentation, the weight-dependence factor
    ``np.power(np.clip(wmax - w, 0, None), mu)`` evaluated by NumPy exactly as the reference
    does (NumPy's SIMD power and libm's pow differ in the last bit), the rest compiled.
    ``recs``: None, or (one sample only) the monitor's arrays per presentation; returns the
    number of presentations of the last sample."""
    n_in, N = w.shape
    wf, wi, wp, x_pre, acc = k.workspace(n_in, N, n_in)
    cur = k.current_row(N, cur_proto)
    wmax, mu = float(net.topology.wmax), float(net.rule.p.mu)
    empty = np.zeros((0, 0))
    prog = _program(n_in)
    for b in range(len(images)):
        for retry in range(int(ip[k.IP_MAX_RETRIES]) + 1):
            n_exc, n_nz = k.present_steps(w, theta, images[b], skeys[b], rate_units[retry],
                                          retry, fp, ip, qp, counters, wf, wi, wp, x_pre, acc,
                                          cur, None if recs is None else recs[retry])
            cols = k.tinysnn_cols(ip, wi)
            powtab = (np.ascontiguousarray(np.power(np.clip(wmax - w[:, cols], 0.0, None), mu))
                      if cols.size else empty)
            k.present_end(w, n_exc, n_nz, fp, ip, qp, skeys[b], retry, counters, wf, wi, wp, acc,
                          powtab, prog)
            if n_exc >= ip[k.IP_RETRY_MIN]:
                break
        counters[k.OP_SAMPLES] += 1
        counts[b] = wi[k.WI_COUNTS]
    return retry + 1
