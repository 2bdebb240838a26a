"""scripts/same_rows.py: two exploration results files compared point by point, the time a point
took aside (how a grouped and an ungrouped run are shown to agree)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "same_rows.py"


def row(key: str, accuracy: float, seconds: float) -> dict:
    return {"key": key, "kind": "point", "label": f"ptq mixed 4b {key}", "scheme": "ptq",
            "rounding": "nearest", "group_set": "mixed", "bits": 4, "groups": {},
            "accuracy": accuracy, "seconds": seconds}


def write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(*paths):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, paths)], capture_output=True,
                          text=True, cwd=ROOT)


def test_rows_that_differ_only_in_time_are_identical(tmp_path):
    a = write(tmp_path / "a.jsonl", [row("k1", 0.8, 1.0), row("k2", 0.7, 2.0)])
    b = write(tmp_path / "b.jsonl", [row("k2", 0.7, 9.0), row("k1", 0.8, 3.5)])
    out = run(a, b)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 points in both; identical rows" in out.stdout


def test_a_changed_field_or_a_missing_point_is_reported(tmp_path):
    a = write(tmp_path / "a.jsonl", [row("k1", 0.8, 1.0), row("k2", 0.7, 2.0)])
    b = write(tmp_path / "b.jsonl", [row("k1", 0.81, 1.0)])
    out = run(a, b)
    assert out.returncode == 1
    assert "k1 (ptq mixed 4b k1): accuracy differs" in out.stdout
    assert "only in" in out.stdout and "k2" in out.stdout


def test_an_empty_or_broken_file_is_one_line_and_exit_2(tmp_path):
    a = write(tmp_path / "a.jsonl", [row("k1", 0.8, 1.0)])
    out = run(a, tmp_path / "missing.jsonl")
    assert out.returncode == 2 and "has no results rows" in out.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('["not", "a", "row"]\n')
    out = run(a, bad)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
