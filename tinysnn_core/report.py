"""Exploration reports: one data model, two renderings (Jinja2 templates): ``report.md`` with
linked PNG plots, and ``report.html``, a single file with the plots embedded (data URIs) that can
be sent as it is.

The data model: a provenance block (data set, N, T, seeds, topology, tinysnn version, date, base
model digests, results file, command line), then sections of paragraphs, tables and figures.
Every table marks the selected row (a CSS class in HTML, bold in Markdown); the grid tables show
each row's diagnostics (``saturated``: the share of learned values at their format's largest
code; ``lost_decays``: decay factors their format rounds to 1).

Plots (matplotlib): the Pareto front (memory vs accuracy), accuracy vs precision per scheme,
rounding and network size (error bars where the rows carry ``accuracy_ci``), memory and energy
by parameter group (float baseline vs the chosen model, log scales, values labelled), and the
learned weight maps of every neuron with a colour bar. Accuracy axes are zoomed to the data
around the reference accuracy; points below the zoom are marked at the lower edge and counted.

With a board (``board=NAME``, the rows' ``costs["board-NAME"]``): a table of the candidates
costed on that board (latency, board energy, instructions, cycles, flash, fit), accuracy vs
board latency with its Pareto front, and what the inference settings (early exit, fewer steps,
another input rate) saved on each quantization point.

Two energy figures appear and are never mixed up: the ASIC 45 nm model's (operation counts x
Horowitz's energies per operation, ``energy_inference_pj``; every such figure is labelled
"ASIC 45 nm model") and a board's (predicted cycles x the datasheet's run current x VDD,
``costs[...]["energy_uj_median"]``; labelled "cycles x datasheet").
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TinySNNError

#: the short labels of the two energy figures (column headers, axes, captions)
ASIC_LABEL = "ASIC 45 nm model"
BOARD_ENERGY_LABEL = "cycles x datasheet"
#: a table with more rows than this is folded (HTML <details>) so that the page stays readable
FOLD_ROWS = 40
#: accuracy axes show at least this many percentage points below the lowest reference accuracy
ZOOM_PP = 10.0


# --- the data model -----------------------------------------------------------------------

@dataclass
class Row:
    cells: list
    selected: bool = False
    mark: str = ""              # what the mark column says: "front", "reference", ...
    warn: bool = False          # a diagnostic worth a look (saturated theta, a lost decay)

    @property
    def css(self) -> str:
        return " ".join(c for c, on in (("selected", self.selected), ("front", self.mark == "front"),
                                        ("warn", self.warn)) if on)


@dataclass
class Table:
    columns: list
    rows: list
    mark_column: bool = False   # a first column that says chosen / front
    label_column: int = 0       # the column that names the row (bold when selected)

    @property
    def fold(self) -> bool:
        return len(self.rows) > FOLD_ROWS

    @property
    def selected_rows(self) -> list:
        return [r for r in self.rows if r.selected]


@dataclass
class Figure:
    file: str
    caption: str


@dataclass
class Section:
    heading: str
    paragraphs: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)      # a bullet list after the tables
    subsections: list = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")


# --- plots --------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi=110):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)


def accuracy_limits(values, references=(), zoom_pp: float = ZOOM_PP) -> tuple[float, float]:
    """The y range (percent) of an accuracy axis: from the lowest value, but no lower than
    ``zoom_pp`` below the lowest reference, to the highest value or reference, padded."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    refs = [v for v in references if v is not None and math.isfinite(v)]
    if not vals and not refs:
        return 0.0, 100.0
    lo = min(vals + refs)
    if refs:
        lo = max(lo, min(refs) - zoom_pp)
    hi = max(vals + refs)
    pad = max(0.3, 0.06 * (hi - lo))
    return max(0.0, lo - pad), min(100.0, hi + pad)


def _zoom(ax, ys, refs, xs=None):
    """Zoom the accuracy axis; mark the points below it at the lower edge and count them."""
    lo, hi = accuracy_limits(ys, refs)
    ax.set_ylim(lo, hi)
    if xs is None:
        return
    below = [(x, y) for x, y in zip(xs, ys) if y < lo]
    if below:
        ax.scatter([x for x, _ in below], [lo] * len(below), marker="v", s=18, c="tab:gray",
                   clip_on=False, zorder=4,
                   label=f"{len(below)} below the axis (lowest {min(y for _, y in below):.1f}%)")


