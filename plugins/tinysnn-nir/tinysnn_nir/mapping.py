"""A tinySNN network as a NIR graph (docs/nir.md has the whole mapping and its reasons).

Units: time in seconds, potentials in mV, weights in mV per input spike (the model's own).
NIR's neurons are continuous-time ODEs; a tinySNN step of ``dt`` is

    v <- rest + decay * (v - rest) + I          decay = exp(-dt / tc_decay)

with ``I`` the summed weights of the spikes of that step. A NIR ``LIF`` whose input is held for
one step (a spike is a 1 for ``dt``: how the discrete-time NIR simulators feed spikes) and
integrated exactly gives this update with ``tau = -dt / ln(decay)`` (the model's ``tc_decay``)
and ``r = 1 / (1 - decay)``, so those are written. What NIR cannot express (the refractory
period, the one-spike winner, theta's learning dynamics, the Poisson encoder, fixed-point
formats) is written as metadata under the key ``tinysnn`` of the node it belongs to, or of the
graph.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from tinysnn_core import __version__
from tinysnn_core.errors import ConfigError, TinySNNError

#: every node's and the graph's tinySNN metadata lives under this key
METADATA_KEY = "tinysnn"
#: the layout of that metadata (bumped when a key changes meaning)
FORMAT = "tinysnn-nir/1"

_ONE_SPIKE_RULE = ("when several neurons of the layer cross the threshold in one step, all of "
                   "them are reset (and theta grows, while learning) but only one, drawn "
                   "uniformly by tinysnn_core.counter_rng.keep_one_spike, emits its spike")
_REFRACTORY_RULE = ("for refractory_steps steps after a spike (the spike's own step counted) "
                    "the input is dropped; the leak goes on")
_SPIKE_CONVENTION = ("a spike is the value 1 for one step of dt_s; a LIF's r = 1/(1 - decay) "
                     "and tau = -dt_s/ln(decay) make the exactly integrated step "
                     "v <- v_leak + decay*(v - v_leak) + (summed weights), the model's own; "
                     "an IF (no leak) has r = 1/dt_s")


def _meta(**values) -> dict:
    """Metadata as NIR's HDF5 writer stores it: numbers, strings, bools, arrays, dicts."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue            # HDF5 has no None: an absent key is the missing value
        if isinstance(value, dict):
            value = _meta(**value)
        elif isinstance(value, (list, tuple)):
            value = np.asarray(value)
        elif isinstance(value, np.generic):
            value = value.item()
        elif not isinstance(value, (str, bool, int, float, np.ndarray)):
            raise TypeError(f"metadata {key!r}: {type(value).__name__} cannot be written")
        out[key] = value
    return out


def _plain_params(params) -> dict:
    """A plugin's parameters as metadata: its dataclass fields that are numbers, strings or
    bools (others, such as a callable, are left out)."""
    data = asdict(params) if is_dataclass(params) else dict(params or {})
    return {k: v for k, v in data.items() if isinstance(v, (str, bool, int, float))}


