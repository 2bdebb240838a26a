"""Exploration reports: a Markdown and an HTML page with PNG plots (matplotlib).

Plots: the Pareto front (memory vs accuracy), accuracy vs precision per rounding and scheme,
memory and energy by parameter group (float baseline vs the chosen model), and the learned
weight maps (28x28 tiles) of the float and the chosen model.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np


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
    a2.set_ylabel("uJ per inference")
    a2.set_title("energy by operation (inference)")
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


def _uj(pj) -> str:
    return "" if pj is None else f"{pj / 1e6:.3f}"


def _table(rows, base) -> list[str]:
    lines = ["| point | accuracy (int) | float-sim | memory KiB | x smaller | uJ/inference | "
             "uJ/train sample |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        acc_int = r.get("accuracy_integer")
        lines.append(
            f"| {r['label']} | {'' if acc_int is None else f'{100 * acc_int:.1f}'} | "
            f"{100 * r['accuracy_float_sim']:.1f} | {r['memory_model_bits'] / 8192:.1f} | "
            f"{base['memory_model_bits'] / r['memory_model_bits']:.2f} | "
            f"{r['energy_inference_pj'] / 1e6:.3f} | "
            f"{_uj(r.get('energy_train_pj'))} |")
    return lines


def write_report(rows, selection, out_dir, *, float_w=None, chosen_w=None, title="tinySNN exploration"):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = selection.baseline if selection else next(r for r in rows if r.get("kind") == "baseline")
    chosen = selection.chosen if selection else None
    front = selection.front if selection else []
    plot_pareto(rows, front, chosen, base, out / "pareto.png")
    plot_accuracy_vs_bits(rows, base, out / "accuracy_vs_bits.png")
    plot_breakdown(base, chosen, out / "breakdown.png")
    images = ["pareto.png", "accuracy_vs_bits.png", "breakdown.png"]
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
    md += ["## Baseline", "", f"float model: {100 * base['accuracy']:.2f}% accuracy, "
           f"{base['memory_model_bits'] / 8192:.1f} KiB (FP32), "
           f"{base['energy_inference_pj'] / 1e6:.3f} uJ per inference", ""]
    md += ["## Grid", ""] + _table(grid, base) + [""]
    if sens:
        md += ["## Sensitivity (one group quantized, the others float)", ""] + _table(sens, base) + [""]
    md += ["## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    (out / "report.md").write_text("\n".join(md))
    body = []
    for line in md:
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
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if "accuracy (int)" in line else "td"
            body.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
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
    (out / "report.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
        "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font-size:12px}img{max-width:100%}</style></head><body>" + "\n".join(page) +
        "</body></html>")
    return out / "report.md"