def _ci(row):
    """(low, high) in percent of ``accuracy_ci``, or None."""
    ci = row.get("accuracy_ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in ci):
        return 100 * ci[0], 100 * ci[1]
    return None


def plot_pareto(rows, front, chosen, bases, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.8, 4.6))
    grid = [r for r in rows if r.get("kind") == "grid"]
    xs_all, ys_all = [], []
    for scheme, marker in (("ptq", "o"), ("itq", "s")):
        pts = [r for r in grid if r["scheme"] == scheme]
        if pts:
            xs = [r["memory_model_bits"] / 8192 for r in pts]
            ys = [100 * r["accuracy"] for r in pts]
            ax.scatter(xs, ys, marker=marker, alpha=0.45, label=scheme.upper())
            xs_all += xs
            ys_all += ys
    others = sorted({r["scheme"] for r in grid} - {"ptq", "itq"})
    for scheme in others:
        pts = [r for r in grid if r["scheme"] == scheme]
        xs = [r["memory_model_bits"] / 8192 for r in pts]
        ys = [100 * r["accuracy"] for r in pts]
        ax.scatter(xs, ys, marker="^", alpha=0.45, label=scheme)
        xs_all += xs
        ys_all += ys
    if front:
        fr = sorted(front, key=lambda r: r["memory_model_bits"])
        ax.plot([r["memory_model_bits"] / 8192 for r in fr], [100 * r["accuracy"] for r in fr],
                "k--", lw=1, label="Pareto front (feasible)")
    for b in bases:
        ax.scatter([b["memory_model_bits"] / 8192], [100 * b["accuracy"]], marker="*", s=160,
                   c="gray", zorder=5)
        ax.annotate(f"FP32 N={b.get('n_neurons', '?')}", (b["memory_model_bits"] / 8192,
                    100 * b["accuracy"]), fontsize=7, xytext=(-4, 6),
                    textcoords="offset points", ha="right")
    if chosen:
        ax.scatter([chosen["memory_model_bits"] / 8192], [100 * chosen["accuracy"]], marker="*",
                   s=240, c="red", zorder=6, label="selected")
    _zoom(ax, ys_all, [100 * b["accuracy"] for b in bases], xs_all)
    ax.set_xscale("log")
    ax.set_xlabel("weights + neuron parameters (KiB, packed)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # off the points
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


def _point_rows(rows):
    """One row per quantization point: the one with its reference inference setting (the
    model's own T and rate, no early exit), so that a line over bits compares like with like."""
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(_point_key(r), []).append(r)
    return [reference_setting(g) for g in groups.values()]


def _float_lines(ax, bases):
    """Each float model's accuracy as a horizontal line, named in the legend (labels written
    on the plot collide when two sizes are close)."""
    for b, ls in zip(sorted(bases, key=lambda b: -b["accuracy"]), [":", "-.", (0, (1, 3)),
                                                                   (0, (5, 2))] * 8):
        ax.axhline(100 * b["accuracy"], color="dimgray", lw=1, ls=ls,
                   label=f"float N={b.get('n_neurons', '?')}: {100 * b['accuracy']:.1f}%")


def plot_accuracy_vs_bits(rows, bases, path):
    """Accuracy vs bits, one panel per group set, a line per scheme, rounding and network size;
    error bars from ``accuracy_ci`` where the rows have it; each size's float accuracy."""
    plt = _plt()
    grid = _point_rows([r for r in rows if r.get("kind") == "grid"])
    sets = sorted({r["group_set"] for r in grid})
    sizes = sorted({r.get("n_neurons") for r in grid}, key=lambda n: (n is None, n or 0))
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(5.4 * max(1, len(sets)), 4.0),
                             squeeze=False)
    titles = {"weights": "weights", "all": "weights + neuron parameters",
              "mixed": "weights (neuron parameters fixed)"}
    refs = [100 * b["accuracy"] for b in bases]
    with_ci = False
    for ax, gs in zip(axes[0], sets):
        ys_all, xs_all = [], []
        for scheme, ls in (("ptq", "-"), ("itq", "--")):
            for rounding in ("truncation", "nearest", "stochastic"):
                for n in sizes:
                    pts = sorted([r for r in grid if r["group_set"] == gs
                                  and r["scheme"] == scheme and r["rounding"] == rounding
                                  and r.get("n_neurons") == n], key=lambda r: r["bits"])
                    if not pts:
                        continue
                    xs = [r["bits"] for r in pts]
                    ys = [100 * r["accuracy"] for r in pts]
                    label = f"{scheme.upper()} {rounding}" + (f" N={n}" if len(sizes) > 1 else "")
                    cis = [_ci(r) for r in pts]
                    if any(cis):
                        with_ci = True
                        err = np.array([[y - c[0], c[1] - y] if c else [0.0, 0.0]
                                        for y, c in zip(ys, cis)]).T
                        ax.errorbar(xs, ys, yerr=np.clip(err, 0, None), fmt=ls, marker="o",
                                    capsize=3, label=label)
                        ys_all += [c[0] for c in cis if c]
                    else:
                        ax.plot(xs, ys, ls, marker="o", label=label)
                    ys_all += ys
                    xs_all += xs
        _float_lines(ax, bases)
        _zoom(ax, ys_all, refs, xs_all)
        ax.set_title(f"quantized: {titles.get(gs, gs)}", fontsize=10)
        ax.set_xlabel("bits")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xticks(sorted({r["bits"] for r in grid if r["group_set"] == gs}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _save(fig, path)
    return with_ci


def plot_breakdown(base, chosen, path):
    """Memory and ASIC energy by group, float vs selected, log scales with each bar's value
    written on it (the selected model's bars are orders of magnitude lower)."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.0))
    _paired_bars(a1, "memory_parameters_bits", 1 / 8192, base, chosen)
    a1.set_ylabel("KiB (log)")
    a1.set_title("memory by parameter group")
    _paired_bars(a2, "energy_breakdown_inference", 1e-6, base, chosen)
    a2.set_ylabel(f"uJ per inference (log), {ASIC_LABEL}")
    a2.set_title(f"energy by operation (inference), {ASIC_LABEL}", fontsize=10)
    _save(fig, path)


def _bar_value(v: float) -> str:
    return "0" if v <= 0 else f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _paired_bars(ax, field_name, scale, base, chosen):
    """Bars of the float model and the selected one side by side, one pair per key of
    ``base[field]`` that either has above zero, log y, each bar labelled with its value."""
    rows = [(-0.2, base, "FP32")] + ([(0.2, chosen, "selected")] if chosen else [])
    keys = [k for k in base[field_name]
            if any((row.get(field_name) or {}).get(k, 0) > 0 for _, row, _ in rows)]
    x = np.arange(len(keys))
    for off, row, label in rows:
        vals = [(row.get(field_name) or {}).get(k, 0) * scale for k in keys]
        bars = ax.bar(x + off, [v if v > 0 else np.nan for v in vals], 0.4, label=label)
        ax.bar_label(bars, labels=[_bar_value(v) for v in vals], fontsize=6,
                     rotation=90, padding=2)
    ax.set_yscale("log")
    ax.margins(y=0.25)
    ax.set_xticks(x, keys, rotation=25, fontsize=7, ha="right")
    ax.legend(fontsize=8)


def tile_shape(n_inputs: int) -> tuple[int, int]:
    """The image shape of one neuron's input weights: square when the count is a square
    (28 x 28 for MNIST), else the most nearly square factorization."""
    side = int(math.isqrt(n_inputs))
    for h in range(side, 0, -1):
        if n_inputs % h == 0:
            return h, n_inputs // h
    return 1, n_inputs


def plot_weight_maps(w: np.ndarray, path, title: str) -> str:
    """Every neuron's input weights as a tile in a grid (neuron 0 top left, row-major), one
    shared colour scale with its colour bar; returns the caption."""
    plt = _plt()
    n_in, n = w.shape
    th, tw = tile_shape(n_in)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    canvas = np.full((rows * (th + 1) - 1, cols * (tw + 1) - 1), np.nan)
    for j in range(n):
        r, c = divmod(j, cols)
        canvas[r * (th + 1):r * (th + 1) + th, c * (tw + 1):c * (tw + 1) + tw] = \
            w[:, j].reshape(th, tw)
    inches = min(14.0, max(5.5, canvas.shape[1] / 95))
    fig, ax = plt.subplots(figsize=(inches + 1.3, inches * canvas.shape[0] / canvas.shape[1] + 0.7))
    lo, hi = float(np.min(w)), float(np.max(w))
    im = ax.imshow(canvas, cmap="hot_r", interpolation="nearest", vmin=lo,
                   vmax=hi if hi > lo else lo + 1e-12)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="weight")
    ax.set_title(f"{title}: all {n} neurons", fontsize=10)
    ax.axis("off")
    _save(fig, path, dpi=100)
    levels = np.unique(w).size
    return (f"{title}: all {n} neurons, {rows} x {cols} tiles of their {th} x {tw} input "
            f"weights, neuron 0 at the top left, row by row; one colour scale for all, "
            f"{lo:.3g} to {hi:.3g}" + (f" ({levels} distinct values)" if levels <= 64 else "")
            + ".")


# --- board figures ------------------------------------------------------------------------

def board_key(board: str) -> str:
    return f"board-{board}"


def board_candidates(rows, board: str) -> list[dict]:
    """The grid rows costed on ``board`` (deployable ones: a board runs integer inference)."""
    key = board_key(board)
    return [r for r in rows if r.get("kind") == "grid" and r.get("deployable")
            and key in (r.get("costs") or {})]


def _cost(row, board, field_name):
    return (row.get("costs") or {}).get(board_key(board), {}).get(field_name)


def _is(a, b) -> bool:
    if a is None or b is None:
        return False
    if a is b:
        return True
    return a.get("key") is not None and a.get("key") == b.get("key")


def latency_front(rows, board) -> list[dict]:
    """The rows that fit the board and no other fitting row beats in both accuracy and board
    latency (the 2-D front the latency plot draws), by latency."""
    pts = [r for r in rows if _cost(r, board, "fits") and _cost(r, board, "latency_ms_median")
           is not None]

    def dominates(a, b):
        la, lb = _cost(a, board, "latency_ms_median"), _cost(b, board, "latency_ms_median")
        return (a["accuracy"] >= b["accuracy"] and la <= lb
                and (a["accuracy"] > b["accuracy"] or la < lb))
    front = [r for r in pts if not any(dominates(o, r) for o in pts if o is not r)]
    return sorted(front, key=lambda r: (_cost(r, board, "latency_ms_median"), -r["accuracy"]))


def plot_board_latency(rows, board, chosen, bases, path, *, target=None, max_latency_ms=None):
    """Accuracy vs predicted board latency (log x): the candidates by network size, those that
    do not fit crossed, the Pareto front of those that fit, the chosen point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.8, 4.6))
    pts = [r for r in rows if _cost(r, board, "latency_ms_median") is not None]
    sizes = sorted({r.get("n_neurons") for r in pts}, key=lambda n: (n is None, n or 0))
    for n in sizes:
        mine = [r for r in pts if r.get("n_neurons") == n]
        for fits, marker, alpha in ((True, "o", 0.55), (False, "x", 0.8)):
            sel = [r for r in mine if bool(_cost(r, board, "fits")) == fits]
            if sel:
                name = f"N={n}" if n is not None else "candidates"
                ax.scatter([_cost(r, board, "latency_ms_median") for r in sel],
                           [100 * r["accuracy"] for r in sel], marker=marker, alpha=alpha,
                           s=14, label=name + ("" if fits else " (does not fit)"))
    front = latency_front(pts, board)
    if front:
        # a step line: the best accuracy reachable within each latency
        xs = [_cost(r, board, "latency_ms_median") for r in front]
        ys = [100 * r["accuracy"] for r in front]
        ax.step(xs, ys, "k--", where="post", lw=1, label="Pareto front (fits the board)")
    _float_lines(ax, bases)
    if target is not None:
        ax.axhline(100 * target, color="tab:orange", lw=1, ls="-.", label="target")
    if max_latency_ms is not None:
        ax.axvline(max_latency_ms, color="tab:purple", lw=1, ls=":", label="latency budget")
    if chosen is not None and _cost(chosen, board, "latency_ms_median") is not None:
        ax.scatter([_cost(chosen, board, "latency_ms_median")], [100 * chosen["accuracy"]],
                   marker="*", s=260, c="red", zorder=6, label="selected")
    refs = [100 * b["accuracy"] for b in bases] + ([100 * target] if target is not None else [])
    _zoom(ax, [100 * r["accuracy"] for r in pts], refs,
          [_cost(r, board, "latency_ms_median") for r in pts])
    from matplotlib.ticker import LogFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))   # 200, not 2x10^2
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    ax.set_xlabel(f"predicted latency per inference on {board} (ms, median)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy vs latency on {board}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # off the points
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


# --- cells --------------------------------------------------------------------------------

def _f(v, fmt, scale=1.0) -> str:
    return "n/a" if v is None else format(v * scale, fmt)


def _pct(x) -> str:
    return f"{100 * x:.1f}"


def _acc(row) -> str:
    """The row's accuracy in percent, with its interval over seeds where it has one."""
    ci = _ci(row)
    seeds = row.get("seeds")
    n = len(seeds) if isinstance(seeds, list) else None
    return _pct(row["accuracy"]) + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "") + (
        f" ({n} seeds)" if ci and n else "")


