"""Quantization schemes (PAPER.md section 6d).

- ``ptq``: post-training quantization. Train in float64, then put the stored parameters
  (weights, theta, inhibition, decay factors) on their groups' grids once; at inference the state
  groups (membrane potential) are rounded after every update.
- ``itq``: in-training quantization. The parameters live on their grids from the start: every
  STDP update, normalisation, theta and state update is rounded at once (no float shadow copy:
  STDP has no gradients that would need one).
"""

from __future__ import annotations

from tinysnn_core import hookimpl
from tinysnn_core.quant import QuantPlan, QuantRuntime


def apply_parameters(net, plan: QuantPlan) -> None:
    """Put the network's stored parameters and constants on their groups' grids (in place) and
    attach the runtime that rounds the state during simulation."""
    qr = QuantRuntime(plan)
    qr.seed(net.config.seed, 0xFFFFFFFF, 0)
    net.w[:] = qr.q("weights", net.w)
    net.theta[:] = qr.q("theta", net.theta)
    topo = net.topology
    topo.w_lateral = float(qr.q("inhibition", topo.w_lateral))
    topo.w_exc_inh = float(qr.q("inhibition", topo.w_exc_inh))
    for layer in (net.exc, net.inh):
        if layer is None:
            continue
        if hasattr(layer, "decay"):          # optional in the neuron contract (no leak)
            layer.decay = float(qr.q("decay", layer.decay))
        if hasattr(layer, "theta_decay"):
            layer.theta_decay = float(qr.q("decay", layer.theta_decay))
    net.rule.trace_decay = float(qr.q("decay", net.rule.trace_decay))
    net.quant = qr


class PostTraining:
    """Post-training quantization: float training, then parameters rounded once."""

    in_training = False

    def prepare(self, net, plan: QuantPlan):
        apply_parameters(net, plan)
        return net


class InTraining:
    """In-training quantization: parameters and state on their grids throughout training."""

    in_training = True

    def prepare(self, net, plan: QuantPlan):
        apply_parameters(net, plan)
        return net


@hookimpl
def register_quantizers(register):
    register("ptq", PostTraining, aliases=("post-training",),
             summary="post-training quantization (float training, then round once)")
    register("itq", InTraining, aliases=("in-training",),
             summary="in-training quantization (round after every update while learning)")
