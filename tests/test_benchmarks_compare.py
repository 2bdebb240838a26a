"""benchmarks/compare.py's summary: like-for-like ratios, named for what they divide, and the
machine / load header, on a synthetic results file (no side venv is built here)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare", ROOT / "benchmarks" / "compare.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("compare", mod)
    spec.loader.exec_module(mod)
    return mod


def rec(sps, cpu_share=1.0, samples=100, load=(1.5, 1.0, 0.5), load_end=(2.5, 1.2, 0.6)):
    wall = samples / sps
    return {"samples": samples, "samples_per_s": sps, "wall_s": wall, "cpu_s": wall * cpu_share,
            "loadavg": [list(load), list(load_end)]}


def synthetic(compare, with_brian2=True):
    k = compare.key_of
    M = {
        # BindsNET: one by one is *faster* than batched at 2 threads, so a ratio that mixed the
        # modes (ours batched over their faster mode) would come out different
        k("bindsnet", "diehl-cook", 400, "train", 1): rec(2.0),
        k("bindsnet", "diehl-cook", 400, "train", 2): rec(3.0, cpu_share=2.0),
        k("bindsnet", "diehl-cook", 400, "infer_sample", 1): rec(4.0),
        k("bindsnet", "diehl-cook", 400, "infer_sample", 2): rec(30.0),
        k("bindsnet", "diehl-cook", 400, "infer_batch", 1): rec(20.0),
        k("bindsnet", "diehl-cook", 400, "infer_batch", 2): rec(10.0),
        k("numba", "diehl-cook", 400, "train"): rec(600.0),
        k("numba", "diehl-cook", 400, "infer_batch"): rec(5000.0, cpu_share=2.0),
        k("numba", "diehl-cook", 400, "infer_sample"): rec(900.0),
        # another network: measured, but never divided by the Diehl & Cook competitors
        k("numba", "tinysnn", 400, "train"): rec(1800.0),
    }
    for dtype, us in (("float64", 400.0), ("float32", 250.0)):  # C floor: 2500, 4000 /s
        M[compare.floor_key(400, dtype)] = dict(rec(1e6 / us), sim="cfloor", n=400,
                                                dtype=dtype, us_per_sample=us, repeats=5)
    if with_brian2:
        M[k("brian2", "diehl-cook", 400, "train", 1)] = dict(rec(50.0), compile_s=40.0)
    return M


def test_ratios_divide_like_by_like_and_name_it(compare):
    s = compare.summarize(synthetic(compare), [400], [1, 2], ["diehl-cook", "tinysnn"], [1])
    got = {r["name"]: r for r in s["ratios"][400]}
    assert set(got) == {
        "reduced-net training: numba / C floor (float64)",
        "reduced-net training: numba / C floor (float32)",
        "training: numba / BindsNET training",
        "training: numba / Brian2 cpp_standalone training",
        "inference batched: numba batched / BindsNET batched",
        "inference one by one: numba one by one / BindsNET one by one",
    }
    tr = got["training: numba / BindsNET training"]
    assert tr["ratio"] == pytest.approx(600 / 3) and tr["other_threads"] == 2
    assert tr["per_threads"] == pytest.approx({1: 600 / 2, 2: 600 / 3})
    # in CPU time the divisor is the best samples per CPU second: threads 1 (2/s at 1 CPU s/s)
    assert tr["cpu_ratio"] == pytest.approx(600 / 2)
    assert got["training: numba / Brian2 cpp_standalone training"]["ratio"] == pytest.approx(12)
    # batched over batched (BindsNET's batched best is 20 at 1 thread), not over its faster
    # one-by-one 30
    batched = got["inference batched: numba batched / BindsNET batched"]
    assert batched["ratio"] == pytest.approx(250) and batched["other_threads"] == 1
    one = got["inference one by one: numba one by one / BindsNET one by one"]
    assert one["ratio"] == pytest.approx(30) and one["other_threads"] == 2
    # the reduced network is divided by its own floor only (1800 / 2500, 1800 / 4000)
    assert got["reduced-net training: numba / C floor (float64)"]["ratio"] == pytest.approx(0.72)
    assert got["reduced-net training: numba / C floor (float32)"]["ratio"] == pytest.approx(0.45)
    bars = s["bars_n400"]
    assert bars["inference batched: numba batched / BindsNET batched"]["met"] is True
    assert bars["training: numba / BindsNET training"]["met"] is False       # 200 < 300
    assert bars["training: numba / Brian2 cpp_standalone training"]["met"] is False  # 12 < 30
    assert s["ours"]["numba/tinysnn/N=400"]["train"] == 1800.0


def test_bars_are_checked_for_each_numba_precision_measured(compare):
    """The competitor bars are checked for every numba precision that was measured (here
    float32-currents besides float64; float32 was not run, so it has no bars), the C floor's
    bar (0.8x) for float64 alone."""
    M = synthetic(compare)
    k = compare.key_of
    M[k("numba-f32c", "diehl-cook", 400, "train")] = rec(1600.0)            # 32x Brian2's 50
    M[k("numba-f32c", "diehl-cook", 400, "infer_batch")] = rec(1500.0)      # 75x BindsNET's 20
    M[k("numba-f32c", "tinysnn", 400, "train")] = rec(3000.0)
    bars = compare.summarize(M, [400], [1, 2], ["diehl-cook", "tinysnn"], [1])["bars_n400"]
    assert set(bars) == {
        "training: numba / BindsNET training",
        "training: numba / Brian2 cpp_standalone training",
        "inference batched: numba batched / BindsNET batched",
        "reduced-net training: numba / C floor (float64)",
        "training: numba-f32c / BindsNET training",
        "training: numba-f32c / Brian2 cpp_standalone training",
        "inference batched: numba-f32c batched / BindsNET batched",
    }
    assert bars["training: numba-f32c / Brian2 cpp_standalone training"]["met"] is True
    assert bars["training: numba-f32c / BindsNET training"]["ratio"] == pytest.approx(1600 / 3)
    assert bars["inference batched: numba-f32c batched / BindsNET batched"]["met"] is False
    floor = bars["reduced-net training: numba / C floor (float64)"]
    assert floor["ratio"] == pytest.approx(0.72) and floor["met"] is False


def test_missing_competitor_gives_no_ratio(compare):
    M = synthetic(compare, with_brian2=False)
    M[compare.key_of("bindsnet", "diehl-cook", 400, "infer_batch", 1)] = {"error": "oom"}
    M[compare.key_of("bindsnet", "diehl-cook", 400, "infer_batch", 2)] = {"error": "oom"}
    s = compare.summarize(M, [400], [1, 2], ["diehl-cook", "tinysnn"], [1])
    names = {r["name"] for r in s["ratios"][400]}
    assert names == {"training: numba / BindsNET training",
                     "reduced-net training: numba / C floor (float64)",
                     "reduced-net training: numba / C floor (float32)",
                     "inference one by one: numba one by one / BindsNET one by one"}
    b = s["bars_n400"]["training: numba / Brian2 cpp_standalone training"]
    assert b["ratio"] is None and b["met"] is False


def test_report_header_names_machine_load_and_ratios(compare):
    M = synthetic(compare)
    for r in M.values():
        r["run"] = 0
    data = {
        "settings": {"time": 350, "bindsnet_train": 40, "bindsnet_infer": 40, "ours_train": 1000,
                     "ours_infer": 1000, "ours_infer_sample": 200, "brian2_train": 200,
                     "numpy_samples": 8},
        "runs": [{"started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:10:00",
                  "uptime_start": "up 1 day, load average: 1.50, 1.00, 0.50",
                  "uptime_end": "up 1 day, load average: 2.50, 1.20, 0.60",
                  "machine": {"model": "Test CPU 9000", "cpus": 2, "flags": ["avx512f", "avx2"],
                              "hypervisor_vendor": "KVM"}}],
        "measurements": M,
    }
    s = compare.summarize(M, [400], [1, 2], ["diehl-cook", "tinysnn"], [1])
    text = "\n".join(compare.report_lines(data, s))
    assert "machine: Test CPU 9000, 2 CPUs (KVM guest); flags: avx512f avx2" in text
    for key in M:  # every measurement's load at its start and end
        assert any(line.split()[0] == key and "1.50 1.00 0.50 -> 2.50 1.20 0.60" in line
                   for line in text.splitlines() if line.startswith("  ")), key
    lines = {ln.strip().split("  ")[0]: ln for ln in text.splitlines()}
    assert "250.0x" in lines["inference batched: numba batched / BindsNET batched"]
    assert "12.0x" in lines["training: numba / Brian2 cpp_standalone training"]
    assert "inference batched: numba batched / BindsNET batched >= 200x: 250.0x, met" in text
    assert "training: numba / BindsNET training >= 300x: 200.0x, NOT met" in text
    assert "0.72x" in lines["reduced-net training: numba / C floor (float64)"]
    assert "  400 float64     400.0    2500.0" in text  # N dtype us/sample samples/s
    i = text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith("Brian2")))
    assert text.splitlines()[i + 2].split() == ["400", "1", "50.00", "40"]  # N threads sps compile


def test_cpu_flags_come_from_the_known_list(compare):
    info = compare.lscpu()
    assert set(info["flags"]) <= set(compare.CPU_FLAGS)
    assert info["model"]


def test_brian2_numbers_follow_our_network(compare, monkeypatch):
    """brian2_baseline writes our diehl-cook numbers into Brian2 by hand; a drift between them
    and compare.py's configuration stops it before a run (no venv needed for that)."""
    b2b = compare.b2b
    net = b2b.our_network(10, 20, 0)
    assert net.w.shape == (784, 10)
    monkeypatch.setitem(b2b.NET, "w_inh", 17.5)
    with pytest.raises(b2b.SetupError, match="w_inh"):
        b2b.our_network(10, 20, 0)


