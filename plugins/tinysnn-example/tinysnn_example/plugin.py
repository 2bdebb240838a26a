"""The example plugin's hook implementations.

- neuron model ``nonleaky-if``: integrate-and-fire without leak, with an adaptive threshold,
  a fit for integer-only microcontrollers (no multiply per step);
  it runs in integer mode (``integer_constants``, ``integer_step``) and on a board (the C step
  ``nonleaky_if.h``, shipped as package data);
- rounding scheme ``half-even`` (alias ``RNE``): round to nearest, ties to the even code
  (convergent rounding), unbiased on ties unlike ``nearest``;
- cost model ``weight-traffic``: the bytes an integer inference reads from flash, mostly the
  packed weight rows of the input spikes (``WeightTraffic``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysnn_core import hookimpl
from tinysnn_core.counter_rng import keep_one_spike
from tinysnn_core.fixedpoint import round_codes

#: how far below rest inhibition can push the potential (mV): the floor of ``step``
FLOOR_BELOW_REST = 40.0


@dataclass
class NonLeakyIFParams:
    rest: float = -65.0         # mV, potential after a reset between samples
    reset: float = -65.0        # mV, potential after a spike
    thresh: float = -52.0       # mV
    refrac: int = 5             # steps
    theta_plus: float = 0.05    # mV added to the threshold per spike while learning
    one_spike: bool = True      # at most one spike per step in the layer

    def check(self):
        if self.reset >= self.thresh:
            raise ValueError("reset must be below thresh")


class NonLeakyIF:
    """Integrate-and-fire neurons without leak, with an adaptive threshold."""

    Params = NonLeakyIFParams
    state_groups = {"v": "potential", "theta": "theta"}
    #: the C step the firmware compiles in when a model uses this neuron (integer mode)
    c_step = Path(__file__).with_name("nonleaky_if.h")

    def __init__(self, params: NonLeakyIFParams, n: int, dt: float = 1.0):
        self.p, self.n, self.dt = params, n, dt
        self.one_spike = params.one_spike

    def init_state(self) -> dict:
        return {"v": np.full(self.n, self.p.rest), "refrac": np.zeros(self.n),
                "theta": np.zeros(self.n)}

    def reset(self, state: dict) -> None:
        state["v"].fill(self.p.rest)
        state["refrac"].fill(0.0)

    def step(self, state, current, learning, rand=0):
        v, refrac, theta = state["v"], state["refrac"], state["theta"]
        v += np.where(refrac <= 0, current, 0.0)
        np.maximum(v, self.p.rest - FLOOR_BELOW_REST, out=v)  # inhibition cannot wind up
        refrac -= self.dt
        crossed = v >= self.p.thresh + theta
        if crossed.any():
            v[crossed] = self.p.reset
            refrac[crossed] = self.p.refrac
            if learning:
                theta[crossed] += self.p.theta_plus
            if self.one_spike:     # the core's rule, so every backend draws the same winner
                crossed = keep_one_spike(crossed, rand)
        return crossed


    # -- integer mode (docs/plugins.md, "Neuron models"; potentials are u = v - rest) ----------
    def integer_constants(self, fmt):
        """The floor, -40 mV from rest, as a code of the potential format ``fmt``."""
        return {"FLOOR": int(round_codes(np.array([-FLOOR_BELOW_REST]), fmt, "nearest")[0])}

    @staticmethod
    def integer_step(codes, u, refrac, current):
        """``step`` in integers (the same order; the core then applies the one-spike rule):
        add the current unless refractory, floor, saturate to the format, count down, reset
        who crossed. ``nonleaky_if.h`` is the same, per neuron, in C."""
        u = np.where(refrac <= 0, u + current, u)
        u = np.maximum(u, codes.constants["FLOOR"])
        u = np.minimum(np.maximum(u, codes.u_min), codes.u_max)
        refrac = refrac - 1
        crossed = u >= codes.thresh
        u = np.where(crossed, codes.reset, u)
        refrac = np.where(crossed, codes.refrac, refrac)
        return u, refrac, crossed


class WeightTraffic:
    """Bytes read from flash per integer inference: each input spike reads its pixel's row of
    packed weight codes (``ceil(N * bits / 8)`` bytes), and each time step reads every neuron's
    threshold once (the potential's word size, ``ceil(bits / 8)`` bytes per neuron). On a
    microcontroller without a cache these reads dominate the flash accesses, and flash reads cost
    wait states and energy (e.g. STM32L4: 4 wait states at 80 MHz), so the figure ranks models by
    memory traffic where the ASIC model ranks them by arithmetic. Inputs: the per-sample counts
    ``input_spikes`` and ``steps`` of ``tinysnn_core.intsim.INFER_OPS``."""

    def integer_inference_cost(self, model, ops: dict) -> dict:
        n = int(model.n_neurons)
        row_bytes = -(-n * int(model.w_format.bits) // 8)
        th_bytes = -(-_format_bits(model.formats, "potential") // 8) * n
        per_sample = (np.asarray(ops["input_spikes"], dtype=np.int64) * row_bytes
                      + np.asarray(ops["steps"], dtype=np.int64) * th_bytes)
        return {"label": "flash bytes read: weight rows of the input spikes + thresholds per step",
                "weight_row_bytes": row_bytes,
                "bytes_median": float(np.median(per_sample)),
                "bytes_mean": float(np.mean(per_sample))}


def _format_bits(formats: dict, group: str) -> int:
    from tinysnn_core.fixedpoint import QFormat

    return QFormat.parse(formats[group]["format"]).bits


def half_even(scaled, rng=None):
    """Round to nearest, ties to even (convergent rounding)."""
    return np.rint(np.asarray(scaled, dtype=np.float64))


@hookimpl
def register_neuron_models(register):
    register("nonleaky-if", NonLeakyIF, summary="integrate-and-fire without leak (example plugin)")


@hookimpl
def register_rounding_schemes(register):
    register("half-even", half_even, aliases=("RNE",),
             summary="round to nearest, ties to even (example plugin)")


@hookimpl
def register_cost_models(register):
    register("weight-traffic", WeightTraffic,
             summary="flash bytes an integer inference reads (weight rows, thresholds; example "
                     "plugin)")
