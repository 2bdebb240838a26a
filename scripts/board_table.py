"""Markdown tables of the board figures (docs/results.md section 5).

    python scripts/board_table.py check runs/board/check/*.json
        predicted vs measured instructions per inference, per model and board (deploy --json)
    python scripts/board_table.py compare BOARD RESULTS.jsonl FP32_DC.tsnn FP32_TS.tsnn
        FP32 Diehl & Cook, FP32 tinySNN, the previously selected point (ITQ mixed 2-bit
        stochastic, N = 400, the model's own inference settings) and the board's selection:
        memory, ASIC-model energy, board energy and latency (the FP32 models costed as the
        integer engine would run their 16-bit default formats: they do not fit the board)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def check(paths) -> None:
    print("| model | board | samples | parity | measured median | predicted median | error |")
    print("|---|---|---|---|---|---|---|")
    for p in sorted(paths):
        s = json.loads(Path(p).read_text())
        pred = s.get("predicted", {})
        meas = s["cycles"]["median"]
        err = pred["instructions_median"] / meas - 1 if "instructions_median" in pred else None
        name = Path(p).stem.replace(f"-{s['board']}", "")
        print(f"| {name} | {s['board']} | {s['samples']} | {100 * s['parity']:.0f}% | "
              f"{meas / 1e6:.3f} M | "
              + (f"{pred['instructions_median'] / 1e6:.3f} M | {100 * err:+.1f}% |" if err is not None
                 else "- | - |"))


def _float_figures(board: str, path: str, n_test: int = 1000) -> dict:
    from tinysnn_core import intsim
    from tinysnn_core import train as flow
    from tinysnn_core.builtin.costs import EnergyModel, MemoryModel
    from tinysnn_core.modelfile import load_network
    from tinysnn_serial.costmodel import BoardCostModel

    net = load_network(path)
    data = flow.load_dataset(net.config)
    m = intsim.from_network(net)          # unquantized: the 16-bit default formats
    seed = flow.stream_seed(net.config.seed, "test")
    _, _, ops = intsim.run_integer(m, data.test_images[:n_test], seed,
                                   np.arange(min(n_test, len(data.test_images))),
                                   flow.get_backend(net.config), with_ops=True)
    cost = BoardCostModel(board).integer_inference_cost(m, ops)
    mem = MemoryModel().estimate(net)
    energy = EnergyModel().estimate(net, {"test": net.ops["test"]})["phases"]["test"]
    return {"label": f"FP32 {net.config.plugin_name('topology')} N={net.n_neurons}",
            "accuracy": (net.metrics or {}).get("accuracy"),
            "memory_kib": mem["model_bits"] / 8192, "asic_uj": energy["pj_per_sample"] / 1e6,
            "cost": cost, "note": "16-bit integer engine (does not fit)" if not cost["fits"]
            else "16-bit integer engine"}


def _row_figures(row: dict, board: str, label: str) -> dict:
    return {"label": f"{label}: {row['label']} (N={row.get('n_neurons')})",
            "memory_kib": row["memory_model_bits"] / 8192,
            "asic_uj": row["energy_inference_pj"] / 1e6, "cost": row["costs"][f"board-{board}"],
            "accuracy": row["accuracy"], "note": ""}


def compare(board: str, results: str, dc: str, ts: str) -> None:
    from tinysnn_core.explore import read_results

    rows = read_results(results)
    sel_path = Path(results).with_name("selected.json")
    chosen = json.loads(sel_path.read_text())["chosen"] if sel_path.exists() else None
    previous = [r for r in rows if r.get("kind") == "grid" and r.get("n_neurons") == 400
                and r["label"].startswith("itq mixed 2b/16b stochastic")
                and r.get("inference", {}).get("exit_margin", 0) == 0
                and r.get("inference", {}).get("rate_hz", 63.75) == 63.75
                and r.get("inference", {}).get("time_steps", 350) == 350
                and r.get("inference", {}).get("max_retries", 4) == 4]
    lines = [_float_figures(board, dc), _float_figures(board, ts)]
    if previous:
        lines.append(_row_figures(previous[0], board, "previously selected"))
    if chosen:
        lines.append(_row_figures(chosen, board, "selected for the board"))
    print(f"| model | accuracy | weights + neuron parameters | energy/inference, ASIC 45 nm model | "
          f"energy/inference on {board} (cycles x datasheet) | latency on {board} | "
          f"instructions (M) | fits |")
    print("|---|---|---|---|---|---|---|---|")
    for f in lines:
        c = f["cost"]
        label = f["label"].replace("|", "\\|")     # the inference settings' separator
        acc = f"{100 * f['accuracy']:.1f}%" if f.get("accuracy") is not None else "-"
        print(f"| {label} | {acc} | {f['memory_kib']:,.1f} KiB | {f['asic_uj']:,.1f} uJ | "
              f"{c.get('energy_uj_median', float('nan')):,.0f} uJ | "
              f"{c.get('latency_ms_median', float('nan')):,.1f} ms | "
              f"{c['instructions_median'] / 1e6:.2f} | {'yes' if c['fits'] else 'no'}"
              f"{' (' + f['note'] + ')' if f['note'] else ''} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "check":
        check(sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    else:
        sys.exit(__doc__)
