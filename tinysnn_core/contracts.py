"""What each kind of plugin object must provide: the contracts, written once.

Every kind has a ``typing.Protocol`` below, with the members the core (and our own plugins) use,
their types and units. A member marked ``@optional`` may be left out; its docstring says what the
core does without it. ``docs/hooks.md`` is generated from these classes
(``python -m tinysnn_core.hookdoc``), and the registry checks every registered object against
its kind's contract (``check``): the form (a class, a callable or an instance), the required
methods with call signatures that accept what the core passes, and the required class-level
attributes and ``Params`` fields. Attributes that a constructor sets (``p``, ``trace_decay``...)
cannot be seen before an object is built: the network checks those of its neuron models,
learning rule and encoder when it builds them (``check_built``).

To extend a contract, add a member to its protocol; mark it ``@optional`` unless every plugin of
that kind already has it, and say in its docstring what the core does when it is missing. A new
keyword argument of a method is marked ``@optional_arguments(name)`` the same way: a plugin's
method may lack it, and the core refuses in one line what needs it (``Backend.run``'s
``record``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:  # the contracts only name these types; importing them here would be circular
    from pathlib import Path

    import numpy as np

    from .data import Dataset
    from .fixedpoint import QFormat
    from .intsim import IntegerModel, NeuronCodes
    from .monitors import Record
    from .network import LearningContext, Network, Topology
    from .ops import OpCounts
    from .quant import QuantPlan


def optional(member):
    """Mark a protocol method (or a property's getter) as one a plugin may leave out."""
    member.__tinysnn_optional__ = True
    return member


def is_optional(fn: Callable) -> bool:
    return bool(getattr(fn, "__tinysnn_optional__", False))


def optional_arguments(*names: str):
    """Mark keyword arguments of a protocol method as ones a plugin's method may lack: the
    registration check does not require them, and the core passes one only to a method that
    takes it (``accepts_argument``), refusing in one line what needs it otherwise."""
    def mark(member):
        member.__tinysnn_optional_args__ = frozenset(names)
        return member
    return mark


def accepts_argument(fn: Callable, name: str) -> bool:
    """Whether ``fn`` (a bound method or function) takes the keyword argument ``name``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


# -- the protocols ---------------------------------------------------------------------------

class NeuronModel(Protocol):
    """A population of ``n`` neurons, one time step at a time (float64 state).

    The core builds it as ``cls(params, n, dt)`` for the excitatory layer and,
    with a Diehl & Cook topology, for the inhibitory layer. Per step it calls
    ``step(state, current, learning, rand)``, then puts ``state["v"]`` on the ``potential``
    group's grid (relative to ``p.rest``) and, while learning, ``state["theta"]`` on the
    ``theta`` group's grid. Between samples it calls ``reset(state)``. For a one-spike winner
    use ``tinysnn_core.counter_rng.keep_one_spike(crossed, rand)``, the rule every backend and
    the firmware share. Integer inference (``intsim`` and the compiled backends) and deployment
    take the built-in ``lif`` and ``adaptive-lif`` models, and a plugin's model that has the
    optional integer members below (``integer_constants`` and ``integer_step`` for integer
    inference, which then runs on ``intsim``; ``c_step`` too for a board; docs/plugins.md,
    "Neuron models").
    """

    @property
    def Params(self) -> type:
        """A dataclass of the configuration parameters (the ``[exc_neuron]`` or
        ``[inh_neuron]`` table is validated against it: an unknown key, a wrong type or a
        non-finite number is an error). Required fields: ``rest``, ``reset``, ``thresh``
        (mV; they size the potential format) and ``refrac`` (steps; the memory cost model sizes
        the refractory counters with it). A method ``check(self)`` that raises ``ValueError``
        is called after the values are set; its message becomes a one-line configuration
        error."""

    def __init__(self, params: Any, n: int, dt: float) -> None:
        """``params``: an instance of ``Params``; ``n``: neurons; ``dt``: ms per step."""

    @property
    def p(self) -> Any:
        """The ``params`` the constructor received (the core reads ``p.rest``, ``p.reset``,
        ``p.thresh`` and ``p.refrac``)."""

    def init_state(self) -> dict[str, np.ndarray]:
        """A fresh state: float64 arrays [n], at least ``v`` (membrane potential, mV) and
        ``refrac`` (refractory steps left). An adaptive model adds ``theta`` (mV over
        ``thresh``); the core then replaces it with the network's shared array, so thresholds
        persist across samples."""

    def reset(self, state: dict[str, np.ndarray]) -> None:
        """Between samples, in place: potentials to rest, refractory counters cleared (theta
        stays)."""

    def step(self, state: dict[str, np.ndarray], current: np.ndarray, learning: bool,
             rand: int = 0) -> np.ndarray:
        """Advance one step of ``dt`` in place and return who spiked (bool [n]).

        ``current``: float64 [n], this step's input as a potential increment in mV (the sum of
        the weights of the input spikes plus the lateral inhibition: current-based synapses,
        added whole, not scaled by ``dt``). ``learning``: training (theta may adapt) or
        inference. ``rand``: the step's 32-bit draw of the shared counter-based generator, for
        the one-spike winner; the inhibitory layer is called without it."""

    @property
    @optional
    def decay(self) -> float:
        """Leak factor of ``v`` per step, in (0, 1] (``exp(-dt / tc_decay)``). The
        ``decay`` group rounds it in place; without it the model has no leak to round."""

    @property
    @optional
    def theta_decay(self) -> float:
        """Decay factor of ``theta`` per step while learning; rounded in the ``decay`` group
        like ``decay``."""

    @property
    @optional
    def adaptive(self) -> bool:
        """True when the model keeps an adaptive threshold (``theta``): the memory cost model
        then counts a theta per neuron. Default False."""

    @property
    @optional
    def one_spike(self) -> bool:
        """True when at most one neuron of the layer spikes per step; integer inference reads
        it. Default False."""

    @optional
    def integer_constants(self, fmt: QFormat) -> dict[str, int]:
        """Integer mode: the model's own constants (beyond ``rest``, ``reset``, ``thresh`` +
        theta and ``refrac``, which the core converts) as codes of the potential format
        ``fmt``, relative to ``p.rest``; names are upper-case C identifiers (the firmware gets
        ``TSNN_NEURON_NAME``)."""

    @optional
    def integer_step(self, codes: NeuronCodes, u: np.ndarray, refrac: np.ndarray,
                     current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer mode, a static method (the core calls ``cls.integer_step(codes, u, refrac,
        current)``): one step of the population in integer arithmetic
        (int64 arrays [n] of potential codes relative to rest, refractory counts and input
        codes; ``codes`` holds ``u_min``, ``u_max``, ``reset``, ``thresh`` [n], ``refrac`` and
        ``constants``). Returns the new ``(u, refrac, crossed)``; the core applies the
        one-spike rule afterwards. It is the contract for this model: ``intsim``, the conformance
        kit and the C step follow it bit for bit."""

    @property
    @optional
    def c_step(self) -> Path | str:
        """On a board: a C file (its path, or its text) defining ``static int
        tsnn_neuron_step(int64_t *u, int32_t *ref, int64_t cur, int64_t th)``, one neuron's
        ``integer_step`` (returns 1 when it crossed), compiled into tinysnn-serial's generic
        engine."""


