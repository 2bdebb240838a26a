"""The one configuration schema.

A configuration is a TOML file (or the defaults) plus ``--set key=value`` overrides. Top-level
keys are the run settings below; each plugin slot is a table holding the plugin's ``name`` and its
parameters, which are validated against that plugin's own ``Params`` dataclass, so a typo is an
error that lists the accepted keys::

    seed = 0
    n_neurons = 400
    [topology]
    name = "tinysnn"
    w_inh = -17.5
    [train]
    epochs = 3

``Config.resolved()`` fills every slot with the plugin's full parameter set, so a saved model
carries the complete configuration it was trained with.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownPluginError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: plugin slots: config key -> (plugin kind, default name)
PLUGIN_SLOTS = {
    "dataset": ("dataset", "mnist-5k"),
    "encoder": ("encoder", "poisson"),
    "topology": ("topology", "tinysnn"),
    "exc_neuron": ("neuron_model", "adaptive-lif"),
    "inh_neuron": ("neuron_model", "lif"),
    "learning": ("learning_rule", "tinysnn-stdp"),
    "backend": ("backend", "numpy"),
}


@dataclass
class TrainSettings:
    """How training and evaluation run."""

    epochs: int = 1                 # passes over the training set
    time_steps: int = 350           # T, steps of dt per presentation
    dt: float = 1.0                 # ms per step
    n_train: int | None = None      # use the first n training samples (None: all)
    n_test: int | None = None       # use the first n test samples (None: all)
    normalize: bool = True          # column sums of the input weights to `norm` after a sample
    norm: float = 78.4              # BindsNET: 0.1 * 784
    classifier: str = "all-activity"  # or "proportion-weighting"
    checkpoint_every: int = 1000    # training samples between checkpoints
    batch_size: int = 256           # samples per backend call in inference


@dataclass
class InferenceSettings:
    """How a trained model infers in integer mode (host simulator, compiled backends, the
    firmware): the design axes that cut the cost on a board (docs/fixed-point.md section 6).
    Training and float evaluation are not affected."""

    time_steps: int = 0             # T of a presentation at inference (0: train.time_steps)
    max_retries: int = -1           # presentations after the first, at most (-1: the encoder's)
    exit_margin: int = 0            # early exit: stop once the leading class leads by this
                                    # many spikes (0: off; docs/fixed-point.md section 6)
    rate_hz: float = 0.0            # input rate of the first presentation (0: the encoder's)
    min_spikes: int = -1            # retry below this many spikes (-1: the encoder's)


#: the integer [train] values and their upper bounds (all at least 1); T is a 16-bit count on a
#: board, as inference.time_steps
TRAIN_INT_RANGES = (("epochs", 10_000), ("time_steps", 65535), ("checkpoint_every", 10**9),
                    ("batch_size", 65536))

#: the ranges of the [inference] values: (name, lowest, highest, unit, what the default means)
INFERENCE_RANGES = (
    ("time_steps", 0, 65535, "", "0: train.time_steps"),
    ("max_retries", -1, 254, "", "-1: the encoder's"),
    ("rate_hz", 0.0, 1000.0, " Hz", "0: the encoder's"),
    ("min_spikes", -1, 65535, "", "-1: the encoder's"),
    ("exit_margin", 0, 65535, "", "0: off"),
)


@dataclass
class QuantSettings:
    """Quantization: the scheme plugin and, per parameter group, a Q-format and a rounding.

    ``groups`` maps a group name (weights, potential, theta, traces, inhibition, decay) to
    ``{"format": "uQ0.8", "rounding": "nearest"}``; groups left out stay in float64.
    """

    scheme: str = "none"            # "none", or a quantizer plugin: "ptq", "itq", ...
    groups: dict = field(default_factory=dict)


@dataclass
class Config:
    seed: int = 0
    n_neurons: int = 100
    dataset: dict = field(default_factory=dict)
    encoder: dict = field(default_factory=dict)
    topology: dict = field(default_factory=dict)
    exc_neuron: dict = field(default_factory=dict)
    inh_neuron: dict = field(default_factory=lambda: {
        # BindsNET DiehlAndCook2015's inhibitory layer (PAPER.md 2b)
        "rest": -60.0, "reset": -45.0, "thresh": -40.0, "tc_decay": 10.0, "refrac": 2})
    learning: dict = field(default_factory=dict)
    backend: dict = field(default_factory=dict)
    train: TrainSettings = field(default_factory=TrainSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    quant: QuantSettings = field(default_factory=QuantSettings)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        data = copy.deepcopy(dict(data))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {unknown}; known: {sorted(known)}")
        cfg = cls()
        for key, value in data.items():
            if key in PLUGIN_SLOTS:
                if isinstance(value, str):
                    value = {"name": value}
                if not isinstance(value, dict):
                    raise ConfigError(f"[{key}] must be a table with a 'name', got {value!r}")
                merged = dict(getattr(cfg, key))
                merged.update(value)
                setattr(cfg, key, merged)
            elif key == "train":
                cfg.train = _dataclass_from(TrainSettings, value, "train")
            elif key == "quant":
                cfg.quant = _dataclass_from(QuantSettings, value, "quant")
            elif key == "inference":
                cfg.inference = _dataclass_from(InferenceSettings, value, "inference")
            else:
                setattr(cfg, key, value)
        cfg.validate_basic()
        return cfg

    @classmethod
    def load(cls, path) -> "Config":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_overrides(self, assignments: list[str]) -> "Config":
        """Apply ``key=value`` strings (``n_neurons=400``, ``topology.w_inh=-20``,
        ``train.epochs=3``, ``topology=diehl-cook``); values are parsed as TOML literals."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value")
            key, raw = item.split("=", 1)
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw  # a bare word such as diehl-cook
            parts = key.strip().split(".")
            if len(parts) == 1 and parts[0] in PLUGIN_SLOTS and isinstance(value, str):
                # switching plugin: drop the old plugin's parameters
                data[parts[0]] = {"name": value}
                continue
            target = data
            for part in parts[:-1]:
                # a table the value names but the configuration lacks yet (a quantization group)
                # is made here; from_dict then checks it like one read from a file
                target.setdefault(part, {})
                if not isinstance(target[part], dict):
                    raise ConfigError(f"override {key!r}: {part!r} is not a configuration table")
                target = target[part]
            target[parts[-1]] = value
        return Config.from_dict(data)

    def replace(self, **values: Any) -> "Config":
        """A copy with ``values`` set, checked as a file would be: run settings by name
        (``n_neurons=100, seed=1``), tables as dicts merged key by key into the current ones
        (``train={"n_train": 500}``, ``topology={"w_inh": -20.0}``,
        ``quant={"scheme": "ptq", "groups": {...}}``). A plugin slot given a name, or a table
        naming another plugin, switches plugin and drops the old one's parameters, as
        ``with_overrides(["topology=diehl-cook"])`` does."""
        data = self.to_dict()
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown configuration key {key!r}; known: {sorted(known)}")
            if key in PLUGIN_SLOTS:
                if isinstance(value, str):
                    value = {"name": value}
                if not isinstance(value, dict):
                    raise ConfigError(f"{key} must be a plugin name or a table, got {value!r}")
                same = value.get("name", data[key].get("name")) == data[key].get("name")
                data[key] = {**data[key], **value} if same else dict(value)
            elif isinstance(data[key], dict) and isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return Config.from_dict(data)

    # -- validation ----------------------------------------------------------------------------
    def validate_basic(self) -> None:
        """Every run setting's type and range (a boolean is not an integer here)."""
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("n_neurons", self.n_neurons, 1, 100_000)
        t = self.train
        for name, hi in TRAIN_INT_RANGES:
            _check_int(f"train.{name}", getattr(t, name), 1, hi)
        for name in ("n_train", "n_test"):
            if getattr(t, name) is not None:
                _check_int(f"train.{name}", getattr(t, name), 1, 10**9,
                           " (leave it out to use every sample)")
        _check_number("train.dt", t.dt, 0.0, 1000.0, " ms", low_open=True)
        _check_number("train.norm", t.norm, 0.0, 1e9, "", low_open=True)
        if not isinstance(t.normalize, bool):
            raise ConfigError(f"train.normalize must be true or false, got {t.normalize!r}")
        for name, lo, hi, unit, default in INFERENCE_RANGES:
            value = getattr(self.inference, name)
            if isinstance(lo, int):
                _check_int(f"inference.{name}", value, lo, hi, f" ({default})")
            else:
                _check_number(f"inference.{name}", value, lo, hi, f"{unit} ({default})")
        if t.classifier not in ("all-activity", "proportion-weighting"):
            raise ConfigError(f"train.classifier must be 'all-activity' or "
                              f"'proportion-weighting', got {t.classifier!r}")
        if not isinstance(self.quant.scheme, str):
            raise ConfigError(f"quant.scheme must be a quantizer name or 'none', got "
                              f"{self.quant.scheme!r}")
        if not isinstance(self.quant.groups, dict):
            raise ConfigError(f"quant.groups must be a table of groups, got {self.quant.groups!r}")

    def plugin_name(self, slot: str) -> str:
        return str(getattr(self, slot).get("name", PLUGIN_SLOTS[slot][1]))

    def plugin_params(self, slot: str, registry=None):
        """The validated ``Params`` instance of the plugin in ``slot`` (or a dict if the plugin
        declares no ``Params``)."""
        from .registry import get_registry

        registry = registry or get_registry()
        kind = PLUGIN_SLOTS[slot][0]
        name = self.plugin_name(slot)
        try:
            obj = registry.get(kind, name)
        except UnknownPluginError as exc:
            raise ConfigError(f"[{slot}] {exc}") from None
        raw = {k: v for k, v in getattr(self, slot).items() if k != "name"}
        params_cls = getattr(obj, "Params", None)
        if params_cls is None:
            return raw
        return _dataclass_from(params_cls, raw, f"{slot} ({name})")

    def resolved(self, registry=None) -> "Config":
        """A copy with every plugin slot's parameters filled in with their defaults."""
        from .quant import QuantPlan

        QuantPlan.from_settings(self.quant)     # every group's format and rounding name
        out = copy.deepcopy(self)
        for slot in PLUGIN_SLOTS:
            params = self.plugin_params(slot, registry)
            full = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
            setattr(out, slot, {"name": self.plugin_name(slot), **full})
        return out


def _check_int(where: str, value, lo: int, hi: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{where} must be in {lo}..{hi}, an integer{note}, got {value!r}")


def _check_number(where: str, value, lo: float, hi: float, unit: str = "", *,
                  low_open: bool = False) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and (lo < value if low_open else lo <= value) and value <= hi)   # NaN fails too
    if not ok:
        span = f"({lo:g}, {hi:g}]" if low_open else f"{lo:g}..{hi:g}"
        raise ConfigError(f"{where} must be in {span}{unit}, a number, got {value!r}")


def _dataclass_from(cls, values: Any, where: str):
    if dataclasses.is_dataclass(values):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ConfigError(f"[{where}] must be a table, got {values!r}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"[{where}] unknown parameter(s) {unknown}; accepted: {sorted(names)}")
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{where}] {exc}") from None
    for f in fields(cls):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"[{where}] {f.name} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"[{where}] {f.name} must be a number, got {value!r}")
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"[{where}] {f.name} must be finite, got {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"[{where}] {f.name} must be an integer, got {value!r}")
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"[{where}] {exc}") from None
    return obj
