"""Exporting a model through an exporter plugin: one implementation behind ``tinysnn export``
and the Python API.

    >>> from tinysnn_core.export import export_model
    >>> export_model("runs/model.tsnn", "nir", "runs/model.nir")       # doctest: +SKIP

An exporter (``contracts.Exporter``) has a ``suffix`` (``".nir"``; ``""`` for one that writes a
directory) and ``export(net, path, **options)``. Here the model is loaded (a path) or taken as
it is (a ``Network``), the suffix is added to a path without one, and the options are checked
against what ``export`` takes before anything is written.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .registry import get_registry

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def exporter_names() -> list[str]:
    """The registered exporters' names."""
    return get_registry().names("exporter")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as keyword options; values are TOML literals (``true``, ``2``,
    ``"text"``), and a bare word that is no literal stays a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"exporter option {item!r} must look like key=value, the key a "
                              "Python identifier")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
    return out


def _check_options(name: str, exporter, options: dict) -> None:
    """Refuse, before any work, an option that the exporter's ``export`` does not take."""
    try:
        params = inspect.signature(exporter.export).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    named = [p.name for p in list(params.values())[2:]
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(named))
    if unknown:
        raise ConfigError(f"exporter {name!r} takes no option(s) {', '.join(unknown)}; it takes: "
                          f"{', '.join(named) or '(none)'}")


def target_path(path, suffix: str) -> Path:
    """Where an exporter with ``suffix`` writes for ``path``: the suffix is added when the path
    has none (``model`` -> ``model.nir``)."""
    path = Path(path)
    if suffix and not path.suffix:
        path = path.with_name(path.name + suffix)
    return path


def export_model(model, format: str, path, **options) -> Path:
    """Write ``model`` (a ``Network`` or a model file's path) with the exporter ``format`` to
    ``path``; returns what was written. An unknown format is an ``UnknownPluginError`` that
    lists the known ones."""
    from .modelfile import load_network
    from .network import Network

    entry = get_registry().get_entry("exporter", format)
    exporter = entry.obj() if isinstance(entry.obj, type) else entry.obj
    _check_options(entry.name, exporter, options)
    net = model if isinstance(model, Network) else load_network(model)
    out = target_path(path, str(getattr(exporter, "suffix", "")))
    written = exporter.export(net, out, **options)
    return Path(written) if written is not None else out
