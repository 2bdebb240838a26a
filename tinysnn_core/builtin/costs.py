"""Cost models: memory footprint and energy from operation counts (PAPER.md section 8).

``memory``: bits of every stored parameter and state variable at its own format, packed (a
b-bit value takes b bits; no padding), split into what inference needs and what training adds.
Float (unquantized) values count as 32 bits, the FP32 baseline of the papers.

``energy``: the simulator's operation counts times a per-operation energy that depends on the
operand width. The default table (``horowitz45``) is from M. Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014, 45 nm at 0.9 V:

==================  =========  ==========================================
operation           energy     scaling to other widths (our assumption)
==================  =========  ==========================================
int add, 8 / 32 bit 0.03 / 0.1 pJ  linear in width
int mult, 8 / 32    0.2 / 3.1 pJ   quadratic in width
fp32 add / mult     0.9 / 3.7 pJ
fp16 add / mult     0.4 / 1.1 pJ
SRAM read 64 bit    10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); per bit, by the model's size
DRAM read 64 bit    1.3-2.6 nJ (we use 2.0 nJ) for models above 1 MB
==================  =========  ==========================================

Other tables register as plugins of kind ``cost_model`` with an ``EnergyTable`` of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinysnn_core import hookimpl

FLOAT_BITS = 32


def group_bits(plan, group: str) -> int:
    """Bits of one value of ``group`` under ``plan`` (32 when the group stays float)."""
    if plan is None or group not in plan.groups:
        return FLOAT_BITS
    return plan.groups[group].fmt.bits


def _refrac_bits(refrac: int) -> int:
    return max(1, math.ceil(math.log2(refrac + 2)))


class MemoryModel:
    """Memory footprint in bits, per parameter group, for inference and for training."""

    def estimate(self, net, ops=None, plan=None) -> dict:
        """``plan``: the quantization plan to cost (default: the network's own; an empty
        ``QuantPlan("none")`` costs everything as FP32)."""
        if plan is None and net.quant is not None:
            plan = net.quant.plan
        n_in, n = net.n_inputs, net.n_neurons
        b = {g: group_bits(plan, g) for g in
             ("weights", "potential", "theta", "traces", "inhibition", "decay")}
        dc = net.inh is not None
        # stored parameters (flash on a board)
        params = {
            "weights": n_in * n * b["weights"],
            "theta": n * b["theta"] if getattr(net.exc, "adaptive", False) else 0,
            # D&C: N exc->inh (diagonal) + N(N-1) inh->exc logical weights; tinySNN: one scalar
            "inhibition": (n + n * (n - 1)) * b["inhibition"] if dc else b["inhibition"],
            # per layer: rest, reset, thresh (potential format) and the leak factor (decay format)
            "neuron_constants": (2 if dc else 1) * (3 * b["potential"] + b["decay"]),
            "assignments": n * 4,   # a class 0..9 or none per neuron: 4 bits
        }
        # state updated while inferring (RAM on a board)
        state = {
            "potential": (2 if dc else 1) * n * b["potential"],
            "refractory": (2 if dc else 1) * n * _refrac_bits(int(net.exc.p.refrac)),
            "spike_counts": n * 16,
        }
        # what training adds: traces (and the deferred-update accumulators of tinysnn-stdp)
        train = {"pre_traces": n_in * b["traces"]}
        if getattr(net.rule, "needs_post_trace", False):
            train["post_traces"] = n * b["traces"]
        if ops is not None and "train" in ops and not net.rule.needs_post_trace:
            per = ops["train"].per_sample()
            active = per.get("stdp_updates", 0.0) / max(1, n_in)
            train["update_accumulators"] = int(math.ceil(active)) * n_in * FLOAT_BITS
        model_bits = params["weights"] + params["theta"] + params["inhibition"] + params["neuron_constants"]
        return {
            "bits_per_group": b,
            "parameters_bits": params,
            "state_bits": state,
            "training_extra_bits": train,
            "model_bits": model_bits,             # weights + neuron parameters, packed
            "inference_bits": sum(params.values()) + sum(state.values()),
            "training_bits": sum(params.values()) + sum(state.values()) + sum(train.values()),
        }


@dataclass
class EnergyTable:
    """Energies in pJ (Horowitz, ISSCC 2014, 45 nm) and how they scale with width."""

    name: str = "horowitz45"
    int_add_32: float = 0.1
    int_mult_32: float = 3.1
    fp32_add: float = 0.9
    fp32_mult: float = 3.7
    sram_64_8kb: float = 10.0
    sram_64_32kb: float = 20.0
    sram_64_1mb: float = 100.0
    dram_64: float = 2000.0

    def add(self, bits: int, is_float: bool) -> float:
        return self.fp32_add if is_float else self.int_add_32 * bits / 32

    def mult(self, bits: int, is_float: bool) -> float:
        return self.fp32_mult if is_float else self.int_mult_32 * (bits / 32) ** 2

    def access_per_bit(self, memory_bits: int) -> float:
        kb = memory_bits / 8 / 1024
        if kb <= 8:
            e64 = self.sram_64_8kb
        elif kb <= 32:
            e64 = self.sram_64_32kb
        elif kb <= 1024:
            e64 = self.sram_64_1mb
        else:
            e64 = self.dram_64
        return e64 / 64


class EnergyModel:
    """Energy per sample from the operation counts, by phase (train / assign / test)."""

    table = EnergyTable()

    def estimate(self, net, ops=None, plan=None) -> dict:
        if plan is None and net.quant is not None:
            plan = net.quant.plan
        ops = ops if ops is not None else net.ops
        mem = MemoryModel().estimate(net, None, plan)
        bits = mem["bits_per_group"]
        fl = {g: (plan is None or g not in plan.groups) for g in bits}
        t = self.table
        e_bit = t.access_per_bit(mem["inference_bits"])
        bw, bv, btr = bits["weights"], bits["potential"], bits["traces"]
        acc_float = fl["weights"] or fl["potential"]
        bacc = max(bw, bv)
        per_op = {
            # read a weight, add it to the neuron's input
            "synaptic_events": bw * e_bit + t.add(bacc, acc_float),
            "lateral_events": t.add(bv, fl["potential"]),
            # leak multiply, add input, compare with threshold, read+write v, read theta
            "neuron_updates_exc": t.mult(max(bv, bits["decay"]), fl["potential"])
            + 2 * t.add(bv, fl["potential"]) + (2 * bv + bits["theta"]) * e_bit,
            "neuron_updates_inh": t.mult(max(bv, bits["decay"]), fl["potential"])
            + 2 * t.add(bv, fl["potential"]) + 2 * bv * e_bit,
            "trace_updates": t.mult(btr, fl["traces"]) + 2 * btr * e_bit,
            # read w, multiply rate x trace, add, write w
            "stdp_updates": t.mult(max(bw, btr), fl["weights"]) + t.add(bw, fl["weights"])
            + 2 * bw * e_bit,
            "stdp_accumulates": t.add(btr, fl["traces"]) + btr * e_bit,
            # read (sum) and scale (multiply, write)
            "norm_ops": t.add(bw, fl["weights"]) / 2 + t.mult(bw, fl["weights"]) / 2 + 1.5 * bw * e_bit,
        }
        phases = {}
        for phase, counts in ops.items():
            per_sample = counts.per_sample()
            breakdown = {k: per_sample.get(k, 0.0) * e for k, e in per_op.items()}
            phases[phase] = {"pj_per_sample": sum(breakdown.values()),
                             "breakdown_pj_per_sample": breakdown}
        return {"table": t.name, "pj_per_op": per_op, "phases": phases,
                "access_pj_per_bit": e_bit}


@hookimpl
def register_cost_models(register):
    register("memory", MemoryModel, summary="memory footprint in bits per parameter group, packed")
    register("energy", EnergyModel,
             summary="energy per sample from op counts x Horowitz ISSCC'14 45 nm table")
