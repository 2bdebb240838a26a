"""The NumPy backend: the readable reference simulator and the oracle for every other backend.

One presentation of one sample, step t = 0..T-1 (PAPER.md section 2b, synchronous update):

    I_exc(t) = sum of w[i, :] over the inputs i that spike at t          (event driven)
             + w_lateral * (S(t-1) - s(t-1))      S = spikes of the inhibition source at t-1:
                                                  the excitatory layer itself (direct) or the
                                                  inhibitory layer (Diehl & Cook)
    I_inh(t) = w_exc_inh * s_exc(t-1)                                   (Diehl & Cook only)
    excitatory and inhibitory neurons step (neuron-model plugins)
    while learning: traces decay and reset at spikes, then the learning rule's step
After the presentation: the rule's end_sample; when the layer fired fewer than the encoder's
retry_min_spikes, present the sample again at a higher rate; while learning, normalise the
columns the rule wrote to sum to ``train.norm``.
"""

from __future__ import annotations

import numpy as np

from tinysnn_core import counter_rng, hookimpl
from tinysnn_core.builtin.encoders import presentation_step_keys
from tinysnn_core.data import check_batch
from tinysnn_core.network import LearningContext, Network
from tinysnn_core.ops import OpCounts


def winner_draws(seed: int, sample: int, retry: int, n_steps: int) -> np.ndarray:
    """The one-spike winner's random word for each step of a presentation."""
    keys = presentation_step_keys(seed, sample, retry, n_steps)
    return counter_rng.draws(keys, np.array([counter_rng.WINNER_INDEX]))[:, 0].astype(np.int64)


def normalize_columns(w: np.ndarray, cols: np.ndarray, norm: float, ops: OpCounts) -> None:
    """Scale the given columns so each sums to ``norm`` (a zero sum counts as 1, as BindsNET)."""
    if cols.size == 0:
        return
    sums = np.abs(w[:, cols]).sum(axis=0)
    sums[sums == 0] = 1.0
    w[:, cols] *= norm / sums
    ops.norm_ops += 2 * w.shape[0] * cols.size


def present(net: Network, image: np.ndarray, sample: int, retry: int, *, learn: bool,
            seed: int, ops: OpCounts, record=None) -> np.ndarray:
    """Simulate one presentation; returns the excitatory spike counts [N]. ``record``: a
    ``tinysnn_core.monitors.Record`` that wants this sample, or None."""
    cfg, topo = net.config, net.topology
    T, N, n_in = cfg.train.time_steps, net.n_neurons, net.n_inputs
    exc, inh, rule, w = net.exc, net.inh, net.rule, net.w

    state_e = exc.init_state()
    if "theta" in state_e:
        state_e["theta"] = net.theta          # adaptive thresholds persist across samples
    state_i = inh.init_state() if inh is not None else None
    spikes_in = net.encoder.encode(image, seed, sample, retry, T)
    rand = winner_draws(seed, sample, retry, T)

    qr = net.quant                            # simulated fixed point, or None (float64)
    if qr is not None:
        qr.seed(seed, sample, retry)
    x_pre = np.zeros(n_in)
    x_post = np.zeros(N) if rule.needs_post_trace else None
    ctx = LearningContext(w, x_pre, x_post, topo.wmin, topo.wmax, ops, np.zeros(N, dtype=bool))
    if qr is not None and qr.has("weights"):
        ctx.put_weights = lambda values: qr.q("weights", values)
    if learn:
        rule.begin_sample(ctx)

    counts = np.zeros(N, dtype=np.int64)
    s_prev = np.zeros(N, dtype=bool)          # inhibition source spikes of the previous step
    e_prev = np.zeros(N, dtype=bool)          # excitatory spikes of the previous step
    n_input_spikes = n_inh_spikes = 0
    if record is not None:
        mon = _Monitor(record, net, T)
    for t in range(T):
        pre = spikes_in[t]
        n_input_spikes += pre.size
        current = w[pre].sum(axis=0) if pre.size else np.zeros(N)
        ops.synaptic_events += pre.size * N
        n_src = int(s_prev.sum())
        if n_src:
            current += topo.w_lateral * (n_src - s_prev)
            ops.lateral_events += n_src * (N - 1)
        if inh is not None:
            n_exc_prev = int(e_prev.sum())
            current_inh = topo.w_exc_inh * e_prev if n_exc_prev else np.zeros(N)
            ops.lateral_events += n_exc_prev

        s = exc.step(state_e, current, learn, int(rand[t]))
        if qr is not None:
            state_e["v"][:] = qr.q("potential", state_e["v"], exc.p.rest)
            if learn and "theta" in state_e:
                state_e["theta"][:] = qr.q("theta", state_e["theta"])
        if inh is not None:
            s_inh = inh.step(state_i, current_inh, learn)
            if qr is not None:
                state_i["v"][:] = qr.q("potential", state_i["v"], inh.p.rest)
            n_inh_spikes += int(s_inh.sum())
            s_prev, e_prev = s_inh, s
        else:
            s_prev = e_prev = s
        counts += s

        if learn:
            x_pre *= rule.trace_decay
            x_pre[pre] = 1.0
            ops.trace_updates += n_in
            post = np.flatnonzero(s)
            if x_post is not None:
                x_post *= rule.trace_decay
                x_post[post] = 1.0
                ops.trace_updates += N
            if qr is not None and qr.has("traces"):
                x_pre[:] = qr.q("traces", x_pre)
                if x_post is not None:
                    x_post[:] = qr.q("traces", x_post)
            rule.step(ctx, pre, post)
        if record is not None:      # the state at the end of the step
            mon.step(t, s, state_e, x_post if learn else None)

    if record is not None:
        mon.finish(sample, retry)
    ops.presentations += 1
    ops.time_steps += T
    ops.neuron_updates_exc += T * N
    if inh is not None:
        ops.neuron_updates_inh += T * N
        ops.inh_spikes += n_inh_spikes
    ops.input_spikes += n_input_spikes
    ops.exc_spikes += int(counts.sum())
    if learn:
        rule.end_sample(ctx, counts)
        if cfg.train.normalize:
            cols = np.flatnonzero(ctx.dirty)
            normalize_columns(w, cols, cfg.train.norm, ops)
            if qr is not None and qr.has("weights") and cols.size:
                w[:, cols] = qr.q("weights", w[:, cols])
    return counts


