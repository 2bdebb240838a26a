"""Registered cost models in the flow: select chooses by a named cost model's figure (and says
so), report shows every cost model's figures present in the rows (the example plugin's
tests run the whole flow with a third party's cost model)."""

import pytest

from tinysnn_core.errors import TinySNNError
from tinysnn_core.report import write_report
from tinysnn_core.select import cost_figures, select, select_by_cost


def _row(label, acc, mem, costs=None, kind="grid", key=None):
    return {"label": label, "accuracy": acc, "memory_model_bits": mem, "kind": kind,
            "energy_inference_pj": 1e6, "deployable": True, "key": key or label,
            "accuracy_float_sim": acc, "group_set": "all", "scheme": "ptq", "rounding": "nearest",
            "bits": 8, "groups": {}, "costs": costs or {},
            "memory_parameters_bits": {"weights": mem},
            "energy_breakdown_inference": {"add": 1e6}}


def _rows():
    def traffic(b):
        return {"traffic": {"label": "bytes read", "bytes_median": b, "bytes_mean": b + 1.5,
                            "exact": True}}

    return [_row("base", 0.90, 8000, kind="baseline"),
            _row("a", 0.895, 2000, traffic(900)), _row("b", 0.89, 1000, traffic(400)),
            _row("c", 0.70, 500, traffic(100)), _row("d", 0.893, 1500, traffic(400)),
            _row("e", 0.90, 900, {"other": {"ms_median": 3.0, "calibrated": False}})]


def test_figures_of_every_cost_model_in_the_rows():
    assert cost_figures(_rows()) == {"other": ["ms_median"],
                                     "traffic": ["bytes_mean", "bytes_median"]}


def test_select_by_a_cost_models_figure():
    sel = select_by_cost(_rows(), "traffic", within_pp=1.0)
    # b and d tie on the figure (400): the more accurate one; c is cheaper but not accurate
    assert sel.chosen["label"] == "d"
    assert "Cost model traffic (bytes read), figure bytes_median" in sel.explanation
    assert "bytes_median = 400" in sel.explanation
    assert "5 of" not in sel.explanation and "Of 4 candidates" in sel.explanation
    assert select_by_cost(_rows(), "traffic", "bytes_mean", target=0.6).chosen["label"] == "c"
    assert select_by_cost(_rows(), "traffic", target=0.6, max_cost=50.0 + 350).chosen[
        "label"] == "c"
    with pytest.raises(TinySNNError, match="no candidate reaches 89.00% with traffic "
                                           "bytes_median <= 300"):
        select_by_cost(_rows(), "traffic", within_pp=1.0, max_cost=300)


def test_unknown_cost_model_or_figure_lists_the_known_ones():
    with pytest.raises(TinySNNError, match=r"'energy' \(in the rows: other, traffic\)"):
        select_by_cost(_rows(), "energy", within_pp=1.0)
    with pytest.raises(TinySNNError, match="its figures: bytes_mean, bytes_median"):
        select_by_cost(_rows(), "traffic", "joules", within_pp=1.0)


def test_the_reward_selection_shows_the_cost_models_figures_too():
    sel = select(_rows(), within_pp=1.0)
    assert sel.chosen["label"] == "e"
    assert sel.explanation.endswith("Cost models: other (uncalibrated estimate): ms_median 3.")


def test_report_shows_every_cost_models_figures(tmp_path):
    rows = _rows()
    sel = select_by_cost(rows, "traffic", within_pp=1.0)
    md = write_report(rows, sel, tmp_path).read_text()
    section = md.split("## Cost models", 1)[1]
    assert "### other" in section and "### traffic" in section
    assert "Cost model: bytes read" in section
    assert "| point | accuracy | bytes_mean | bytes_median |" in section
    assert "| d **chosen** | 89.3 | 401.5 | 400 |" in section
    assert "| c | 70.0 | 101.5 | 100 |" in section
    assert "| e | 90.0 | 3 |" in section
    assert "exact" not in section          # a flag, not a figure


def test_select_and_report_commands_check_the_cost_model_flags(tmp_path, capsys):
    import json

    from tinysnn_core.cli import main

    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    assert main(["select", str(results), "--within", "1", "--figure", "bytes_mean"]) == 2
    assert "give --cost-model" in capsys.readouterr().err
    assert main(["select", str(results), "--within", "1", "--cost-model", "traffic",
                 "--board", "qemu-mps2-an385"]) == 2
    assert main(["select", str(results), "--within", "1", "--cost-model", "traffic",
                 "--max-cost", "-3"]) == 2
    assert main(["report", str(results), "--cost-model", "traffic", "--out",
                 str(tmp_path / "rep")]) == 2
    assert main(["report", str(results), "--within", "1", "--cost-model", "traffic", "--out",
                 str(tmp_path / "rep")]) == 0
    assert "d **chosen**" in (tmp_path / "rep" / "report.md").read_text()
