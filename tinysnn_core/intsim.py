"""Integer inference: the host side of the fixed-point contract in ``docs/fixed-point.md``.

An :class:`IntegerModel` holds only integer codes and shift amounts; :func:`infer` runs it with
integer operations only (adds, multiplies, arithmetic shifts, comparisons, saturation). The C
firmware implements the same operations in the same order, so both produce the same spike counts
and predictions, bit for bit. Read the document for the arithmetic; this code follows it line by
line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import counter_rng
from .data import check_batch
from .errors import TinySNNError
from .fixedpoint import QFormat, round_codes
from .quant import QuantPlan, default_format, model_ranges

if TYPE_CHECKING:
    from .contracts import Backend
    from .network import Network

INT_MODEL_VERSION = 1
#: default formats for groups a plan leaves out when a model goes integer
DEFAULT_BITS = 16


def align(codes, from_frac: int, to_frac: int):
    """Move codes from ``from_frac`` to ``to_frac`` fraction bits: a left shift, or an arithmetic
    right shift (floor) when losing bits."""
    shift = to_frac - from_frac
    if shift >= 0:
        return codes << shift
    return codes >> (-shift)


def sat(x, lo: int, hi: int):
    return np.minimum(np.maximum(x, lo), hi)


def mul_shift(x, factor: int, frac: int, round_half: bool):
    """``(x * factor) >> frac`` with round-half-up when ``round_half`` (add 2**(frac-1) first)."""
    bias = (1 << (frac - 1)) if (round_half and frac > 0) else 0
    return (x * factor + bias) >> frac


@dataclass
class LayerCodes:
    """One neuron population in integer form. Potentials are ``u = v - rest`` in ``v_frac``."""

    v_frac: int
    u_min: int                      # saturation range of the potential codes
    u_max: int
    decay: int                      # leak factor code, ``decay_frac`` fraction bits
    decay_frac: int
    decay_round: bool               # round-half-up in the leak multiply (else floor)
    reset: int                      # (reset - rest) code
    thresh: np.ndarray              # [N] (thresh - rest + theta_j) codes
    refrac: int                     # steps
    one_spike: bool


@dataclass
class NeuronCodes:
    """A population of a plugin's neuron model in integer form (docs/plugins.md, "Neuron
    models"): the part every model shares, in the potential grid like ``LayerCodes``, plus the
    plugin's own named constants. ``model`` (the registered name) finds the plugin's
    ``integer_step`` and C step; the core applies the one-spike rule after that step."""

    model: str                      # registered neuron model name
    v_frac: int
    u_min: int
    u_max: int
    reset: int                      # (reset - rest) code
    thresh: np.ndarray              # [N] (thresh - rest + theta_j) codes
    refrac: int                     # steps
    one_spike: bool
    constants: dict = field(default_factory=dict)   # NAME -> int, the plugin's own codes


@dataclass
class IntegerModel:
    n_inputs: int
    n_neurons: int
    time_steps: int
    w_codes: np.ndarray             # [n_inputs, N] weight codes (int64; unsigned formats)
    w_format: QFormat
    theta_codes: np.ndarray         # [N] theta codes (theta format), kept for the memory model
    theta_format: QFormat
    exc: LayerCodes | NeuronCodes
    inh: LayerCodes | NeuronCodes | None  # Diehl & Cook inhibitory layer, or None (direct)
    lateral: int                    # inhibition per source spike, in the exc potential's grid
    exc_to_inh: int                 # exc -> inh weight in the inh potential's grid
    rate_units: np.ndarray          # uint32 [max_retries + 1] encoder threshold units
    retry_min_spikes: int
    assignments: np.ndarray         # [N] int (-1: none)
    n_classes: int = 10
    formats: dict = field(default_factory=dict)   # group -> "uQ0.4" and rounding, for reports
    exit_margin: int = 0            # early exit: the lead (in spikes) that ends a presentation

    @property
    def class_sizes(self) -> np.ndarray:
        return np.array([(self.assignments == c).sum() for c in range(self.n_classes)])

    @property
    def features(self) -> set[str]:
        """The parts of the contract this model uses beyond the base time step: a backend that
        runs integer models says which of these it implements (``integer_features``): a plugin's
        neuron model is ``"neuron:NAME"``."""
        used = {"early_exit"} if self.exit_margin > 0 else set()
        return used | {f"neuron:{L.model}" for L in (self.exc, self.inh)
                       if isinstance(L, NeuronCodes)}


#: what one inference did, per sample (the operation counts a board's cost model is fitted on)
INFER_OPS = ("presentations", "steps", "draws", "input_spikes", "exc_spikes", "exit_early")


def _layer(layer, plan: QuantPlan, thresh_values: np.ndarray) -> LayerCodes:
    pot = plan.groups["potential"]
    dec = plan.groups["decay"]
    p = layer.p
    f = pot.fmt.frac_bits
    to_code = lambda x: int(round_codes(np.array([x]), pot.fmt, "nearest")[0])  # noqa: E731
    thresh = round_codes(thresh_values - p.rest, pot.fmt, "nearest")
    return LayerCodes(
        v_frac=f, u_min=pot.fmt.code_min, u_max=pot.fmt.code_max,
        decay=int(round_codes(np.array([layer.decay]), dec.fmt, "nearest")[0]),
        decay_frac=dec.fmt.frac_bits, decay_round=pot.rounding != "truncation",
        reset=to_code(p.reset - p.rest), thresh=thresh, refrac=int(p.refrac),
        one_spike=bool(getattr(layer, "one_spike", False)))


#: what a neuron model provides to run in integer mode (docs/plugins.md, "Neuron models")
INTEGER_MEMBERS = ("integer_constants", "integer_step")


def _plugin_layer(layer, name: str, plan: QuantPlan, thresh_values: np.ndarray) -> NeuronCodes:
    """A plugin's population in integer form: the shared codes, as ``_layer`` makes them, and
    the plugin's ``integer_constants(fmt)``, checked to be integers in the potential's range."""
    missing = [m for m in INTEGER_MEMBERS if not callable(getattr(layer, m, None))]
    if missing:
        raise TinySNNError(f"neuron model {name!r} ({type(layer).__name__}) has no integer "
                           f"mode: it lacks {', '.join(missing)} (docs/plugins.md, 'Neuron "
                           "models')")
    pot = plan.groups["potential"].fmt
    p = layer.p
    shared = _layer(_NoLeak(layer), plan, thresh_values)
    constants = layer.integer_constants(pot)
    if not isinstance(constants, dict):
        raise TinySNNError(f"neuron model {name!r}: integer_constants returned "
                           f"{type(constants).__name__}, not a dict of NAME -> int")
    for key, value in constants.items():
        if not (isinstance(key, str) and key.isidentifier() and key.isupper()):
            raise TinySNNError(f"neuron model {name!r}: constant name {key!r} is not an upper "
                               "case C identifier")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TinySNNError(f"neuron model {name!r}: constant {key} = {value!r} is not an "
                               "integer code")
        if not pot.code_min <= int(value) <= pot.code_max:
            raise TinySNNError(f"neuron model {name!r}: constant {key} = {value} is outside "
                               f"the potential format {pot} ({pot.code_min}..{pot.code_max})")
    return NeuronCodes(model=name, v_frac=shared.v_frac, u_min=shared.u_min,
                       u_max=shared.u_max, reset=shared.reset, thresh=shared.thresh,
                       refrac=int(p.refrac), one_spike=shared.one_spike,
                       constants={k: int(v) for k, v in constants.items()})


class _NoLeak:
    """A plugin layer seen by ``_layer``: its leak factor is not part of the shared codes."""

    decay = 1.0

    def __init__(self, layer):
        self.p = layer.p
        self.one_spike = getattr(layer, "one_spike", False)


def _codes_of(net, slot: str, layer, plan: QuantPlan, thresh_values) -> LayerCodes | NeuronCodes:
    from .builtin.neurons import LIF

    if isinstance(layer, LIF):
        return _layer(layer, plan, thresh_values)
    return _plugin_layer(layer, net.config.plugin_name(slot), plan, thresh_values)


def complete_plan(net) -> QuantPlan:
    """The network's quantization plan with every group an integer model needs filled in
    (missing groups get a 16-bit default format with round-to-nearest)."""
    from .quant import GroupSpec

    plan = net.quant.plan if net.quant is not None else QuantPlan("none")
    groups = dict(plan.groups)
    ranges = model_ranges(net)
    for group in ("weights", "potential", "theta", "inhibition", "decay"):
        if group not in groups:
            groups[group] = GroupSpec(default_format(group, DEFAULT_BITS, ranges[group]), "nearest")
    return QuantPlan(plan.scheme, groups)


def from_network(net: Network) -> IntegerModel:
    """Export a (quantized) network to integer codes. Weights and theta are taken on their
    formats' grids with round-to-nearest (a no-op for a model the quantizer already rounded)."""
    if net.assignments is None:
        raise TinySNNError("the network has no label assignments: evaluate it before export")
    plan = complete_plan(net)
    wf, tf = plan.groups["weights"].fmt, plan.groups["theta"].fmt
    w_codes = round_codes(net.w, wf, "nearest")
    theta_codes = round_codes(net.theta, tf, "nearest")
    theta_q = theta_codes * tf.step
    exc = _codes_of(net, "exc_neuron", net.exc, plan, net.exc.p.thresh + theta_q)
    inh = None
    if net.inh is not None:
        inh = _codes_of(net, "inh_neuron", net.inh, plan,
                        np.full(net.n_neurons, net.inh.p.thresh, dtype=np.float64))
    pot = plan.groups["potential"].fmt
    inhib = plan.groups["inhibition"].fmt
    lateral = align(int(round_codes(np.array([net.topology.w_lateral]), inhib, "nearest")[0]),
                    inhib.frac_bits, pot.frac_bits)
    exc_to_inh = align(int(round_codes(np.array([net.topology.w_exc_inh]), inhib, "nearest")[0]),
                       inhib.frac_bits, pot.frac_bits)
    rates, min_spikes = inference_encoding(net)
    inference = net.config.inference
    time_steps = inference.time_steps or net.config.train.time_steps
    return IntegerModel(
        n_inputs=net.n_inputs, n_neurons=net.n_neurons, time_steps=time_steps,
        w_codes=w_codes, w_format=wf, theta_codes=theta_codes, theta_format=tf, exc=exc, inh=inh,
        lateral=int(lateral), exc_to_inh=int(exc_to_inh),
        rate_units=rates, retry_min_spikes=min_spikes,
        assignments=np.asarray(net.assignments, dtype=np.int64),
        formats={g: s.to_dict() for g, s in plan.groups.items()},
        exit_margin=int(inference.exit_margin))


