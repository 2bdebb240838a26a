"""Side virtual environments with this machine's local CPU torch wheel pinned, for the
comparisons that run another framework next to ours (benchmarks/bindsnet_baseline.py: BindsNET;
scripts/nir_roundtrip.py: a NIR consumer). Standard library only: importable from both the
project's Python and the side venv.

Each venv is built once and marked ready with a JSON spec of what was installed; a different
spec rebuilds it. A constraints file pins torch for every pip call: if any package asked for
another torch, pip fails loudly instead of silently replacing the local CPU build.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


class SetupError(RuntimeError):
    """A side venv could not be built or checked."""


def run_step(what: str, cmd: list[str], env: dict | None = None) -> str:
    """Run one setup command; on failure raise SetupError with the tail of its output."""
    print(f"[setup] {what}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)
    except OSError as exc:
        raise SetupError(f"{what}: could not start {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise SetupError(f"{what} failed (exit {proc.returncode}):\n  $ {' '.join(cmd)}\n{tail}")
    return proc.stdout


def isolated_env(threads: int, **extra: str) -> dict:
    """The environment of a side-venv process: nothing of the project's leaks in (no
    PYTHONPATH), the BLAS thread pools set to ``threads``, plus ``extra`` variables."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.update(extra)
    return env


def is_ready(venv_dir: Path, marker: Path, spec: str) -> bool:
    """Whether the venv exists and was built with ``spec``."""
    return (marker.is_file() and (venv_dir / "bin" / "python").exists()
            and marker.read_text() == spec)


def create(venv_dir: Path) -> Path:
    """Create the venv when it does not exist yet; return its python."""
    py = venv_dir / "bin" / "python"
    if not py.exists():
        base = shutil.which("python3") or sys.executable
        try:
            run_step(f"creating {venv_dir} with {base} -m venv", [base, "-m", "venv", str(venv_dir)])
        except SetupError as exc:
            raise SetupError(f"{exc}\nCould not create the virtual environment. On Debian/Ubuntu "
                             "`apt-get install python3-venv` provides the venv module.") from exc
        if not py.exists():
            raise SetupError(f"venv created but {py} is missing")
    return py


def pinned_pip(py: Path, venv_dir: Path, torch_version: str) -> list[str]:
    """The venv's ``pip install`` command with torch pinned, after installing that torch."""
    constraints = venv_dir / "constraints.txt"
    constraints.write_text(f"torch=={torch_version}\n")
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(constraints)]
    run_step(f"pip install torch=={torch_version}", pip + [f"torch=={torch_version}"])
    return pip


def check_torch(venv_dir: Path, found: str, torch_version: str) -> None:
    """Refuse a venv whose torch is not the pinned one."""
    if not found.startswith(torch_version):
        raise SetupError(f"torch in {venv_dir} is {found}, expected {torch_version}: "
                         f"delete {venv_dir} and run --setup-only again")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), recorded next to every timing."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> list[float] | None:
    """1/5/15-minute load averages: a busy shared machine slows the wall-clock figures."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
