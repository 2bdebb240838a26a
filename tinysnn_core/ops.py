"""Operation counters: what a run did, counted by every backend, read by the cost models."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class OpCounts:
    samples: int = 0              # samples processed (a retry is not a new sample)
    presentations: int = 0        # presentations, retries included
    time_steps: int = 0           # simulated steps
    input_spikes: int = 0         # spikes emitted by the input layer
    exc_spikes: int = 0           # spikes emitted by the excitatory layer
    inh_spikes: int = 0           # spikes emitted by the inhibitory layer
    neuron_updates_exc: int = 0   # excitatory neuron state updates (N per step)
    neuron_updates_inh: int = 0   # inhibitory neuron state updates (N per step, D&C only)
    synaptic_events: int = 0      # input spike x fan-out accumulations
    lateral_events: int = 0       # inhibition accumulations (exc->inh, inh->exc or direct)
    trace_updates: int = 0        # synaptic trace decays and resets
    stdp_updates: int = 0         # weight elements written by the learning rule
    stdp_accumulates: int = 0     # trace values summed by a rule that defers its writes
    norm_ops: int = 0             # weight elements read or scaled by normalisation

    def add(self, other: "OpCounts") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        return asdict(self)

    def per_sample(self) -> dict:
        n = max(1, self.samples)
        return {k: v / n for k, v in asdict(self).items() if k != "samples"}

    @classmethod
    def from_dict(cls, data: dict) -> "OpCounts":
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in known})
