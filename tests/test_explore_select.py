import json

import numpy as np
import pytest

from tinysnn_core.cli import main
from tinysnn_core.explore import build_grid, read_results, run_exploration
from tinysnn_core.select import pareto_front, select


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "float.tsnn"
    rc = main(["run", "-q", "-n", "20", "--n-train", "80", "--n-test", "40", "--time-steps", "60",
               "--topology", "tinysnn", "--set", "topology.w_inh=-60", "--out", str(out)])
    assert rc == 0
    return out


def test_grid_shape():
    pts = build_grid(schemes=["ptq", "itq"], bits=[8, 4], roundings=["truncation", "nearest"],
                     group_sets=["weights", "all"], sensitivity=True, ranges={"inhibition": 60})
    grid = [p for p in pts if p.kind == "grid"]
    assert len(grid) == 2 * 2 * 2 * 2
    sens = [p for p in pts if p.kind == "sensitivity"]
    assert {p.group_set for p in sens} == {"weights", "potential", "theta", "inhibition", "decay"}
    assert all(len(p.groups) == 1 for p in sens)


def test_in_training_formats_leave_room_for_theta_to_grow():
    # theta 465 fits uQ9.7 (max 511.99) with 10 % to spare: enough after training, not during it
    ranges = {"theta": 465.0, "potential": 478.0, "inhibition": 120.0}
    pts = build_grid(schemes=["ptq", "itq"], bits=[4], roundings=["stochastic"],
                     group_sets=["mixed"], sensitivity=False, ranges=ranges, neuron_bits=16)
    fmt = {p.scheme: {g: v["format"] for g, v in p.groups.items()} for p in pts}
    assert fmt["ptq"]["theta"] == "uQ9.7" and fmt["ptq"]["potential"] == "sQ9.6"
    assert fmt["itq"]["theta"] == "uQ10.6" and fmt["itq"]["potential"] == "sQ10.5"
    assert fmt["itq"]["weights"] == fmt["ptq"]["weights"] == "uQ0.4"
    # a range with 1.5x room already is left as it is
    roomy = build_grid(schemes=["itq"], bits=[4], roundings=["stochastic"], group_sets=["mixed"],
                       sensitivity=False, ranges={"theta": 290.0, "potential": 303.0},
                       neuron_bits=16)
    assert roomy[0].groups["theta"]["format"] == "uQ9.7"


def test_decay_bits_set_the_decay_group_of_grid_points():
    pts = build_grid(schemes=["itq"], bits=[3], roundings=["stochastic"],
                     group_sets=["weights", "mixed"], sensitivity=True, ranges={"inhibition": 60},
                     neuron_bits=16, decay_bits=32, sensitivity_groups=["decay"])
    mixed = [p for p in pts if p.group_set == "mixed"][0]
    assert mixed.groups["decay"]["format"] == "uQ1.31"
    assert mixed.groups["theta"]["format"] == "uQ7.9"       # still the neuron precision
    assert mixed.label == "itq mixed 3b/16b stochastic decay 32b"
    assert "decay" not in [p for p in pts if p.group_set == "weights"][0].groups
    sens = [p for p in pts if p.kind == "sensitivity"][0]    # the sweep keeps its own bits
    assert sens.groups["decay"]["format"] == "uQ1.2"


def test_explore_warns_when_in_training_points_lose_theta_decay(float_model):
    from tinysnn_core.explore import decays_lost_in_training
    from tinysnn_core.modelfile import load_network

    net = load_network(float_model)
    kw = dict(bits=[4], roundings=["stochastic"], group_sets=["mixed"], sensitivity=False,
              ranges={"inhibition": 60}, neuron_bits=16)
    lost = decays_lost_in_training(net, build_grid(schemes=["ptq", "itq"], **kw))
    assert lost == ["1 in-training point(s) store the decay factors in uQ1.15, which rounds "
                    "exc.theta_decay to 0 or 1"]
    assert decays_lost_in_training(net, build_grid(schemes=["itq"], decay_bits=32, **kw)) == []
    assert decays_lost_in_training(net, build_grid(schemes=["ptq"], **kw)) == []


