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