def _saturated(row) -> str:
    sat = row.get("saturated")
    if not isinstance(sat, dict) or not sat:
        return ""
    return ", ".join(f"{g} {100 * v:.1f}%" for g, v in sorted(sat.items())
                     if isinstance(v, (int, float)))


def _lost(row) -> str:
    lost = row.get("lost_decays")
    return str(len(lost)) if isinstance(lost, list) and lost else ""


def _warn(row) -> bool:
    """A row whose diagnostics deserve a look: a lost decay, or theta saturated (homeostasis
    gone) on 1% of the neurons or more."""
    sat = row.get("saturated") if isinstance(row.get("saturated"), dict) else {}
    return bool(_lost(row)) or (sat.get("theta") or 0) >= 0.01


def _uj(pj) -> str:
    return "" if pj is None else f"{pj / 1e6:.3f}"


def _rel(v, ref, fmt) -> str:
    if v is None:
        return "n/a"
    if ref is None or ref == 0 or v is ref:
        return format(v, fmt)
    return f"{format(v, fmt)} ({100 * (v / ref - 1):+.0f}%)"


# --- tables -------------------------------------------------------------------------------

def _board_table(cands, board, chosen, front) -> Table:
    cols = ["", "point", "N", "accuracy %", "board latency ms",
            f"board energy uJ ({BOARD_ENERGY_LABEL})", f"ASIC energy uJ ({ASIC_LABEL})",
            "instructions M (predicted)", "cycles M (predicted)", "flash KiB", "fits"]
    inf = float("inf")

    def order(r):
        lat = _cost(r, board, "latency_ms_median")
        ins = _cost(r, board, "instructions_median")
        return (inf if lat is None else lat, inf if ins is None else ins, -r["accuracy"],
                r.get("label", ""))
    rows = []
    for r in sorted(cands, key=order):
        c = r["costs"][board_key(board)]
        rows.append(Row(
            [r["label"], str(r.get("n_neurons", "?")), _acc(r),
             _f(c.get("latency_ms_median"), ".1f"), _f(c.get("energy_uj_median"), ".1f"),
             _f(r.get("energy_inference_pj"), ".3f", 1e-6),
             _f(c.get("instructions_median"), ".2f", 1e-6),
             _f(c.get("cycles_median"), ".2f", 1e-6),
             _f(c.get("flash_bytes"), ".1f", 1 / 1024), "yes" if c.get("fits") else "no"],
            selected=_is(r, chosen),
            mark="front" if any(_is(r, f) for f in front) else "", warn=_warn(r)))
    return Table(cols, rows, mark_column=True)


