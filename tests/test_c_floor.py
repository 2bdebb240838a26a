"""benchmarks/c_floor.c and its driver: built with the host's C compiler at a tiny size, the
counts it reads back agree with the spike file written, float64 equals the numba backend's
training bit for bit, and a damaged spike file is one clear line."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinysnn_core.errors import ConfigError, InputError
from tinysnn_core.ops import OpCounts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import c_floor  # noqa: E402

if shutil.which(os.environ.get("CC") or "cc") is None:
    pytest.skip("no C compiler (cc) on this machine", allow_module_level=True)

N, T, K = 10, 20, 3


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("c_floor_build")


@pytest.fixture(scope="module")
def spikes(tmp_path_factory):
    return c_floor.prepare(N, T, K, seed=0, directory=tmp_path_factory.mktemp("c_floor_spk"))


@pytest.fixture(scope="module")
def binary(build_dir):
    return c_floor.build("float64", build_dir=build_dir)[0]


def test_counts_match_the_written_spikes(spikes, build_dir):
    for dtype in ("float64", "float32"):
        rec = c_floor.run_floor(spikes, dtype, repeats=2, cpu=None, build_dir=build_dir)
        assert rec["file_input_spikes"] == rec["written_input_spikes"] == spikes.total > 0
        pres = np.array(rec["sample_presentations"])
        assert pres.shape == (K,) and pres.min() >= 1
        assert pres.max() <= spikes.per_presentation.shape[1]
        used = sum(int(spikes.per_presentation[s, :pres[s]].sum()) for s in range(K))
        assert rec["input_spikes"] == used
        assert 0 <= rec["exc_spikes"] <= rec["presentations"] * T
        assert rec["stdp_updates"] % 784 == 0
        assert rec["draw_mismatch_steps"] == 0      # its own draws are the encoder's
        assert rec["us_per_sample"] > 0 and rec["rows_us_per_sample"] > 0
        assert rec["with_draws_us_per_sample"] > 0
        assert "-O3" in rec["flags"] and rec["compiler"]


def test_float64_is_numba_bit_for_bit(spikes, build_dir):
    pytest.importorskip("numba")
    from tinysnn_core.registry import get_registry

    rec = c_floor.run_floor(spikes, "float64", repeats=1, cpu=None, build_dir=build_dir,
                            with_weights=True)
    net, ops = copy.deepcopy(spikes.net), OpCounts()
    get_registry().get("backend", "numba")().run(net, spikes.images, spikes.sample_ids,
                                                 learn=True, seed=spikes.seed, ops=ops)
    assert (rec["exc_spikes"], rec["presentations"], rec["input_spikes"],
            rec["stdp_updates"], rec["norm_ops"]) == (
        ops.exc_spikes, ops.presentations, ops.input_spikes, ops.stdp_updates, ops.norm_ops)
    assert not np.array_equal(net.w, spikes.net.w)      # it learned something
    np.testing.assert_array_equal(rec["w"], net.w)
    np.testing.assert_array_equal(rec["theta"], net.theta)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_file_is_one_line(spikes, binary, tmp_path, cut):
    data = spikes.path.read_bytes()
    bad = tmp_path / "cut.bin"
    bad.write_bytes(data[:int(cut * len(data))])
    with pytest.raises(InputError) as err:
        c_floor.run_binary(binary, bad, repeats=1, cpu=None)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("c_floor: error:")
    assert "truncated" in msg or "magic" in msg


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.floats(0.0, 1.0, exclude_max=True), byte=st.integers(0, 255))
def test_corrupt_byte_is_refused_or_harmless(spikes, binary, tmp_path, pos, byte):
    """Any single damaged byte: a clean one-line refusal, or a run on a file that is still
    valid (a changed weight, parameter or winner word); never a crash."""
    data = bytearray(spikes.path.read_bytes())
    at = int(pos * len(data))
    data[at] = byte
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    try:
        rec = c_floor.run_binary(binary, bad, repeats=1, cpu=None)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("c_floor: error:")
        return
    # one byte cannot change a count and the trailer's total together: the spikes are intact
    assert rec["file_input_spikes"] == spikes.total
    assert sum(np.atleast_1d(rec["sample_presentations"])) == rec["presentations"]
    assert 0 <= rec["exc_spikes"] <= rec["presentations"] * rec["time_steps"]


def test_spikes_of_a_zero_pixel_are_refused(spikes, binary, tmp_path):
    """A spiking pixel outside the sample's non-zero pixels (its trace sum has no slot)."""
    data = bytearray(spikes.path.read_bytes())
    # the first sample (key, non-zero pixels, intensities) after header, rate units, weights
    R = spikes.per_presentation.shape[1]
    at = 8 + 5 * 4 + 5 * 4 + 19 * 8 + 4 * R + 8 * 784 * N + 8 * N + 4
    n_nz = int.from_bytes(data[at:at + 2], "little")
    nz = np.frombuffer(bytes(data[at + 2:at + 2 + 2 * n_nz]), dtype="<u2")
    step = at + 2 + 3 * n_nz          # step 0: winner word, count, pixels
    while int.from_bytes(data[step + 4:step + 6], "little") == 0:
        step += 6
    zero = int(np.setdiff1d(np.arange(784), nz)[0])
    data[step + 6:step + 8] = zero.to_bytes(2, "little")
    bad = tmp_path / "zero.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="not an ascending non-zero pixel"):
        c_floor.run_binary(binary, bad, repeats=1, cpu=None)


