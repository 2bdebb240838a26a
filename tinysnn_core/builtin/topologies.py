"""Network topologies (PAPER.md section 1).

- ``diehl-cook``: the baseline, BindsNET ``DiehlAndCook2015``: 784 inputs -> N excitatory ->
  N inhibitory (one-to-one, weight ``exc``) -> every other excitatory neuron (weight ``-inh``).
  2N neuron updates per step, N + N(N-1) inhibitory synapses.
- ``tinysnn``: the reduced network, BindsNET ``DiehlAndCook2015v2`` with the recurrent weights
  stored as one shared scalar ``w_inh``: no inhibitory layer, each excitatory spike inhibits every
  other excitatory neuron directly. N neuron updates per step, one stored inhibition weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysnn_core import hookimpl
from tinysnn_core.network import Topology


@dataclass
class DiehlCookParams:
    exc: float = 22.5           # exc -> inh weight (BindsNET default)
    inh: float = 120.0          # inh -> exc strength: BindsNET's eth_mnist value (the model's
                                # own default, 17.5, is 5-22 points worse on mnist-5k's
                                # validation split; docs/results.md)
    w_init_scale: float = 0.3   # initial input weights: w_init_scale * U(0, 1)
    wmin: float = 0.0
    wmax: float = 1.0

    def check(self):
        if self.exc < 0 or self.inh < 0:
            raise ValueError("exc and inh are magnitudes and must be >= 0")
        if not self.wmin < self.wmax:
            raise ValueError(f"wmin ({self.wmin}) must be below wmax ({self.wmax})")


class DiehlCook:
    """Diehl & Cook 2015 baseline: excitatory layer plus an inhibitory layer."""

    Params = DiehlCookParams

    def __init__(self, params: DiehlCookParams):
        self.p = params

    def build(self, n_inputs: int, n_neurons: int, rng) -> Topology:
        w = self.p.w_init_scale * rng.random((n_inputs, n_neurons))
        return Topology(np.clip(w, self.p.wmin, self.p.wmax), True, w_exc_inh=self.p.exc,
                        w_lateral=-self.p.inh, wmin=self.p.wmin, wmax=self.p.wmax)


@dataclass
class TinySNNParams:
    w_inh: float = -120.0       # shared direct lateral inhibition, chosen on the validation split
                                # at N = 100 and 400 (docs/results.md; PAPER.md 1c: sweep per size)
    w_init_scale: float = 0.3
    wmin: float = 0.0
    wmax: float = 1.0

    def check(self):
        if self.w_inh > 0:
            raise ValueError(f"w_inh is an inhibition and must be <= 0, got {self.w_inh}")
        if not self.wmin < self.wmax:
            raise ValueError(f"wmin ({self.wmin}) must be below wmax ({self.wmax})")


class TinySNN:
    """tinySNN reduced network: direct lateral inhibition with one shared strength."""

    Params = TinySNNParams

    def __init__(self, params: TinySNNParams):
        self.p = params

    def build(self, n_inputs: int, n_neurons: int, rng) -> Topology:
        w = self.p.w_init_scale * rng.random((n_inputs, n_neurons))
        return Topology(np.clip(w, self.p.wmin, self.p.wmax), False, w_lateral=self.p.w_inh,
                        wmin=self.p.wmin, wmax=self.p.wmax)


@hookimpl
def register_topologies(register):
    register("diehl-cook", DiehlCook, aliases=("dc", "baseline"),
             summary="Diehl & Cook 2015 baseline: excitatory + inhibitory layer")
    register("tinysnn", TinySNN, aliases=("reduced",),
             summary="reduced network: direct lateral inhibition, one shared strength")