class LearningRule(Protocol):
    """An STDP variant, applied during training presentations.

    The core builds it as ``cls(params, n_pre, n_post, dt)``. Per sample:
    ``begin_sample(ctx)``; per step, after the neurons updated and the traces decayed (by
    ``trace_decay``) and were set to 1 where a spike happened, ``step(ctx, pre_idx, post_idx)``;
    after the sample ``end_sample(ctx, post_counts)``. ``ctx`` is a
    ``tinysnn_core.network.LearningContext``: the weights ``w`` [n_pre, n_post], the traces
    ``x_pre`` and ``x_post``, ``wmin``/``wmax``, the operation counters ``ops`` (an
    ``OpCounts``); write weights through ``ctx.store_rows``/``ctx.store_cols`` (they clamp and,
    under in-training quantization, round) and count every weight element written in
    ``ctx.ops.stdp_updates``.
    """

    @property
    @optional
    def Params(self) -> type:
        """A dataclass of the ``[learning]`` parameters (validated like a neuron model's,
        ``check(self)`` included). Without it the constructor receives the table as a dict."""

    def __init__(self, params: Any, n_pre: int, n_post: int, dt: float) -> None:
        """``dt``: ms per step."""

    @property
    def needs_post_trace(self) -> bool:
        """True when the rule reads postsynaptic traces (``ctx.x_post``); False gives
        ``ctx.x_post = None`` and saves their updates."""

    @property
    def trace_decay(self) -> float:
        """Decay factor of the traces per step, in (0, 1] (``exp(-dt / tc_trace)``); rounded
        in the ``decay`` group."""

    def begin_sample(self, ctx: LearningContext) -> None:
        """Before the first step of a training presentation."""

    def step(self, ctx: LearningContext, pre_idx: np.ndarray, post_idx: np.ndarray) -> None:
        """``pre_idx``: indices of the input neurons that spiked this step; ``post_idx``:
        indices of the excitatory neurons that spiked (int arrays)."""

    def end_sample(self, ctx: LearningContext, post_counts: np.ndarray) -> None:
        """After the last step; ``post_counts``: int64 [n_post] spikes per neuron."""


