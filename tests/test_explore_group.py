"""Grouped exploration (points that share their input spikes evaluated together) against the
ungrouped one: the same rows, but for their timing."""

import json

import pytest

from tinysnn_core.cli import main
from tinysnn_core.explore import (build_grid, group_tasks, inference_variants, read_results,
                                  run_exploration, shares_spikes)

TIMING = ("seconds",)


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "float.tsnn"
    rc = main(["run", "-q", "-n", "12", "--n-train", "60", "--n-test", "30", "--time-steps", "40",
               "--topology", "tinysnn", "--set", "topology.w_inh=-60", "--out", str(out)])
    assert rc == 0
    return out


def _points():
    grid = build_grid(schemes=["ptq", "itq"], bits=[4], roundings=["nearest", "stochastic"],
                      group_sets=["weights", "all", "mixed"], sensitivity=True,
                      ranges={"inhibition": 60}, sensitivity_groups=["theta"],
                      inference=inference_variants(time_steps=[40, 25], exit_margin=[0, 2]))
    # every PTQ point, and one in-training point (trained, so alone in its unit)
    return [p for p in grid if p.scheme == "ptq"] + [p for p in grid if p.scheme == "itq"][:1]


def _rows(path):
    return {r["key"]: {k: v for k, v in r.items() if k not in TIMING}
            for r in read_results(path)}


def test_group_tasks_groups_the_points_that_share_spikes():
    pts = _points()
    tasks = {}
    for p in pts:
        tasks.setdefault(json.dumps([p.label.split(" | ")[0], p.kind]), []).append(p)
    tasks = list(tasks.values())
    units = group_tasks(tasks, 4)
    assert sorted(id(t) for u in units for t in u) == sorted(id(t) for t in tasks)
    assert all(len(u) <= 4 for u in units)
    for u in units:
        assert len(u) == 1 or all(shares_spikes(t[0]) for t in u)
    assert [u for u in units if not shares_spikes(u[0][0])] == [[tasks[-1]]]
    # those with the same weight format sit next to each other
    formats = [json.dumps(t[0].groups.get("weights"), sort_keys=True)
               for u in units for t in u if shares_spikes(t[0])]
    assert all(a == b or b not in formats[:i] for i, (a, b) in
               enumerate(zip(formats, formats[1:]), 1))
    assert group_tasks(tasks, 1) == [[t] for t in tasks]


def test_grouped_exploration_gives_the_ungrouped_rows(float_model, tmp_path, monkeypatch):
    pytest.importorskip("tinysnn_numba")
    from tinysnn_numba import NumbaBackend

    calls = []      # the grouped kernels did run (no silent fallback to one by one)
    for name in ("run_group", "run_integer_group"):
        def spy(self, models, *args, _orig=getattr(NumbaBackend, name), _name=name, **kw):
            calls.append((_name, len(models)))
            return _orig(self, models, *args, **kw)
        monkeypatch.setattr(NumbaBackend, name, spy)
    pts = _points()
    opts = {"backend": "numba"}
    one = run_exploration(pts, str(float_model), tmp_path / "one.jsonl", progress=False,
                          options=opts, group_size=1)
    assert calls == []
    grouped = run_exploration(pts, str(float_model), tmp_path / "grouped.jsonl", progress=False,
                              options=opts, group_size=5)
    assert ("run_group", 5) in calls and max(n for c, n in calls if c != "run_group") > 5
    assert len(one) == len(grouped) == len(pts) + 1
    a, b = _rows(tmp_path / "one.jsonl"), _rows(tmp_path / "grouped.jsonl")
    assert a == b
    # the points differ from each other: the comparison has something to catch
    assert len({json.dumps(r["correct"]) for r in a.values()}) > 3
    assert any("accuracy_integer" in r and r["infer_ops"]["exit_early"] > 0 for r in a.values())
