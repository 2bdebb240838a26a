"""The network a backend simulates: its learned parameters, its topology and its plugins.

The core knows only this generic shape (PAPER.md section 1): Poisson inputs feed N excitatory
neurons through plastic weights ``w`` [n_inputs, N]; lateral inhibition reaches every *other*
excitatory neuron either through an inhibitory layer (Diehl & Cook: exc -> inh one-to-one, then
inh -> all other exc) or directly (tinySNN: one shared strength). Which one, and all numbers, come
from the topology plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import contracts
from .config import Config
from .ops import OpCounts
from .registry import get_registry

ALIGN = 64      # bytes: a cache line, and one AVX-512 vector


def aligned(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it is C-contiguous and starts on an ``ALIGN``-byte boundary, else an
    equal C-contiguous copy that does. The network keeps its parameters so: a compiled backend
    loads their rows as 64-byte vectors, and a row that straddles cache lines costs numba's
    training about a tenth of its time (docs/benchmarks.md, "Aligned weights")."""
    a = np.asarray(a)
    if a.flags.c_contiguous and a.ctypes.data % ALIGN == 0:
        return a
    buf = np.empty(a.nbytes + ALIGN, dtype=np.uint8)
    off = -buf.ctypes.data % ALIGN
    out = buf[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@dataclass
class Topology:
    """What a topology plugin builds."""

    w_init: np.ndarray              # [n_inputs, N] initial input weights
    inhibitory_layer: bool          # True: exc -> inh -> other exc; False: exc -> other exc
    w_exc_inh: float = 0.0          # exc -> inh one-to-one weight (layer only)
    w_lateral: float = 0.0          # inhibition onto every other exc neuron per spike (<= 0)
    wmin: float = 0.0
    wmax: float = 1.0


@dataclass
class Network:
    """A trainable SNN: configuration, plugins, learned parameters and label assignments."""

    config: Config
    w: np.ndarray                   # [n_inputs, N] float64
    theta: np.ndarray               # [N] adaptive threshold offsets
    topology: Topology
    assignments: np.ndarray | None = None     # [N] class of each neuron (-1: none)
    proportions: np.ndarray | None = None     # [N, n_classes]
    ops: dict = field(default_factory=dict)   # phase -> OpCounts
    progress: dict = field(default_factory=dict)  # training position, for resume
    quant: object = None            # QuantRuntime while simulating fixed point, else None

    def __post_init__(self):
        self.w, self.theta = aligned(self.w), aligned(self.theta)
        reg = get_registry()
        cfg = self.config
        dt = cfg.train.dt
        n = self.w.shape[1]
        self.exc = reg.get("neuron_model", cfg.plugin_name("exc_neuron"))(
            cfg.plugin_params("exc_neuron"), n, dt)
        self.inh = None
        if self.topology.inhibitory_layer:
            self.inh = reg.get("neuron_model", cfg.plugin_name("inh_neuron"))(
                cfg.plugin_params("inh_neuron"), n, dt)
        self.rule = reg.get("learning_rule", cfg.plugin_name("learning"))(
            cfg.plugin_params("learning"), self.w.shape[0], n, dt)
        self.encoder = reg.get("encoder", cfg.plugin_name("encoder"))(
            cfg.plugin_params("encoder"), dt)
        # what the constructors set, which registration could not check
        for kind, slot, obj in (("neuron_model", "exc_neuron", self.exc),
                                ("neuron_model", "inh_neuron", self.inh),
                                ("learning_rule", "learning", self.rule),
                                ("encoder", "encoder", self.encoder)):
            if obj is not None:
                contracts.check_built(kind, cfg.plugin_name(slot), obj)

    def __setstate__(self, state):
        """Unpickling and ``copy.deepcopy`` (which bypass ``__post_init__``) keep the
        parameters aligned too."""
        self.__dict__.update(state)
        self.w, self.theta = aligned(self.w), aligned(self.theta)

    @property
    def n_inputs(self) -> int:
        return self.w.shape[0]

    @property
    def n_neurons(self) -> int:
        return self.w.shape[1]

    def phase_ops(self, phase: str) -> OpCounts:
        return self.ops.setdefault(phase, OpCounts())

    @classmethod
    def build(cls, config: Config, n_inputs: int = 784) -> "Network":
        """A fresh, untrained network from a configuration (seeded)."""
        reg = get_registry()
        rng = np.random.default_rng(config.seed)
        topo_cls = reg.get("topology", config.plugin_name("topology"))
        topology = topo_cls(config.plugin_params("topology")).build(n_inputs, config.n_neurons, rng)
        w = np.array(topology.w_init, dtype=np.float64)
        if config.train.normalize:  # start from normalised columns, as after any training sample
            sums = w.sum(axis=0)
            sums[sums == 0] = 1.0
            w *= config.train.norm / sums
        return cls(config, w, np.zeros(config.n_neurons), topology)


@dataclass
class LearningContext:
    """What a learning rule sees during one presentation."""

    w: np.ndarray                   # [n_inputs, N] weights, updated in place
    x_pre: np.ndarray               # [n_inputs] presynaptic traces
    x_post: np.ndarray | None       # [N] postsynaptic traces (None if the rule needs none)
    wmin: float
    wmax: float
    ops: OpCounts
    dirty: np.ndarray               # [N] bool: columns written this sample (for normalisation)
    put_weights: object = None      # callable(values) -> values on the weight grid (ITQ), or None

    def store_rows(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Clamp (and, in-training quantization, round) then write weight rows."""
        values = np.clip(values, self.wmin, self.wmax)
        if self.put_weights is not None:
            values = self.put_weights(values)
        self.w[rows] = values

    def store_cols(self, cols: np.ndarray, values: np.ndarray) -> None:
        values = np.clip(values, self.wmin, self.wmax)
        if self.put_weights is not None:
            values = self.put_weights(values)
        self.w[:, cols] = values
        self.dirty[cols] = True
