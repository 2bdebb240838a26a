"""Model selection (PAPER.md section 7; the exact Q-SpiNN reward is not public, this is ours).

1. Feasible candidates: exploration grid points whose accuracy meets the target (absolute, or
   within X percentage points of the float baseline) and that fit the optional memory and energy
   budgets. Accuracy is the integer-inference accuracy where the point is deployable.
2. The Pareto front over (accuracy high, memory low, energy low).
3. Rank the front by a reward that weighs the memory saving against the accuracy gap:

   - ``ratio`` (default): ``(acc / acc_base) * (M_base / M) ** mu``; ``mu`` in [0, 1] weighs memory;
   - ``gap``: ``(M_base / M) * exp(-max(0, acc_base - acc) / tau)``, the accuracy gap as a penalty.

   Ties go to the lower energy per inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import TinySNNError


@dataclass
class Selection:
    chosen: dict
    baseline: dict
    front: list
    feasible: list
    target: float
    explanation: str


def reward(row: dict, base: dict, kind: str = "ratio", mu: float = 1.0, tau: float = 0.01) -> float:
    saving = base["memory_model_bits"] / row["memory_model_bits"]
    if kind == "ratio":
        return (row["accuracy"] / max(base["accuracy"], 1e-9)) * saving ** mu
    if kind == "gap":
        return saving * math.exp(-max(0.0, base["accuracy"] - row["accuracy"]) / tau)
    raise TinySNNError(f"unknown reward {kind!r}; known: ratio, gap")


def pareto_front(rows: list[dict]) -> list[dict]:
    def dominates(a, b):
        ge = (a["accuracy"] >= b["accuracy"] and a["memory_model_bits"] <= b["memory_model_bits"]
              and a["energy_inference_pj"] <= b["energy_inference_pj"])
        gt = (a["accuracy"] > b["accuracy"] or a["memory_model_bits"] < b["memory_model_bits"]
              or a["energy_inference_pj"] < b["energy_inference_pj"])
        return ge and gt
    return [r for r in rows if not any(dominates(o, r) for o in rows if o is not r)]


def select(rows: list[dict], *, target: float | None = None, within_pp: float | None = None,
           max_memory_bits: float | None = None, max_energy_pj: float | None = None,
           reward_kind: str = "ratio", mu: float = 1.0, tau: float = 0.01,
           deployable_only: bool = True) -> Selection:
    bases = [r for r in rows if r.get("kind") == "baseline"]
    if not bases:
        raise TinySNNError("the results file has no float baseline row: run tinysnn explore first")
    base = bases[-1]
    if (target is None) == (within_pp is None):
        raise TinySNNError("give exactly one accuracy target: --target ACC or --within PP")
    target = target if target is not None else base["accuracy"] - within_pp / 100.0
    candidates = [r for r in rows if r.get("kind") == "grid"
                  and (r.get("deployable") or not deployable_only)]
    feasible = [r for r in candidates if r["accuracy"] >= target - 1e-12
                and (max_memory_bits is None or r["memory_model_bits"] <= max_memory_bits)
                and (max_energy_pj is None or r["energy_inference_pj"] <= max_energy_pj)]
    if not feasible:
        best = max(candidates, key=lambda r: r["accuracy"], default=None)
        hint = (f" (best candidate: {best['label']} at {100 * best['accuracy']:.2f}%)"
                if best else "")
        raise TinySNNError(f"no candidate reaches {100 * target:.2f}% within the budgets{hint}")
    front = pareto_front(feasible)
    ranked = sorted(front, key=lambda r: (-reward(r, base, reward_kind, mu, tau),
                                          r["energy_inference_pj"]))
    chosen = ranked[0]
    saving = base["memory_model_bits"] / chosen["memory_model_bits"]
    e_ratio = base["energy_inference_pj"] / chosen["energy_inference_pj"]
    why = (f"Target accuracy {100 * target:.2f}% (float baseline {100 * base['accuracy']:.2f}%). "
           f"{len(feasible)} of {len(candidates)} candidates meet it"
           f"{' and the budgets' if (max_memory_bits or max_energy_pj) else ''}; "
           f"{len(front)} of those are Pareto-optimal in accuracy, memory and energy. "
           f"Chosen: {chosen['label']} with {100 * chosen['accuracy']:.2f}% accuracy "
           f"({100 * (chosen['accuracy'] - base['accuracy']):+.2f} points), "
           f"{chosen['memory_model_bits'] / 8 / 1024:.1f} KiB of weights and neuron parameters "
           f"({saving:.2f}x smaller than FP32) and {chosen['energy_inference_pj'] / 1e6:.3f} uJ "
           f"per inference ({e_ratio:.2f}x less), because it has the highest reward "
           f"({reward_kind}, mu={mu}) on the front: "
           f"{reward(chosen, base, reward_kind, mu, tau):.3f}.")
    return Selection(chosen, base, front, feasible, target, why)
