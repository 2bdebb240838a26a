"""The plugin contract of tinySNN: every extension point, one ``register_*`` hook per kind.

Each hook receives a single argument, ``register``, a callable::

    register(name, obj, *, aliases=(), summary="")

``name`` is the public name users type (in a config file or on the command line), ``obj`` is the
plugin object of that kind (usually a class or a factory; see each hook for what it must
provide).  Names are unique per kind: registering a name twice is an error that names both
providers.  Nothing is merged from return values, so a hook implementation returns ``None``.

Our own reference plugins (``tinysnn_core.builtin``) register through exactly these hooks, and so
does every third-party distribution that declares an entry point in the group ``tinysnn``::

    [project.entry-points.tinysnn]
    my_plugin = "my_package.plugin"

where ``my_package.plugin`` holds functions decorated with ``tinysnn_core.hookimpl``.

The docstrings below are the hook reference (``docs/hooks.md`` is generated from them).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("tinysnn")


@hookspec
def register_neuron_models(register):
    """Neuron models: a class with a nested ``Params`` dataclass (its config parameters).

    ``cls(params, n, dt)`` builds a population of ``n`` neurons. It must provide
    ``init_state() -> dict[str, ndarray]`` (fresh state: ``v``, ``refrac``, and ``theta`` for an
    adaptive model, which the simulator then shares across samples), ``reset(state)`` and
    ``step(state, current, learning, rand) -> bool ndarray``: advance one time step with input
    ``current`` and return who spiked; ``rand`` is the step's 32-bit draw of the shared
    counter-based generator (for a one-spike winner). Attributes: ``p`` (the params, with at least
    ``rest``), ``decay`` (leak factor), ``state_groups`` (state variable -> quantization group,
    e.g. ``{"v": "potential", "theta": "theta"}``).
    """


@hookspec
def register_learning_rules(register):
    """Learning rules (STDP variants): a class with a nested ``Params`` dataclass.

    ``cls(params, n_pre, n_post, dt)``; methods ``begin_sample(ctx)``,
    ``step(ctx, pre_idx, post_spikes)`` (after the neurons updated, with the indices of the
    input neurons that spiked and the boolean post spikes) and ``end_sample(ctx, post_counts)``.
    ``ctx`` carries the weights, the traces, the quantizer and the operation counters; the rule
    counts every weight element it writes in ``ctx.ops.stdp_updates``.
    """


@hookspec
def register_topologies(register):
    """Network topologies: a class with a nested ``Params`` dataclass.

    ``cls(params).build(n_inputs, n_neurons, rng)`` returns a ``tinysnn_core.network.Topology``:
    the initial input weights, whether an inhibitory layer exists, and the inhibition weights.
    """


@hookspec
def register_encoders(register):
    """Input encoders: a class with ``Params``; ``cls(params, dt)``.

    ``encode(image, seed, sample, retry, n_steps) -> list`` gives, per time step, the indices of
    the input neurons that spike during presentation ``retry`` of a sample; ``params`` must carry
    ``retry_min_spikes`` and ``max_retries`` (the Diehl & Cook retry rule). Encoders must be pure
    functions of their arguments (counter-based randomness) so that every backend and the
    firmware see the same spikes.
    """


@hookspec
def register_quantizers(register):
    """Quantization schemes (for example post-training and in-training).

    An object with ``in_training: bool`` and ``prepare(model, qconfig, rng)``: returns the model
    with its stored parameters put on their Q-format grids. In-training schemes are also called
    by the simulator after every update of a quantized group.
    """


@hookspec
def register_rounding_schemes(register):
    """Rounding schemes onto a fixed-point grid.

    ``fn(scaled, rng) -> ndarray``: ``scaled`` is the value divided by the grid step (float64);
    return the integer-valued float64 array it rounds to. ``rng`` is a numpy Generator (only
    stochastic schemes use it). Saturation is applied by the caller afterwards.
    """


@hookspec
def register_cost_models(register):
    """Cost models: an object with ``estimate(model, ops, qconfig) -> dict`` (for example memory
    bits per parameter group, or energy per sample from the operation counts)."""


@hookspec
def register_backends(register):
    """Simulation backends: a class; ``cls()`` must provide
    ``run(net, images, sample_ids, *, learn, seed, ops) -> int ndarray [batch, N]`` spike counts
    (adding the operation counts to ``ops``) and ``available() -> (bool, reason)``. Optional:
    ``check(net, learn=...)`` raises before any work for a network it cannot simulate, and
    ``run_integer(model, images, seed, sample_ids) -> (predictions, counts)`` runs an
    ``intsim.IntegerModel``. The NumPy backend is the reference; others must agree with it."""


@hookspec
def register_datasets(register):
    """Data sets: a callable ``load(seed, **options) -> tinysnn_core.data.Dataset`` with uint8
    images of shape [n, 784] and int labels. Must not download anything; when the data is
    missing, raise ``tinysnn_core.errors.DatasetMissing`` saying how to install it."""


@hookspec
def register_commands(register):
    """CLI sub-commands: an object with ``add_arguments(parser)`` and ``run(args) -> int``."""


@hookspec
def register_boards(register):
    """Embedded boards (emulated or physical): build, start/flash and memory limits."""


@hookspec
def register_transports(register):
    """Byte transports to a board (serial URL, pseudo-terminal, subprocess...)."""


@hookspec
def register_energy_meters(register):
    """Energy meters: turn a measured inference window into joules (datasheet model or
    an instrument)."""


@hookspec
def register_exporters(register):
    """Model exporters (for example C source for the firmware)."""


#: The kinds of plugin, in listing order: (kind, hook name).
KINDS = (
    ("neuron_model", "register_neuron_models"),
    ("learning_rule", "register_learning_rules"),
    ("topology", "register_topologies"),
    ("encoder", "register_encoders"),
    ("quantizer", "register_quantizers"),
    ("rounding", "register_rounding_schemes"),
    ("cost_model", "register_cost_models"),
    ("backend", "register_backends"),
    ("dataset", "register_datasets"),
    ("command", "register_commands"),
    ("board", "register_boards"),
    ("transport", "register_transports"),
    ("energy_meter", "register_energy_meters"),
    ("exporter", "register_exporters"),
)
