"""The plugin manager: built-ins and installed plugins, registered through the same hooks.

``get_registry()`` returns the process-wide registry; tests build their own with
``Registry(load_entry_points=False)`` and ``registry.add_plugin(module_or_object)``.

Environment switches:

- ``TINYSNN_PLUGINS=a,b``: load only these entry points (by entry-point name);
- ``TINYSNN_DISABLE_PLUGINS=a,b``: skip these entry points;
- ``TINYSNN_STRICT_PLUGINS=1``: a plugin that fails to import or register is fatal
  (for plugin authors); otherwise it is reported and skipped.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownPluginError

ENTRY_POINT_GROUP = "tinysnn"
KIND_NAMES = tuple(kind for kind, _ in hookspecs.KINDS)

#: Built-in plugin modules, registered exactly like an installed plugin would be.
BUILTIN_MODULES = (
    "tinysnn_core.builtin.neurons",
    "tinysnn_core.builtin.learning",
    "tinysnn_core.builtin.topologies",
    "tinysnn_core.builtin.encoders",
    "tinysnn_core.builtin.rounding",
    "tinysnn_core.builtin.quantizers",
    "tinysnn_core.builtin.costs",
    "tinysnn_core.builtin.backend_numpy",
    "tinysnn_core.builtin.datasets",
    "tinysnn_core.builtin.commands",
    "tinysnn_core.builtin.explore_commands",
)


@dataclass
class Entry:
    kind: str
    name: str
    obj: Any
    distribution: str
    version: str
    summary: str = ""
    aliases: tuple = ()


@dataclass
class LoadFailure:
    source: str
    error: str
    detail: str = field(repr=False, default="")


def _strict() -> bool:
    return os.environ.get("TINYSNN_STRICT_PLUGINS", "").strip() not in ("", "0", "false", "no")


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class Registry:
    """Every registered plugin object, by kind and name."""

    def __init__(self, *, load_builtins: bool = True, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KIND_NAMES}
        self.aliases: dict[str, dict[str, str]] = {kind: {} for kind in KIND_NAMES}
        self.failures: list[LoadFailure] = []
        if load_builtins:
            from . import __version__

            for modname in BUILTIN_MODULES:
                self._load(lambda m=modname: importlib.import_module(m), modname, "tinysnn", __version__)
        if load_entry_points:
            self._load_entry_points()

    # -- loading -------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        only = _env_list("TINYSNN_PLUGINS")
        skip = _env_list("TINYSNN_DISABLE_PLUGINS") or set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in skip or (only is not None and ep.name not in only):
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ep.name
            version = dist.version if dist is not None else "?"
            self._load(ep.load, f"{ep.name} ({dist_name})", dist_name, version)

    def _load(self, loader, source: str, dist: str, version: str) -> None:
        """Import a plugin and run its hooks; on failure, record it (or raise when strict)."""
        try:
            plugin = loader()
            self.add_plugin(plugin, distribution=dist, version=version)
        except Exception as exc:  # a broken plugin must not take the others down
            failure = LoadFailure(source, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            self.failures.append(failure)
            if _strict():
                raise PluginError(f"plugin {source} failed to load: {failure.error}") from exc
            print(f"tinysnn: warning: plugin {source} failed to load and was skipped: "
                  f"{failure.error} (set TINYSNN_STRICT_PLUGINS=1 to make this fatal)",
                  file=sys.stderr)

    def add_plugin(self, plugin, *, distribution: str = "local", version: str = "?") -> None:
        """Register a module or object holding ``@hookimpl`` functions and run its hooks.

        Registration is all-or-nothing: if one of its hooks raises, the names it had added
        are removed again and the plugin is unregistered.
        """
        self.pm.register(plugin)
        added: list[tuple[str, str]] = []
        try:
            for kind, hook_name in hookspecs.KINDS:
                impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls()
                         if i.plugin is plugin]
                for impl in impls:
                    def register(name, obj, *, aliases=(), summary="", _kind=kind):
                        self._add(_kind, name, obj, distribution, version, summary, tuple(aliases))
                        added.append((_kind, name))
                    impl.function(register=register)
        except Exception:
            for kind, name in added:
                entry = self.entries[kind].pop(name, None)
                if entry is not None:
                    for alias in entry.aliases:
                        self.aliases[kind].pop(alias.lower(), None)
            self.pm.unregister(plugin)
            raise

    def _add(self, kind, name, obj, dist, version, summary, aliases) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"a {kind} plugin from {dist} registered an empty or non-string name")
        key = name.lower()
        for candidate in (key, *[a.lower() for a in aliases]):
            if candidate in self.entries[kind] or candidate in self.aliases[kind]:
                owner = self.get_entry(kind, candidate)
                raise PluginError(
                    f"{kind} name {candidate!r} from {dist} clashes with the one from "
                    f"{owner.distribution}")
        if not summary:
            doc = getattr(obj, "__doc__", None) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self.entries[kind][key] = Entry(kind, key, obj, dist, version, summary, tuple(aliases))
        for alias in aliases:
            self.aliases[kind][alias.lower()] = key

    # -- lookup --------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self.entries[kind])

    def get_entry(self, kind: str, name: str) -> Entry:
        self._check_kind(kind)
        key = str(name).lower()
        key = self.aliases[kind].get(key, key)
        try:
            return self.entries[kind][key]
        except KeyError:
            known = ", ".join(self.names(kind)) or "(none registered)"
            raise UnknownPluginError(
                f"unknown {kind.replace('_', ' ')} {name!r}; known: {known}") from None

    def get(self, kind: str, name: str):
        return self.get_entry(kind, name).obj

    def _check_kind(self, kind: str) -> None:
        if kind not in self.entries:
            raise UnknownPluginError(f"unknown plugin kind {kind!r}; known: {', '.join(KIND_NAMES)}")

    def listing(self) -> list[dict]:
        rows = []
        for kind in KIND_NAMES:
            for name in self.names(kind):
                e = self.entries[kind][name]
                rows.append({"kind": kind, "name": name, "aliases": list(e.aliases),
                             "distribution": e.distribution, "version": e.version,
                             "summary": e.summary})
        return rows


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def lookup(kind: str, name: str):
    """Shorthand: the plugin object of ``kind`` called ``name`` in the process-wide registry."""
    return get_registry().get(kind, name)
