"""The report's board figures (tinysnn report --board): synthetic results rows, no training."""

import json

import pytest

from tinysnn_core.cli import main
from tinysnn_core.errors import TinySNNError
from tinysnn_core.report import write_report
from tinysnn_core.select import select_for_board

BOARD = "testboard"
BREAKDOWN = {"synaptic_events": 1.0e6, "neuron_updates_exc": 0.5e6}
PARAMS = {"w_ee": 8192.0 * 40, "theta": 8192.0 * 2}


def _base(n=100, acc=0.90):
    return {"kind": "baseline", "label": f"float64 baseline N={n} (FP32 memory)", "accuracy": acc,
            "accuracy_float_sim": acc, "n_neurons": n, "base_model": f"digest{n}",
            "memory_model_bits": 8192.0 * 300 * n / 100, "energy_inference_pj": 40e6,
            "energy_train_pj": 60e6, "energy_breakdown_inference": BREAKDOWN,
            "memory_parameters_bits": PARAMS, "energy_model": "ASIC 45 nm model (test)",
            "scheme": "none", "bits": 32, "rounding": "none", "group_set": "none", "groups": {},
            "deployable": False}


def _row(bits, inference, acc, *, latency, energy, asic_uj, steps, exit_early=0.0,
         flash=30_000, fits=True, n=100, calibrated=True):
    label = f"ptq mixed {bits}b/16b nearest"
    if inference:
        label += " | " + " ".join(f"{k}={v}" for k, v in inference.items())
    cost = {"label": f"{BOARD}: test cost model", "board": BOARD,
            "instructions_median": latency * 1e4, "instructions_mean": latency * 1e4,
            "fits": fits, "flash_bytes": flash, "ram_bytes": 12_000, "fit": "test"}
    if calibrated:
        cost.update({"cpi": 1.25, "cycles_median": latency * 1.25e4,
                     "latency_ms_median": latency, "energy_uj_median": energy})
    return {"kind": "grid", "label": label, "scheme": "ptq", "bits": bits, "rounding": "nearest",
            "group_set": "mixed", "groups": {"w_ee": {"format": [1, bits - 1]}},
            "base_model": f"digest{n}", "n_neurons": n, "inference": inference,
            "accuracy": acc, "accuracy_integer": acc, "accuracy_float_sim": acc + 0.001,
            "memory_model_bits": 8192.0 * bits * 5, "memory_parameters_bits": PARAMS,
            "energy_inference_pj": asic_uj * 1e6, "energy_train_pj": 60e6,
            "energy_breakdown_inference": BREAKDOWN, "energy_model": "ASIC 45 nm model (test)",
            "infer_ops": {"presentations": 1.0, "steps": steps, "draws": 1e4,
                          "input_spikes": 3e3, "exc_spikes": 8.0, "exit_early": exit_early,
                          "steps_median": steps},
            "costs": {f"board-{BOARD}": cost}, "deployable": True}


def _rows():
    return [
        _base(),
        _row(4, {"rate_hz": 63.75, "exit_margin": 0}, 0.895, latency=400.0, energy=1200.0,
             asic_uj=8.0, steps=700.0),
        _row(4, {"rate_hz": 63.75, "exit_margin": 2}, 0.893, latency=300.0, energy=900.0,
             asic_uj=6.0, steps=525.0, exit_early=0.8),
        _row(2, {"rate_hz": 63.75, "exit_margin": 0}, 0.890, latency=410.0, energy=1230.0,
             asic_uj=2.0, steps=720.0, flash=20_000),
        _row(2, {"rate_hz": 63.75, "exit_margin": 2}, 0.889, latency=200.0, energy=600.0,
             asic_uj=1.0, steps=360.0, exit_early=0.9, flash=20_000),
        # the fastest of all does not fit the board
        _row(8, {}, 0.899, latency=100.0, energy=300.0, asic_uj=9.0, steps=700.0,
             flash=900_000, fits=False, n=400),
    ]


