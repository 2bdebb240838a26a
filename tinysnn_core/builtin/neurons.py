"""Neuron models (PAPER.md section 2b: BindsNET's LIFNodes and DiehlAndCookNodes semantics).

Per time step, in this order (current-based synapses, dt-scaled constants):

    v = rest + decay * (v - rest)                 decay = exp(-dt / tc_decay)
    theta *= theta_decay            (adaptive, learning only; exp(-dt / tc_theta_decay))
    v += I  where the refractory counter is <= 0
    refrac -= dt
    s = v >= thresh + theta
    v[s] = reset ; refrac[s] = refrac_steps
    theta += theta_plus * s         (adaptive, learning only; every crossing neuron)
    one_spike: only one crossing neuron emits its spike, drawn uniformly by the shared
               counter-based generator (the others are still reset)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinysnn_core import hookimpl
from tinysnn_core.counter_rng import keep_one_spike


@dataclass
class LIFParams:
    rest: float = -65.0         # mV
    reset: float = -65.0        # mV
    thresh: float = -52.0       # mV
    tc_decay: float = 100.0     # ms, membrane time constant
    refrac: int = 5             # steps

    def check(self):
        if self.tc_decay <= 0:
            raise ValueError(f"tc_decay must be positive, got {self.tc_decay}")
        if not 0 <= self.refrac <= 65535:       # a 16-bit counter on a board
            raise ValueError(f"refrac must be in 0..65535 steps, got {self.refrac}")


@dataclass
class AdaptiveLIFParams(LIFParams):
    reset: float = -60.0        # BindsNET DiehlAndCook2015 uses -60 (D&C's Brian code: -65)
    theta_plus: float = 0.05    # mV added to theta per spike while learning
    tc_theta_decay: float = 1e7  # ms
    one_spike: bool = True      # at most one spike per step in the layer

    def check(self):
        super().check()
        if self.tc_theta_decay <= 0:
            raise ValueError(f"tc_theta_decay must be positive, got {self.tc_theta_decay}")
        if self.theta_plus < 0:
            raise ValueError(f"theta_plus must be >= 0, got {self.theta_plus}")


class LIF:
    """Leaky integrate-and-fire neurons with a refractory period (the inhibitory layer)."""

    Params = LIFParams
    adaptive = False
    one_spike = False
    #: state variable -> quantization group
    state_groups = {"v": "potential"}

    def __init__(self, params: LIFParams, n: int, dt: float = 1.0):
        self.p = params
        self.n = n
        self.dt = dt
        self.decay = math.exp(-dt / params.tc_decay)

    def init_state(self) -> dict:
        return {"v": np.full(self.n, self.p.rest), "refrac": np.zeros(self.n)}

    def reset(self, state: dict) -> None:
        """Between samples: potentials to rest, refractory counters cleared."""
        state["v"].fill(self.p.rest)
        state["refrac"].fill(0.0)

    def threshold(self, state):
        return self.p.thresh

    def step(self, state: dict, current: np.ndarray, learning: bool, rand: int = 0) -> np.ndarray:
        p, v, refrac = self.p, state["v"], state["refrac"]
        v -= p.rest
        v *= self.decay
        v += p.rest
        self._decay_theta(state, learning)
        v += np.where(refrac <= 0, current, 0.0)
        refrac -= self.dt
        crossed = v >= self.threshold(state)
        if crossed.any():
            v[crossed] = p.reset
            refrac[crossed] = p.refrac
            self._adapt(state, crossed, learning)
            if self.one_spike:
                crossed = keep_one_spike(crossed, rand)
        return crossed

    def _decay_theta(self, state, learning):
        pass

    def _adapt(self, state, crossed, learning):
        pass


class AdaptiveLIF(LIF):
    """Adaptive-threshold LIF (Diehl & Cook excitatory neurons; BindsNET DiehlAndCookNodes)."""

    Params = AdaptiveLIFParams
    adaptive = True
    state_groups = {"v": "potential", "theta": "theta"}

    def __init__(self, params: AdaptiveLIFParams, n: int, dt: float = 1.0):
        super().__init__(params, n, dt)
        self.theta_decay = math.exp(-dt / params.tc_theta_decay)
        self.one_spike = params.one_spike

    def init_state(self) -> dict:
        state = super().init_state()
        state["theta"] = np.zeros(self.n)
        return state

    def threshold(self, state):
        return self.p.thresh + state["theta"]

    def _decay_theta(self, state, learning):
        if learning:
            state["theta"] *= self.theta_decay

    def _adapt(self, state, crossed, learning):
        if learning:
            state["theta"][crossed] += self.p.theta_plus


@hookimpl
def register_neuron_models(register):
    register("lif", LIF, summary="leaky integrate-and-fire with refractory period")
    register("adaptive-lif", AdaptiveLIF, aliases=("diehl-cook-nodes",),
             summary="adaptive-threshold LIF with one-spike winner (Diehl & Cook excitatory)")
