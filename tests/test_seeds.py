"""run --seeds, explore --seeds and select's paired test, end to end on tiny networks."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bad_input_tools import cli_error
from tinysnn_core.cli import main
from tinysnn_core.explore import read_results, sample_fields
from tinysnn_core.select import select
from tinysnn_core.stats import pack_correct

SMALL = ["-n", "16", "--n-train", "30", "--n-test", "40", "--time-steps", "40", "-q",
         "--topology", "tinysnn", "--set", "topology.w_inh=-60"]
GRID = ["--schemes", "ptq", "--bits", "8,3", "--roundings", "nearest", "--group-sets", "mixed",
        "--no-sensitivity", "-q"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Two seeds (5, 6) trained and explored; returns (run dir, results file)."""
    root = tmp_path_factory.mktemp("seeds")
    run_dir, results = root / "run", root / "results.jsonl"
    assert main(["run", *SMALL, "--seed", "5", "--seeds", "2", "--out", str(run_dir)]) == 0
    assert main(["explore", "--seeds", "2", str(run_dir), "--results", str(results), *GRID]) == 0
    return run_dir, results


def test_run_seeds_writes_each_seed_and_the_interval(seeded, capsys):
    run_dir, _ = seeded
    manifest = json.loads((run_dir / "seeds.json").read_text())
    assert manifest["seeds"] == [5, 6]
    per_seed = [json.loads((run_dir / f"seed{s}.json").read_text())["metrics"]["accuracy"]
                for s in (5, 6)]
    assert manifest["accuracy_seeds"] == per_seed
    assert manifest["accuracy"] == pytest.approx(np.mean(per_seed))
    lo, hi = manifest["accuracy_ci"]
    assert lo <= manifest["accuracy"] <= hi
    assert lo < hi or per_seed[0] == per_seed[1]
    # a rerun trains nothing: each finished seed is skipped
    capsys.readouterr()
    assert main(["run", *SMALL, "--seed", "5", "--seeds", "2", "--out", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("done") == 2 and "test accuracy over 2 seeds (5..6)" in captured.out


def test_explore_seeds_rows_hold_the_mean_interval_and_bitmaps(seeded):
    run_dir, results = seeded
    rows = read_results(results)
    assert {r["label"] for r in rows} >= {"ptq mixed 8b/16b nearest", "ptq mixed 3b/16b nearest"}
    for row in rows:
        assert row["seeds"] == [5, 6] and len(row["correct"]) == 2
        assert row["accuracy"] == pytest.approx(np.mean(row["accuracy_seeds"]))
        assert row["accuracy_ci"][0] <= row["accuracy"] <= row["accuracy_ci"][1]
        assert row["test_sizes"] == [40, 40] and row["run_dir"] == str(run_dir)
    # each seed's rows are its own single-seed exploration, and they agree with the merged row
    seed6 = read_results(results.with_name(results.name + ".seeds") / "seed6.jsonl")
    base6 = [r for r in seed6 if r["kind"] == "baseline"][0]
    merged = [r for r in rows if r["kind"] == "baseline"][0]
    assert merged["accuracy_seeds"][1] == base6["accuracy"] and base6["seeds"] == [6]
    # a rerun adds nothing
    assert main(["explore", "--seeds", "2", str(run_dir), "--results", str(results), *GRID]) == 0
    assert len(read_results(results)) == len(rows)


def test_select_on_seeds_states_its_test_and_confidence(seeded, tmp_path, capsys):
    _, results = seeded
    out = tmp_path / "sel.json"
    assert main(["select", str(results), "--within", "50", "--out", str(tmp_path / "s.tsnn"),
                 "--json", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "decided with 95% confidence by a paired test" in text
    assert "each seed against its own float model" in text and "McNemar" in text
    test = json.loads(out.read_text())["test"]
    assert test["confidence"] == 0.95 and test["seeds"] == [5, 6]
    assert test["lower"] >= -0.5 and test["lower"] <= test["difference"] <= test["upper"]


def _row(label, correct, seeds=(0,), kind="grid", memory=1000):
    """A synthetic results row whose accuracy is that of its per-sample results."""
    fields = [sample_fields(s, float(np.mean(c)), c, f"d{s}") for s, c in zip(seeds, correct)]
    merged = {k: [v for f in fields for v in f[k]] for k in fields[0]}
    return {"kind": kind, "label": label, "scheme": "ptq", "rounding": "nearest",
            "group_set": "mixed", "bits": 4, "groups": {}, "deployable": True,
            "accuracy": float(np.mean(merged["accuracy_seeds"])), "memory_model_bits": memory,
            "energy_inference_pj": 1.0, **merged}


def test_within_one_point_needs_the_paired_test_to_say_so():
    rng = np.random.default_rng(0)
    base = rng.random(1000) < 0.88
    noisy = base.copy()
    # 0.6 points lower on average, but 40 samples lost and 34 gained: too noisy to be sure
    noisy[np.flatnonzero(base)[:40]] = False
    noisy[np.flatnonzero(~base)[:34]] = True
    steady = base.copy()
    steady[np.flatnonzero(base)[:4]] = False        # 0.4 points lower, every change a loss
    rows = [_row("base", [base], kind="baseline", memory=8000), _row("noisy", [noisy], memory=100),
            _row("steady", [steady], memory=500)]
    sel = select(rows, within_pp=1)
    assert sel.chosen["label"] == "steady" and [r["label"] for r in sel.feasible] == ["steady"]
    assert "one-sided 95% lower confidence bound" in sel.explanation
    # the point estimate alone (an old results file) would have taken the noisy, smaller one
    old = [{k: v for k, v in r.items() if k not in ("seeds", "accuracy_seeds", "correct",
                                                     "test_sizes", "test_digests")} for r in rows]
    sel_old = select(old, within_pp=1)
    assert sel_old.chosen["label"] == "noisy"
    assert "No paired test was possible" in sel_old.explanation
    assert sel_old.test is None


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def paired_rows():
    v = np.array([True] * 30 + [False] * 10)
    return [_row("base", [v, v], seeds=(0, 1), kind="baseline", memory=8000),
            _row("cand", [v, v], seeds=(0, 1))]


@pytest.mark.parametrize("damage, message", [
    (lambda r: r.update(seeds=[0, 2]), "over seeds [0, 2], its float baseline over [0, 1]"),
    (lambda r: r.update(test_digests=["d0", "x"]), "other test samples"),
    (lambda r: [r.pop(k) for k in ("correct", "test_sizes")], "has no per-sample results"),
    (lambda r: r.update(correct=[r["correct"][0][:-2], r["correct"][1]]), "hex digits"),
    (lambda r: r.update(correct=["00" * 5, r["correct"][1]]), "damaged"),
    (lambda r: r.update(accuracy_seeds=[0.75]), "not a list of 2 per-seed values"),
    (lambda r: r.update(accuracy_ci=[0.9, 0.1]), "accuracy_ci"),
])
def test_mismatched_or_damaged_rows_are_one_line_errors(paired_rows, damage, message, tmp_path):
    damage(paired_rows[1])
    path = tmp_path / "r.jsonl"
    _write(path, paired_rows)
    line = cli_error("select", str(path), "--within", "1", "--out", str(tmp_path / "s.tsnn"))
    assert message in line


@pytest.mark.parametrize("argv, message", [
    (["run", "--seeds", "0"], "--seeds: 0 is outside 1..1000"),
    (["run", "--seeds", "two"], "--seeds takes a number of seeds (an integer"),
    (["run", "--seeds", "2.5"], "an integer"),
    (["run", "--seeds", "2", "--out", "x.tsnn"], "--out names a directory"),
    (["explore", "--seeds", "-1", "m.tsnn"], "--seeds: -1 is outside"),
    (["explore", "--seeds", "2", "nowhere"], "is not a run directory of tinysnn run --seeds"),
    (["select", "r.jsonl", "--within", "1", "--confidence", "1"], "--confidence is in 0.5..1"),
])
def test_bad_seed_flags(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.jsonl").write_text("")
    assert message in cli_error(*argv)


def test_run_directories_that_do_not_fit(seeded, tmp_path):
    run_dir, _ = seeded
    assert "2 finished seeds, fewer than --seeds 3" in cli_error(
        "explore", "--seeds", "3", str(run_dir), "--results", str(tmp_path / "r.jsonl"))
    assert "explore a run directory of tinysnn run --seeds with --seeds K" in cli_error(
        "explore", str(run_dir), "--results", str(tmp_path / "r.jsonl"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "seeds.json").write_text('{"format": "tinysnn-seeds/1", "seeds": [0, 1')
    assert "seeds.json is damaged" in cli_error("explore", "--seeds", "1", str(bad))
    (bad / "seeds.json").write_text(json.dumps({"format": "tinysnn-seeds/1", "seeds": [0],
                                                "models": {"0": "../../etc/x.tsnn"}}))
    assert "names no model file of seed 0" in cli_error("explore", "--seeds", "1", str(bad))


def test_bitmap_of_the_baseline_row_is_its_accuracy(seeded):
    from tinysnn_core.stats import unpack_correct

    _, results = seeded
    for row in read_results(results):
        for bits, n, acc in zip(row["correct"], row["test_sizes"], row["accuracy_seeds"]):
            assert unpack_correct(bits, n).mean() == pytest.approx(acc)
    assert pack_correct([True, False]) == "80"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seeds=json_values | st.lists(st.integers(-3, 3), max_size=3),
       models=json_values | st.dictionaries(
           st.sampled_from(["0", "1"]),
           json_values | st.sampled_from(["seed0.tsnn", "../seed0.tsnn", "seed0.tsnn\x00"])),
       fmt=st.sampled_from(["tinysnn-seeds/1", "x", None]))
def test_any_manifest_is_read_or_refused_in_one_line(tmp_path, seeds, models, fmt):
    from tinysnn_core.errors import InputError
    from tinysnn_core.seeds import read_run_dir

    (tmp_path / "seed0.tsnn").write_bytes(b"x")
    (tmp_path / "seeds.json").write_text(json.dumps({"format": fmt, "seeds": seeds,
                                                     "models": models}))
    try:
        got = read_run_dir(tmp_path, 1)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:                    # only a manifest naming an existing file in the directory passes
        assert got == [(seeds[0], str(tmp_path / models[str(seeds[0])]))]
        assert models[str(seeds[0])] == "seed0.tsnn"


field_values = (st.none() | st.booleans() | st.integers(-2, 2 ** 40) | st.floats(allow_nan=True)
                | st.text(max_size=12) | st.lists(st.integers(0, 2) | st.text(max_size=4)
                                                  | st.floats(0, 1), max_size=3))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([0, 1]),
       name=st.sampled_from(["seeds", "accuracy_seeds", "correct", "test_sizes",
                             "test_digests", "accuracy_ci", "accuracy"]),
       value=field_values)
def test_any_damaged_per_seed_field_is_one_clear_error(tmp_path, which, name, value):
    """Whatever one per-seed field of the baseline or a candidate holds, reading and selecting
    either works or stops with a tinysnn error (never another exception)."""
    from tinysnn_core.errors import TinySNNError

    v = np.array([True] * 30 + [False] * 10)
    rows = [_row("base", [v, v], seeds=(0, 1), kind="baseline", memory=8000),
            _row("cand", [v, v], seeds=(0, 1))]
    rows[which][name] = value
    path = tmp_path / "r.jsonl"
    _write(path, rows)
    try:
        select(read_results(path), within_pp=1)
    except TinySNNError as exc:
        assert "\n" not in str(exc)
