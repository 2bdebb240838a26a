"""STDP learning rules (PAPER.md section 4).

Rules run after the neurons of a step updated, with that step's spikes and traces
(``x <- x * exp(-dt/tc_trace)``, then ``x = 1`` where a spike occurred). Weights are clamped to
[wmin, wmax] after every write. Every weight element a rule writes is one STDP update in the
operation counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinysnn_core import hookimpl


@dataclass
class PostPreParams:
    nu_pre: float = 1e-4        # depression per presynaptic spike (times the post trace)
    nu_post: float = 1e-2       # potentiation per postsynaptic spike (times the pre trace)
    tc_trace: float = 20.0      # ms

    def check(self):
        if self.tc_trace <= 0 or self.nu_pre < 0 or self.nu_post < 0:
            raise ValueError(f"tc_trace must be positive and nu_pre, nu_post >= 0, got "
                             f"{self.tc_trace}, {self.nu_pre}, {self.nu_post}")


class PostPre:
    """Pair-based STDP (BindsNET PostPre): depress on every input spike, potentiate on every
    output spike. About P*N + Q*784 weight updates per sample (P input, Q output spikes)."""

    Params = PostPreParams
    needs_post_trace = True

    def __init__(self, params, n_pre: int, n_post: int, dt: float = 1.0):
        self.p = params
        self.trace_decay = math.exp(-dt / params.tc_trace)

    def begin_sample(self, ctx):
        pass

    def depression(self, ctx, rows):
        return ctx.w[rows] - self.p.nu_pre * ctx.x_post[None, :]

    def potentiation(self, ctx, cols):
        return ctx.w[:, cols] + self.p.nu_post * ctx.x_pre[:, None]

    def step(self, ctx, pre_idx: np.ndarray, post_idx: np.ndarray) -> None:
        n_pre, n_post = ctx.w.shape
        if pre_idx.size and self.p.nu_pre:
            ctx.store_rows(pre_idx, self.depression(ctx, pre_idx))
            ctx.dirty[:] = True
            ctx.ops.stdp_updates += pre_idx.size * n_post
        if post_idx.size and self.p.nu_post:
            ctx.store_cols(post_idx, self.potentiation(ctx, post_idx))
            ctx.ops.stdp_updates += post_idx.size * n_pre

    def end_sample(self, ctx, counts: np.ndarray) -> None:
        pass


class WeightDependentPostPre(PostPre):
    """Pair-based STDP with soft bounds (BindsNET WeightDependentPostPre): depression scales
    with (w - wmin), potentiation with (wmax - w)."""

    def depression(self, ctx, rows):
        w = ctx.w[rows]
        return w - self.p.nu_pre * ctx.x_post[None, :] * (w - ctx.wmin)

    def potentiation(self, ctx, cols):
        w = ctx.w[:, cols]
        return w + self.p.nu_post * ctx.x_pre[:, None] * (ctx.wmax - w)


@dataclass
class TinySNNSTDPParams:
    nu_post: float = 1e-2           # eta: learning rate at postsynaptic spikes
    x_tar: float = 0.0              # target presynaptic trace (depression folded in)
    mu: float = 0.0                 # weight dependence exponent: dw *= (wmax - w) ** mu
    adaptive_potentiation: bool = True
    target_spikes: float = 10.0     # layer spikes per sample at which the factor k is 1
    k_min: float = 0.5
    k_max: float = 2.0
    weight_decay: float = 0.0       # per sample, on the updated columns: w *= (1 - weight_decay)
    min_post_spikes: int = 1        # spurious-update filter: a neuron learns from a sample only
                                    # when it fired at least this often in it
    tc_trace: float = 20.0

    def check(self):
        if self.tc_trace <= 0 or self.nu_post < 0 or self.mu < 0 or self.target_spikes <= 0:
            raise ValueError(f"tc_trace and target_spikes must be positive, nu_post and mu >= 0; "
                             f"got {self.tc_trace}, {self.target_spikes}, {self.nu_post}, "
                             f"{self.mu}")
        if self.min_post_spikes < 0:
            raise ValueError(f"min_post_spikes must be >= 0, got {self.min_post_spikes}")
        if not 0 < self.k_min <= self.k_max:
            raise ValueError(f"need 0 < k_min <= k_max, got {self.k_min}, {self.k_max}")
        if not 0 <= self.weight_decay < 1:
            raise ValueError(f"weight_decay must be in [0, 1), got {self.weight_decay}")


class TinySNNSTDP:
    """tinySNN's reduced STDP (our reading of PAPER.md section 4e; the paper's formulas are not
    public): updates only at postsynaptic spikes with potentiation and depression in one term,
    ``dw[:, j] = k * eta * sum(x_pre at j's spikes) - eta * n_j * x_tar``, applied once per sample
    to the neurons that passed the spurious-update filter; ``k`` is an adaptive potentiation
    factor (``target_spikes / layer spikes``, clipped); no postsynaptic traces are needed."""

    Params = TinySNNSTDPParams
    needs_post_trace = False

    def __init__(self, params, n_pre: int, n_post: int, dt: float = 1.0):
        self.p = params
        self.trace_decay = math.exp(-dt / params.tc_trace)
        self._acc: dict[int, np.ndarray] = {}
        self._count: dict[int, int] = {}

    def begin_sample(self, ctx):
        self._acc.clear()
        self._count.clear()

    def step(self, ctx, pre_idx: np.ndarray, post_idx: np.ndarray) -> None:
        ctx.ops.stdp_accumulates += post_idx.size * ctx.w.shape[0]
        for j in post_idx.tolist():
            if j in self._acc:
                self._acc[j] += ctx.x_pre
                self._count[j] += 1
            else:
                self._acc[j] = ctx.x_pre.copy()
                self._count[j] = 1

    def potentiation_factor(self, total_spikes: int) -> float:
        p = self.p
        if not p.adaptive_potentiation:
            return 1.0
        return float(np.clip(p.target_spikes / max(1, total_spikes), p.k_min, p.k_max))

    def end_sample(self, ctx, counts: np.ndarray) -> None:
        p = self.p
        cols = np.array(sorted(j for j, c in self._count.items() if c >= p.min_post_spikes),
                        dtype=np.int64)
        if cols.size == 0:
            return
        k = self.potentiation_factor(int(counts.sum()))
        acc = np.stack([self._acc[j] for j in cols.tolist()], axis=1)
        n_j = np.array([self._count[j] for j in cols.tolist()], dtype=np.float64)
        dw = p.nu_post * (k * acc - n_j[None, :] * p.x_tar)
        w = ctx.w[:, cols]
        if p.mu:
            dw *= np.power(np.clip(ctx.wmax - w, 0.0, None), p.mu)
        w = w + dw
        if p.weight_decay:
            w *= 1.0 - p.weight_decay
        ctx.store_cols(cols, w)
        ctx.ops.stdp_updates += cols.size * ctx.w.shape[0]


@hookimpl
def register_learning_rules(register):
    register("postpre", PostPre, aliases=("pair", "pair-stdp"),
             summary="pair-based STDP (BindsNET PostPre)")
    register("weight-dependent", WeightDependentPostPre, aliases=("soft-bound",),
             summary="pair-based STDP with soft weight bounds (BindsNET WeightDependentPostPre)")
    register("tinysnn-stdp", TinySNNSTDP, aliases=("reduced-stdp",),
             summary="post-spike-only STDP with adaptive potentiation and update filter")
