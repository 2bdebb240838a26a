"""Exploration processes: workers die with their parent, one writer per results file, a Dask
cluster without workers stops the run, and a resumed training's time counts every run."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tinysnn_core import explore
from tinysnn_core.cli import main
from tinysnn_core.errors import ConfigError, TinySNNError

REPO = Path(__file__).resolve().parents[1]


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


PARENT = """
import os, sys, time, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from tinysnn_core import explore

def report_and_wait(folder):
    with open(os.path.join(folder, str(os.getpid())), "w"):
        pass
    time.sleep(120)

if __name__ == "__main__":
    # the pool exactly as run_exploration makes it
    with ProcessPoolExecutor(max_workers=2, initializer=explore._worker_init,
                             initargs=(os.getpid(),),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in range(2):
            pool.submit(report_and_wait, sys.argv[1])
        time.sleep(300)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_their_parent(tmp_path, sig):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT))
    folder = tmp_path / "pids"
    folder.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(folder)], cwd=REPO)
    pids = []
    try:
        deadline = time.monotonic() + 90
        while len(pids) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
            pids = [int(p.name) for p in folder.iterdir()]
        assert len(pids) == 2, "the workers did not start"
        assert not any(_gone(p) for p in pids)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(p) for p in pids), f"workers {pids} outlived their parent ({sig.name})"
    finally:
        for pid in [parent.pid] + pids:      # only the processes this test started
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=30)


def test_a_second_writer_of_a_results_file_is_refused(tmp_path):
    results = tmp_path / "r.jsonl"
    with explore.results_lock(results):
        with pytest.raises(TinySNNError) as info:
            explore.run_exploration([], str(tmp_path / "model.tsnn"), str(results),
                                    progress=False)
        message = str(info.value)
        assert "being written by another tinysnn explore" in message and "\n" not in message
    # released: the same call gets past the lock (and then finds no model)
    with pytest.raises(FileNotFoundError):
        explore.run_exploration([], str(tmp_path / "model.tsnn"), str(results), progress=False)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "tiny.tsnn"
    assert main(["run", "-q", "-n", "8", "--n-train", "16", "--n-test", "8", "--time-steps",
                 "30", "--out", str(out)]) == 0
    return out


def test_a_second_explore_on_the_command_line_is_one_line(tiny_model, tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    results.write_text("")
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys, time
        fh = open({str(results)!r}, "a")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        rc = main(["explore", str(tiny_model), "--results", str(results), "--bits", "8",
                   "--schemes", "ptq", "--roundings", "nearest", "--group-sets", "weights",
                   "--no-sensitivity", "-q"])
    finally:
        other.kill()
        other.wait()
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"tinysnn: error: {results} is being written by another tinysnn explore")
    assert results.read_text() == ""          # nothing written by the refused run


def test_a_dask_cluster_without_workers_stops_the_run():
    distributed = pytest.importorskip("distributed")
    done = []
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        explore.run_on_dask(address, abs, [-1, -2], (), lambda t, f: done.append(f.result()),
                            no_workers_timeout=5, poll=0.1)
        assert sorted(done) == [1, 2]
        cluster.scale(0)
        deadline = time.monotonic() + 30
        while cluster.scheduler.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not cluster.scheduler.workers
        started = time.monotonic()
        with pytest.raises(TinySNNError) as info:
            explore.run_on_dask(address, abs, [-3, -4, -5], (), lambda t, f: done.append(t),
                                no_workers_timeout=1.0, poll=0.1)
        waited = time.monotonic() - started
    assert f"the Dask cluster at {address} has had no workers for 1 s; 3 of 3 tasks" in str(
        info.value)
    assert 1.0 <= waited < 20 and sorted(done) == [1, 2]


def test_the_no_workers_timeout_comes_from_the_flag_or_the_dask_config(capsys):
    dask = pytest.importorskip("dask")
    assert explore.no_workers_timeout_default() == explore.NO_WORKERS_TIMEOUT
    with dask.config.set({"tinysnn.no-workers-timeout": 2.5}):
        assert explore.no_workers_timeout_default() == 2.5
    for bad in ("soon", -1, float("inf")):
        with dask.config.set({"tinysnn.no-workers-timeout": bad}):
            with pytest.raises(ConfigError, match="tinysnn.no-workers-timeout"):
                explore.no_workers_timeout_default()
    assert main(["explore", "missing.tsnn", "--scheduler", "tcp://127.0.0.1:1",
                 "--no-workers-timeout", "0"]) == 2
    assert "--no-workers-timeout must be a positive number" in capsys.readouterr().err


class SlowThenKilled:
    """The NumPy backend, 0.3 s slower per call, interrupted at call ``kill_at`` (a user's
    Ctrl-C), so that a run's time is known to be at least 0.3 s per finished call."""

    def __init__(self, kill_at=None):
        from tinysnn_core.builtin.backend_numpy import NumpyBackend

        self.inner, self.calls, self.kill_at = NumpyBackend(), 0, kill_at

    def run(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt
        time.sleep(0.3)
        return self.inner.run(*args, **kwargs)


def test_a_resumed_training_counts_the_time_of_every_run(small_config, mnist5k, tmp_path):
    from tinysnn_core import train as flow
    from tinysnn_core.modelfile import load_network

    cfg = small_config(n_neurons=8, train={"time_steps": 20, "checkpoint_every": 32})
    data = mnist5k.subset(n_train=64, n_test=8)
    ckpt = tmp_path / "m.tsnn.ckpt"
    net = flow.build_network(cfg)
    with pytest.raises(KeyboardInterrupt):          # killed after the first checkpoint
        flow.train(net, data, backend=SlowThenKilled(kill_at=2), checkpoint=ckpt,
                   progress=False)
    resumed = load_network(ckpt)
    assert resumed.progress["samples_done"] == 32
    first = resumed.progress["train_seconds"]
    assert first >= 0.3                             # the killed run's time is in the checkpoint
    started = time.perf_counter()
    flow.train(resumed, data, backend=SlowThenKilled(), checkpoint=ckpt, progress=False)
    second = time.perf_counter() - started
    assert resumed.progress["train_seconds"] == pytest.approx(first + second, abs=0.1)
    assert resumed.progress["train_seconds"] >= 0.6
    assert np.all(np.isfinite(resumed.w))
