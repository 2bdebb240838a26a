"""Quantization of a network's parameter groups (PAPER.md section 6).

Parameter groups and the range each group's default format must cover:

==========  =======================================================  =====================
group       what                                                     default integer bits
==========  =======================================================  =====================
weights     input weights w, in [wmin, wmax] = [0, 1]                uQ0.n (saturates at 1-step)
potential   membrane potential relative to rest, u = v - rest       sQ7.n  ([-128, 128) mV)
theta       adaptive threshold offsets                               uQ7.n  ([0, 128) mV)
==========  =======================================================  =====================

When the network is known, ``model_ranges`` sizes the integer bits to the values it holds
(theta can grow past 128 mV); ``tinysnn explore`` does so from the trained float model.

==========  =======================================================  =====================
traces      synaptic traces in [0, 1]                                uQ1.n
inhibition  lateral inhibition strength(s)                           sQk.n  (k fits |w|)
decay       leak / trace / theta decay factors in (0, 1]             uQ1.n  (1.0 representable)
==========  =======================================================  =====================

``QuantPlan`` holds, per group, a :class:`~tinysnn_core.fixedpoint.QFormat` and a rounding scheme.
In float simulation, :class:`QuantRuntime` puts values on their group's grid after every update
(the in-training quantizer during training; the state groups at inference). The integer
arithmetic that a board runs is in ``tinysnn_core.intsim`` and ``docs/fixed-point.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .fixedpoint import QFormat, round_codes

GROUPS = ("weights", "potential", "theta", "traces", "inhibition", "decay")
#: groups that are learned or constant parameters (stored in flash on a board)
PARAMETER_GROUPS = ("weights", "theta", "inhibition", "decay")
#: groups that are state updated every step
STATE_GROUPS = ("potential", "traces")
_INT_BITS = {"weights": (0, False), "potential": (7, True), "theta": (7, False),
             "traces": (1, False), "decay": (1, False)}


def int_bits_for(magnitude: float) -> int:
    """Integer bits that hold ``magnitude``: the smallest k with 2**k > magnitude."""
    return 0 if magnitude < 1 else int(math.floor(math.log2(magnitude))) + 1


def model_ranges(net) -> dict:
    """The largest magnitude each group must hold in this network (sizes its formats): theta
    grows with training, and the potential must reach the highest threshold."""
    theta_max = float(np.max(net.theta)) if net.theta.size else 0.0
    layers = [l for l in (net.exc, net.inh) if l is not None]
    potential = max([abs(l.p.thresh - l.p.rest) + (theta_max if l is net.exc else 0.0)
                     for l in layers] + [abs(l.p.reset - l.p.rest) for l in layers])
    return {"weights": float(np.max(net.w)) if net.w.size else 1.0, "theta": theta_max,
            "potential": potential,
            "inhibition": max(abs(net.topology.w_lateral), abs(net.topology.w_exc_inh)),
            "traces": 1.0, "decay": 1.0}


def decay_factors(net) -> dict[str, float]:
    """The network's decay factors, by name: what the ``decay`` group rounds."""
    out = {}
    for name, layer in (("exc", net.exc), ("inh", net.inh)):
        if layer is None:
            continue
        if hasattr(layer, "decay"):          # optional: a model without leak has none
            out[f"{name}.decay"] = float(layer.decay)
        if hasattr(layer, "theta_decay"):
            out[f"{name}.theta_decay"] = float(layer.theta_decay)
    out["trace_decay"] = float(net.rule.trace_decay)
    return out


def lost_decays(before: dict[str, float], net, fmt: QFormat | None, *,
                learning: bool = True) -> list[str]:
    """The decay factors that rounding turned into 1 (no decay: an infinite time constant) or
    0 (all gone in one step), as sentences. A theta decay of exp(-1/1e7) is 1 at 16 bits: harmless
    in inference (theta is frozen, so it is left out unless ``learning``), but in training theta
    then only grows."""
    out = []
    for name, after in decay_factors(net).items():
        value = before.get(name)
        if value is None or not 0.0 < value < 1.0 or after not in (0.0, 1.0):
            continue
        if name.endswith("theta_decay") and not learning:
            continue
        what = ("its decay is lost (infinite time constant)" if after == 1.0
                else "it decays to 0 in one step")
        where = f" in {fmt}" if fmt is not None else ""
        out.append(f"decay factor {name} = {value:.9g} becomes {after:g}{where}: {what}")
    return out


