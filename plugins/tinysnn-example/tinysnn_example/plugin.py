"""The example plugin's hook implementations.

- neuron model ``nonleaky-if``: integrate-and-fire without leak, with an adaptive threshold,
  a fit for integer-only microcontrollers (no multiply per step);
- rounding scheme ``half-even`` (alias ``RNE``): round to nearest, ties to the even code
  (convergent rounding), unbiased on ties unlike ``nearest``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysnn_core import hookimpl
from tinysnn_core.counter_rng import keep_one_spike


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
        np.maximum(v, self.p.rest - 40.0, out=v)   # floor: inhibition cannot wind up forever
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