def _point_key(row) -> str:
    """What identifies a quantization point: everything but its ``inference`` settings."""
    return json.dumps([row.get("base_model") or row.get("base_model_path"), row.get("kind"),
                       row.get("scheme"), row.get("bits"), row.get("rounding"),
                       row.get("group_set"), row.get("groups")], sort_keys=True, default=str)


def _default(settings: dict, name: str, off) -> bool:
    return settings.get(name, off) in (off, None)


def reference_setting(rows: list[dict]) -> dict:
    """The row the savings of a quantization point are measured against: the first with no
    early exit and the model's own T and input rate, else the first with no early exit, else
    the first row."""
    def inf(r):
        return r.get("inference") or {}
    no_exit = [r for r in rows if _default(inf(r), "exit_margin", 0)]
    plain = [r for r in no_exit if _default(inf(r), "time_steps", 0)
             and _default(inf(r), "rate_hz", 0.0)]
    return (plain or no_exit or rows)[0]


def inference_groups(rows) -> list[tuple[dict, list[dict]]]:
    """(reference, rows) of every quantization point tested with several inference settings,
    in the order of the results."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("kind") in ("grid", "sensitivity") and r.get("inference") is not None:
            groups.setdefault(_point_key(r), []).append(r)
    return [(reference_setting(g), g) for g in groups.values() if len(g) > 1]


def _setting_label(settings: dict) -> str:
    from .explore import INFERENCE_AXES, inference_label

    order = {k: i for i, k in enumerate(INFERENCE_AXES)}
    ordered = dict(sorted(settings.items(), key=lambda kv: order.get(kv[0], len(order))))
    return inference_label(ordered) if settings else "the model's own"


def _savings_table(groups, board, chosen) -> Table:
    cols = ["point", "inference", "accuracy %", "steps/sample", "exited early"]
    if board:
        cols += ["board latency ms", f"board energy uJ ({BOARD_ENERGY_LABEL})"]
    cols.append(f"ASIC energy uJ ({ASIC_LABEL})")
    out = []
    for ref, rows in groups:
        point = ref.get("label", "").split(" | ")[0]
        rsteps = (ref.get("infer_ops") or {}).get("steps")
        rlat = _cost(ref, board, "latency_ms_median") if board else None
        ren = _cost(ref, board, "energy_uj_median") if board else None
        rasic = ref.get("energy_inference_pj")
        for r in [ref] + [r for r in rows if r is not ref]:
            is_ref = r is ref
            ops = r.get("infer_ops") or {}
            acc = _pct(r["accuracy"]) + ("" if is_ref else
                                         f" ({100 * (r['accuracy'] - ref['accuracy']):+.1f} pp)")
            early = ops.get("exit_early")
            cells = [point, _setting_label(r.get("inference") or {})
                     + (" (reference)" if is_ref else ""), acc,
                     _rel(ops.get("steps"), None if is_ref else rsteps, ".1f"),
                     "n/a" if early is None else f"{100 * early:.0f}%"]
            if board:
                cells += [_rel(_cost(r, board, "latency_ms_median"), None if is_ref else rlat, ".1f"),
                          _rel(_cost(r, board, "energy_uj_median"), None if is_ref else ren, ".1f")]
            asic = r.get("energy_inference_pj")
            cells.append(_rel(None if asic is None else asic / 1e6,
                              None if is_ref or rasic is None else rasic / 1e6, ".3f"))
            out.append(Row(cells, selected=_is(r, chosen)))
    return Table(cols, out)


def _table(rows, base, bases, chosen, front) -> Table:
    """The grid (or sensitivity) table: accuracy, memory, ASIC energy and the diagnostics."""
    cols = ["point", "N", "accuracy (int)", "float-sim", "memory KiB", "x smaller",
            f"uJ/inference ({ASIC_LABEL})", f"uJ/train sample ({ASIC_LABEL})",
            "saturated", "lost decays"]
    by_digest = {b.get("base_model"): b for b in bases}
    out = []
    for r in rows:
        own = by_digest.get(r.get("base_model"), base)
        acc_int = r.get("accuracy_integer")
        acc = (_acc(r) if acc_int is not None and r.get("accuracy") == acc_int
               else "" if acc_int is None else _pct(acc_int))
        out.append(Row(
            [r["label"], str(r.get("n_neurons", "?")), acc,
             _pct(r["accuracy_float_sim"]), f"{r['memory_model_bits'] / 8192:.1f}",
             f"{own['memory_model_bits'] / r['memory_model_bits']:.2f}",
             f"{r['energy_inference_pj'] / 1e6:.3f}", _uj(r.get("energy_train_pj")),
             _saturated(r), _lost(r)],
            selected=_is(r, chosen), mark="front" if any(_is(r, f) for f in front) else "",
            warn=_warn(r)))
    return Table(cols, out)


DIAGNOSTICS_NOTE = (
    "Diagnostics: saturated is, for the points trained in place, the share of each learned "
    "group (weights, theta) at its format's largest code; a theta stuck there has lost its "
    "homeostasis. Lost decays counts the decay factors that the point's format rounds to 1 (the "
    "decay is lost: an infinite time constant); the messages are listed below. Highlighted in "
    "the HTML: a lost decay, or theta saturated on 1% of the neurons or more.")


def _diagnostics_notes(rows) -> list[str]:
    seen: dict[str, int] = {}
    for r in rows:
        for msg in r.get("lost_decays") or []:
            seen[str(msg)] = seen.get(str(msg), 0) + 1
    return [f"{n} rows: {msg}" for msg, n in seen.items()]


def _board_section(rows, board, selection, bases, out, *, max_latency_ms=None) -> Section:
    cands = board_candidates(rows, board)
    if not cands:
        raise TinySNNError(f"no row of the results has the cost on {board}: run tinysnn explore "
                           f"with --boards {board}")
    chosen = selection.chosen if selection else None
    front = selection.front if selection else []
    labels = sorted({r["costs"][board_key(board)].get("label") for r in cands} - {None})
    fit = sum(1 for r in cands if r["costs"][board_key(board)].get("fits"))
    sec = Section(f"Board {board}")
    sec.paragraphs.append(
        f"{len(cands)} candidates costed on {board}, {fit} of them fit its flash and RAM. "
        "Latency, instructions and cycles are the board cost model's predicted medians per "
        f"inference; board energy ({BOARD_ENERGY_LABEL}) = predicted cycles / clock x the "
        f"datasheet's run current x VDD; ASIC energy ({ASIC_LABEL}) = the operation counts "
        "of integer inference x energies per operation of a 45 nm ASIC, not the board's."
        + (" The selected row is marked chosen; front: the Pareto front of the selection."
           if chosen else ""))
    if labels:
        sec.paragraphs.append("Cost model: " + "; ".join(labels))
    sec.tables.append(_board_table(cands, board, chosen, front))
    if any(_cost(r, board, "latency_ms_median") is None for r in cands):
        sec.paragraphs.append(
            f"n/a: the cost model of {board} has no cycle estimate calibrated (latency) or no "
            f"datasheet current (energy): tinysnn board calibrate {board}")
    elif any(_cost(r, board, "energy_uj_median") is None for r in cands):
        sec.paragraphs.append(f"n/a: the profile of {board} gives no datasheet run current and "
                              "supply voltage, so no board energy")
    if any(_cost(r, board, "latency_ms_median") is not None for r in cands):
        name = f"latency_{re.sub(r'[^A-Za-z0-9_.-]', '_', board)}.png"
        plot_board_latency(cands, board, chosen, bases, out / name,
                           target=selection.target if selection else None,
                           max_latency_ms=max_latency_ms)
        sec.figures.append(Figure(name, f"Accuracy vs predicted latency on {board} of every "
                                  "candidate (log x); crosses do not fit the board; the dashed "
                                  "step is the Pareto front of those that fit; grey lines: each "
                                  "size's float accuracy; the red star: the selected model; "
                                  "triangles at the lower edge: the points below the zoomed "
                                  "accuracy axis."))
    return sec


def _cost_models_section(rows, chosen) -> Section | None:
    """A table per cost model in the rows' ``costs`` (every registered one that explore ran, a
    third party's included): each candidate's numeric figures, the chosen one marked."""
    from .select import cost_figures

    cands = [r for r in rows if r.get("kind") == "grid"]
    figures_of = cost_figures(cands)
    if not figures_of:
        return None
    sec = Section("Cost models", paragraphs=["The figures of every cost model the exploration "
                                             "ran (tinysnn explore --cost-models), per candidate."])
    for name, figures in figures_of.items():
        costed = [r for r in cands if isinstance((r.get("costs") or {}).get(name), dict)]
        labels = sorted({str(r["costs"][name]["label"]) for r in costed
                         if r["costs"][name].get("label")})
        trows = []
        for r in sorted(costed, key=lambda r: (-r["accuracy"], r["label"])):
            c = r["costs"][name]
            trows.append(Row([r["label"], _pct(r["accuracy"])]
                             + [f"{c[f]:.6g}" if f in c and not isinstance(c[f], bool) else ""
                                for f in figures], selected=_is(r, chosen)))
        sub = Section(name, level=3,
                      paragraphs=["Cost model: " + "; ".join(labels)] if labels else [])
        sub.tables.append(Table(["point", "accuracy"] + list(figures), trows))
        sec.subsections.append(sub)
    return sec


# --- provenance ---------------------------------------------------------------------------

def _digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_facts(path: str, recorded: str | None) -> dict:
    """What a base model file says about its training (its header), and whether it is the
    file the results were explored from (explore's digest: the SHA-256's first 20 digits)."""
    from .errors import ModelFileError
    from .modelfile import read_file

    try:
        header, _ = read_file(path)
    except ModelFileError as exc:
        return {"path": path, "problem": str(exc)}
    cfg, metrics, prog = header.get("config", {}), header.get("metrics", {}), header.get("progress", {})
    train = cfg.get("train", {})
    digest = _digest(path)[:20]
    # explore's digest, less its "/assign<N>"; a row combined over seeds ("seeds:...") names no
    # single file, so there is nothing to compare
    rec = (recorded or "").split("/")[0]
    rec = "" if rec.startswith("seeds:") else rec
    return {"path": path, "dataset": (cfg.get("dataset") or {}).get("name", "?"),
            "n_neurons": cfg.get("n_neurons"), "time_steps": train.get("time_steps"),
            "topology": (cfg.get("topology") or {}).get("name", "?"),
            "seed": cfg.get("seed"), "epochs": train.get("epochs"),
            "samples_trained": prog.get("samples_done"), "n_test": metrics.get("n_test"),
            "accuracy": metrics.get("accuracy"), "version": header.get("tinysnn_version"),
            "digest": digest, "matches": None if not rec else digest == rec}


def provenance(rows, *, results_path=None, command=None, model_paths=()) -> dict:
    """Where the report's numbers come from: the results file, the command, the date, the
    version, and per base model (the baselines of the rows, and the files of ``model_paths``
    and of the rows' ``base_model_path`` that exist) its data set, N, T, seed and digest."""
    from . import __version__

    bases = [r for r in rows if r.get("kind") == "baseline"]
    def files(b):       # a row over seeds lists each seed's model (explore --seeds)
        many = b.get("base_model_paths")
        return [str(p) for p in many if p] if isinstance(many, list) else (
            [str(b["base_model_path"])] if b.get("base_model_path") else [])
    paths = list(dict.fromkeys([str(p) for p in model_paths if p]
                               + [p for b in bases for p in files(b)]))
    recorded = {p: b.get("base_model") for b in bases for p in files(b)}
    models = []
    for p in paths:
        if Path(p).is_file():
            models.append(_model_facts(p, recorded.get(p)))
        else:
            models.append({"path": p, "problem": "a directory (a run of several seeds)"
                           if Path(p).is_dir() else "not found here"})
    seeds = sorted({s for r in rows for s in (r.get("seeds") or []) if isinstance(s, int)})
    settings = sorted({json.dumps(r.get("inference") or {}, sort_keys=True) for r in rows
                       if r.get("kind") == "grid"})
    t_values = sorted({(json.loads(s).get("time_steps") or 0) for s in settings} - {0})
    out = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "version": __version__, "command": command or "(Python API: write_report)",
           "rows": len(rows), "grid_rows": sum(r.get("kind") == "grid" for r in rows),
           "base_digests": sorted({str(b.get("base_model")) for b in bases}),
           "models": models, "row_seeds": seeds, "inference_time_steps": t_values,
           "cost_models": sorted({k for r in rows for k in (r.get("costs") or {})})}
    if results_path is not None and Path(results_path).is_file():
        p = Path(results_path)
        out["results"] = (f"{results_path} ({len(rows)} rows, sha256 {_digest(p)[:16]}, "
                          f"modified {_dt.datetime.fromtimestamp(p.stat().st_mtime, _dt.timezone.utc):%Y-%m-%d %H:%M} UTC)")
    else:
        out["results"] = str(results_path) if results_path else "(rows given in memory)"
    return out