class TopologyPlugin(Protocol):
    """How the layers connect and the initial weights.

    The core builds it as ``cls(params)`` and calls ``build`` once per new
    network.
    """

    @property
    @optional
    def Params(self) -> type:
        """A dataclass of the ``[topology]`` parameters (validated like a neuron model's).
        Without it the constructor receives the table as a dict."""

    def __init__(self, params: Any) -> None:
        """``params``: an instance of ``Params``."""

    def build(self, n_inputs: int, n_neurons: int, rng: np.random.Generator) -> Topology:
        """A ``tinysnn_core.network.Topology``: ``w_init`` [n_inputs, n_neurons], whether an
        inhibitory layer exists, ``w_exc_inh``, ``w_lateral`` (<= 0), ``wmin``, ``wmax``.
        ``rng`` is seeded from the configuration's ``seed``."""


class Encoder(Protocol):
    """Turns an image into input spikes, as a pure function of its arguments.

    The core builds it as ``cls(params, dt)``. Randomness must come from
    ``tinysnn_core.counter_rng`` (a function of seed, sample, step and index), so that every
    backend and the firmware see the same spikes.
    """

    @property
    def Params(self) -> type:
        """A dataclass of the ``[encoder]`` parameters. Required fields: ``max_retries``
        (presentations after the first) and ``retry_min_spikes`` (present again while the
        layer spiked fewer times: the Diehl & Cook retry rule). Optional: ``max_rate_hz``, which
        ``[inference] rate_hz`` replaces."""

    def __init__(self, params: Any, dt: float) -> None:
        """``dt``: ms per step."""

    @property
    def params(self) -> Any:
        """The ``params`` the constructor received."""

    @property
    def dt(self) -> float:
        """The ``dt`` the constructor received (integer inference rebuilds the encoder with
        ``[inference]`` values)."""

    def encode(self, image: np.ndarray, seed: int, sample: int, retry: int,
               n_steps: int) -> list[np.ndarray]:
        """``image``: uint8 [784]. One int array per step: the indices of the input neurons
        that spike during presentation ``retry`` (0 first) of sample ``sample``."""

    @optional
    def rate_unit(self, retry: int) -> int:
        """The integer spike threshold of presentation ``retry``, in the units of the
        counter-based draw; integer inference and the firmware need it."""


class Quantizer(Protocol):
    """A quantization scheme (for example post- or in-training).

    The core builds it with ``cls()`` and calls ``prepare(net, plan)``: before
    training for an in-training scheme, after it otherwise. ``prepare`` puts the stored
    parameters on their groups' grids and sets ``net.quant`` to a
    ``tinysnn_core.quant.QuantRuntime`` (which rounds the state during simulation); the
    built-in schemes call ``tinysnn_core.builtin.quantizers.apply_parameters(net, plan)``.
    """

    @property
    def in_training(self) -> bool:
        """True when parameters and state stay on their grids while the network trains
        (exploration then trains a new network per point); False: rounded once, after float
        training."""

    def prepare(self, net: Network, plan: QuantPlan) -> Network | None:
        """``plan``: a ``QuantPlan`` (``scheme`` and ``groups``: group name -> ``GroupSpec``
        with ``fmt`` (a ``QFormat``) and ``rounding`` (a rounding scheme's name)). Returns the
        network (or None: the one passed, changed in place)."""


