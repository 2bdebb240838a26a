"""Helpers of the bad-input tests: run the CLI and insist on one clean error line."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

from tinysnn_core.cli import main

TINYSNN = str(Path(sys.executable).with_name("tinysnn"))


def cli_error(*argv: str) -> str:
    """Run ``tinysnn ARGV`` in this process; assert it failed with exit status 2 and exactly
    one stderr line, no traceback; return that line."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = main(list(argv))
        except SystemExit as exc:          # argparse refuses a malformed flag with exit 2
            status = exc.code
    return _one_line(status, err.getvalue())


def cli_error_subprocess(*argv: str, preexec_fn=None, timeout: float = 120) -> str:
    """The same through the installed ``tinysnn`` executable, in a child process."""
    run = subprocess.run([TINYSNN, *argv], capture_output=True, text=True, timeout=timeout,
                         preexec_fn=preexec_fn)
    return _one_line(run.returncode, run.stderr)


def _one_line(status, stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2, (status, stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tinysnn: error: "), lines[0]
    return lines[0]
