"""The plugin contract of tinySNN: every extension point, one ``register_*`` hook per kind.

Each hook receives a single argument, ``register``, a callable::

    register(name, obj, *, aliases=(), summary="")

``name`` is the public name users type (in a config file or on the command line), ``obj`` is the
plugin object of that kind; what it must provide is its kind's contract
(``tinysnn_core.contracts``; each kind's section of ``docs/hooks.md``). Names are unique per kind,
case-insensitively, aliases included. The registry checks each registration on its own: a name that
clashes with one already registered, or an object that does not meet its kind's contract, is
refused with a message naming the distribution, the kind, the name and what is wrong, and the
plugin's other registrations are kept. A hook implementation whose name is no hook here
(``register_rounding_scheme`` for ``register_rounding_schemes``) is reported too. Under
``TINYSNN_STRICT_PLUGINS=1`` each of these is a one-line error instead of a warning. Nothing is
merged from return values, so a hook implementation returns ``None``.

Our own reference plugins (``tinysnn_core.builtin``) register through exactly these hooks, and so
does every third-party distribution that declares an entry point in the group ``tinysnn``::

    [project.entry-points.tinysnn]
    my_plugin = "my_package.plugin"

where ``my_package.plugin`` holds functions decorated with ``tinysnn_core.hookimpl``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("tinysnn")


@hookspec
def register_neuron_models(register):
    """Register neuron models: see ``contracts.NeuronModel``."""


@hookspec
def register_learning_rules(register):
    """Register learning rules (STDP variants): see ``contracts.LearningRule``."""


@hookspec
def register_topologies(register):
    """Register network topologies: see ``contracts.TopologyPlugin``."""


@hookspec
def register_encoders(register):
    """Register input encoders: see ``contracts.Encoder``."""


@hookspec
def register_quantizers(register):
    """Register quantization schemes: see ``contracts.Quantizer``."""


@hookspec
def register_rounding_schemes(register):
    """Register rounding schemes onto a fixed-point grid: see ``contracts.RoundingScheme``."""


@hookspec
def register_cost_models(register):
    """Register cost models: see ``contracts.CostModel``."""


@hookspec
def register_backends(register):
    """Register simulation backends: see ``contracts.Backend``."""


@hookspec
def register_datasets(register):
    """Register data sets: see ``contracts.DatasetLoader``."""


@hookspec
def register_commands(register):
    """Register CLI sub-commands: see ``contracts.Command``."""


@hookspec
def register_boards(register):
    """Register embedded boards (emulated or physical): see ``contracts.Board``."""


@hookspec
def register_transports(register):
    """Register byte transports to a board: see ``contracts.Transport``."""


@hookspec
def register_energy_meters(register):
    """Register energy meters: see ``contracts.EnergyMeter``."""


@hookspec
def register_exporters(register):
    """Register model exporters: see ``contracts.Exporter``."""


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