def test_a_report_without_competitors_prints_no_bars(compare):
    """The scaling runs measure our backends only: no ratio, so no bars section either."""
    k = compare.key_of
    M = {k("numba", "diehl-cook", 400, "train"): dict(rec(600.0), run=0),
         k("numba", "tinysnn", 400, "train"): dict(rec(1800.0), run=0)}
    data = {"settings": {"time": 350, "bindsnet_train": 40, "bindsnet_infer": 40,
                         "ours_train": 1000, "ours_infer": 1000, "ours_infer_sample": 200,
                         "brian2_train": 200, "numpy_samples": 8},
            "runs": [{"started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:01:00",
                      "uptime_start": "up 1 day, load average: 1.50, 1.00, 0.50",
                      "uptime_end": "up 1 day, load average: 2.50, 1.20, 0.60",
                      "machine": {"model": "Test CPU 9000", "cpus": 2, "flags": []}}],
            "measurements": M}
    s = compare.summarize(M, [400], [1, 2], ["diehl-cook", "tinysnn"], [1])
    assert all(b["ratio"] is None for b in s["bars_n400"].values())
    text = "\n".join(compare.report_lines(data, s))
    assert "N = 400 bars" not in text
    assert "numba      diehl-cook    400     600.0" in text     # the table's columns line up


def test_our_measurement_keeps_the_median_run(compare):
    speeds = iter([900.0, 300.0, 600.0, 1200.0, 450.0])
    rec = compare.median_run(lambda: {"samples_per_s": next(speeds), "samples": 10}, 5)
    assert rec["samples_per_s"] == 600.0
    assert rec["runs_samples_per_s"] == [300.0, 450.0, 600.0, 900.0, 1200.0]
    one = compare.median_run(lambda: {"samples_per_s": 7.0}, 1)
    assert one["samples_per_s"] == 7.0 and one["runs_samples_per_s"] == [7.0]