class RoundingScheme(Protocol):
    """Rounding onto a fixed-point grid.

    It receives the values divided by the grid step and
    returns the integer codes; saturation to the format's range is done afterwards by the caller.
    ``tinysnn_core.testing.rounding_conformance(name)`` checks a scheme's properties.
    """

    def __call__(self, scaled: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """``scaled``: float64, finite. Returns integer-valued float64 of the same shape.
        ``rng``: a numpy Generator for stochastic schemes (the core always passes it; it may be
        None in a direct call)."""


class CostModel(Protocol):
    """Costs of a network (memory, energy, a board's latency...).

    The core calls a class or a factory once, with no arguments, to get the object. It has at
    least one of the two methods.
    """

    @optional
    def estimate(self, net: Network, ops: dict[str, OpCounts] | None = None,
                 plan: QuantPlan | None = None) -> dict:
        """``ops``: operation counts by phase (``"train"``, ``"assign"``, ``"test"``), default
        ``net.ops``; ``plan``: the quantization plan to cost, default the network's own
        (``QuantPlan("none")`` costs everything as FP32). Returns a JSON-serialisable dict."""

    @optional
    def integer_inference_cost(self, model: IntegerModel, ops: dict[str, np.ndarray]) -> dict:
        """The cost of integer inference of ``model``; ``ops``: ``intsim``'s per-sample counts
        (``intsim.INFER_OPS`` -> int array [samples]). Needed for ``explore --cost-models``."""


class Backend(Protocol):
    """A simulator of the float (and optionally the integer) network.

    The core builds it with ``cls()``. The NumPy backend is the reference;
    every other must give the same spike counts for the same seed (a setting
    that departs from it, such as numba's ``precision = "float32"``, is opt-in).
    A ``Params`` dataclass, if the class has one, takes the ``[backend]``
    table's other keys; the configuration checks them (``Config.plugin_params``).
    """

    def available(self) -> tuple[bool, str]:
        """``(True, "")``, or ``(False, why)`` when it cannot run here (no GPU, no compiler)."""

    @optional_arguments("record")
    def run(self, net: Network, images: np.ndarray, sample_ids: np.ndarray, *, learn: bool,
            seed: int, ops: OpCounts, record: Record | None = None) -> np.ndarray:
        """``images``: uint8 [batch, 784]; ``sample_ids``: int [batch], the counter-based
        generator's sample numbers. Runs every presentation of each sample (the encoder's retry
        rule), learning when ``learn``, adds its operation counts to ``ops``, and returns the
        last presentation's excitatory spike counts, int64 [batch, N].

        ``record`` (an optional argument: a backend may leave it out, and the core then refuses
        a recording in one line instead of running without it): a
        ``tinysnn_core.monitors.Record``, or None (the default: nothing recorded, nothing
        spent). For each sample whose id ``record.wants``, the backend calls
        ``record.add_presentation`` once per presentation with the excitatory spikes as
        (step, neuron) events and, per step, ``v``, ``theta`` and ``trace`` of
        ``record.neuron_index(N)`` for the ``record.variables`` asked; then
        ``record.add_sample`` with its counts. A variable it cannot record is refused with a
        ``TinySNNError`` before any work (``record.check(net, learn)`` says what the network
        lacks)."""

    @optional
    def check(self, net: Network, *, learn: bool) -> None:
        """Raise a ``TinySNNError`` before any work for a network it cannot simulate."""

    @optional
    def run_integer(self, model: IntegerModel, images: np.ndarray, seed: int,
                    sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer inference of an ``intsim.IntegerModel``: (predictions, counts), bit-exact
        with ``intsim``. Used when the backend's ``integer_features`` (a set) holds every
        feature the model uses (``"early_exit"``; ``"ops"`` for a call with ``with_ops=True``,
        which returns (predictions, counts, ops))."""

    @optional
    def run_group(self, nets: Sequence[Network], images: np.ndarray, sample_ids: np.ndarray,
                  *, seed: int, ops_list: Sequence[OpCounts]) -> list[np.ndarray]:
        """Inference (learning off) of several networks on the same samples and seed: for each
        network the counts ``run(net, images, sample_ids, learn=False, seed=seed, ops=ops)``
        would return, with its counters added to its ``ops_list`` entry, bit for bit; work the
        networks share (the input spikes) may be done once. Used by label assignment,
        evaluation and ``explore``'s grouped points (``train.run_group_batched``); without it
        the networks run one after the other."""

    @optional
    def run_integer_group(self, models: Sequence[IntegerModel], images: np.ndarray, seed: int,
                          sample_ids: np.ndarray, *, with_ops: bool = False) -> list[tuple]:
        """``run_integer`` of several models on the same samples and seed, one result tuple
        per model, bit for bit (``intsim.run_integer_group`` calls it for the models whose
        features are all in ``integer_features``)."""


class DatasetLoader(Protocol):
    """A data set: a function of the seed and the ``[dataset]`` options.

    It must not download anything: when the data is missing, raise
    ``tinysnn_core.errors.DatasetMissing`` saying how to install it.
    """

    def __call__(self, seed: int, **options: Any) -> Dataset:
        """``options``: the ``[dataset]`` table (``name`` and ``validation`` excepted); the
        accepted ones are the function's keyword parameters, anything else is a configuration
        error. Returns a ``tinysnn_core.data.Dataset``: uint8 images [n, 784], int labels."""


class Command(Protocol):
    """A ``tinysnn`` sub-command (a class is built with ``cls()``).

    Raise a ``tinysnn_core.errors.TinySNNError`` for bad input: the CLI prints it as one line.
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments to its sub-parser."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; the exit status (None counts as 0)."""


class Board(Protocol):
    """An embedded board, emulated or physical.

    ``tinysnn board build|start|flash NAME`` looks boards up by name; ``tinysnn deploy`` and the
    board cost models use the boards of ``tinysnn-serial``.
    """

    @property
    def profile(self) -> Any:
        """A ``tinysnn_serial.boards.BoardProfile``: name, CPU, clock, flash and RAM sizes,
        toolchain (``"cc"`` for the host process)."""

    def build(self, engine_dir: Path | None = None, build_dir: Path | None = None) -> Path:
        """Build the firmware of an engine directory; returns the ELF (or executable)."""

    def start(self, elf: Path) -> Any:
        """Start the firmware; returns a running board with ``url``, ``alive()`` and
        ``stop()``."""

    def memory_use(self, elf: Path) -> Any:
        """Flash and RAM bytes the ELF uses (``flash_bytes``, ``ram_bytes``)."""

    def check_fit(self, flash_bytes: int, ram_bytes: int) -> Any:
        """A fit report of those sizes against the board's (``fits``, ``message()``)."""

    @optional
    def flash(self, elf: Path, *, mount: str | None = None, probe: str | None = None) -> str:
        """Write the firmware to a physical board; returns what was done."""


class Transport(Protocol):
    """A byte link to a board.

    Registered transports are listed by ``tinysnn plugins``; the ``--port`` of ``deploy``,
    ``measure`` and ``board selftest`` chooses among those of ``tinysnn-serial`` by its form
    (a pyserial URL, ``pty:COMMAND``, ``subprocess:COMMAND``).
    """

    def open(self) -> Any:
        """Open the link; returns the transport."""

    def close(self) -> None:
        """Close the link."""

    def write(self, data: bytes) -> None:
        """Send every byte."""

    def read(self, timeout: float = 0.0) -> bytes:
        """The bytes that arrive within ``timeout`` seconds (possibly none)."""


class EnergyMeter(Protocol):
    """Turns one measured inference window into joules.

    ``tinysnn deploy --meter NAME`` builds it as ``cls(**options)``.
    """

    def open(self, profile: Any) -> None:
        """Connect to the instrument; ``profile``: the board's ``BoardProfile``."""

    def begin(self) -> None:
        """Just before the device is told to run the window's inferences."""

    def end(self, info: dict, n: int = 1) -> dict:
        """Just after the device answered; ``info``: its timing line (``cycles``, ...).
        Returns ``{"energy_j": joules per inference, "source": text}``, or raises a
        ``TinySNNError`` when there is no measurement (a meter never invents a number)."""

    def close(self) -> None:
        """Disconnect."""

    @optional
    def available(self) -> str | None:
        """Why the meter cannot measure this board, or None."""


class Exporter(Protocol):
    """Writes a model in another form: one file (``nir``: the Neuromorphic Intermediate
    Representation) or a directory (``c``: C sources for the firmware).

    Its name is the one it is registered under. ``tinysnn export MODEL --format NAME PATH`` and
    ``tinysnn_core.export.export_model`` build it with ``cls()`` and call ``export``;
    ``tinysnn deploy`` uses ``tinysnn-serial``'s ``c``."""

    @property
    def suffix(self) -> str:
        """The suffix of the file it writes, with its dot (``".nir"``), or ``""`` when it
        writes a directory. ``export_model`` appends it to a path that has no suffix."""

    def export(self, net: Network, path: Path, **options: Any) -> Path:
        """Write ``net`` to ``path`` (a file, or a directory for an exporter whose ``suffix`` is
        ``""``); returns what was written. A quantized network is written with its dequantized
        values (what its float simulation uses). ``options``: the exporter's own keyword
        arguments (``--option KEY=VALUE`` on the command line, values parsed as TOML);
        ``export_model`` refuses, in one line, one that ``export`` does not take."""


# -- what is registered, per kind ------------------------------------------------------------

CLASS, CALLABLE, INSTANCE, CLASS_OR_INSTANCE, FACTORY = (
    "a class", "a function (any callable)", "an instance", "a class or an instance",
    "a class, a factory taking no arguments, or an instance")


@dataclass(frozen=True)
class Contract:
    """One kind's contract: its protocol, what form of object is registered and the
    class-level requirements checked at registration."""

    kind: str
    protocol: type
    form: str                                  # one of CLASS ... FACTORY
    class_attributes: tuple[str, ...] = ()     # present on the registered class itself
    params_fields: tuple[str, ...] | None = None  # required fields of a required Params
    one_of: tuple[str, ...] = ()               # optional methods of which one is required
    built_bare: bool = False                   # a registered class is built with cls()

    def members(self) -> list[tuple[str, Any, bool]]:
        """(name, function or property, required) in definition order, constructor first."""
        out = []
        for name, value in vars(self.protocol).items():
            if name.startswith("_") and name not in ("__init__", "__call__"):
                continue
            if name == "__init__" and not value.__qualname__.startswith(self.protocol.__name__):
                continue     # Protocol's own placeholder: this kind states no constructor
            if not (callable(value) or isinstance(value, property)):
                continue
            fn = value.fget if isinstance(value, property) else value
            out.append((name, value, not is_optional(fn)))
        return out


CONTRACTS: dict[str, Contract] = {c.kind: c for c in (
    Contract("neuron_model", NeuronModel, CLASS, ("Params",),
             ("rest", "reset", "thresh", "refrac")),
    Contract("learning_rule", LearningRule, CLASS),
    Contract("topology", TopologyPlugin, CLASS),
    Contract("encoder", Encoder, CLASS, ("Params",), ("max_retries", "retry_min_spikes")),
    Contract("quantizer", Quantizer, CLASS, ("in_training",), built_bare=True),
    Contract("rounding", RoundingScheme, CALLABLE),
    Contract("cost_model", CostModel, FACTORY, one_of=("estimate", "integer_inference_cost"),
             built_bare=True),
    Contract("backend", Backend, CLASS, built_bare=True),
    Contract("dataset", DatasetLoader, CALLABLE),
    Contract("command", Command, CLASS_OR_INSTANCE, built_bare=True),
    Contract("board", Board, INSTANCE),
    Contract("transport", Transport, CLASS),
    Contract("energy_meter", EnergyMeter, CLASS),
    Contract("exporter", Exporter, CLASS, ("suffix",), built_bare=True),
)}


# -- the check at registration ---------------------------------------------------------------

def _describe(obj) -> str:
    text = repr(obj)
    text = text if len(text) <= 60 else text[:57] + "..."
    return text if obj is None or isinstance(obj, type) else f"{text} ({type(obj).__name__})"


def _accepts(fn, n_positional: int, keywords: set[str]) -> bool:
    """Whether ``fn`` can be called with ``n_positional`` positional arguments and these
    keyword arguments (True when its signature cannot be read: a builtin)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(*([None] * n_positional), **{k: None for k in keywords})
    except TypeError:
        return False
    return True


def _calls(spec_fn) -> list[tuple[int, set[str]]]:
    """The calls the core makes per the protocol's signature: with the required arguments only,
    and with every argument (``self``, ``**options`` and the ``optional_arguments`` left
    out)."""
    params = list(inspect.signature(spec_fn).parameters.values())[1:]
    leave_out = getattr(spec_fn, "__tinysnn_optional_args__", frozenset())
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    kw = [p for p in params if p.kind == p.KEYWORD_ONLY and p.name not in leave_out]
    required = (sum(p.default is p.empty for p in pos),
                {p.name for p in kw if p.default is p.empty})
    return [required, (len(pos), {p.name for p in kw})]


def _bound_callable(obj, name: str):
    """``obj.name`` as the core would call it on an instance: a class's plain function gets a
    placeholder ``self`` (returns (callable, 1)), anything else none (callable, 0)."""
    value = getattr(obj, name)
    if isinstance(obj, type) and not isinstance(inspect.getattr_static(obj, name),
                                                (staticmethod, classmethod)):
        return value, 1
    return value, 0


def signature_text(fn) -> str:
    """``(name: type = default, ...) -> type`` of a protocol member, without ``self``, the
    annotations as written."""
    def ann(a):
        return a if isinstance(a, str) else inspect.formatannotation(a)

    sig = inspect.signature(fn)
    parts, star_done = [], False
    for p in list(sig.parameters.values())[1:]:
        if p.kind == p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = ("**" if p.kind == p.VAR_KEYWORD else "") + p.name
        if p.annotation is not p.empty:
            text += f": {ann(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    out = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty and ann(sig.return_annotation) != "None":
        out += f" -> {ann(sig.return_annotation)}"
    return out


def _signature_problem(target, spec_fn, label: str, extra: int = 0) -> str | None:
    for n_pos, kws in _calls(spec_fn):
        if not _accepts(target, n_pos + extra, kws):
            return f"{label} does not take the arguments {signature_text(spec_fn).split(' ->')[0]}"
    return None


def check(kind: str, obj) -> list[str]:
    """What ``obj`` lacks to be a plugin of ``kind`` (empty when it meets the contract)."""
    contract = CONTRACTS[kind]
    is_class = isinstance(obj, type)
    form = contract.form
    if form == CLASS and not is_class:
        return [f"it must be a class, got {_describe(obj)}"]
    if form == CALLABLE and (not callable(obj) or is_class):
        return [f"it must be a function (a callable), got {_describe(obj)}"]
    if form == INSTANCE and (is_class or obj is None or isinstance(obj, (int, float, str))):
        return [f"it must be an instance, got {_describe(obj)}"]
    if form in (CLASS_OR_INSTANCE, FACTORY) and (obj is None or isinstance(obj, (int, float, str))):
        return [f"it must be {form}, got {_describe(obj)}"]
    if form == FACTORY and callable(obj) and not is_class and not any(
            hasattr(obj, m) for m in contract.one_of):
        return []        # a factory: what it makes is checked when it is called
    problems = []
    if form == CALLABLE:
        problem = _signature_problem(obj, contract.protocol.__call__, "the function")
        return [problem] if problem else []
    if contract.built_bare and is_class and not _accepts(obj, 0, set()):
        problems.append("the core builds it with cls(), but its constructor needs arguments")
    for name in contract.class_attributes:
        if not hasattr(obj, name):
            problems.append(f"missing the class attribute {name}")
    if contract.params_fields is not None and hasattr(obj, "Params"):
        params = obj.Params
        if not dataclasses.is_dataclass(params):
            problems.append(f"Params must be a dataclass, got {_describe(params)}")
        else:
            have = {f.name for f in dataclasses.fields(params)}
            lacking = [f for f in contract.params_fields if f not in have]
            if lacking:
                problems.append(f"Params lacks the field(s) {', '.join(lacking)}")
    for name, spec, required in contract.members():
        if name in contract.class_attributes or isinstance(spec, property):
            continue     # instance attributes: set by the constructor, not visible here
        if name == "__init__":
            if is_class:
                problem = _signature_problem(obj, spec, "the constructor")
                if problem:
                    problems.append(problem)
            continue
        if not callable(getattr(obj, name, None)):
            if required:
                problems.append(f"missing the method {name}()")
            continue
        target, extra = _bound_callable(obj, name)
        problem = _signature_problem(target, spec, f"{name}", extra)
        if problem:
            problems.append(problem)
    if contract.one_of and not any(callable(getattr(obj, m, None)) for m in contract.one_of):
        methods = ", ".join(m + "()" for m in contract.one_of)
        problems.append(f"it needs one of the methods {methods}")
    return problems


def check_built(kind: str, name: str, obj) -> None:
    """After the core built a plugin object: the required attributes that its constructor sets
    (the protocol's properties), which registration cannot see. Raises ``PluginError``."""
    from .errors import PluginError

    contract = CONTRACTS[kind]
    missing = [member for member, spec, required in contract.members()
               if required and isinstance(spec, property) and not hasattr(obj, member)]
    if missing:
        raise PluginError(f"{kind} {name!r} ({type(obj).__name__}) was built without the "
                          f"attribute(s) {', '.join(missing)} that "
                          f"contracts.{contract.protocol.__name__} requires (docs/hooks.md)")
