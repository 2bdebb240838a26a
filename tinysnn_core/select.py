"""Model selection (PAPER.md section 7; the exact Q-SpiNN reward is not public, this is ours).

1. Feasible candidates: exploration grid points whose accuracy meets the target (absolute, or
   within X percentage points of the float baseline) and that fit the optional memory and energy
   budgets. Accuracy is the integer-inference accuracy where the point is deployable.
2. The Pareto front over (accuracy high, memory low, energy low).
3. Rank the front by a reward that weighs the memory saving against the accuracy gap:

   - ``ratio`` (default): ``(acc / acc_base) * (M_base / M) ** mu``; ``mu`` in [0, 1] weighs memory;
   - ``gap``: ``(M_base / M) * exp(-max(0, acc_base - acc) / tau)``, the accuracy gap as a penalty.

   Ties go to the lower energy per inference.

With a cost model (``select_by_cost``, any registered one whose figures ``tinysnn explore
--cost-models`` put in the rows' ``costs[NAME]``, a third party's included): the candidates must
meet the accuracy target and the optional budget on the chosen figure; the front is over
(accuracy high, the figure low, memory low) and the choice is the point of the front with the
least figure, ties to the more accurate, then the smaller.

The accuracy target is decided with a paired test when the rows carry per-sample results
(``tinysnn explore`` writes them: per seed, which test samples the point got right): with
``--within X`` a candidate qualifies when the one-sided lower confidence bound (95% by default)
of its accuracy difference to the float baseline is at least -X points (a stratified paired
bootstrap over the test samples, each seed against its own float model:
``stats.paired_difference``);
with ``--target ACC`` when the one-sided lower bound of its accuracy is at least ACC. The
explanation states the test, its confidence and, for the chosen model, the bound and the exact
McNemar test of the discordant samples. Rows without per-sample results (an older results file)
are decided on their accuracy alone, and the explanation says that no paired test was possible.

With a board (``select_for_board``), cost means cost on that board: the candidates must fit its
flash and RAM and meet the latency or energy budget under the board's cost model (the row's
``costs["board-NAME"]``); the front is over (accuracy high, board latency or energy low, flash
low), and the choice is the cheapest point of the front on the budgeted figure (latency unless an
energy budget is given), ties to the more accurate, then the smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, TinySNNError
from .stats import CONFIDENCE, RESAMPLES, accuracy_bounds, paired_difference, unpack_correct


@dataclass
class Selection:
    chosen: dict
    baseline: dict
    front: list
    feasible: list
    target: float
    explanation: str
    test: dict | None = None      # the chosen model's paired test (None: no test possible)


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


def reference_baseline(rows: list[dict], base_model: str | None = None) -> dict:
    """The float baseline the target refers to: the one of ``base_model`` (a path or digest)
    when given, else the most accurate one (an exploration over several sizes has one each)."""
    bases = [r for r in rows if r.get("kind") == "baseline"]
    if not bases:
        raise TinySNNError("the results file has no float baseline row: run tinysnn explore first")
    if base_model is not None:
        # a run directory of run --seeds names the baseline of a seeded exploration
        mine = [r for r in bases
                if base_model in (r.get("base_model"), r.get("base_model_path"))
                or (r.get("run_dir") and Path(r["run_dir"]) == Path(base_model))]
        if mine:
            return mine[-1]
    return max(bases, key=lambda r: r["accuracy"])


def _target(base: dict, target, within_pp) -> float:
    if (target is None) == (within_pp is None):
        raise TinySNNError("give exactly one accuracy target: --target ACC or --within PP")
    return target if target is not None else base["accuracy"] - within_pp / 100.0


def _points(x: float) -> str:
    return f"{x:g} point" + ("" if x == 1 else "s")


def correctness(row: dict) -> list[np.ndarray]:
    """Per seed, which test samples ``row`` got right (its hex bitmaps); a bitmap that does not
    decode, or whose count disagrees with the row's accuracy of that seed, is an InputError."""
    label = row.get("label", "?")
    out = []
    for i, (seed, bits, n) in enumerate(zip(row["seeds"], row["correct"], row["test_sizes"])):
        v = unpack_correct(bits, n, f"the per-sample results of {label!r}, seed {seed}")
        acc = row["accuracy_seeds"][i]
        if abs(v.mean() - acc) > 0.5 / n:
            raise InputError(f"the per-sample results of {label!r}, seed {seed}, give "
                             f"{100 * v.mean():.2f}%, not its {100 * acc:.2f}% (damaged)")
        out.append(v)
    return out