def _provenance_section(prov) -> tuple[list, Table]:
    """The provenance as (key, value) pairs and a table of the base models."""
    ds = sorted({m.get("dataset") for m in prov["models"] if m.get("dataset")})
    ns = sorted({m.get("n_neurons") for m in prov["models"] if m.get("n_neurons")})
    ts = sorted({m.get("time_steps") for m in prov["models"] if m.get("time_steps")})
    topo = sorted({m.get("topology") for m in prov["models"] if m.get("topology")})
    seeds = sorted({m.get("seed") for m in prov["models"] if m.get("seed") is not None})

    def join(v):
        return ", ".join(str(x) for x in v) if v else "n/a (no base model file found)"
    pairs = [("data set", join(ds)), ("N (excitatory neurons)", join(ns)),
             ("T (time steps per presentation, training)", join(ts))]
    if prov["inference_time_steps"]:
        pairs.append(("T at inference (explored)", join(prov["inference_time_steps"])))
    pairs += [("topology", join(topo)), ("training seed", join(seeds)),
              ("seeds in the rows (explore --seeds)", join(prov["row_seeds"])
               if prov["row_seeds"] else "none recorded (one model per point)"),
              ("base model digests (sha256, 20 digits)", ", ".join(prov["base_digests"]) or "n/a"),
              ("results file", prov["results"]),
              ("cost models in the rows", ", ".join(prov["cost_models"]) or "none"),
              ("tinysnn version", prov["version"]), ("date", prov["date"]),
              ("command", prov["command"])]
    rows = []
    for m in prov["models"]:
        if "problem" in m:
            rows.append(Row([m["path"], "", "", "", "", "", "", "", "", m["problem"]], warn=True))
            continue
        trained = (f"{m['epochs']} epochs, {m['samples_trained']:,} samples"
                   if m.get("samples_trained") else f"{m.get('epochs')} epochs")
        match = {True: "yes", False: "no: the file changed since", None: "n/a"}[m["matches"]]
        rows.append(Row([m["path"], m["dataset"], str(m["n_neurons"]), str(m["time_steps"]),
                         m["topology"], str(m["seed"]), trained,
                         "n/a" if m.get("n_test") is None else str(m["n_test"]),
                         "n/a" if m.get("accuracy") is None else _pct(m["accuracy"]),
                         f"{m['digest']} (matches the results: {match})"],
                        warn=m["matches"] is False))
    table = Table(["base model", "data set", "N", "T", "topology", "seed", "training",
                   "test samples", "float accuracy %", "digest"], rows)
    return pairs, table


