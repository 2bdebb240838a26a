"""The examples in examples/ run as plain scripts, at their small size, and print what they
should: each in a fresh folder, as a subprocess, with TINYSNN_EXAMPLE_SMALL=1."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, tmp_path: Path) -> str:
    env = dict(os.environ, TINYSNN_EXAMPLE_SMALL="1", TINYSNN_EXAMPLE_OUT=str(tmp_path / "out"),
               MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def percent(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in:\n{text}"
    value = float(found.group(1))
    assert 0.0 <= value <= 100.0, text
    return value


def test_every_example_is_a_percent_format_script():
    scripts = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))
    assert [s.name for s in scripts] == ["01_train_and_inspect.py", "02_quantize_and_explore.py",
                                         "03_select_and_deploy_qemu.py", "04_write_a_plugin.py"]
    for script in scripts:
        text = script.read_text()
        assert "format_name: percent" in text and text.count("# %%") >= 3, script.name


def test_train_and_inspect(tmp_path):
    out = run_example("01_train_and_inspect.py", tmp_path)
    percent(r"test accuracy: (\d+\.\d+)% \(all-activity\)", out)
    assert "on 100 samples" in out and "after   300 samples:" in out
    classes = ast.literal_eval(re.search(r"neurons per class: (\{.*\})", out).group(1))
    assert sum(classes.values()) == 50 and set(classes) <= set(range(-1, 10))
    assert (tmp_path / "out" / "float.tsnn").exists()


def test_quantize_and_explore(tmp_path):
    out = run_example("02_quantize_and_explore.py", tmp_path)
    float_acc = percent(r"float model: (\d+\.\d+)%", out)
    table = re.findall(r"^\s+(\d+)\s+(nearest|stochastic)\s+(\d+\.\d+)%\s+(\d+\.\d+)%", out, re.M)
    assert [(b, r) for b, r, *_ in table] == [("16", "nearest"), ("16", "stochastic"),
                                               ("4", "nearest"), ("4", "stochastic")]
    assert float(table[0][2]) >= float_acc - 10        # 16 bits keep the float accuracy
    assert re.search(r"explored 4 points into ", out)
    rows = [json.loads(line) for line in open(tmp_path / "out" / "explore.jsonl")]
    assert sum(r["kind"] == "grid" for r in rows) == 4 and rows[0]["kind"] == "baseline"


def test_select_and_deploy_to_qemu(tmp_path):
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the emulated board needs {', '.join(missing)} (CI installs them)")
    out = run_example("03_select_and_deploy_qemu.py", tmp_path)
    assert "prediction parity with the host integer simulator: 3/3 (100.00%)" in out
    assert "on qemu-mps2-an385: parity 100.00% over 3 samples" in out
    percent(r"board accuracy (\d+\.\d+)%", out)
    assert "QEMU instruction count (icount)" in out
    samples = [json.loads(line) for line in open(tmp_path / "out" / "deploy.jsonl")
               if '"kind": "sample"' in line]
    assert [s["sid"] for s in samples] == [0, 1, 2]


def test_write_a_plugin(tmp_path):
    out = run_example("04_write_a_plugin.py", tmp_path)
    assert "'distribution': 'my-plugin'" in out
    adds = [float(a.replace(",", "")) for a in re.findall(r"([\d,]+) adds$", out, re.M)]
    assert len(adds) == 4 and all(a > 0 for a in adds)
    chosen = re.search(r"chosen by integer-adds: (.+), ([\d,]+) adds per inference", out)
    assert chosen and float(chosen.group(2).replace(",", "")) == min(adds)