def _lines(md, heading):
    """The table lines of the Markdown section ``heading``."""
    section = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_board_report_table_savings_and_labels(tmp_path):
    rows = _rows()
    sel = select_for_board(rows, BOARD, within_pp=1.5)
    assert sel.chosen["label"] == "ptq mixed 2b/16b nearest | rate_hz=63.75 exit_margin=2"
    path = write_report(rows, sel, tmp_path, board=BOARD)
    md = path.read_text()

    table = _lines(md, f"Board {BOARD}")
    header = table[0]
    assert "board latency ms" in header
    assert "board energy uJ (cycles x datasheet)" in header
    assert "ASIC energy uJ (ASIC 45 nm model)" in header
    assert "instructions M (predicted)" in header and "cycles M (predicted)" in header
    assert "flash KiB" in header and "fits" in header
    body = table[2:]
    assert len(body) == 5                     # every costed candidate, by latency
    chosen = [line for line in body if "**chosen**" in line]
    assert len(chosen) == 1
    cells = [c.strip() for c in chosen[0].strip("|").split(" | ")]
    # mark, label (its " | " escaped), N, accuracy, latency, board energy, ASIC energy,
    # instructions M, cycles M, flash KiB, fits
    assert cells[1] == "**ptq mixed 2b/16b nearest \\| rate_hz=63.75 exit_margin=2**"
    assert cells[2:] == ["100", "88.9", "200.0", "600.0", "1.000", "2.00", "2.50", "19.5",
                         "yes"]
    assert body[1] == chosen[0]               # the one that does not fit is the fastest
    assert "| no |" in body[0] and "| 400 |" in body[0]

    savings = _lines(md, "What early exit and fewer steps saved")
    assert "board latency ms" in savings[0]
    assert "board energy uJ (cycles x datasheet)" in savings[0]
    assert "ASIC energy uJ (ASIC 45 nm model)" in savings[0]
    body = savings[2:]
    assert len(body) == 4                     # two points, two settings each
    ref = [c.strip() for c in body[0].strip("|").split(" | ")]
    assert ref[:2] == ["ptq mixed 4b/16b nearest", "rate=63.75 exit=0 (reference)"]
    exit2 = [c.strip() for c in body[1].strip("|").split(" | ")]
    assert exit2 == ["ptq mixed 4b/16b nearest", "rate=63.75 exit=2", "89.3 (-0.2 pp)",
                     "525.0 (-25%)", "80%", "300.0 (-25%)", "900.0 (-25%)", "6.000 (-25%)"]
    two = [c.strip() for c in body[3].strip("|").split(" | ")]
    assert two[1] == "rate=63.75 exit=2"
    assert two[3:] == ["360.0 (-50%)", "90%", "200.0 (-51%)", "600.0 (-51%)", "1.000 (-50%)"]

    # every energy of the report says whose it is
    assert "uJ/inference (ASIC 45 nm model)" in _lines(md, "Grid")[0]
    assert "uJ per inference (ASIC 45 nm model)" in md
    assert "ASIC 45 nm model (test)" in md
    png = tmp_path / f"latency_{BOARD}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![latency_{BOARD}.png](latency_{BOARD}.png)" in md
    html = (tmp_path / "report.html").read_text()
    assert "<th>board energy uJ (cycles x datasheet)</th>" in html
    assert "<strong>chosen</strong>" in html
    assert "ptq mixed 2b/16b nearest | rate_hz=63.75 exit_margin=2" in html


def test_report_command_with_board_and_budget(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    out = tmp_path / "rep"
    assert main(["report", str(results), "--board", BOARD, "--within", "1.5",
                 "--latency-ms", "350", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert f"Board {BOARD}." in md             # select_for_board's explanation
    chosen = [line for line in _lines(md, f"Board {BOARD}") if "**chosen**" in line]
    assert len(chosen) == 1 and "exit_margin=2" in chosen[0] and "2b/16b" in chosen[0]
    assert (out / f"latency_{BOARD}.png").stat().st_size > 0
    # without a target: the board figures, nothing chosen
    assert main(["report", str(results), "--board", BOARD, "--out", str(tmp_path / "r2")]) == 0
    md2 = (tmp_path / "r2" / "report.md").read_text()
    assert "**chosen**" not in md2 and "## What early exit and fewer steps saved" in md2
    # board budgets need a board
    assert main(["report", str(results), "--within", "1", "--latency-ms", "10",
                 "--out", str(tmp_path / "r3")]) == 2


def test_board_without_cycle_calibration_reports_instructions(tmp_path):
    rows = [_base(), _row(4, {"exit_margin": 0}, 0.9, latency=1, energy=1, asic_uj=2.0,
                          steps=700.0, calibrated=False),
            _row(4, {"exit_margin": 2}, 0.9, latency=2, energy=1, asic_uj=1.0, steps=350.0,
                 calibrated=False)]
    md = write_report(rows, None, tmp_path, board=BOARD).read_text()
    line = _lines(md, f"Board {BOARD}")[2]
    assert "| n/a | n/a |" in line and "| 0.01 |" in line      # 1e4 instructions
    assert "tinysnn board calibrate" in md
    assert not (tmp_path / f"latency_{BOARD}.png").exists()
    savings = _lines(md, "What early exit and fewer steps saved")
    assert "| 350.0 (-50%) |" in savings[3] and "| n/a | n/a | 1.000 (-50%) |" in savings[3]


def test_results_without_costs_still_report(tmp_path):
    rows = [_base()]
    for bits, acc in ((8, 0.9), (4, 0.88)):
        r = _row(bits, {}, acc, latency=1, energy=1, asic_uj=3.0, steps=700.0)
        for k in ("costs", "inference", "infer_ops"):
            del r[k]
        rows.append(r)
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rep"
    assert main(["report", str(results), "--target", "0.85", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "## Selection" in md and "## Grid" in md and "## Board" not in md
    assert "What early exit" not in md
    assert len(_lines(md, "Grid")) == 4
    assert "uJ/inference (ASIC 45 nm model)" in md
    for name in ("report.md", "report.html", "pareto.png", "accuracy_vs_bits.png",
                 "breakdown.png"):
        assert (out / name).stat().st_size > 0
    with pytest.raises(TinySNNError, match="no row of the results has the cost on"):
        write_report(rows, None, tmp_path / "x", board=BOARD)
