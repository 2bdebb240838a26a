"""The inference design axes ([inference]: T, input rate, retries, early exit) in the integer
contract, the exploration that sweeps them, and the board selection that chooses on them."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn_core import intsim
from tinysnn_core.config import Config
from tinysnn_core.errors import ConfigError, TinySNNError
from tinysnn_core.explore import Point, build_grid, inference_variants
from tinysnn_core.network import Network
from tinysnn_core.quant import default_format
from tinysnn_core.select import select_for_board
from tinysnn_core.train import quantizer_for


def quantized_net(seed: int = 1, n: int = 24, time_steps: int = 50, inference=None) -> Network:
    """An untrained quantized network with random weights that spike, random assignments."""
    groups = {g: {"format": str(default_format(g, b, r)), "rounding": "nearest"}
              for g, b, r in (("weights", 4, None), ("potential", 16, None), ("theta", 12, None),
                              ("inhibition", 12, 120.0), ("decay", 16, None))}
    cfg = {"seed": seed, "n_neurons": n, "topology": "tinysnn",
           "train": {"time_steps": time_steps}, "quant": {"scheme": "ptq", "groups": groups}}
    if inference:
        cfg["inference"] = inference
    net = Network.build(Config.from_dict(cfg))
    rng = np.random.default_rng(seed)
    net.w[:] = rng.random(net.w.shape) * 0.6
    net.theta[:] = rng.random(n) * 5.0
    quantizer, plan = quantizer_for(net.config)
    quantizer.prepare(net, plan)
    net.assignments = rng.integers(-1, 10, n)
    net.proportions = np.zeros((n, 10))
    return net


def images(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (k, 784)).astype(np.uint8)
    img[rng.random((k, 784)) < 0.8] = 0
    return img


@pytest.mark.parametrize("key,value,why", [
    ("time_steps", 70000, "inference.time_steps must be in 0..65535"),
    ("max_retries", -2, "inference.max_retries must be in -1..254"),
    ("exit_margin", -1, "inference.exit_margin must be in 0..65535"),
    ("rate_hz", 2000.0, "inference.rate_hz must be in 0..1000"),
    ("min_spikes", -5, "inference.min_spikes must be in -1..65535"),
    ("exit_margin", 1.5, "exit_margin must be an integer"),
    ("rate_hz", "fast", "rate_hz must be a number"),
])
def test_inference_settings_are_checked(key, value, why):
    with pytest.raises(ConfigError, match=why):
        Config.from_dict({"inference": {key: value}})
    with pytest.raises(ConfigError, match="unknown parameter"):
        Config.from_dict({"inference": {"exit_marign": 2}})


def test_inference_settings_set_the_integer_model():
    base = intsim.from_network(quantized_net())
    assert (base.time_steps, len(base.rate_units), base.exit_margin) == (50, 5, 0)
    m = intsim.from_network(quantized_net(inference={
        "time_steps": 20, "max_retries": 0, "exit_margin": 3, "rate_hz": 127.5,
        "min_spikes": 2}))
    assert (m.time_steps, len(m.rate_units), m.exit_margin, m.retry_min_spikes) == (20, 1, 3, 2)
    assert m.rate_units[0] == 2 * base.rate_units[0] + 1 or m.rate_units[0] == 2 * base.rate_units[0]
    assert m.features == {"early_exit"} and base.features == set()


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 50), margin=st.integers(1, 4))
def test_early_exit_stops_at_the_first_step_where_the_rule_holds(seed, margin):
    """Independent of how intsim implements the exit: a presentation that exits after s steps has
    exactly the counts of the same presentation cut to T = s without the exit, the rule holds
    there and did not hold at s - 1 (one presentation, so the draws do not depend on T)."""
    net = quantized_net(seed, inference={"max_retries": 0, "exit_margin": margin})
    m = intsim.from_network(net)
    imgs = images(4, seed)
    _, counts, ops = intsim.infer(m, imgs, 7, with_ops=True)
    for b in range(len(imgs)):
        s = int(ops["steps"][b])
        plain = dataclasses.replace(m, exit_margin=0, time_steps=s)
        cut = intsim.infer_counts(plain, imgs[b], 7, b)
        assert list(cut) == list(counts[b])
        sizes = m.class_sizes
        held = intsim.exit_reached(m, intsim.class_sums(m, cut), sizes, int(cut.sum()))
        if ops["exit_early"][b]:
            assert held and s < m.time_steps
        else:        # ran the whole presentation: the rule held at most at its last step
            assert s == m.time_steps
        if s > 1 and held:
            before = intsim.infer_counts(dataclasses.replace(plain, time_steps=s - 1), imgs[b], 7, b)
            assert not intsim.exit_reached(m, intsim.class_sums(m, before), sizes,
                                           int(before.sum()))


def test_operation_counts_add_up():
    m = intsim.from_network(quantized_net(3))
    imgs = images(3, 1)
    _, counts, ops = intsim.infer(m, imgs, 5, with_ops=True)
    nz = (imgs > 0).sum(axis=1)
    assert np.all(ops["steps"] == ops["presentations"] * m.time_steps)   # no early exit
    assert np.all(ops["draws"] == ops["steps"] * nz)
    assert np.all(ops["exc_spikes"] >= counts.sum(axis=1))               # all presentations
    assert np.all(ops["exit_early"] == 0)


def test_exit_margin_zero_changes_nothing():
    net = quantized_net(4)
    a = intsim.infer(intsim.from_network(net), images(3), 9)
    net.config = net.config.with_overrides(["inference.exit_margin=0", "inference.time_steps=0"])
    b = intsim.infer(intsim.from_network(net), images(3), 9)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_backend_without_the_feature_falls_back_to_intsim():
    class OldBackend:
        integer_features = ()

        def run_integer(self, *a, **k):
            raise AssertionError("must not be called for an early-exit model")

    m = intsim.from_network(quantized_net(inference={"exit_margin": 2}))
    preds, counts, ops = intsim.run_integer(m, images(2), 1, backend=OldBackend(), with_ops=True)
    assert preds.shape == (2,) and "steps" in ops


def test_variants_and_grid_keys():
    v = inference_variants(time_steps=[350, 100], exit_margin=[0, 2], rate_hz=None)
    assert v == [{"time_steps": 350, "exit_margin": 0}, {"time_steps": 350, "exit_margin": 2},
                 {"time_steps": 100, "exit_margin": 0}, {"time_steps": 100, "exit_margin": 2}]
    assert inference_variants() == [{}]
    with pytest.raises(ConfigError, match="unknown inference axes"):
        inference_variants(steps=[1])
    pts = build_grid(schemes=["ptq"], bits=[4], roundings=["nearest"],
                     group_sets=["weights", "mixed"], sensitivity=False,
                     ranges={"inhibition": 60}, inference=v)
    mixed = [p for p in pts if p.group_set == "mixed"]
    assert len(mixed) == 4 and len([p for p in pts if p.group_set == "weights"]) == 1
    assert len({p.quantization().key("d") for p in mixed}) == 1     # quantized once
    assert len({p.key("d") for p in mixed}) == 4
    assert mixed[1].label == "ptq mixed 4b/16b nearest | T=350 exit=2"
    # a point without settings keeps the key it had before the axes existed
    p = [q for q in pts if q.group_set == "weights"][0]
    old = asdict(p)
    del old["inference"], old["train_time_steps"]
    blob = json.dumps({"point": old, "base": "d"}, sort_keys=True)
    assert p.key("d") == hashlib.sha256(blob.encode()).hexdigest()[:20]


def _row(label, acc, latency, flash, fits=True, energy=None, n=400):
    c = {"label": "m", "instructions_median": latency * 1e5, "cycles_median": latency * 8e4,
         "latency_ms_median": latency, "fits": fits, "flash_bytes": flash}
    if energy is not None:
        c["energy_uj_median"] = energy
    return {"kind": "grid", "deployable": True, "label": label, "accuracy": acc, "n_neurons": n,
            "costs": {"board-b": c}, "energy_inference_pj": 1e6, "memory_model_bits": 8192}


def test_select_for_board_takes_the_cheapest_that_fits_and_meets_the_target():
    rows = [{"kind": "baseline", "accuracy": 0.88, "n_neurons": 400, "base_model": "x"},
            _row("big", 0.89, 50.0, 300_000, fits=False),
            _row("slow", 0.88, 40.0, 80_000),
            _row("fast", 0.875, 10.0, 80_000),
            _row("fastest but inaccurate", 0.86, 5.0, 80_000),
            _row("fast but larger", 0.875, 10.0, 90_000)]
    sel = select_for_board(rows, "b", within_pp=1)
    assert sel.chosen["label"] == "fast"
    assert "least latency" in sel.explanation and "5 candidates, 4 fit" in sel.explanation
    assert {r["label"] for r in sel.front} == {"slow", "fast"}
    assert select_for_board(rows, "b", within_pp=3).chosen["label"] == "fastest but inaccurate"
    with pytest.raises(TinySNNError, match="no candidate reaches 87.60% on b within the budgets"):
        select_for_board(rows, "b", within_pp=0.4, max_latency_ms=20)
    with pytest.raises(TinySNNError, match="no latency|gives no energy"):
        select_for_board(rows, "b", within_pp=1, max_energy_uj=100)
    with pytest.raises(TinySNNError, match="no row of the results has the cost on other"):
        select_for_board(rows, "other", within_pp=1)


def test_select_for_board_leaves_out_uncalibrated_costs():
    rows = [{"kind": "baseline", "accuracy": 0.88, "n_neurons": 400},
            _row("calibrated", 0.88, 10.0, 80_000), _row("estimate", 0.88, 2.0, 80_000)]
    rows[2]["costs"]["board-b"]["calibrated"] = False
    sel = select_for_board(rows, "b", within_pp=1)
    assert sel.chosen["label"] == "calibrated"
    assert "1 candidates whose weight width the cost model was not calibrated" in sel.explanation


def test_select_for_board_with_an_energy_budget():
    rows = [{"kind": "baseline", "accuracy": 0.88, "n_neurons": 400},
            _row("a", 0.88, 10.0, 80_000, energy=500.0), _row("b", 0.88, 12.0, 70_000, energy=400.0)]
    sel = select_for_board(rows, "b", within_pp=1, max_energy_uj=450)
    assert sel.chosen["label"] == "b" and "least energy" in sel.explanation


def test_exploration_rows_carry_inference_settings_ops_and_costs(tmp_path):
    """A tiny exploration with two inference settings and a third party's integer cost model."""
    from tinysnn_core.cli import main
    from tinysnn_core.explore import read_results, run_exploration
    from tinysnn_core.registry import get_registry

    model = tmp_path / "float.tsnn"
    assert main(["run", "-q", "-n", "12", "--n-train", "40", "--n-test", "20", "--time-steps",
                 "40", "--out", str(model)]) == 0

    class StepCost:
        def integer_inference_cost(self, model, ops):
            return {"steps_per_sample": float(np.mean(ops["steps"]))}

    reg = get_registry()
    reg._add("cost_model", "test-steps", StepCost, "tests", "0", "", ())
    try:
        pts = build_grid(schemes=["ptq"], bits=[4], roundings=["nearest"], group_sets=["mixed"],
                         sensitivity=False, ranges={"inhibition": 120},
                         inference=inference_variants(time_steps=[40, 10]))
        run_exploration(pts, str(model), tmp_path / "r.jsonl", progress=False,
                        options={"cost_models": ["test-steps"]})
    finally:
        reg.entries["cost_model"].pop("test-steps", None)
    rows = [r for r in read_results(tmp_path / "r.jsonl") if r["kind"] == "grid"]
    assert [r["inference"] for r in rows] == [{"time_steps": 40}, {"time_steps": 10}]
    for r in rows:
        steps = r["infer_ops"]["steps"]
        assert steps == r["costs"]["test-steps"]["steps_per_sample"]
        assert steps == pytest.approx(r["infer_ops"]["presentations"] * r["inference"]["time_steps"])
        assert r["energy_model"].startswith("ASIC 45 nm model")
    assert rows[1]["energy_inference_pj"] < rows[0]["energy_inference_pj"]