def default_format(group: str, bits: int, magnitude: float | None = None) -> QFormat:
    """The ``bits``-bit format of ``group``: integer bits from the table above, or enough for
    ``magnitude`` when given (fewer when ``bits`` is too small: the format then saturates
    earlier)."""
    if group not in GROUPS:
        raise ConfigError(f"unknown parameter group {group!r}; known: {', '.join(GROUPS)}")
    if group == "inhibition":
        int_bits, signed = int_bits_for(128.0 if magnitude is None else magnitude), True
    elif magnitude is not None:
        int_bits, signed = int_bits_for(magnitude), _INT_BITS[group][1]
    else:
        int_bits, signed = _INT_BITS[group]
    available = bits - (1 if signed else 0)
    if available < 0:
        raise ConfigError(f"{bits} bits cannot hold a signed {group} value")
    int_bits = min(int_bits, available)
    return QFormat(int_bits, available - int_bits, signed)


@dataclass
class GroupSpec:
    fmt: QFormat
    rounding: str

    def to_dict(self) -> dict:
        return {"format": str(self.fmt), "rounding": self.rounding}


@dataclass
class QuantPlan:
    """The scheme and, per quantized group, its format and rounding."""

    scheme: str
    groups: dict[str, GroupSpec] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings) -> "QuantPlan":
        from .registry import get_registry

        groups = {}
        for name, spec in (settings.groups or {}).items():
            if name not in GROUPS:
                raise ConfigError(f"quant.groups: unknown group {name!r}; known: {', '.join(GROUPS)}")
            if not isinstance(spec, dict) or "format" not in spec:
                raise ConfigError(f"quant.groups.{name} must be a table with 'format' "
                                  "(and 'rounding'), e.g. {format = 'uQ0.8', rounding = 'nearest'}")
            unknown = set(spec) - {"format", "rounding"}
            if unknown:
                raise ConfigError(f"quant.groups.{name}: unknown key(s) {sorted(unknown)}; "
                                  "accepted: format, rounding")
            try:
                fmt = QFormat.parse(spec["format"])
            except ValueError as exc:
                raise ConfigError(f"quant.groups.{name}: {exc}") from None
            rounding = str(spec.get("rounding", "nearest"))
            try:
                entry = get_registry().get_entry("rounding", rounding)
            except KeyError as exc:
                raise ConfigError(f"quant.groups.{name}: {exc}") from None
            groups[name] = GroupSpec(fmt, entry.name)
        return cls(settings.scheme, groups)

    def bits(self, group: str) -> int:
        spec = self.groups.get(group)
        return spec.fmt.bits if spec else 32


class QuantRuntime:
    """Puts float values on their group's grid (simulated fixed point).

    Stochastic rounding draws from a generator seeded by (seed, sample, presentation), so a run is
    reproducible and a resumed run is bit-identical.
    """

    def __init__(self, plan: QuantPlan):
        from .registry import get_registry

        self.plan = plan
        self.lost_decays: list[str] = []     # set by prepare_quantized
        reg = get_registry()
        self._fns = {g: reg.get("rounding", s.rounding) for g, s in plan.groups.items()}
        self.rng = np.random.default_rng(0)

    def has(self, group: str) -> bool:
        return group in self.plan.groups

    def seed(self, seed: int, sample: int, retry: int) -> None:
        self.rng = np.random.default_rng([seed, sample, retry, 0x51])

    def q(self, group: str, values, offset: float = 0.0):
        """``values`` on the grid of ``group`` (``offset`` is subtracted first and added back:
        the potential is stored relative to rest)."""
        spec = self.plan.groups.get(group)
        if spec is None:
            return values
        codes = round_codes(np.asarray(values, dtype=np.float64) - offset, spec.fmt,
                            self._fns[group], self.rng)
        return codes * spec.fmt.step + offset


def quantizer_for(config):
    """The configured quantizer plugin and its plan, or (None, None) for float."""
    if config.quant.scheme in ("none", "", None):
        return None, None
    from .registry import get_registry

    quantizer = get_registry().get("quantizer", config.quant.scheme)()
    return quantizer, QuantPlan.from_settings(config.quant)


def prepare_quantized(quantizer, net, plan):
    """``quantizer.prepare``, and the decay factors it rounded to 0 or 1 noted in
    ``net.quant.lost_decays`` (``quant.lost_decays``) for the caller to report."""
    before = decay_factors(net)
    net = quantizer.prepare(net, plan) or net
    spec = plan.groups.get("decay")
    if net.quant is not None:
        net.quant.lost_decays = lost_decays(before, net, spec.fmt if spec else None,
                                            learning=bool(quantizer.in_training))
    return net