# --- the report ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _templates():
    """The Jinja2 environments of the two renderings: HTML autoescaped (a label's ``<``, ``&``
    or ``|`` is text), Markdown not (its cells escape their pipes)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    loader = PackageLoader("tinysnn_core", "templates")
    html_env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined,
                           trim_blocks=True, lstrip_blocks=True)
    md_env = Environment(loader=loader, autoescape=False, undefined=StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    md_env.filters["md_table"] = _md_table
    md_env.filters["md_pairs"] = _md_pairs
    md_env.filters["md_cell"] = _md_cell
    html_env.filters["data_uri"] = _data_uri
    return html_env, md_env


def _md_cell(text) -> str:
    """A Markdown table cell on one line: its backslashes and pipes escaped (a label's " | "
    stays in its cell)."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ")
            .replace("\n", " "))


def _md_row(row: Row, table: Table) -> str:
    cells = [_md_cell(c) for c in row.cells]
    i = table.label_column
    if row.selected:
        cells[i] = f"**{cells[i]}**" if table.mark_column else f"{cells[i]} **chosen**"
    if table.mark_column:
        cells = ["**chosen**" if row.selected else row.mark] + cells
    return "| " + " | ".join(cells) + " |"


def _md_table(table: Table) -> str:
    head = "| " + " | ".join(_md_cell(c) for c in table.columns) + " |"
    sep = "|" + "---|" * len(table.columns)
    return "\n".join([head, sep] + [_md_row(r, table) for r in table.rows])