def test_saturated_fractions_name_the_stuck_theta(float_model):
    import copy

    from tinysnn_core.explore import point_network, saturated_fractions
    from tinysnn_core.modelfile import load_network

    groups = {"weights": {"format": "uQ0.4", "rounding": "nearest"},
              "theta": {"format": "uQ2.2", "rounding": "nearest"}}
    net, _, _ = point_network(copy.deepcopy(load_network(float_model)), "ptq", groups)
    top = net.quant.plan.groups["theta"].fmt.max
    assert top == 3.75
    expected = float(np.mean(net.theta >= top))
    assert saturated_fractions(net)["theta"] == expected
    net.theta[:5] = top
    assert saturated_fractions(net)["theta"] == float(np.mean(net.theta >= top)) > 0
    assert 0 <= saturated_fractions(net)["weights"] <= 1


def test_exploration_resumes_without_repeating(float_model, tmp_path):
    results = tmp_path / "r.jsonl"
    pts = build_grid(schemes=["ptq"], bits=[8, 6], roundings=["nearest"], group_sets=["all"],
                     sensitivity=False, ranges={"inhibition": 60})
    run_exploration(pts[:1], str(float_model), str(results), progress=False)
    first = read_results(results)
    assert [r["kind"] for r in first] == ["baseline", "grid"]
    # a torn line from a killed writer is ignored, and the finished point is not redone
    with open(results, "a") as fh:
        fh.write('{"key": "torn')
    rows = run_exploration(pts, str(float_model), str(results), progress=False)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 3
    row = [r for r in rows if r.get("bits") == 8][0]
    assert row["deployable"] and 0 <= row["accuracy_integer"] <= 1
    assert row["memory_model_bits"] < rows[0]["memory_model_bits"]


def test_exploration_on_a_local_dask_cluster(float_model, tmp_path):
    distributed = pytest.importorskip("distributed")
    pts = build_grid(schemes=["ptq"], bits=[8], roundings=["truncation", "nearest"],
                     group_sets=["weights"], sensitivity=False, ranges={"inhibition": 60})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rows = run_exploration(pts, str(float_model), str(tmp_path / "d.jsonl"),
                               scheduler=cluster.scheduler_address, progress=False)
    assert sorted(r["rounding"] for r in rows if r["kind"] == "grid") == ["nearest", "truncation"]


def _row(label, acc, mem, energy, kind="grid"):
    return {"label": label, "accuracy": acc, "memory_model_bits": mem,
            "energy_inference_pj": energy, "kind": kind, "deployable": True}


def test_pareto_and_selection_rules():
    base = _row("base", 0.90, 1000, 100, "baseline")
    rows = [base, _row("a", 0.895, 250, 30), _row("b", 0.89, 125, 20), _row("c", 0.80, 100, 10),
            _row("d", 0.89, 300, 40)]
    front = pareto_front([r for r in rows if r["kind"] == "grid"])
    assert {r["label"] for r in front} == {"a", "b", "c"}
    sel = select(rows, within_pp=1.0)
    assert sel.chosen["label"] == "b"
    assert "8.00x smaller" in sel.explanation
    assert select(rows, target=0.75, max_memory_bits=100).chosen["label"] == "c"
    assert select(rows, within_pp=1.0, max_energy_pj=25).chosen["label"] == "b"


def test_selection_without_a_feasible_candidate_says_so():
    from tinysnn_core.errors import TinySNNError

    rows = [_row("base", 0.9, 1000, 100, "baseline"), _row("a", 0.5, 100, 10)]
    with pytest.raises(TinySNNError, match="no candidate reaches"):
        select(rows, within_pp=1.0)


def test_select_and_report_commands(float_model, tmp_path):
    results = tmp_path / "r.jsonl"
    pts = build_grid(schemes=["ptq"], bits=[8], roundings=["nearest"], group_sets=["all"],
                     sensitivity=False, ranges={"inhibition": 60})
    run_exploration(pts, str(float_model), str(results), progress=False)
    out = tmp_path / "sel.tsnn"
    assert main(["select", str(results), "--model", str(float_model), "--target", "0.0",
                 "--out", str(out), "-q", "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["chosen"]["bits"] == 8
    assert main(["report", str(results), "--model", str(float_model), "--selected", str(out),
                 "--target", "0.0", "--out", str(tmp_path / "rep")]) == 0
    for name in ("report.md", "report.html", "pareto.png", "accuracy_vs_bits.png",
                 "breakdown.png", "weights_float.png", "weights_selected.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
