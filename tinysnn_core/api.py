"""The parts of the Python API that no other module holds: quantizing a trained network,
exploring, deploying. ``import tinysnn_core as tsnn`` re-exports them with the rest (docs/api.md).

Each is the code path of its command: ``quantize_network`` is what an exploration point does
(``explore.point_network``, then label assignment as ``tinysnn select`` does), ``explore`` runs
the ``explore`` command's own code, and ``deploy`` / ``measure`` call the Python function of the
``deploy`` / ``measure`` command that a runner plugin (tinysnn-serial) registers, so the core
never imports a runner.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import ConfigError, PluginError, UnknownPluginError
from .network import Network
from .quant import QuantPlan

#: explore's keywords that differ from its flags' names
_EXPLORE_RENAMES = {"sensitivity": ("no_sensitivity", lambda v: not v),
                    "progress": ("quiet", lambda v: not v)}


def quantize_network(net: Network, groups: Mapping[str, Mapping[str, str]] | QuantPlan | None = None,
                     *, scheme: str = "ptq", bits: int = 8, rounding: str = "nearest",
                     group_set: str = "all", neuron_bits: int = 16,
                     decay_bits: int | None = None, assign: bool = True,
                     backend: str | None = None, progress: bool = False) -> Network:
    """The trained float network ``net`` quantized by ``scheme`` (a quantizer plugin: ``ptq``
    rounds the trained parameters, ``itq`` retrains a network from ``net``'s configuration on
    the grids), as a new network; ``net`` is left as it was.

    ``groups`` gives the plan, ``{group: {"format": "uQ0.8", "rounding": "nearest"}}`` or a
    ``QuantPlan``; without it the plan is the one ``tinysnn explore`` makes for the grid point
    ``(scheme, bits, rounding, group_set)``: formats of ``bits`` bits whose integer bits hold
    ``net``'s values (``quant.model_ranges``), the neuron groups at ``neuron_bits`` in the
    ``mixed`` set, the decay group at ``decay_bits`` when given. ``group_set="all"``
    quantizes every group the board needs (the result deploys); ``"weights"`` the weights only.

    With ``assign`` (the default) the labels are assigned again on the quantized network, as
    ``tinysnn select`` does for the model it writes. A decay factor the plan rounds to 0 or 1
    is a ``TinySNNWarning``."""
    from . import train as flow
    from .explore import build_grid, point_network
    from .quant import model_ranges

    if isinstance(groups, QuantPlan):
        groups = {g: spec.to_dict() for g, spec in groups.groups.items()}
    if groups is None:
        points = build_grid(schemes=[scheme], bits=[bits], roundings=[rounding],
                            group_sets=[group_set], sensitivity=False, ranges=model_ranges(net),
                            neuron_bits=neuron_bits, decay_bits=decay_bits)
        groups = points[0].groups
    groups = {str(g): dict(spec) for g, spec in groups.items()}
    qnet, data, sim = point_network(copy.deepcopy(net), scheme, groups, backend=backend,
                                    progress=progress)
    flow.warn_lost_decays(qnet)
    if assign:
        flow.assign(qnet, data, backend=sim, progress=progress)
    return qnet


def _command(name: str):
    from .registry import get_registry

    try:
        return get_registry().get_entry("command", name)
    except UnknownPluginError:
        raise PluginError(f"no {name!r} command is installed: it comes with a runner plugin "
                          "such as tinysnn-serial (scripts/setup.sh installs it)") from None


def _command_args(name: str, positional: list[str], options: Mapping[str, Any],
                  renames: Mapping[str, tuple[str, Callable]] = {}) -> argparse.Namespace:
    """The parsed arguments of command ``name`` for ``positional`` and its defaults, with
    ``options`` (flag names with ``_``; a list or tuple for a comma-separated flag) set."""
    entry = _command(name)
    command = entry.obj() if isinstance(entry.obj, type) else entry.obj
    parser = argparse.ArgumentParser(prog=f"tinysnn {name}")
    command.add_arguments(parser)
    args = parser.parse_args(positional)
    known = sorted(set(vars(args)) | set(renames))
    for key, value in options.items():
        dest, convert = renames.get(key, (key, None))
        if dest not in vars(args) or key in ("results", "model"):
            raise ConfigError(f"{name}: unknown option {key!r}; accepted: "
                              f"{', '.join(k for k in known if k not in ('results', 'model'))}")
        if convert is not None:
            value = convert(value)
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        setattr(args, dest, value)
    args._command = command
    return args


def explore(models: str | Path | Iterable[str | Path], results: str | Path,
            **options: Any) -> list[dict]:
    """``tinysnn explore MODELS --results RESULTS`` from Python: the grid over the trained
    float model(s) ``models``, each finished point appended to ``results`` (rerun to resume);
    returns every row of ``results``. ``options`` are the command's flags with ``_`` for
    ``-`` and lists for its comma-separated values: ``schemes=["ptq"], bits=[8, 4],
    roundings=["nearest"], group_sets=["all"], sensitivity=False, boards=["qemu-mps2-an385"],
    cost_models=[...], time_steps=[350, 200], workers=2, progress=False``, ... An unknown
    option is an error naming the accepted ones."""
    from .explore import read_results

    paths = [str(models)] if isinstance(models, (str, Path)) else [str(m) for m in models]
    args = _command_args("explore", paths + ["--results", str(results)], options,
                         _EXPLORE_RENAMES)
    with contextlib.redirect_stdout(io.StringIO()):     # its result line is the return value
        args._command.run(args)
    return read_results(results)


def _runner_function(name: str) -> Callable[..., dict]:
    entry = _command(name)
    function = getattr(entry.obj, "function", None)
    if function is None:
        raise PluginError(f"the {name!r} command of {entry.distribution} has no Python "
                          "function (a 'function' attribute) to call")
    return function


def deploy(model: str | Path, board: str, **options: Any) -> dict:
    """``tinysnn deploy MODEL --board BOARD`` from Python, through the ``deploy`` command a
    runner plugin registers (tinysnn-serial: ``tinysnn_serial.deploy.deploy_model``, whose
    keywords are ``samples``, ``results``, ``build_dir``, ``port``, ``meter``, ``timeout``,
    ``repeat``, ``progress``, ``out``, ...). Returns the run's summary: ``parity``,
    ``accuracy``, ``cycles``, ``flash_bytes``, ``ram_bytes``, ``results``, ..."""
    return _runner_function("deploy")(str(model), board, **options)


def measure(model: str | Path, port: str, **options: Any) -> dict:
    """``tinysnn measure MODEL --port PORT`` from Python: the test samples on a board that
    already runs ``model`` (see ``deploy``); returns the summary."""
    return _runner_function("measure")(str(model), port, **options)