class AccuracyRule:
    """Whether a candidate meets the accuracy target (module docstring): a paired test when
    the float baseline has per-sample results, else its accuracy alone."""

    def __init__(self, base: dict, target=None, within_pp=None,
                 confidence: float = CONFIDENCE):
        self.base, self.within_pp, self.confidence = base, within_pp, confidence
        self.target = _target(base, target, within_pp)
        self.paired = "correct" in base
        self._cache: dict[int, object] = {}
        if self.paired:
            self._base = correctness(base)

    def _check_pair(self, row: dict) -> None:
        label = row.get("label", "?")
        if "correct" not in row:
            raise InputError(f"row {label!r} has no per-sample results but its float baseline "
                             "has: a paired test needs both (explore them into one results file)")
        if row["seeds"] != self.base["seeds"]:
            raise InputError(f"row {label!r} is over seeds {row['seeds']}, its float baseline "
                             f"over {self.base['seeds']}: a paired test needs the same seeds")
        if (row["test_sizes"] != self.base["test_sizes"]
                or row.get("test_digests") != self.base.get("test_digests")):
            raise InputError(f"row {label!r} is over other test samples than its float baseline:"
                             " a paired test needs the same ones")

    def stats(self, row: dict):
        """The candidate's test: ``PairedDifference`` (--within) or (mean, lower, upper)
        of its accuracy (--target)."""
        key = id(row)
        if key not in self._cache:
            self._check_pair(row)
            mine = correctness(row)
            self._cache[key] = (paired_difference(zip(mine, self._base), self.confidence)
                                if self.within_pp is not None
                                else accuracy_bounds(mine, self.confidence))
        return self._cache[key]

    def meets(self, row: dict) -> bool:
        if not self.paired:
            return row["accuracy"] >= self.target - 1e-12
        st = self.stats(row)
        if self.within_pp is not None:
            return st.lower >= -self.within_pp / 100.0 - 1e-12
        return st[1] >= self.target - 1e-12

    def _conf(self) -> str:
        return f"{100 * self.confidence:g}%"

    def describe(self) -> str:
        """The explanation's sentence on the target and how it was decided."""
        b = self.base
        ci = b.get("accuracy_ci")
        base = (f"float baseline {100 * b['accuracy']:.2f}%"
                + (f", mean of {len(b['seeds'])} seeds, 95% CI {100 * ci[0]:.2f}-"
                   f"{100 * ci[1]:.2f}%" if ci else ""))
        if not self.paired:
            return (f"Target accuracy {100 * self.target:.2f}% ({base}). No paired test was "
                    "possible (the float baseline row has no per-sample results: a results "
                    "file of an older tinysnn explore), so each candidate is judged on its "
                    "accuracy alone, with no confidence attached.")
        k, n = len(b["seeds"]), b["test_sizes"][0]
        samples = (f"the {n:,} test samples" + (f" of each of the {k} seeds" if k > 1 else "")
                   if len(set(b["test_sizes"])) == 1 else f"the test samples of the {k} seeds")
        if self.within_pp is not None:
            return (f"Target: within {_points(self.within_pp)} of the {base}, decided with "
                    f"{self._conf()} confidence by a paired test on the same test samples: a "
                    f"candidate qualifies when the one-sided {self._conf()} lower confidence "
                    f"bound of its accuracy difference to the baseline is at least "
                    f"{-self.within_pp:g} {_points(self.within_pp).split()[1]} (stratified "
                    f"paired bootstrap, "
                    f"{RESAMPLES:,} resamples of {samples}"
                    + (", each seed against its own float model)." if k > 1 else ")."))
        return (f"Target accuracy {100 * self.target:.2f}% ({base}), decided with "
                f"{self._conf()} confidence: a candidate qualifies when the one-sided "
                f"{self._conf()} lower confidence bound of its accuracy (bootstrap, "
                f"{RESAMPLES:,} resamples of {samples}) is at least the target.")

    def about(self, row: dict) -> str:
        """The chosen candidate's accuracy, with its test when there was one."""
        acc, gap = 100 * row["accuracy"], 100 * (row["accuracy"] - self.base["accuracy"])
        ci = row.get("accuracy_ci")
        parts = [f"mean of {len(row['seeds'])} seeds, 95% CI {100 * ci[0]:.2f}-"
                 f"{100 * ci[1]:.2f}%"] if ci else []
        if not self.paired:
            parts.append(f"{gap:+.2f} points")
        elif self.within_pp is None:
            parts.append(f"{gap:+.2f} points; one-sided {self._conf()} lower bound "
                         f"{100 * self.stats(row)[1]:.2f}%")
        else:
            st = self.stats(row)
            m = st.mcnemar
            parts.append(f"{100 * st.mean:+.2f} points against the baseline on the same samples, "
                         f"one-sided {self._conf()} lower bound {100 * st.lower:+.2f}; exact "
                         f"McNemar test of the samples only one of the two got right: {m.only_a} "
                         f"only the candidate, {m.only_b} only the baseline"
                         + (f" (pooled over {st.seeds} seeds)" if st.seeds > 1 else "")
                         + f", p = {m.p:.3g}")
        return f"{acc:.2f}% accuracy ({'; '.join(parts)})"

    def goal(self) -> str:
        """What no candidate did, for the error when none qualifies."""
        if self.paired and self.within_pp is not None:
            return (f"is within {_points(self.within_pp)} of the float baseline at "
                    f"{self._conf()} confidence (paired test)")
        return (f"reaches {100 * self.target:.2f}%"
                + (f" at {self._conf()} confidence" if self.paired else ""))

    def record(self, row: dict) -> dict | None:
        """The chosen candidate's test as JSON (``Selection.test``)."""
        if not self.paired:
            return None
        st = self.stats(row)
        common = {"confidence": self.confidence, "resamples": RESAMPLES,
                  "seeds": list(row["seeds"]), "test_sizes": list(row["test_sizes"])}
        if self.within_pp is None:
            return {**common, "test": "bootstrap lower bound of the accuracy",
                    "accuracy": st[0], "lower": st[1], "target": self.target}
        return {**common, "test": "stratified paired bootstrap of the accuracy difference",
                "within_points": self.within_pp, "difference": st.mean,
                "lower": st.lower, "upper": st.upper, "interval": list(st.interval),
                "mcnemar": {"only_candidate": st.mcnemar.only_a,
                            "only_baseline": st.mcnemar.only_b, "p": st.mcnemar.p}}