def population(layer, theta, dt_s: float, role: str, model_name: str):
    """The NIR node of one population (``lif`` or ``adaptive-lif``) and nothing else.

    ``theta``: the adaptive thresholds [n] (added to ``thresh``), or None."""
    import nir

    from tinysnn_core.builtin.neurons import LIF

    if not isinstance(layer, LIF):
        raise ConfigError(f"the nir exporter maps the built-in lif and adaptive-lif neuron "
                          f"models; the {role} neuron model {model_name!r} "
                          f"({type(layer).__name__}) has no NIR mapping")
    p, n = layer.p, layer.n
    decay = float(layer.decay)           # a quantized model's rounded factor, as it simulates
    if not 0.0 < decay <= 1.0:
        raise ConfigError(f"{role} decay factor {decay!r} is outside (0, 1]: no NIR neuron has it")
    v_threshold = np.full(n, float(p.thresh))
    if theta is not None:
        v_threshold = v_threshold + np.asarray(theta, dtype=np.float64)
    v_reset = np.full(n, float(p.reset))
    adaptive = bool(getattr(layer, "adaptive", False))
    meta = dict(
        population=role, neuron_model=model_name, decay_per_step=decay,
        initial_v_mV=float(p.rest), spike_condition="v >= v_threshold",
        refractory_steps=int(p.refrac), refractory_s=int(p.refrac) * dt_s,
        refractory_rule=_REFRACTORY_RULE if p.refrac else None,
        one_spike=bool(getattr(layer, "one_spike", False)),
        one_spike_rule=_ONE_SPIKE_RULE if getattr(layer, "one_spike", False) else None,
        adaptive_threshold=adaptive)
    if adaptive:
        meta.update(thresh_mV=float(p.thresh), theta_mV=np.asarray(theta, dtype=np.float64),
                    theta_plus_mV=float(p.theta_plus), tc_theta_decay_ms=float(p.tc_theta_decay),
                    theta_rule="v_threshold = thresh_mV + theta_mV; at inference theta is "
                               "constant, while learning it decays by exp(-dt/tc_theta_decay) "
                               "per step and grows by theta_plus_mV at each crossing")
    if decay == 1.0:                      # no leak (a decay rounded to 1): an IF neuron
        node = nir.IF(r=np.full(n, 1.0 / dt_s), v_threshold=v_threshold, v_reset=v_reset)
    else:
        node = nir.LIF(tau=np.full(n, -dt_s / math.log(decay)),
                       r=np.full(n, 1.0 / (1.0 - decay)), v_leak=np.full(n, float(p.rest)),
                       v_threshold=v_threshold, v_reset=v_reset)
    node.metadata = {METADATA_KEY: _meta(**meta)}
    return node


def _linear(weight: np.ndarray, **meta):
    import nir

    return nir.Linear(weight=np.ascontiguousarray(weight, dtype=np.float64),
                      metadata={METADATA_KEY: _meta(**meta)})


def _delay(n: int, dt_s: float, what: str):
    import nir

    return nir.Delay(delay=np.full(n, dt_s),
                     metadata={METADATA_KEY: _meta(steps=1, why=what)})


def _quant_meta(net) -> dict | None:
    if net.quant is None:
        return None
    plan = net.quant.plan
    return dict(scheme=plan.scheme, values="dequantized: every number in this file is the "
                "float value of its fixed-point code, as the float simulation of the quantized "
                "model uses it; state (v, traces) is also put on its grid every step",
                groups={g: {"format": str(s.fmt), "rounding": s.rounding, "bits": s.fmt.bits,
                            "signed": bool(s.fmt.signed), "int_bits": int(s.fmt.int_bits),
                            "frac_bits": int(s.fmt.frac_bits)}
                        for g, s in plan.groups.items()})