def test_spikes_other_than_the_generators_are_caught(spikes, binary, tmp_path):
    """A changed winner word is a readable file, but not the generator's: the C program's own
    draws say so, and the driver refuses the run."""
    data = bytearray(spikes.path.read_bytes())
    R = spikes.per_presentation.shape[1]
    at = 8 + 5 * 4 + 5 * 4 + 19 * 8 + 4 * R + 8 * 784 * N + 8 * N + 4
    n_nz = int.from_bytes(data[at:at + 2], "little")
    step = at + 2 + 3 * n_nz
    data[step] ^= 0x01
    bad = tmp_path / "winner.bin"
    bad.write_bytes(bytes(data))
    try:
        rec = c_floor.run_binary(binary, bad, repeats=1, cpu=None)
    except InputError as exc:       # the winner mattered: the two trainings differ
        assert "drawn spikes" in str(exc)
        return
    assert rec["draw_mismatch_steps"] == 1
    spk = copy.copy(spikes)
    spk.path = bad
    with pytest.raises(c_floor.TinySNNError, match="do not reproduce"):
        c_floor.check_counts(spk, rec)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pixels=st.lists(st.tuples(st.integers(0, 783), st.integers(1, 255)), max_size=40),
       sample=st.integers(0, 2**31))
def test_any_image_round_trips(spikes, binary, tmp_path, pixels, sample):
    """Whatever the image (blank included), the program reads back every spike written."""
    image = np.zeros(784, dtype=np.int64)
    for i, v in pixels:
        image[i] = v
    spk = c_floor.write_spike_file(tmp_path / "one.bin", spikes.net, image[None, :], [sample],
                                   seed=3)
    rec = c_floor.run_binary(binary, spk.path, repeats=1, cpu=None)
    c_floor.check_counts(spk, rec)
    assert rec["file_input_spikes"] == spk.total
    assert spk.total == len(spk.pixels) and spk.step_off[-1] == spk.total


def test_network_it_does_not_mirror_is_refused():
    net = c_floor.build_network(N, T, 0)
    net.rule.p.mu = 0.5
    with pytest.raises(ConfigError, match="mu"):
        c_floor.check_mirrored(net)


def test_cli_prints_the_floor_and_refuses_in_one_line(capsys, tmp_path):
    out_json = tmp_path / "floor.json"
    assert c_floor.main(["--neurons", str(N), "--time", str(T), "--samples", "2", "--repeats",
                         "1", "--skip-numba", "--dtypes", "float32", "--cpu", "-1",
                         "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "C floor float32" in text and "us/sample" in text
    rec = json.loads(out_json.read_text())["floor"]["float32"]
    assert rec["samples"] == 2 and rec["us_per_sample"] > 0
    assert c_floor.main(["--dtypes", "float16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "float16" in err
