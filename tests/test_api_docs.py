"""docs/api.md runs as it stands: every ```python block, in order, in one namespace, in an empty
folder. A block that raises fails the test with the block's number and first line."""

import contextlib
import io
import re
import shutil
import traceback
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
#: what the deploy block needs on this machine (CI installs them: .ci/run)
BOARD_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_page_has_the_workflows():
    text = "\n".join(blocks())
    for call in ("tsnn.Config()", "load_dataset", "build_network", "tsnn.train(", "callbacks=",
                 "tsnn.assign(", "tsnn.evaluate(", "quantize_network", "tsnn.explore(",
                 "tsnn.select(", "write_report", "tsnn.deploy(", "add_plugin"):
        assert call in text, f"docs/api.md has no example of {call}"


def test_every_python_block_runs(tmp_path, monkeypatch):
    missing = [t for t in BOARD_TOOLS if shutil.which(t) is None]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__api_docs__"}
    out = io.StringIO()
    skipped = []
    for number, code in enumerate(blocks(), 1):
        if "tsnn.deploy(" in code and missing:
            skipped.append(number)
            continue
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"docs/api.md block {number}", "exec"), namespace)
        except Exception:  # noqa: BLE001 - the block's traceback is the report
            pytest.fail(f"docs/api.md block {number} ({code.splitlines()[0]!r}) raised:\n"
                        f"{traceback.format_exc()}\noutput so far:\n{out.getvalue()}")
    text = out.getvalue()
    accuracies = [float(a) for a in re.findall(r"accuracy (\d+\.\d)% on 100 test samples", text)]
    assert len(accuracies) == 1 and 0 <= accuracies[0] <= 100, text
    assert "refused: [train] unknown parameter(s) ['n_trian']" in text
    assert (tmp_path / "report" / "report.md").exists()
    assert (tmp_path / "selected.tsnn").exists()
    if skipped:
        pytest.skip(f"every block ran but the deploy block(s) {skipped}: they need "
                    f"{', '.join(missing)} (CI installs them)")
    assert re.search(r"parity 100%, accuracy \d+% on 3 samples", text), text
