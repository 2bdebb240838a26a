"""A short libFuzzer run of the C parser (the long run and its numbers: docs/protocol.md)."""

import shutil
import subprocess

import pytest

from tinysnn_serial.boards import firmware_dir


def test_fuzz_parser_briefly(tmp_path):
    if shutil.which("clang") is None:
        pytest.skip("clang not installed (Debian: clang); CI installs it")
    fw = firmware_dir()
    build = subprocess.run(["make", "-C", str(fw), "fuzz", f"FUZZ_BUILD={tmp_path}"],
                           capture_output=True, text=True)
    if build.returncode != 0 and "fuzzer" in build.stderr:
        pytest.skip(f"clang without libFuzzer: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr
    corpus = tmp_path / "corpus"
    shutil.copytree(fw / "fuzz" / "corpus", corpus)
    run = subprocess.run([str(tmp_path / "fuzz_protocol"), "-runs=20000", "-max_len=2048",
                          "-timeout=5", str(corpus)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done 20000 runs" in run.stderr


def test_fuzz_parser_with_a_400_neuron_engine_briefly(tmp_path):
    """The harness linked with the real engine of a 400-neuron model (make fuzz-engine): the
    whole-session seeds get through `infer` and `results`, as the harness's count says."""
    import re

    from serial_models import small_model

    from tinysnn_core.intsim import from_network
    from tinysnn_serial import codegen

    if shutil.which("clang") is None:
        pytest.skip("clang not installed (Debian: clang); CI installs it")
    fw = firmware_dir()
    engine = codegen.generate(from_network(small_model("tinysnn", n=400, time_steps=60)),
                              "fuzz400").write(tmp_path / "engine")
    build = subprocess.run(["make", "-C", str(fw), "fuzz-engine", f"ENGINE_DIR={engine}",
                            f"FUZZ_BUILD={tmp_path}"], capture_output=True, text=True)
    if build.returncode != 0 and "fuzzer" in build.stderr:
        pytest.skip(f"clang without libFuzzer: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr[-3000:]
    corpus = tmp_path / "corpus"
    shutil.copytree(fw / "fuzz" / "corpus-engine", corpus)
    seeds = len(list(corpus.iterdir()))  # each one a whole session up to `results`
    run = subprocess.run([str(tmp_path / "fuzz_engine"), "-runs=3000", "-max_len=4096",
                          "-timeout=10", str(corpus)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    stats = re.search(r"fuzz_protocol: (\d+) inputs run, (\d+) reached results with spike "
                      r"counts .*, (\d+) reached class scores .*engine fuzz400, 400 neurons: "
                      r"(\d+) inferences asked, (\d+) computed", run.stderr)
    assert stats, run.stderr[-2000:]
    inputs, counts, scores, asked, computed = map(int, stats.groups())
    assert inputs >= 3000 and counts > 0 and scores > 0 and counts + scores >= seeds
    assert 0 < computed <= asked