def to_nir(net):
    """The NIR graph of ``net`` (a ``tinysnn_core.network.Network``).

    Nodes: ``input`` (spikes, [n_inputs]) -> ``w_in`` (Linear, ``w.T``) -> ``exc`` (LIF) ->
    ``output``; the inhibition: ``exc`` -> ``exc_delay`` (one step) -> ``w_lateral`` (Linear,
    ``w_inh`` off the diagonal) -> ``exc`` in the reduced network, or ``exc`` -> ``exc_delay``
    -> ``w_exc_inh`` (one-to-one) -> ``inh`` (LIF) -> ``inh_delay`` -> ``w_inh_exc`` -> ``exc``
    with Diehl & Cook's inhibitory layer."""
    import nir

    from tinysnn_core.train import stream_seed

    cfg, topo = net.config, net.topology
    n, n_in = net.n_neurons, net.n_inputs
    dt_s = float(cfg.train.dt) / 1000.0
    theta = net.theta if getattr(net.exc, "adaptive", False) else None
    enc = net.encoder
    enc_params = _plain_params(getattr(enc, "params", None))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}, metadata={METADATA_KEY: _meta(
            what="input spikes: a 0/1 value per input neuron (pixel) and step of dt_s",
            encoder=cfg.plugin_name("encoder"), encoder_params=enc_params,
            spike_probability=("per step, pixel/255 * max_rate_hz * dt_s (presentation k of "
                               "a retried sample: max_rate_hz + k * retry_rate_hz), drawn by "
                               "the counter-based generator tinysnn_core.counter_rng from "
                               "(seed, sample, step, pixel)") if "max_rate_hz" in enc_params
            else None,
            seed=int(cfg.seed), test_stream_seed=stream_seed(cfg.seed, "test"),
            retry_rule=("a sample whose layer spiked fewer than retry_min_spikes times is "
                        "presented again, up to max_retries times, at a higher rate; the "
                        "counts are those of the last presentation")
            if "retry_min_spikes" in enc_params else None)}),
        "w_in": _linear(net.w.T, role="input weights: weight[j, i] = w[i, j], mV per spike of "
                        "input i onto neuron j", wmin=float(topo.wmin), wmax=float(topo.wmax)),
        "exc": population(net.exc, theta, dt_s, "excitatory", cfg.plugin_name("exc_neuron")),
    }
    off_diagonal = 1.0 - np.eye(n)
    edges = [("input", "w_in"), ("w_in", "exc"), ("exc", "output"), ("exc", "exc_delay")]
    if topo.inhibitory_layer:
        nodes["exc_delay"] = _delay(n, dt_s, "an excitatory spike reaches the inhibitory "
                                             "layer at the next step")
        nodes["w_exc_inh"] = _linear(float(topo.w_exc_inh) * np.eye(n), role="excitatory -> "
                                     "inhibitory, one to one", w_exc_inh_mV=float(topo.w_exc_inh))
        nodes["inh"] = population(net.inh, None, dt_s, "inhibitory", cfg.plugin_name("inh_neuron"))
        nodes["inh_delay"] = _delay(n, dt_s, "an inhibitory spike reaches the excitatory layer "
                                             "at the next step")
        nodes["w_inh_exc"] = _linear(float(topo.w_lateral) * off_diagonal, role="inhibitory -> "
                                     "every other excitatory neuron (not its own partner)",
                                     w_inh_mV=float(topo.w_lateral))
        edges += [("exc_delay", "w_exc_inh"), ("w_exc_inh", "inh"), ("inh", "inh_delay"),
                  ("inh_delay", "w_inh_exc"), ("w_inh_exc", "exc")]
    else:
        nodes["exc_delay"] = _delay(n, dt_s, "a spike inhibits the other neurons at the next step")
        nodes["w_lateral"] = _linear(float(topo.w_lateral) * off_diagonal, role="direct lateral "
                                     "inhibition onto every other neuron; tinySNN stores it as "
                                     "one shared scalar w_inh_mV", w_inh_mV=float(topo.w_lateral))
        edges += [("exc_delay", "w_lateral"), ("w_lateral", "exc")]
    out_meta = dict(what="excitatory spikes; a sample's class comes from their counts over the "
                         "presentation", classifier=cfg.train.classifier)
    if net.assignments is not None:
        out_meta.update(assignments=np.asarray(net.assignments, dtype=np.int64),
                        proportions=np.asarray(net.proportions, dtype=np.float64),
                        classify=("all-activity: per class, the mean count of the neurons "
                                  "assigned to it (assignment -1: none); the argmax, ties to "
                                  "the lowest class"))
    nodes["output"] = nir.Output(output_type={"output": np.array([n])},
                                 metadata={METADATA_KEY: _meta(**out_meta)})
    graph_meta = dict(
        format=FORMAT, tinysnn_version=__version__, topology=cfg.plugin_name("topology"),
        n_inputs=n_in, n_neurons=n, dt_s=dt_s, time_steps=int(cfg.train.time_steps),
        units="time s, potential mV, weights mV per input spike",
        spike_convention=_SPIKE_CONVENTION, quant=_quant_meta(net),
        config_json=json.dumps(cfg.resolved().to_dict(), sort_keys=True))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={METADATA_KEY: _meta(**graph_meta)})


def write_nir(net, path) -> Path:
    """Write ``net`` as a NIR file; written under another name then renamed, so an interrupted
    export never leaves a half-written file at ``path``."""
    import nir

    path = Path(path)
    graph = to_nir(net)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except OSError as exc:
        raise TinySNNError(f"cannot write the NIR file {path}: "
                           f"{exc.strerror or exc}") from None
    finally:
        if tmp.is_file():
            tmp.unlink()
    return path