def inference_encoding(net):
    """The encoder as ``[inference]`` sets it up: (the rate units of every presentation, the
    retry threshold). The input rate and the retry rule are inference design axes: they
    change only the integer model's rate table and ``MIN_SPIKES``."""
    import dataclasses

    enc = net.encoder
    inference = net.config.inference
    p = enc.params
    changes = {}
    if inference.rate_hz > 0:
        changes["max_rate_hz"] = float(inference.rate_hz)
    if inference.max_retries >= 0:
        changes["max_retries"] = int(inference.max_retries)
    if changes:
        try:
            enc = type(enc)(dataclasses.replace(p, **changes), enc.dt)
        except (TypeError, ValueError) as exc:
            raise TinySNNError(f"[inference] cannot set up the encoder: {exc}") from None
    retries = enc.params.max_retries
    min_spikes = (enc.params.retry_min_spikes if inference.min_spikes < 0
                  else int(inference.min_spikes))
    rates = np.array([enc.rate_unit(k) for k in range(retries + 1)], dtype=np.uint64)
    return rates, int(min_spikes)


def neuron_class(name: str):
    """The registered class of neuron model ``name`` (a plugin population's integer step)."""
    from .registry import get_registry

    return get_registry().get("neuron_model", name)


def _layer_step(L: LayerCodes | NeuronCodes, u, refrac, current, rand: int):
    """One step of one population, integer only (docs/fixed-point.md, 'A time step'); a
    plugin's population takes its model's ``integer_step`` instead of the leaky one."""
    if isinstance(L, NeuronCodes):
        u, refrac, crossed = neuron_class(L.model).integer_step(L, u, refrac, current)
        u, refrac, crossed = np.asarray(u), np.asarray(refrac), np.asarray(crossed)
        if u.dtype.kind != "i" or refrac.dtype.kind != "i" or crossed.dtype != bool:
            raise TinySNNError(f"neuron model {L.model!r}: integer_step returned {u.dtype} "
                               f"potentials, {refrac.dtype} refractory counts and "
                               f"{crossed.dtype} spikes, not integers, integers and booleans")
    else:
        u = mul_shift(u, L.decay, L.decay_frac, L.decay_round)
        u = np.where(refrac <= 0, u + current, u)
        u = sat(u, L.u_min, L.u_max)
        refrac = refrac - 1
        crossed = u >= L.thresh
        u = np.where(crossed, L.reset, u)
        refrac = np.where(crossed, L.refrac, refrac)
    if L.one_spike:
        crossed = counter_rng.keep_one_spike(crossed, rand)
    return u, refrac, crossed


