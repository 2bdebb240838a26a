"""Integer inference: the host side of the fixed-point contract in ``docs/fixed-point.md``.

An :class:`IntegerModel` holds only integer codes and shift amounts; :func:`infer` runs it with
integer operations only (adds, multiplies, arithmetic shifts, comparisons, saturation). The C
firmware implements the same operations in the same order, so both produce the same spike counts
and predictions, bit for bit. Read the document for the arithmetic; this code follows it line by
line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import counter_rng
from .errors import TinySNNError
from .fixedpoint import QFormat, round_codes
from .quant import QuantPlan, default_format, model_ranges

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
class IntegerModel:
    n_inputs: int
    n_neurons: int
    time_steps: int
    w_codes: np.ndarray             # [n_inputs, N] weight codes (int64; unsigned formats)
    w_format: QFormat
    theta_codes: np.ndarray         # [N] theta codes (theta format), kept for the memory model
    theta_format: QFormat
    exc: LayerCodes
    inh: LayerCodes | None          # Diehl & Cook inhibitory layer, or None (direct inhibition)
    lateral: int                    # inhibition per source spike, in the exc potential's grid
    exc_to_inh: int                 # exc -> inh weight in the inh potential's grid
    rate_units: np.ndarray          # uint32 [max_retries + 1] encoder threshold units
    retry_min_spikes: int
    assignments: np.ndarray         # [N] int (-1: none)
    n_classes: int = 10
    formats: dict = field(default_factory=dict)   # group -> "uQ0.4" and rounding, for reports

    @property
    def class_sizes(self) -> np.ndarray:
        return np.array([(self.assignments == c).sum() for c in range(self.n_classes)])


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


def from_network(net) -> IntegerModel:
    """Export a (quantized) network to integer codes. Weights and theta are taken on their
    formats' grids with round-to-nearest (a no-op for a model the quantizer already rounded)."""
    if net.assignments is None:
        raise TinySNNError("the network has no label assignments: evaluate it before export")
    from .builtin.neurons import LIF

    for layer in (net.exc, net.inh):
        if layer is not None and not isinstance(layer, LIF):
            raise TinySNNError(f"integer inference supports the lif/adaptive-lif neuron models, "
                               f"not {type(layer).__name__}")
    plan = complete_plan(net)
    wf, tf = plan.groups["weights"].fmt, plan.groups["theta"].fmt
    w_codes = round_codes(net.w, wf, "nearest")
    theta_codes = round_codes(net.theta, tf, "nearest")
    theta_q = theta_codes * tf.step
    exc = _layer(net.exc, plan, net.exc.p.thresh + theta_q)
    inh = None
    if net.inh is not None:
        inh = _layer(net.inh, plan, np.full(net.n_neurons, net.inh.p.thresh, dtype=np.float64))
    pot = plan.groups["potential"].fmt
    inhib = plan.groups["inhibition"].fmt
    lateral = align(int(round_codes(np.array([net.topology.w_lateral]), inhib, "nearest")[0]),
                    inhib.frac_bits, pot.frac_bits)
    exc_to_inh = align(int(round_codes(np.array([net.topology.w_exc_inh]), inhib, "nearest")[0]),
                       inhib.frac_bits, pot.frac_bits)
    enc = net.encoder
    return IntegerModel(
        n_inputs=net.n_inputs, n_neurons=net.n_neurons, time_steps=net.config.train.time_steps,
        w_codes=w_codes, w_format=wf, theta_codes=theta_codes, theta_format=tf, exc=exc, inh=inh,
        lateral=int(lateral), exc_to_inh=int(exc_to_inh),
        rate_units=np.array([enc.rate_unit(k) for k in range(enc.params.max_retries + 1)],
                            dtype=np.uint64),
        retry_min_spikes=int(enc.params.retry_min_spikes),
        assignments=np.asarray(net.assignments, dtype=np.int64),
        formats={g: s.to_dict() for g, s in plan.groups.items()})


def _layer_step(L: LayerCodes, u, refrac, current, rand: int):
    """One step of one population, integer only (docs/fixed-point.md, 'A time step')."""
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


def present(m: IntegerModel, image: np.ndarray, seed: int, sample: int, retry: int) -> np.ndarray:
    """One presentation in integer arithmetic; the excitatory spike counts."""
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
    return counts


def infer_counts(m: IntegerModel, image: np.ndarray, seed: int, sample: int) -> np.ndarray:
    """All presentations of one sample (retry rule); the last presentation's counts."""
    for retry in range(len(m.rate_units)):
        counts = present(m, image, seed, sample, retry)
        if counts.sum() >= m.retry_min_spikes:
            break
    return counts


def classify(m: IntegerModel, counts: np.ndarray) -> int:
    """All-activity vote in integers: argmax over classes of sum_c / n_c, compared by cross
    multiplication (ties: the lowest class). Classes with no neuron score 0."""
    best, best_sum, best_n = 0, 0, 1
    sizes = m.class_sizes
    for c in range(m.n_classes):
        n_c = int(sizes[c])
        s_c = int(counts[m.assignments == c].sum()) if n_c else 0
        n_eff = n_c if n_c else 1
        if s_c * best_n > best_sum * n_eff:
            best, best_sum, best_n = c, s_c, n_eff
    return best


def infer(m: IntegerModel, images: np.ndarray, seed: int, sample_ids=None):
    """Predictions and spike counts of integer inference over a batch."""
    ids = np.arange(len(images)) if sample_ids is None else np.asarray(sample_ids)
    counts = np.zeros((len(images), m.n_neurons), dtype=np.int64)
    preds = np.zeros(len(images), dtype=np.int64)
    for b, (image, sid) in enumerate(zip(images, ids)):
        counts[b] = infer_counts(m, image, seed, int(sid))
        preds[b] = classify(m, counts[b])
    return preds, counts
