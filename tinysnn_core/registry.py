"""The plugin manager: built-ins and installed plugins, registered through the same hooks.

``get_registry()`` returns the process-wide registry; tests build their own with
``Registry(load_entry_points=False)`` and ``registry.add_plugin(module_or_object)``.

Environment switches:

- ``TINYSNN_PLUGINS=a,b``: load only these entry points (by entry-point name);
- ``TINYSNN_DISABLE_PLUGINS=a,b``: skip these entry points;
- ``TINYSNN_STRICT_PLUGINS=1``: a plugin that fails to import or register, a name that clashes,
  an object that does not meet its kind's contract (``contracts``) and a hook implementation
  with no hook of that name are fatal, as a one-line ``PluginError`` (for plugin authors);
  otherwise each is reported and skipped, and the plugin's other registrations are kept.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import contracts, hookspecs
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
    "tinysnn_core.builtin.plot_commands",
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
        except PluginError as exc:
            if _strict():
                raise      # already one line naming the plugin
            self._report(LoadFailure(source, str(exc), traceback.format_exc()),
                         f"plugin {source} failed to load and was skipped: {exc}")
        except Exception as exc:  # a broken plugin must not take the others down
            failure = LoadFailure(source, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            if _strict():
                self.failures.append(failure)
                raise PluginError(f"plugin {source} failed to load: {failure.error}") from exc
            self._report(failure, f"plugin {source} failed to load and was skipped: "
                                  f"{failure.error}")

    def _report(self, failure: LoadFailure, line: str) -> None:
        from .log import TinySNNWarning

        self.failures.append(failure)
        warnings.warn(f"{line} (set TINYSNN_STRICT_PLUGINS=1 to make this fatal)",
                      TinySNNWarning, stacklevel=2)

    def add_plugin(self, plugin, *, distribution: str = "local", version: str = "?") -> list[str]:
        """Register a module or object holding ``@hookimpl`` functions and run its hooks.

        Each registration is checked on its own: a name that clashes with one already
        registered, or an object that does not meet its kind's contract, is refused and
        reported, and the plugin's other registrations are kept; so is a hook implementation
        whose name is no hook. Returns these problems, one line each. Under
        ``TINYSNN_STRICT_PLUGINS=1`` any of them is a ``PluginError`` and nothing of the plugin
        stays registered; so is (always) a hook that raises.
        """
        self.pm.register(plugin)
        problems = [f"plugin {distribution}: {msg}" for msg in self._unknown_hooks(plugin)]
        added: list[tuple[str, str]] = []
        try:
            for kind, hook_name in hookspecs.KINDS:
                impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls()
                         if i.plugin is plugin]
                for impl in impls:
                    def register(name, obj, *, aliases=(), summary="", _kind=kind):
                        try:
                            key, alias_problems = self._add(_kind, name, obj, distribution,
                                                            version, summary, tuple(aliases))
                        except PluginError as exc:
                            problems.append(str(exc))
                            return
                        problems.extend(alias_problems)
                        added.append((_kind, key))
                    impl.function(register=register)
            if problems and _strict():
                raise PluginError(problems[0] + (f" (and {len(problems) - 1} more problem(s))"
                                                 if len(problems) > 1 else ""))
        except Exception:
            for kind, name in added:
                entry = self.entries[kind].pop(name, None)
                if entry is not None:
                    for alias in entry.aliases:
                        self.aliases[kind].pop(alias.lower(), None)
            self.pm.unregister(plugin)
            raise
        for problem in problems:    # the listing shows the source apart: not twice
            self._report(LoadFailure(distribution,
                                     problem.removeprefix(f"plugin {distribution}: ")), problem)
        return problems

    def _unknown_hooks(self, plugin) -> list[str]:
        """The plugin's hook implementations that no hook specification names (what pluggy's
        ``check_pending`` reports), each with the nearest hook name."""
        known = [hook for _, hook in hookspecs.KINDS]
        out = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if all(i.optionalhook for i in caller.get_hookimpls() if i.plugin is plugin):
                continue
            near = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(known)}"
            out.append(f"{caller.name} is not a tinysnn hook, so nothing it registers is seen "
                       f"({hint})")
        return out

    def _add(self, kind, name, obj, dist, version, summary, aliases) -> tuple[str, list[str]]:
        """Register one name and its aliases: (the key it is stored under, the problems with its
        aliases). A clash of the name, or an object that breaks the contract, raises
        ``PluginError``; a clashing alias is left out (the name is kept) and reported."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {dist}: a {kind} was registered with an empty or "
                              f"non-string name {name!r}")
        key = name.lower()
        if key in self.entries[kind] or key in self.aliases[kind]:
            owner = self.get_entry(kind, key)
            raise PluginError(f"plugin {dist}: {kind} name {key!r} clashes with the one from "
                              f"{owner.distribution}; this name was skipped")
        lacking = contracts.check(kind, obj)
        if lacking:
            raise PluginError(f"plugin {dist}: {kind} {name!r} was skipped, it does not meet "
                              f"contracts.{contracts.CONTRACTS[kind].protocol.__name__}: "
                              f"{'; '.join(lacking)} (docs/hooks.md)")
        kept, clashes = [], []
        for alias in aliases:
            a = str(alias).lower()
            if a == key or a in kept:
                continue          # the name itself, or said twice
            (clashes if a in self.entries[kind] or a in self.aliases[kind] else kept).append(a)
        if not summary:
            doc = getattr(obj, "__doc__", None) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self.entries[kind][key] = Entry(kind, key, obj, dist, version, summary, tuple(kept))
        for alias in kept:
            self.aliases[kind][alias] = key
        return key, [f"plugin {dist}: {kind} alias {a!r} of {key!r} clashes with the one from "
                     f"{self.get_entry(kind, a).distribution}; {key!r} was kept without it"
                     for a in clashes]

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