def present(m: IntegerModel, image: np.ndarray, seed: int, sample: int, retry: int,
            ops: dict | None = None) -> np.ndarray:
    """One presentation in integer arithmetic; the excitatory spike counts. ``ops``, when given,
    is increased by what the presentation did (``INFER_OPS``)."""
    from .builtin.encoders import presentation_step_keys

    T, N = m.time_steps, m.n_neurons
    keys = presentation_step_keys(seed, sample, retry, T)
    nz = np.flatnonzero(image)
    fired = counter_rng.draws(keys, nz) < (image[nz].astype(np.uint64) * np.uint64(m.rate_units[retry]))[None, :]
    rand = counter_rng.draws(keys, np.array([counter_rng.WINNER_INDEX]))[:, 0].astype(np.int64)
    u = np.zeros(N, dtype=np.int64)
    refrac = np.zeros(N, dtype=np.int64)
    ui = np.zeros(N, dtype=np.int64)
    refrac_i = np.zeros(N, dtype=np.int64)
    s_src = np.zeros(N, dtype=bool)      # inhibition source spikes of the previous step
    s_exc = np.zeros(N, dtype=bool)      # excitatory spikes of the previous step
    counts = np.zeros(N, dtype=np.int64)
    wf = m.w_format.frac_bits
    sizes = m.class_sizes if m.exit_margin > 0 else None
    steps = T
    for t in range(T):
        pre = nz[fired[t]]
        acc = m.w_codes[pre].sum(axis=0) if pre.size else np.zeros(N, dtype=np.int64)
        current = align(acc, wf, m.exc.v_frac)
        n_src = int(s_src.sum())
        if n_src:
            current = current + m.lateral * (n_src - s_src.astype(np.int64))
        u, refrac, s = _layer_step(m.exc, u, refrac, current, int(rand[t]))
        if m.inh is not None:
            current_i = m.exc_to_inh * s_exc.astype(np.int64)
            ui, refrac_i, s_i = _layer_step(m.inh, ui, refrac_i, current_i, 0)
            s_src, s_exc = s_i, s
        else:
            s_src = s_exc = s
        counts += s
        if sizes is not None and s.any() and exit_reached(m, class_sums(m, counts), sizes,
                                                           int(counts.sum())):
            steps = t + 1
            break
    if ops is not None:
        ops["presentations"] += 1
        ops["steps"] += steps
        ops["draws"] += steps * nz.size
        ops["input_spikes"] += int(fired[:steps].sum())
        ops["exc_spikes"] += int(counts.sum())
        ops["exit_early"] += int(steps < T)
    return counts