def select_for_board(rows: list[dict], board: str, *, target: float | None = None,
                     within_pp: float | None = None, max_latency_ms: float | None = None,
                     max_energy_uj: float | None = None, base_model: str | None = None,
                     confidence: float = CONFIDENCE) -> Selection:
    """The cheapest model on ``board`` that meets the accuracy target, fits and meets the budgets
    (module docstring)."""
    key = f"board-{board}"
    base = reference_baseline(rows, base_model)
    rule = AccuracyRule(base, target, within_pp, confidence)
    target = rule.target
    costed = [r for r in rows if r.get("kind") == "grid" and r.get("deployable")
              and key in r.get("costs", {})]
    if not costed:
        raise TinySNNError(f"no row of the results has the cost on {board}: run tinysnn explore "
                           f"with --boards {board}")
    figure = "energy_uj_median" if max_energy_uj is not None else "latency_ms_median"
    if any(figure not in r["costs"][key] for r in costed):
        raise TinySNNError(f"the cost model of {board} gives no {figure.split('_')[0]} (no "
                           f"cycle estimate calibrated): tinysnn board calibrate {board}")
    # a cost the board's model was not calibrated for is no cost to choose on
    uncalibrated = [r for r in costed if r["costs"][key].get("calibrated") is False]
    costed = [r for r in costed if r["costs"][key].get("calibrated") is not False]
    if not costed:
        raise TinySNNError(f"no candidate has a calibrated cost on {board} "
                           f"({len(uncalibrated)} have estimates only): tinysnn board calibrate")
    fits = [r for r in costed if r["costs"][key].get("fits")]
    accurate = [r for r in fits if rule.meets(r)]
    feasible = [r for r in accurate
                if (max_latency_ms is None or r["costs"][key]["latency_ms_median"] <= max_latency_ms)
                and (max_energy_uj is None or r["costs"][key]["energy_uj_median"] <= max_energy_uj)]
    if not feasible:
        best = max(fits, key=lambda r: r["accuracy"], default=None)
        raise TinySNNError(
            f"no candidate {rule.goal()} on {board} within the budgets: "
            f"{len(fits)} of {len(costed)} fit the board, {len(accurate)} of those are accurate "
            "enough" + (f"; the most accurate that fits: {best['label']} at "
                        f"{100 * best['accuracy']:.2f}%" if best else ""))

    def cost(r):
        return r["costs"][key][figure]

    def flash(r):
        return r["costs"][key].get("flash_bytes", 0)

    def dominates(a, b):
        ge = a["accuracy"] >= b["accuracy"] and cost(a) <= cost(b) and flash(a) <= flash(b)
        gt = a["accuracy"] > b["accuracy"] or cost(a) < cost(b) or flash(a) < flash(b)
        return ge and gt

    front = [r for r in feasible if not any(dominates(o, r) for o in feasible if o is not r)]
    chosen = min(front, key=lambda r: (cost(r), -r["accuracy"], flash(r)))
    c = chosen["costs"][key]
    what = "energy" if figure.startswith("energy") else "latency"
    budgets = [f"latency <= {max_latency_ms:g} ms" if max_latency_ms is not None else "",
               f"energy <= {max_energy_uj:g} uJ" if max_energy_uj is not None else ""]
    budgets = " and ".join(b for b in budgets if b)
    why = (f"Board {board}. {rule.describe()} "
           + (f"{len(uncalibrated)} candidates whose weight width the cost model was not "
              f"calibrated for are left out. " if uncalibrated else "")
           + f"Of {len(costed)} candidates, {len(fits)} fit the board's flash and RAM, {len(accurate)} of those "
           f"meet the target" + (f" and {len(feasible)} the budgets ({budgets})" if budgets else "")
           + f"; {len(front)} are Pareto-optimal in accuracy, board {what} and flash. Chosen, as "
           f"the one with the least {what} on the board: {chosen['label']} "
           f"(N={chosen.get('n_neurons', '?')}) with {rule.about(chosen)}, "
           f"{c.get('flash_bytes', 0) / 1024:.1f} KiB of flash, a predicted median "
           f"{c['instructions_median'] / 1e6:.2f} M instructions = "
           f"{c.get('cycles_median', float('nan')) / 1e6:.2f} M cycles, "
           f"{c['latency_ms_median']:.1f} ms"
           + (f" and {c['energy_uj_median']:.0f} uJ" if "energy_uj_median" in c else "")
           + f" per inference [{c.get('label', key)}]; the ASIC 45 nm model would say "
           f"{chosen['energy_inference_pj'] / 1e6:.2f} uJ.")
    return Selection(chosen, base, front, feasible, target, why, rule.record(chosen))


