"""Exploration reports: a Markdown and an HTML page with PNG plots (matplotlib).

Plots: the Pareto front (memory vs accuracy), accuracy vs precision per rounding and scheme,
memory and energy by parameter group (float baseline vs the chosen model), and the learned
weight maps (28x28 tiles) of the float and the chosen model.

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

import html
import json
import re
from pathlib import Path

import numpy as np

from .errors import TinySNNError

#: the short labels of the two energy figures (column headers, axes, captions)
ASIC_LABEL = "ASIC 45 nm model"
BOARD_ENERGY_LABEL = "cycles x datasheet"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(rows, front, chosen, base, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    grid = [r for r in rows if r.get("kind") == "grid"]
    for scheme, marker in (("ptq", "o"), ("itq", "s")):
        pts = [r for r in grid if r["scheme"] == scheme]
        if pts:
            ax.scatter([r["memory_model_bits"] / 8192 for r in pts], [100 * r["accuracy"] for r in pts],
                       marker=marker, alpha=0.45, label=scheme.upper())
    if front:
        fr = sorted(front, key=lambda r: r["memory_model_bits"])
        ax.plot([r["memory_model_bits"] / 8192 for r in fr], [100 * r["accuracy"] for r in fr],
                "k--", lw=1, label="Pareto front (feasible)")
    ax.scatter([base["memory_model_bits"] / 8192], [100 * base["accuracy"]], marker="*", s=160,
               c="gray", label="FP32 baseline")
    if chosen:
        ax.scatter([chosen["memory_model_bits"] / 8192], [100 * chosen["accuracy"]], marker="*",
                   s=220, c="red", label="selected")
    ax.set_xscale("log")
    ax.set_xlabel("weights + neuron parameters (KiB, packed)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_bits(rows, base, path):
    plt = _plt()
    grid = [r for r in rows if r.get("kind") == "grid"]
    sets = sorted({r["group_set"] for r in grid})
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(5.2 * max(1, len(sets)), 3.8),
                             squeeze=False)
    for ax, gs in zip(axes[0], sets):
        for scheme, ls in (("ptq", "-"), ("itq", "--")):
            for rounding in ("truncation", "nearest", "stochastic"):
                pts = sorted([r for r in grid if r["group_set"] == gs and r["scheme"] == scheme
                              and r["rounding"] == rounding], key=lambda r: r["bits"])
                if pts:
                    ax.plot([r["bits"] for r in pts], [100 * r["accuracy"] for r in pts], ls,
                            marker="o", label=f"{scheme.upper()} {rounding}")
        ax.axhline(100 * base["accuracy"], color="gray", lw=1, label="float")
        titles = {"weights": "weights", "all": "weights + neuron parameters",
                  "mixed": "weights (neuron parameters fixed)"}
        ax.set_title(f"quantized: {titles.get(gs, gs)}")
        ax.set_xlabel("bits")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_breakdown(base, chosen, path):
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    _paired_bars(a1, "memory_parameters_bits", 1 / 8192, base, chosen, rotation=20, fontsize=8)
    a1.set_yscale("log")
    a1.set_ylabel("KiB")
    a1.set_title("memory by parameter group")
    _paired_bars(a2, "energy_breakdown_inference", 1e-6, base, chosen, rotation=30, fontsize=7)
    a2.set_ylabel(f"uJ per inference ({ASIC_LABEL})")
    a2.set_title(f"energy by operation (inference), {ASIC_LABEL}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _paired_bars(ax, field, scale, base, chosen, **tick_style):
    """Bars of the float model and the selected one side by side, one pair per key of
    ``base[field]``, each value times ``scale``."""
    keys = list(base[field])
    x = np.arange(len(keys))
    for off, row, label in ((-0.2, base, "FP32"), (0.2, chosen, "selected")):
        if row:
            ax.bar(x + off, [row[field][k] * scale for k in keys], 0.4, label=label)
    ax.set_xticks(x, keys, **tick_style)
    ax.legend()


def plot_weight_maps(w: np.ndarray, path, title: str, max_tiles: int = 100):
    plt = _plt()
    n = min(w.shape[1], max_tiles)
    side = int(np.ceil(np.sqrt(n)))
    canvas = np.full((side * 29, side * 29), np.nan)
    for j in range(n):
        r, c = divmod(j, side)
        tile = w[:, j].reshape(28, 28)
        canvas[r * 29:r * 29 + 28, c * 29:c * 29 + 28] = tile / max(tile.max(), 1e-12)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(canvas, cmap="hot_r", interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- board figures ------------------------------------------------------------------------

def board_key(board: str) -> str:
    return f"board-{board}"


def board_candidates(rows, board: str) -> list[dict]:
    """The grid rows costed on ``board`` (deployable ones: a board runs integer inference)."""
    key = board_key(board)
    return [r for r in rows if r.get("kind") == "grid" and r.get("deployable")
            and key in (r.get("costs") or {})]


def _cost(row, board, field):
    return (row.get("costs") or {}).get(board_key(board), {}).get(field)


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


def plot_board_latency(rows, board, chosen, base, path, *, target=None, max_latency_ms=None):
    """Accuracy vs predicted board latency (log x): the candidates by network size, those that
    do not fit crossed, the Pareto front of those that fit, the chosen point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
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
                           label=name + ("" if fits else " (does not fit)"))
    front = latency_front(pts, board)
    if front:
        # a step line: the best accuracy reachable within each latency
        xs = [_cost(r, board, "latency_ms_median") for r in front]
        ys = [100 * r["accuracy"] for r in front]
        ax.step(xs, ys, "k--", where="post", lw=1, label="Pareto front (fits the board)")
    if base is not None:
        ax.axhline(100 * base["accuracy"], color="gray", lw=1,
                   label=f"float baseline N={base.get('n_neurons', '?')}")
    if target is not None:
        ax.axhline(100 * target, color="tab:orange", lw=1, ls=":", label="target")
    if max_latency_ms is not None:
        ax.axvline(max_latency_ms, color="tab:purple", lw=1, ls=":", label="latency budget")
    if chosen is not None and _cost(chosen, board, "latency_ms_median") is not None:
        ax.scatter([_cost(chosen, board, "latency_ms_median")], [100 * chosen["accuracy"]],
                   marker="*", s=240, c="red", zorder=5, label="selected")
    from matplotlib.ticker import LogFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))   # 200, not 2x10^2
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    ax.set_xlabel(f"predicted latency per inference on {board} (ms, median)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy vs latency on {board}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(v, fmt, scale=1.0) -> str:
    return "n/a" if v is None else format(v * scale, fmt)


def _pct(x) -> str:
    return f"{100 * x:.1f}"


def _board_table(cands, board, chosen, front) -> list[str]:
    lines = ["| | point | N | accuracy % | board latency ms | "
             f"board energy uJ ({BOARD_ENERGY_LABEL}) | ASIC energy uJ ({ASIC_LABEL}) | "
             "instructions M (predicted) | cycles M (predicted) | flash KiB | fits |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    inf = float("inf")

    def order(r):
        lat = _cost(r, board, "latency_ms_median")
        ins = _cost(r, board, "instructions_median")
        return (inf if lat is None else lat, inf if ins is None else ins, -r["accuracy"],
                r.get("label", ""))
    for r in sorted(cands, key=order):
        c = r["costs"][board_key(board)]
        mark = ("**chosen**" if _is(r, chosen)
                else "front" if any(_is(r, f) for f in front) else "")
        label = f"**{_cell(r['label'])}**" if _is(r, chosen) else _cell(r["label"])
        lines.append(
            f"| {mark} | {label} | {r.get('n_neurons', '?')} | {_pct(r['accuracy'])} | "
            f"{_f(c.get('latency_ms_median'), '.1f')} | {_f(c.get('energy_uj_median'), '.1f')} | "
            f"{_f(r.get('energy_inference_pj'), '.3f', 1e-6)} | "
            f"{_f(c.get('instructions_median'), '.2f', 1e-6)} | "
            f"{_f(c.get('cycles_median'), '.2f', 1e-6)} | "
            f"{_f(c.get('flash_bytes'), '.1f', 1 / 1024)} | "
            f"{'yes' if c.get('fits') else 'no'} |")
    return lines


# --- what the inference settings saved ----------------------------------------------------

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


def _cell(text) -> str:
    """A Markdown table cell: its pipes (a label's " | ") escaped."""
    return str(text).replace("|", "\\|")


def _rel(v, ref, fmt) -> str:
    if v is None:
        return "n/a"
    if ref is None or ref == 0 or v is ref:
        return format(v, fmt)
    return f"{format(v, fmt)} ({100 * (v / ref - 1):+.0f}%)"


def _savings_table(groups, board) -> list[str]:
    head = "| point | inference | accuracy % | steps/sample | exited early |"
    sep = "|---|---|---|---|---|"
    if board:
        head += f" board latency ms | board energy uJ ({BOARD_ENERGY_LABEL}) |"
        sep += "---|---|"
    head += f" ASIC energy uJ ({ASIC_LABEL}) |"
    sep += "---|"
    lines = [head, sep]
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
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


# --- the report ---------------------------------------------------------------------------

def _uj(pj) -> str:
    return "" if pj is None else f"{pj / 1e6:.3f}"


def _table(rows, base) -> list[str]:
    lines = ["| point | accuracy (int) | float-sim | memory KiB | x smaller | "
             f"uJ/inference ({ASIC_LABEL}) | uJ/train sample ({ASIC_LABEL}) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        acc_int = r.get("accuracy_integer")
        lines.append(
            f"| {_cell(r['label'])} | {'' if acc_int is None else f'{100 * acc_int:.1f}'} | "
            f"{100 * r['accuracy_float_sim']:.1f} | {r['memory_model_bits'] / 8192:.1f} | "
            f"{base['memory_model_bits'] / r['memory_model_bits']:.2f} | "
            f"{r['energy_inference_pj'] / 1e6:.3f} | "
            f"{_uj(r.get('energy_train_pj'))} |")
    return lines


def _board_section(rows, board, selection, base, out, *, max_latency_ms=None) -> tuple[list, list]:
    cands = board_candidates(rows, board)
    if not cands:
        raise TinySNNError(f"no row of the results has the cost on {board}: run tinysnn explore "
                           f"with --boards {board}")
    chosen = selection.chosen if selection else None
    front = selection.front if selection else []
    labels = sorted({r["costs"][board_key(board)].get("label") for r in cands} - {None})
    fit = sum(1 for r in cands if r["costs"][board_key(board)].get("fits"))
    md = [f"## Board {board}", "",
          f"{len(cands)} candidates costed on {board}, {fit} of them fit its flash and RAM. "
          "Latency, instructions and cycles are the board cost model's predicted medians per "
          f"inference; board energy ({BOARD_ENERGY_LABEL}) = predicted cycles / clock x the "
          f"datasheet's run current x VDD; ASIC energy ({ASIC_LABEL}) = the operation counts "
          "of integer inference x energies per operation of a 45 nm ASIC, not the board's."
          + (" Chosen: the row marked **chosen**; front: the Pareto front of the selection."
             if chosen else ""), ""]
    if labels:
        md += ["Cost model: " + "; ".join(labels), ""]
    md += _board_table(cands, board, chosen, front) + [""]
    if any(_cost(r, board, "latency_ms_median") is None for r in cands):
        md += [f"n/a: the cost model of {board} has no cycle estimate calibrated (latency) or "
               f"no datasheet current (energy): tinysnn board calibrate {board}", ""]
    elif any(_cost(r, board, "energy_uj_median") is None for r in cands):
        md += [f"n/a: the profile of {board} gives no datasheet run current and supply voltage, "
               "so no board energy", ""]
    images = []
    if any(_cost(r, board, "latency_ms_median") is not None for r in cands):
        name = f"latency_{re.sub(r'[^A-Za-z0-9_.-]', '_', board)}.png"
        plot_board_latency(cands, board, chosen, base, out / name,
                           target=selection.target if selection else None,
                           max_latency_ms=max_latency_ms)
        images.append(name)
    return md, images


def _cost_models_section(rows, chosen) -> list[str]:
    """A table per cost model in the rows' ``costs`` (every registered one that explore ran, a
    third party's included): each candidate's numeric figures, the chosen one marked."""
    from .select import cost_figures

    md = []
    cands = [r for r in rows if r.get("kind") == "grid"]
    for name, figures in cost_figures(cands).items():
        costed = [r for r in cands if isinstance((r.get("costs") or {}).get(name), dict)]
        labels = sorted({str(r["costs"][name]["label"]) for r in costed
                         if r["costs"][name].get("label")})
        md += [f"### {_cell(name)}", ""]
        if labels:
            md += ["Cost model: " + "; ".join(_cell(x) for x in labels), ""]
        md += ["| point | accuracy | " + " | ".join(figures) + " |",
               "|---|---|" + "---|" * len(figures)]
        for r in sorted(costed, key=lambda r: (-r["accuracy"], r["label"])):
            c = r["costs"][name]
            cells = [f"{c[f]:.6g}" if f in c and not isinstance(c[f], bool) else ""
                     for f in figures]
            mark = " **chosen**" if chosen is not None and _is(r, chosen) else ""
            md.append(f"| {_cell(r['label'])}{mark} | {100 * r['accuracy']:.1f} | "
                      + " | ".join(cells) + " |")
        md.append("")
    return (["## Cost models", "", "The figures of every cost model the exploration ran "
             "(tinysnn explore --cost-models), per candidate.", ""] + md) if md else []


def write_report(rows, selection, out_dir, *, float_w=None, chosen_w=None,
                 title="tinySNN exploration", board: str | None = None,
                 max_latency_ms: float | None = None):
    """Write ``report.md``, ``report.html`` and the plots to ``out_dir``. With ``board``, the
    board section (``selection`` then is ``select_for_board``'s, or None)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bases = [r for r in rows if r.get("kind") == "baseline"]
    if not bases and not selection:
        raise TinySNNError("the results file has no float baseline row: run tinysnn explore first")
    base = selection.baseline if selection else bases[0]
    chosen = selection.chosen if selection else None
    front = selection.front if selection else []
    board_md, board_images = ([], [])
    if board:
        board_md, board_images = _board_section(rows, board, selection, base, out,
                                                max_latency_ms=max_latency_ms)
        front = []   # the board's front is over latency, not memory: the latency plot shows it
    plot_pareto(rows, front, chosen, base, out / "pareto.png")
    plot_accuracy_vs_bits(rows, base, out / "accuracy_vs_bits.png")
    plot_breakdown(base, chosen, out / "breakdown.png")
    images = board_images + ["pareto.png", "accuracy_vs_bits.png", "breakdown.png"]
    if float_w is not None:
        plot_weight_maps(float_w, out / "weights_float.png", "learned weights, float")
        images.append("weights_float.png")
    if chosen_w is not None:
        plot_weight_maps(chosen_w, out / "weights_selected.png", "learned weights, selected model")
        images.append("weights_selected.png")
    grid = sorted([r for r in rows if r.get("kind") == "grid"],
                  key=lambda r: (r["group_set"], r["scheme"], r["rounding"], -r["bits"]))
    sens = sorted([r for r in rows if r.get("kind") == "sensitivity"],
                  key=lambda r: (r["group_set"], r["rounding"], -r["bits"]))
    md = [f"# {title}", ""]
    if selection:
        md += ["## Selection", "", selection.explanation, ""]
    md += board_md
    groups = inference_groups(rows)
    if groups:
        md += ["## What early exit and fewer steps saved", "",
               "Each quantization point with each inference setting (T, input rate, retries, "
               "early exit) against its reference, the setting with no early exit and the "
               "model's own T and rate (or, where no row has those, the first one): accuracy, "
               "steps per sample (mean), the share of samples that exited early"
               + (f", the predicted latency and board energy ({BOARD_ENERGY_LABEL}) on {board}"
                  if board else "")
               + f" and the ASIC energy ({ASIC_LABEL}); in parentheses the change.", ""]
        md += _savings_table(groups, board) + [""]
    md += ["## Baseline", ""]
    for b in [base] + [b for b in bases if not _is(b, base)]:
        md += [f"float model{'' if len(bases) < 2 else ' N=' + str(b.get('n_neurons', '?'))}: "
               f"{100 * b['accuracy']:.2f}% accuracy, {b['memory_model_bits'] / 8192:.1f} KiB "
               f"(FP32), {b['energy_inference_pj'] / 1e6:.3f} uJ per inference ({ASIC_LABEL})", ""]
    energy_model = next((r["energy_model"] for r in rows if r.get("energy_model")), None)
    md += [f'Energy labelled "{ASIC_LABEL}": '
           + (energy_model or "operation counts x energies per operation of a 45 nm ASIC, "
              "not a board") + ".", ""]
    md += ["## Grid", ""] + _table(grid, base) + [""]
    md += _cost_models_section(rows, chosen)
    if sens:
        md += ["## Sensitivity (one group quantized, the others float)", ""] + _table(sens, base) + [""]
    md += ["## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text(_html(md, title))
    return out / "report.md"


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _html(md: list[str], title: str) -> str:
    body = []
    for i, line in enumerate(md):
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1:-1]
            body.append(f'<p><img src="{html.escape(src)}" alt="{html.escape(src)}"></p>')
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]
            header = i + 1 < len(md) and md[i + 1].startswith("|---")
            tag = "th" if header else "td"
            body.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
        elif line:
            body.append(f"<p>{_inline(line)}</p>")
    page, in_table = [], False
    for item in body:
        if item.startswith("<tr>") and not in_table:
            page.append("<table>")
            in_table = True
        if not item.startswith("<tr>") and in_table:
            page.append("</table>")
            in_table = False
        page.append(item)
    if in_table:
        page.append("</table>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
            "font-size:12px}img{max-width:100%}</style></head><body>" + "\n".join(page) +
            "</body></html>")