def class_sums(m: IntegerModel, counts: np.ndarray) -> np.ndarray:
    """``S_c``: the spike counts of the neurons assigned to each class (unassigned: none)."""
    a = m.assignments
    return np.bincount(a[a >= 0], weights=counts[a >= 0], minlength=m.n_classes).astype(np.int64)


def _score(sums, sizes, c: int) -> tuple[int, int]:
    """Class ``c``'s (sum, size) as section 7 compares them: a class without neurons counts as
    (0, 1)."""
    return (int(sums[c]), int(sizes[c])) if sizes[c] else (0, 1)


def _leader(sums, sizes) -> tuple[int, int, int]:
    """Section 7's winner over class sums: (class, its score sum, its effective size)."""
    best, best_sum, best_n = 0, 0, 1
    for c in range(len(sizes)):
        s_c, n_eff = _score(sums, sizes, c)
        if s_c * best_n > best_sum * n_eff:
            best, best_sum, best_n = c, s_c, n_eff
    return best, best_sum, best_n


def exit_reached(m: IntegerModel, sums, sizes, total: int) -> bool:
    """The early-exit rule (docs/fixed-point.md section 6): ``total``, the spikes of every
    neuron so far (assigned or not, as the retry rule counts them), at least ``MIN_SPIKES``, and
    the leading class ``a`` leads every other class ``b`` by ``EXIT_MARGIN`` spikes of its own
    class size: ``S_a * n_b - S_b * n_a >= EXIT_MARGIN * n_b`` (a class without neurons counts
    as ``S = 0, n = 1``)."""
    if m.exit_margin <= 0 or int(total) < m.retry_min_spikes:
        return False
    a, s_a, n_a = _leader(sums, sizes)
    for b in range(len(sizes)):
        if b == a:
            continue
        s_b, n_b = _score(sums, sizes, b)
        if s_a * n_b - s_b * n_a < m.exit_margin * n_b:
            return False
    return True