def _is_figure(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cost_figures(rows: list[dict]) -> dict[str, list[str]]:
    """Every cost model in the rows' ``costs`` and its numeric figures (sorted names)."""
    out: dict[str, set] = {}
    for r in rows:
        for name, figures in (r.get("costs") or {}).items():
            if isinstance(figures, dict):
                out.setdefault(name, set()).update(k for k, v in figures.items() if _is_figure(v))
    return {name: sorted(f) for name, f in sorted(out.items())}


def default_figure(figures: list[str]) -> str | None:
    """The figure a cost model is chosen by when none is named: its first median, else its
    first figure."""
    medians = [f for f in figures if f.endswith("_median")]
    return (medians or figures or [None])[0]


def costs_line(row: dict) -> str:
    """The row's figures of every cost model, medians first (for an explanation)."""
    parts = []
    for name, figures in sorted((row.get("costs") or {}).items()):
        if not isinstance(figures, dict):
            continue
        shown = [f for f in sorted(figures) if f.endswith("_median") and _is_figure(figures[f])]
        if shown:
            parts.append(f"{name}" + (" (uncalibrated estimate)"
                                      if figures.get("calibrated") is False else "")
                         + ": " + ", ".join(f"{f} {figures[f]:.4g}" for f in shown))
    return ("Cost models: " + "; ".join(parts) + ".") if parts else ""


def select_by_cost(rows: list[dict], cost_model: str, figure: str | None = None, *,
                   target: float | None = None, within_pp: float | None = None,
                   max_cost: float | None = None, base_model: str | None = None,
                   confidence: float = CONFIDENCE) -> Selection:
    """The model with the least ``figure`` of cost model ``cost_model`` that meets the accuracy
    target and ``figure <= max_cost`` (module docstring)."""
    known = cost_figures(rows)
    if cost_model not in known:
        raise TinySNNError(f"no row of the results has figures of the cost model {cost_model!r}"
                           f" (in the rows: {', '.join(known) or 'none'}): run tinysnn explore "
                           f"with --cost-models {cost_model}")
    figure = figure or default_figure(known[cost_model])
    if figure not in known[cost_model]:
        raise TinySNNError(f"cost model {cost_model!r} gives no figure {figure!r}; its figures: "
                           f"{', '.join(known[cost_model])}")
    base = reference_baseline(rows, base_model)
    rule = AccuracyRule(base, target, within_pp, confidence)
    target = rule.target

    def cost(r):
        return r["costs"][cost_model][figure]

    costed = [r for r in rows if r.get("kind") == "grid" and r.get("deployable")
              and _is_figure((r.get("costs") or {}).get(cost_model, {}).get(figure))]
    accurate = [r for r in costed if rule.meets(r)]
    feasible = [r for r in accurate if max_cost is None or cost(r) <= max_cost]
    if not feasible:
        best = max(costed, key=lambda r: r["accuracy"], default=None)
        raise TinySNNError(
            f"no candidate {rule.goal()} with {cost_model} {figure} <= "
            f"{max_cost if max_cost is not None else 'any'}: {len(accurate)} of {len(costed)} "
            "costed candidates are accurate enough"
            + (f"; the most accurate: {best['label']} at {100 * best['accuracy']:.2f}%"
               if best else ""))

    def dominates(a, b):
        ge = (a["accuracy"] >= b["accuracy"] and cost(a) <= cost(b)
              and a["memory_model_bits"] <= b["memory_model_bits"])
        gt = (a["accuracy"] > b["accuracy"] or cost(a) < cost(b)
              or a["memory_model_bits"] < b["memory_model_bits"])
        return ge and gt

    front = [r for r in feasible if not any(dominates(o, r) for o in feasible if o is not r)]
    chosen = min(front, key=lambda r: (cost(r), -r["accuracy"], r["memory_model_bits"]))
    label = chosen["costs"][cost_model].get("label")
    why = (f"Cost model {cost_model}" + (f" ({label})" if label else "") + f", figure {figure}. "
           f"{rule.describe()} "
           f"Of {len(costed)} candidates with that figure, {len(accurate)} meet the target"
           + (f" and {len(feasible)} the budget {figure} <= {max_cost:g}"
              if max_cost is not None else "")
           + f"; {len(front)} are Pareto-optimal in accuracy, {figure} and memory. Chosen, as the "
           f"one with the least {figure}: {chosen['label']} with "
           f"{rule.about(chosen)}, {figure} = "
           f"{cost(chosen):.6g}, {chosen['memory_model_bits'] / 8 / 1024:.1f} KiB of weights and "
           f"neuron parameters and {chosen['energy_inference_pj'] / 1e6:.3f} uJ per inference "
           "in the ASIC 45 nm model.")
    extra = costs_line(chosen)
    return Selection(chosen, base, front, feasible, target, why + (" " + extra if extra else ""),
                     rule.record(chosen))


def select(rows: list[dict], *, target: float | None = None, within_pp: float | None = None,
           max_memory_bits: float | None = None, max_energy_pj: float | None = None,
           reward_kind: str = "ratio", mu: float = 1.0, tau: float = 0.01,
           deployable_only: bool = True, base_model: str | None = None,
           confidence: float = CONFIDENCE) -> Selection:
    base = reference_baseline(rows, base_model)
    rule = AccuracyRule(base, target, within_pp, confidence)
    target = rule.target
    candidates = [r for r in rows if r.get("kind") == "grid"
                  and (r.get("deployable") or not deployable_only)]
    feasible = [r for r in candidates
                if (max_memory_bits is None or r["memory_model_bits"] <= max_memory_bits)
                and (max_energy_pj is None or r["energy_inference_pj"] <= max_energy_pj)
                and rule.meets(r)]
    if not feasible:
        best = max(candidates, key=lambda r: r["accuracy"], default=None)
        hint = (f" (best candidate: {best['label']} at {100 * best['accuracy']:.2f}%)"
                if best else "")
        raise TinySNNError(f"no candidate {rule.goal()} within the budgets{hint}")
    front = pareto_front(feasible)
    ranked = sorted(front, key=lambda r: (-reward(r, base, reward_kind, mu, tau),
                                          r["energy_inference_pj"]))
    chosen = ranked[0]
    saving = base["memory_model_bits"] / chosen["memory_model_bits"]
    e_ratio = base["energy_inference_pj"] / chosen["energy_inference_pj"]
    why = (f"{rule.describe()} "
           f"{len(feasible)} of {len(candidates)} candidates meet it"
           f"{' and the budgets' if (max_memory_bits or max_energy_pj) else ''}; "
           f"{len(front)} of those are Pareto-optimal in accuracy, memory and energy. "
           f"Chosen: {chosen['label']} with {rule.about(chosen)}, "
           f"{chosen['memory_model_bits'] / 8 / 1024:.1f} KiB of weights and neuron parameters "
           f"({saving:.2f}x smaller than FP32) and {chosen['energy_inference_pj'] / 1e6:.3f} uJ "
           f"per inference in the ASIC 45 nm model ({e_ratio:.2f}x less), because it has the highest reward "
           f"({reward_kind}, mu={mu}) on the front: "
           f"{reward(chosen, base, reward_kind, mu, tau):.3f}.")
    extra = costs_line(chosen)
    return Selection(chosen, base, front, feasible, target, why + (" " + extra if extra else ""),
                     rule.record(chosen))
