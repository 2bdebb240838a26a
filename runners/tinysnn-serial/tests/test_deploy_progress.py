"""deploy and measure show a progress bar over the samples on stderr when it is a terminal,
none when it is not or with --quiet; the Python functions behind the commands are found
through the registry."""

from __future__ import annotations

import io

import pytest
from serial_models import small_model

import tinysnn
from tinysnn_core.cli import main
from tinysnn_core.errors import PluginError
from tinysnn_core.modelfile import save_network
from tinysnn_serial import deploy


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as an interactive stderr does."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.tsnn"
    save_network(small_model("tinysnn", n=12, time_steps=30, n_test=10), path)
    return path


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """One firmware build for the module (make finds it up to date after the first)."""
    return tmp_path_factory.mktemp("build")


def deploy_host(model_file, build_dir, tmp_path, argv_extra, monkeypatch, stderr):
    monkeypatch.setattr("sys.stderr", stderr)
    return main(["deploy", str(model_file), "--board", "host", "--samples", "4",
                 "--results", str(tmp_path / "r.jsonl"), "--build-dir", str(build_dir),
                 *argv_extra])


def test_a_terminal_gets_a_bar_over_the_samples(model_file, build_dir, tmp_path, monkeypatch,
                                                 capsys):
    err = Terminal()
    assert deploy_host(model_file, build_dir, tmp_path, [], monkeypatch, err) == 0
    bar = err.getvalue()
    assert "samples: 100%" in bar and "4/4" in bar
    assert "prediction parity with the host integer simulator: 4/4" in capsys.readouterr().out


def test_quiet_or_not_a_terminal_gets_none(model_file, build_dir, tmp_path, monkeypatch, capsys):
    quiet = Terminal()
    assert deploy_host(model_file, build_dir, tmp_path / "q", ["--quiet"], monkeypatch,
                       quiet) == 0
    piped = io.StringIO()          # a log file or a pipe: no bar either
    assert deploy_host(model_file, build_dir, tmp_path / "p", [], monkeypatch, piped) == 0
    assert "samples:" not in quiet.getvalue() and "samples:" not in piped.getvalue()
    assert capsys.readouterr().out.count("prediction parity") == 2


def test_a_resumed_run_starts_its_bar_at_the_samples_done(model_file, build_dir, tmp_path,
                                                           monkeypatch):
    results = tmp_path / "r.jsonl"
    deploy.deploy_model(model_file, "host", samples=2, results=results,
                        build_dir=build_dir, out=None)
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    summary = deploy.deploy_model(model_file, "host", samples=4, results=results,
                                  build_dir=build_dir, out=None, progress=True)
    assert summary["samples"] == 4 and summary["parity"] == 1.0
    assert "2/4" in err.getvalue() and "4/4" in err.getvalue()


def test_the_api_calls_the_command_function_through_the_registry(model_file, build_dir,
                                                                  tmp_path, monkeypatch):
    summary = tinysnn.deploy(model_file, "host", samples=3, results=tmp_path / "r.jsonl",
                             build_dir=build_dir, out=None)
    assert summary["samples"] == 3 and summary["parity"] == 1.0 and summary["board"] == "host"
    # without a runner plugin there is no deploy command: a one-line error saying what is missing
    from tinysnn_core import registry

    monkeypatch.setattr(registry, "_REGISTRY", registry.Registry(load_entry_points=False))
    with pytest.raises(PluginError, match="no 'deploy' command is installed.*tinysnn-serial"):
        tinysnn.deploy(model_file, "host")
