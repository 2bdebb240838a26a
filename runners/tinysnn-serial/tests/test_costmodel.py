"""The board cost model: features, the fit, calibration files, the figures it derives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serial_models import small_model

from tinysnn_core import intsim
from tinysnn_serial import costmodel
from tinysnn_serial.costmodel import FEATURES, BoardCostModel, CalibrationError


@pytest.fixture
def cal_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSNN_CALIBRATION_DIR", str(tmp_path))
    return tmp_path


def ops_of(k=6, seed=0):
    rng = np.random.default_rng(seed)
    pres = rng.integers(1, 4, k)
    steps = pres * 40 - rng.integers(0, 20, k)
    return {"presentations": pres, "steps": steps, "draws": steps * rng.integers(80, 200, k),
            "input_spikes": steps * rng.integers(2, 9, k), "exc_spikes": rng.integers(5, 30, k),
            "exit_early": np.zeros(k, dtype=np.int64)}


def test_features_follow_the_operation_counts():
    m = intsim.from_network(small_model("tinysnn", n=16, w_bits=4))
    ops = ops_of()
    X = costmodel.features(m, ops)
    col = {k: X[:, i] for i, k in enumerate(FEATURES)}
    words = 2   # 16 neurons of 4 bits: 8 codes per 32-bit word
    assert np.all(col["step_neurons"] == ops["steps"] * 16)
    assert np.all(col["row_words_fields"] == ops["input_spikes"] * words)
    assert np.all(col["row_codes_lanes"] == 0)
    three = intsim.from_network(small_model("tinysnn", n=16, w_bits=3))
    lanes = costmodel.features(three, ops)[:, FEATURES.index("row_codes_lanes")]
    assert np.all(lanes == ops["input_spikes"] * 2 * 10)   # 2 words of 2 halves of 5 codes
    assert np.all(col["step_neurons_inh"] == 0)
    dc = intsim.from_network(small_model("diehl-cook", n=16, w_bits=4))
    assert np.all(costmodel.features(dc, ops)[:, FEATURES.index("step_neurons_inh")]
                  == ops["steps"] * 16)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.0, 50.0), min_size=len(FEATURES), max_size=len(FEATURES)))
def test_the_fit_recovers_non_negative_coefficients(coef):
    rng = np.random.default_rng(1)
    X = rng.integers(1, 10_000, (60, len(FEATURES))).astype(np.float64)
    X[:, 0] = 1.0                 # the per-sample constant
    coef = np.array(coef)
    coef[0] += 1.0                # strictly positive counts, as measured ones are
    y = X @ coef
    got = costmodel.fit(X, y)
    assert np.all(got >= 0)
    assert np.allclose(X @ got, y, rtol=1e-6, atol=1e-3)


def test_expected_field_flushes_follow_the_poisson_tail():
    from scipy.stats import poisson

    rate = np.array([0.5, 17.0, 40.0])
    got = costmodel._expected_flushes(rate, 17)
    want = [sum(poisson.pmf(x, r) * (x // 17) for x in range(400)) for r in rate]
    assert np.allclose(got, want, atol=1e-9)
    assert got[0] < 1e-9 < got[1] < got[2]


def test_too_few_samples_are_refused():
    with pytest.raises(CalibrationError, match="at least"):
        costmodel.fit(np.ones((3, len(FEATURES))), np.ones(3))


def test_predictions_latency_and_energy_from_a_calibration(cal_dir):
    coef = [100.0, 1.0, 2.0, 10.0, 3.0, 0.0, 20.0, 8.0, 1.5, 30.0, 50.0]
    costmodel.write_calibration("qemu-mps2-an386", {"coefficients": {"4": coef, "8": [0.0] * 11},
                                                    "engine_digest": costmodel.engine_digest()})
    costmodel.write_calibration("nucleo-l432kc", {"cpi": 1.25, "cpi_source": "test"})
    m = intsim.from_network(small_model("tinysnn", n=16, w_bits=4))
    ops = ops_of()
    cost = BoardCostModel("nucleo-l432kc").integer_inference_cost(m, ops)
    instr = costmodel.features(m, ops) @ np.array(coef)
    assert cost["instructions_median"] == pytest.approx(np.median(instr))
    cycles = np.median(instr) * 1.25
    assert cost["cycles_median"] == pytest.approx(cycles)
    assert cost["latency_ms_median"] == pytest.approx(cycles / 80e6 * 1e3)
    # cycles x uA/MHz x V: the datasheet model of docs/boards.md
    p = BoardCostModel("nucleo-l432kc").profile
    assert cost["energy_uj_median"] == pytest.approx(cycles * p.run_ua_per_mhz * 1e-12
                                                     * p.supply_v * 1e6)
    assert cost["fits"] and cost["flash_bytes"] > 0
    assert "qemu-mps2-an386" in cost["label"] and "datasheet" in cost["label"]
    # a width without its own fit takes the nearest one's, and says so
    m2 = intsim.from_network(small_model("tinysnn", n=16, w_bits=2))
    est = BoardCostModel("nucleo-l432kc").integer_inference_cost(m2, ops)
    assert "2-bit weights not calibrated: the 4-bit coefficients" in est["label"]


def test_missing_and_foreign_calibrations_are_clear(cal_dir):
    m = intsim.from_network(small_model("tinysnn", n=16, w_bits=4))
    with pytest.raises(CalibrationError, match="run tinysnn board calibrate qemu-mps2-an385"):
        BoardCostModel("qemu-mps2-an385").integer_inference_cost(m, ops_of())
    (cal_dir / "qemu-mps2-an385.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(CalibrationError, match="another format"):
        BoardCostModel("qemu-mps2-an385").integer_inference_cost(m, ops_of())
    costmodel.write_calibration("qemu-mps2-an385", {"coefficients": {"4": [1.0] * len(FEATURES)},
                                                    "engine_digest": "0000"})
    with pytest.warns(UserWarning, match="measured on engine 0000"):
        BoardCostModel("qemu-mps2-an385").integer_inference_cost(m, ops_of())
    with pytest.raises(CalibrationError, match="unknown board 'nope'; known: host"):
        BoardCostModel("nope")


def test_the_committed_calibrations_are_for_this_engine():
    """A changed engine must be calibrated again (tinysnn board calibrate)."""
    for path in sorted(costmodel.calibration_dir().glob("*.json")):
        cal = json.loads(path.read_text())
        if "coefficients" in cal:
            assert all(len(c) == len(FEATURES) for c in cal["coefficients"].values())
            assert cal["engine_digest"] == costmodel.engine_digest(), (
                f"{path.name} was fitted on another engine: rerun scripts/results_board.sh step 2")