def infer_counts(m: IntegerModel, image: np.ndarray, seed: int, sample: int,
                 ops: dict | None = None) -> np.ndarray:
    """All presentations of one sample (retry rule); the last presentation's counts."""
    for retry in range(len(m.rate_units)):
        counts = present(m, image, seed, sample, retry, ops)
        if counts.sum() >= m.retry_min_spikes:
            break
    return counts


def new_ops() -> dict:
    return dict.fromkeys(INFER_OPS, 0)


def classify(m: IntegerModel, counts: np.ndarray) -> int:
    """All-activity vote in integers: argmax over classes of sum_c / n_c, compared by cross
    multiplication (ties: the lowest class). Classes with no neuron score 0."""
    return _leader(class_sums(m, counts), m.class_sizes)[0]


def infer(m: IntegerModel, images: np.ndarray, seed: int, sample_ids=None, *,
          with_ops: bool = False):
    """Predictions and spike counts of integer inference over a batch; ``with_ops`` adds the
    per-sample operation counts as a dict of int64 arrays [B], one per name of ``INFER_OPS``."""
    images, ids = check_batch(images, sample_ids, int(m.n_inputs))   # as every backend's run
    counts = np.zeros((len(images), m.n_neurons), dtype=np.int64)
    preds = np.zeros(len(images), dtype=np.int64)
    ops = {k: np.zeros(len(images), dtype=np.int64) for k in INFER_OPS}
    for b, (image, sid) in enumerate(zip(images, ids)):
        one = new_ops()
        counts[b] = infer_counts(m, image, seed, int(sid), one)
        preds[b] = classify(m, counts[b])
        for k, v in one.items():
            ops[k][b] = v
    return (preds, counts, ops) if with_ops else (preds, counts)


def run_integer(m: IntegerModel, images: np.ndarray, seed: int,
                sample_ids: Sequence[int] | np.ndarray | None = None,
                backend: Backend | None = None, *, with_ops: bool = False) -> tuple:
    """Integer inference on ``backend`` when it implements everything ``m`` uses (its
    ``run_integer`` and ``integer_features``; ``"ops"`` among them when ``with_ops``), else on
    this reference simulator. Same results either way: the backends are bit-exact."""
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    fast = getattr(backend, "run_integer", None)
    need = m.features | ({"ops"} if with_ops else set())
    if fast is not None:
        lacking = need - set(getattr(backend, "integer_features", ()))
        if not lacking:
            return (fast(m, images, seed, ids, with_ops=True) if with_ops
                    else fast(m, images, seed, ids))
        _report_fallback(backend, sorted(f for f in lacking if f.startswith("neuron:")))
    return infer(m, images, seed, ids, with_ops=with_ops)



def run_integer_group(models: Sequence[IntegerModel], images: np.ndarray, seed: int,
                      sample_ids: Sequence[int] | np.ndarray | None = None,
                      backend: Backend | None = None, *, with_ops: bool = False) -> list[tuple]:
    """``run_integer`` of each of ``models`` on the same samples and seed, one result tuple
    per model. The models ``backend.run_integer_group`` can run (every feature they use among
    its ``integer_features``) run together there, the input spikes drawn once for all; the
    others one by one through ``run_integer``. The results are the same either way."""
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    group = getattr(backend, "run_integer_group", None)
    have = set(getattr(backend, "integer_features", ()))
    need = {"ops"} if with_ops else set()
    fast = [i for i, m in enumerate(models) if not (m.features | need) - have]
    out: list = [None] * len(models)
    if group is not None and len(fast) > 1:
        for i, res in zip(fast, group([models[i] for i in fast], images, seed, ids,
                                      with_ops=with_ops)):
            out[i] = res
    for i, m in enumerate(models):
        if out[i] is None:
            out[i] = run_integer(m, images, seed, ids, backend, with_ops=with_ops)
    return out

_REPORTED: set = set()


def _report_fallback(backend, neurons: list[str]) -> None:
    """Say once per process that a compiled backend leaves a plugin neuron model to this
    slower reference simulator (a plugin neuron has no compiled integer step)."""
    import warnings

    from .log import TinySNNNote

    name = getattr(backend, "name", type(backend).__name__)
    for feature in neurons:
        if (name, feature) not in _REPORTED:
            _REPORTED.add((name, feature))
            warnings.warn(f"backend {name!r} has no integer step for neuron model "
                          f"{feature.split(':', 1)[1]!r}; integer inference runs on the reference "
                          "simulator (tinysnn_core.intsim, slower, same results)", TinySNNNote,
                          stacklevel=3)