class _Monitor:
    """One presentation's recording (``tinysnn_core.monitors``): spikes of the layer, and the
    chosen neurons' state at the end of every step."""

    def __init__(self, record, net: Network, T: int):
        self.record = record
        self.idx = record.neuron_index(net.n_neurons)
        self.values = {name: np.zeros((T, self.idx.size)) for name in record.state_variables}
        self.want_spikes = "spikes" in record.variables
        self.steps, self.neurons = [], []
        self.decay = net.rule.trace_decay
        self.trace = np.zeros(self.idx.size)     # the monitor's own, without the rule's

    def step(self, t: int, s: np.ndarray, state: dict, x_post) -> None:
        if self.want_spikes:
            fired = np.flatnonzero(s)
            self.steps.append(np.full(fired.size, t, dtype=np.int64))
            self.neurons.append(fired)
        vals = self.values
        if "v" in vals:
            vals["v"][t] = state["v"][self.idx]
        if "theta" in vals:
            vals["theta"][t] = state["theta"][self.idx]
        if "trace" in vals:
            if x_post is not None:
                vals["trace"][t] = x_post[self.idx]
            else:
                self.trace *= self.decay
                self.trace[s[self.idx]] = 1.0
                vals["trace"][t] = self.trace

    def finish(self, sample: int, retry: int) -> None:
        cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
        self.record.add_presentation(sample, retry, cat(self.steps), cat(self.neurons),
                                     self.values)


def run_sample(net: Network, image: np.ndarray, sample: int, *, learn: bool, seed: int,
               ops: OpCounts, record=None) -> np.ndarray:
    """All presentations of one sample (Diehl & Cook retry rule); the last one's counts.
    ``record``: a ``Record`` that wants this sample, or None."""
    enc = net.encoder.params
    for retry in range(enc.max_retries + 1):
        counts = present(net, image, sample, retry, learn=learn, seed=seed, ops=ops,
                         record=record)
        if counts.sum() >= enc.retry_min_spikes:
            break
    ops.samples += 1
    if record is not None:
        record.add_sample(sample, counts)
    return counts


class NumpyBackend:
    """Reference simulator in NumPy (float64), event-driven input accumulation."""

    name = "numpy"

    def available(self):
        return True, ""

    def run(self, net: Network, images: np.ndarray, sample_ids, *, learn: bool, seed: int,
            ops: OpCounts, record=None) -> np.ndarray:
        images, sample_ids = check_batch(images, sample_ids, net.n_inputs)
        if record is not None:
            record.check(net, learn)
        out = np.zeros((len(images), net.n_neurons), dtype=np.int64)
        for b, (image, sample) in enumerate(zip(images, sample_ids)):
            rec = record if record is not None and record.wants(int(sample)) else None
            out[b] = run_sample(net, image, int(sample), learn=learn, seed=seed, ops=ops,
                                record=rec)
        return out


@hookimpl
def register_backends(register):
    register("numpy", NumpyBackend, summary="reference simulator (NumPy, float64)")
