"""Bad model files: every crafted case a one-line ModelFileError naming the problem; a fuzz of
bit flips, truncations and valid-checksum edits that only ever loads or refuses cleanly; a file
far larger than the address space refused in bounded memory."""

from __future__ import annotations

import json
import resource

import numpy as np
import pytest
from bad_input_tools import cli_error, cli_error_subprocess
from hypothesis import HealthCheck, given, settings

from tinysnn_core.errors import ModelFileError
from tinysnn_core.fuzzing import (assemble, header_paths, load_outcome, model_file_mutations,
                                  sample_model_file, sparse_model_file, split, with_raw_value)
from tinysnn_core.modelfile import MAGIC, load_network, read_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(directory, bytes of a quantized model, bytes of a float model)."""
    d = tmp_path_factory.mktemp("models")
    return d, sample_model_file(d / "q.tsnn"), sample_model_file(d / "f.tsnn", quantized=False)


def _edited(files, path, raw, *, quantized=True) -> str:
    """Load a valid-checksum copy with the header value at ``path`` replaced by JSON ``raw``;
    returns the one-line message."""
    d, q, f = files
    head, block = split(q if quantized else f)
    case = d / "case.tsnn"
    case.write_bytes(assemble(with_raw_value(json.loads(head), path, raw), block))
    with pytest.raises(ModelFileError) as info:
        load_network(case)
    message = str(info.value)
    assert "\n" not in message
    return message


def _array_row(files, name):
    head, _ = split(files[1])
    index = [e["name"] for e in json.loads(head)["arrays"]].index(name)
    return ("arrays", index)


# -- the cases a tester crafted (issue 11) ------------------------------------------------------
def test_huge_shape_with_zero_nbytes(files):
    msg = _edited(files, _array_row(files, "w") + ("shape",), "[4294967296, 4294967296]")
    assert "'w'" in msg and "takes 147573952589676412928 bytes" in msg and "says" in msg


def test_float_in_a_shape(files):
    msg = _edited(files, _array_row(files, "w") + ("shape",), "[784, 10.0]")
    assert "shape [784, 10.0]" in msg and "non-negative integers" in msg


def test_negative_offset_and_bool_nbytes(files):
    assert "offset -1" in _edited(files, _array_row(files, "theta") + ("offset",), "-1")
    assert "nbytes True" in _edited(files, _array_row(files, "theta") + ("nbytes",), "true")


def test_header_that_is_a_list(files):
    assert "header is a JSON list" in _edited(files, (), "[1, 2]")


def test_deeply_nested_header(files):
    assert "nested deeper than 32" in _edited(files, ("metrics",), "[" * 100_000 + "]" * 100_000)
    assert "nested deeper than 32" in _edited(files, ("metrics",), "[" * 40 + "]" * 40)


def test_five_thousand_digit_integer(files):
    assert "integer of 5000 digits" in _edited(files, ("progress",), "1" * 5000)


@pytest.mark.parametrize("field, raw, words", [
    ("ops", "[1]", "'ops' must be a JSON object"),
    ("metrics", "5", "'metrics' must be a JSON object"),
    ("progress", '"x"', "'progress' must be a JSON object"),
    ("quantized", "1", "'quantized' must be a JSON true or false"),
    ("kind", '"tinysnn-selection"', "holds a 'tinysnn-selection', not a tinysnn network"),
])
def test_header_fields_of_the_wrong_type(files, field, raw, words):
    assert words in _edited(files, (field,), raw)


def test_quantized_flag_on_a_float_model(files):
    msg = _edited(files, ("quantized",), "true", quantized=False)
    assert "says quantized" in msg and "quant.scheme = 'none'" in msg


@pytest.mark.parametrize("raw", ["1e9", "1000000000", "true", "-5"])
def test_time_steps_out_of_range(files, raw):
    assert "time_steps" in _edited(files, ("config", "train", "time_steps"), raw)


def test_bad_counts_and_progress(files):
    assert "ops['train']" in _edited(files, ("ops",), '{"train": {"samples": -1}}')
    assert "samples_done" in _edited(files, ("progress",), '{"samples_done": 1.5}')
    assert "metrics.accuracy" in _edited(files, ("metrics", "accuracy"), "NaN")


def test_only_a_missing_plugin_says_so(files):
    msg = _edited(files, ("config", "exc_neuron", "name"), '"izhikevich"')
    assert "needs a plugin that is not available" in msg and "known:" in msg
    assert "adaptive-lif" in msg
    # every other refusal names its own problem
    assert "needs a plugin" not in _edited(files, ("config", "n_neurons"), "true")
    assert "needs a plugin" not in _edited(files, ("config", "exc_neuron", "tc_decay"), "-1")


def test_random_bytes_after_the_magic_read_as_damage(files):
    d = files[0]
    case = d / "random.tsnn"
    case.write_bytes(MAGIC + np.random.default_rng(0).bytes(4000))
    with pytest.raises(ModelFileError, match="failed its checksum") as info:
        load_network(case)
    assert "newer" not in str(info.value)


def test_arrays_of_the_wrong_kind_or_value(files):
    d, q, _ = files
    head, block = split(q)
    header = json.loads(head)
    row = _array_row(files, "assignments")
    entry = header["arrays"][row[1]]
    case = d / "kind.tsnn"
    case.write_bytes(assemble(with_raw_value(header, row + ("dtype",), '"<f8"'), block))
    with pytest.raises(ModelFileError, match="'assignments' has dtype <f8, expected an integer"):
        load_network(case)
    # weights outside the topology's [wmin, wmax] (training clamps them)
    w = next(e for e in header["arrays"] if e["name"] == "w")
    big = np.array([7.0]).tobytes()
    case.write_bytes(assemble(head, block[:w["offset"]] + big + block[w["offset"] + 8:]))
    with pytest.raises(ModelFileError, match=r"weights in \[.*, 7\], outside"):
        load_network(case)
    assert entry["nbytes"] > 0


# -- fuzz -----------------------------------------------------------------------------------------
def _assert_clean(path):
    kind, text = load_outcome(path, seconds=10)
    assert kind in ("loaded", "refused"), text          # no traceback, no hang
    assert "\n" not in text


@pytest.mark.parametrize("quantized", [True, False], ids=["quantized", "float"])
def test_fuzz_only_loads_or_refuses_cleanly(files, quantized):
    d, q, f = files
    base = q if quantized else f
    case = d / f"fuzz-{quantized}.tsnn"

    @settings(max_examples=250, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(model_file_mutations(base))
    def check(mutation):
        case.write_bytes(mutation[1])
        _assert_clean(case)

    check()


def test_every_header_field_edited(files):
    """Each header path (the array table included) set to a wrong type, a non-integer, a
    huge value and a deep list: never anything but a load or a one-line refusal."""
    d, q, _ = files
    head, block = split(q)
    header = json.loads(head)
    case = d / "sweep.tsnn"
    for path in header_paths(header):
        for raw in ("[1]", "1e9", "-1", "[" * 40 + "1" + "]" * 40):
            case.write_bytes(assemble(with_raw_value(header, path, raw), block))
            _assert_clean(case)


# -- bounded memory -------------------------------------------------------------------------------
def test_a_file_three_times_the_address_space_is_refused_in_bounded_memory(files):
    """768 MiB of declared weights (a sparse file, valid checksum) under a 256 MiB address-space
    limit: tinysnn eval refuses it from its header, the generic reader refuses to allocate it;
    one line each (docs/results.md has the same with 3 GiB under 1 GiB)."""
    d, q, _ = files
    big = d / "big.tsnn"
    sparse_model_file(big, q, 768 << 20)
    limit = 256 << 20

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    columns = (768 << 20) // (784 * 8)
    assert big.stat().st_size > 3 * limit and big.stat().st_blocks * 512 < 1 << 20
    line = cli_error_subprocess("eval", str(big), preexec_fn=limited)
    assert f"weights [784, {columns}] / theta [10] do not match n_neurons = 10" in line
    with pytest.raises(ModelFileError, match=f"'w' needs {784 * columns * 8} bytes, more than"):
        _read_under_limit(big, limit)


def _read_under_limit(path, limit):
    """read_file in a child process limited to ``limit`` bytes of address space; re-raises its
    ModelFileError here."""
    import subprocess
    import sys

    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
            "from tinysnn_core.modelfile import read_file\n"
            "from tinysnn_core.errors import ModelFileError\n"
            "try:\n    read_file(sys.argv[1])\nexcept ModelFileError as exc:\n"
            "    print(exc); sys.exit(3)\n")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 3 and "Traceback" not in run.stderr, run.stderr
    raise ModelFileError(run.stdout.strip())


def test_the_cli_prints_a_damaged_model_as_one_line(files):
    d, q, _ = files
    case = d / "cut.tsnn"
    case.write_bytes(q[:1000])
    assert "failed its checksum" in cli_error("eval", str(case))
    assert "does not exist" in cli_error("eval", str(d / "missing.tsnn"))
    assert "is a directory" in cli_error("eval", str(d))


def test_read_file_gives_back_what_was_written(files):
    header, arrays = read_file(files[0] / "q.tsnn")
    assert header["quantized"] is True and arrays["w"].shape == (784, 10)
    assert arrays["w"].flags.writeable and arrays["w"].dtype == np.float64


def test_a_damaged_checkpoint_says_how_to_start_over(tmp_path):
    out = tmp_path / "m.tsnn"
    (tmp_path / "m.tsnn.ckpt").write_bytes(MAGIC + b"\x00" * 100)
    line = cli_error("run", "-q", "-n", "4", "--n-train", "1", "--n-test", "1",
                     "--out", str(out))
    assert "failed its checksum" in line and "pass --fresh to start over" in line
    assert not out.exists()