def _md_pairs(pairs) -> str:
    return _md_table(Table(["", ""], [Row([k, v]) for k, v in pairs]))


def _data_uri(path) -> str:
    """A PNG as a data URI, so that the HTML page holds its images."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def write_report(rows, selection, out_dir, *, float_w=None, chosen_w=None,
                 title="tinySNN exploration", board: str | None = None,
                 max_latency_ms: float | None = None, results_path=None,
                 command: str | None = None, model_paths=(), float_assignments=None,
                 chosen_assignments=None, float_view: dict | None = None, curve=None):
    """Write ``report.md``, ``report.html`` and the plots to ``out_dir``. With ``board``, the
    board section (``selection`` then is ``select_for_board``'s, or None). ``results_path``,
    ``command`` and ``model_paths`` (the float models) go into the provenance block; the
    ``*_assignments`` (a model's ``assignments``) draw its class-assignment histogram;
    ``float_view`` (``labels`` and ``predictions`` of the test set, and a ``recording`` of test
    samples: ``report_views``) the float model's confusion matrix and a test sample's spike
    raster; ``curve`` (a ``monitors.TrainingCurve``) its training curve."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bases = [r for r in rows if r.get("kind") == "baseline"]
    if not bases and not selection:
        raise TinySNNError("the results file has no float baseline row: run tinysnn explore first")
    base = selection.baseline if selection else bases[0]
    if not bases:
        bases = [base]
    chosen = selection.chosen if selection else None
    front = selection.front if selection else []
    sections: list[Section] = []
    if selection:
        sections.append(Section("Selection", paragraphs=[selection.explanation]))
    if board:
        sections.append(_board_section(rows, board, selection, bases, out,
                                       max_latency_ms=max_latency_ms))
        front = []   # the board's front is over latency, not memory: the latency plot shows it
    groups = inference_groups(rows)
    if groups:
        sections.append(Section("What early exit and fewer steps saved", paragraphs=[
            "Each quantization point with each inference setting (T, input rate, retries, early "
            "exit) against its reference, the setting with no early exit and the model's own T "
            "and rate (or, where no row has those, the first one): accuracy, steps per sample "
            "(mean), the share of samples that exited early"
            + (f", the predicted latency and board energy ({BOARD_ENERGY_LABEL}) on {board}"
               if board else "")
            + f" and the ASIC energy ({ASIC_LABEL}); in parentheses the change."],
            tables=[_savings_table(groups, board, chosen)]))
    base_par = []
    for b in [base] + [b for b in bases if not _is(b, base)]:
        base_par.append(
            f"float model{'' if len(bases) < 2 else ' N=' + str(b.get('n_neurons', '?'))}: "
            f"{100 * b['accuracy']:.2f}% accuracy, {b['memory_model_bits'] / 8192:.1f} KiB "
            f"(FP32), {b['energy_inference_pj'] / 1e6:.3f} uJ per inference ({ASIC_LABEL})")
    energy_model = next((r["energy_model"] for r in rows if r.get("energy_model")), None)
    base_par.append(f'Energy labelled "{ASIC_LABEL}": '
                    + (energy_model or "operation counts x energies per operation of a 45 nm "
                       "ASIC, not a board") + ".")
    sections.append(Section("Baseline", paragraphs=base_par))
    grid = sorted([r for r in rows if r.get("kind") == "grid"],
                  key=lambda r: (r["group_set"], r["scheme"], r["rounding"],
                                 r.get("n_neurons") or 0, -r["bits"]))
    sens = sorted([r for r in rows if r.get("kind") == "sensitivity"],
                  key=lambda r: (r["group_set"], r["rounding"], -r["bits"]))
    with_ci = any(_ci(r) for r in grid)
    sections.append(Section("Grid", paragraphs=[DIAGNOSTICS_NOTE] + (
        ["Accuracy: the mean over seeds, in brackets its interval (accuracy_ci, from "
         "explore --seeds)."] if with_ci else []),
        tables=[_table(grid, base, bases, chosen, front)],
        notes=_diagnostics_notes(grid)))
    cost_sec = _cost_models_section(rows, chosen)
    if cost_sec:
        sections.append(cost_sec)
    if sens:
        sections.append(Section("Sensitivity (one group quantized, the others float)",
                                tables=[_table(sens, base, bases, chosen, [])],
                                notes=_diagnostics_notes(sens)))
    # the plots
    figs = Section("Plots")
    plot_pareto(rows, front, chosen, bases, out / "pareto.png")
    figs.figures.append(Figure("pareto.png", "Accuracy vs memory (weights + neuron parameters, "
                               "packed; log x) of every grid point; grey stars: the float "
                               "models; red star: the selected one. The accuracy axis is "
                               "zoomed to the data near the float accuracy; triangles at its "
                               "lower edge stand for the points below it."))
    if grid:
        ci_drawn = plot_accuracy_vs_bits(rows, bases, out / "accuracy_vs_bits.png")
        figs.figures.append(Figure(
            "accuracy_vs_bits.png", "Accuracy vs bits per scheme, rounding and network size, "
            "each point at its reference inference setting (no early exit, the model's own T and rate); "
            "grey lines: the float accuracy of each size. "
            + ("Points: the mean over seeds; error bars: its interval (accuracy_ci)." if ci_drawn
               else "One model per point, so no error bars (explore --seeds K draws them).")))
    plot_breakdown(base, chosen, out / "breakdown.png")
    figs.figures.append(Figure("breakdown.png", "Memory by parameter group and inference "
                               f"energy by operation ({ASIC_LABEL}), the float model against "
                               "the selected one; log scales, each bar's value written on it."))
    if float_w is not None:
        cap = plot_weight_maps(float_w, out / "weights_float.png", "Learned weights, float model")
        figs.figures.append(Figure("weights_float.png", cap))
    if chosen_w is not None:
        cap = plot_weight_maps(chosen_w, out / "weights_selected.png",
                               "Learned weights, selected model")
        figs.figures.append(Figure("weights_selected.png", cap))
    for which, a in (("float", float_assignments), ("selected", chosen_assignments)):
        if a is not None:
            from . import plots

            a = np.asarray(a)
            plots.plot_assignments(a, out / f"assignments_{which}.png",
                                   n_classes=max(10, int(a.max(initial=-1)) + 1))
            figs.figures.append(Figure(
                f"assignments_{which}.png", f"Class assignments of the {which} model: how many "
                "of its neurons vote for each class (the class each fired most for on the "
                "assignment samples); black: neurons that never fired there."))
    if float_view is not None or curve is not None:
        from . import plots

        if float_view is not None:
            plots.plot_confusion(float_view["labels"], float_view["predictions"],
                                 out / "confusion_float.png")
            n = len(float_view["labels"])
            figs.figures.append(Figure(
                "confusion_float.png", f"Confusion matrix of the float model on its {n} test "
                "samples (rows: the true class, columns: the predicted one)."))
            rec = float_view.get("recording")
            if rec is not None and len(rec.sample_ids):
                plots.plot_raster(rec, int(rec.sample_ids[0]), out / "raster_float.png")
                figs.figures.append(Figure(
                    "raster_float.png", f"Spike raster of the float model's excitatory layer on "
                    f"test sample {int(rec.sample_ids[0])} (label {int(rec.labels[0])}, "
                    f"predicted {int(rec.predictions[0])}), every presentation of it."))
        if curve is not None:
            plots.plot_training_curve(curve, out / "training_curve.png")
            figs.figures.append(Figure(
                "training_curve.png", "Training curve (tinysnn run --curve): running accuracy "
                "(labels assigned on one window, scored on the next), mean theta and active "
                "neurons per window of training samples."))
    sections.append(figs)
    pairs, models = _provenance_section(
        provenance(rows, results_path=results_path, command=command, model_paths=model_paths))
    md, page = render(title, pairs, models, sections, out)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(page)
    return out / "report.md"


def report_views(net, data, *, raster_sample: int = 0) -> dict:
    """What the report shows of a model beyond its weights: the test set's labels and the
    predictions of the model's own classifier, as ``evaluate`` computes them (same backend,
    seed and sample ids), and a recording of the spikes of one test sample."""
    from . import monitors
    from .train import evaluate

    if net.assignments is None:
        raise TinySNNError("the model has no label assignments: its report views need them")
    n = len(data.test_labels)
    _, predictions = evaluate(net, data, progress=False, return_predictions=True)
    rec = monitors.record_test_samples(
        net, data, monitors.Record(samples=[min(raster_sample, n - 1)], variables=("spikes",)))
    return {"labels": np.asarray(data.test_labels), "predictions": predictions,
            "recording": rec}


def render(title: str, provenance_pairs, models: Table, sections, out) -> tuple[str, str]:
    """The two renderings of one report: (Markdown, HTML); ``out`` holds the figures' PNGs."""
    html_env, md_env = _templates()
    ctx = {"title": title, "provenance": list(provenance_pairs), "models": models,
           "sections": list(sections), "out": Path(out)}
    md = md_env.get_template("report.md.j2").render(**ctx)
    return re.sub(r"\n{3,}", "\n\n", md), html_env.get_template("report.html.j2").render(**ctx)
