import json

import numpy as np
import pytest

from tinysnn_core.cli import main
from tinysnn_core.modelfile import load_network

SMALL = ["-n", "16", "--n-train", "30", "--n-test", "20", "--time-steps", "40", "-q"]


def test_run_trains_evaluates_and_saves(tmp_path, capsys):
    out = tmp_path / "m.tsnn"
    assert main(["run", *SMALL, "--out", str(out), "--json", str(tmp_path / "m.json")]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "stdp_updates" in text
    net = load_network(out)
    assert net.assignments is not None and net.metrics["n_test"] == 20
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["ops_per_sample"]["train"]["neuron_updates_exc"] == pytest.approx(
        16 * 40 * data["ops_per_sample"]["train"]["presentations"])


def test_same_seed_same_model_and_eval_command(tmp_path, capsys):
    a, b = tmp_path / "a.tsnn", tmp_path / "b.tsnn"
    main(["run", *SMALL, "--seed", "3", "--out", str(a)])
    main(["run", *SMALL, "--seed", "3", "--out", str(b)])
    assert np.array_equal(load_network(a).w, load_network(b).w)
    capsys.readouterr()
    assert main(["eval", str(a), "-q"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, capsys):
    whole = tmp_path / "whole.tsnn"
    main(["run", *SMALL, "--epochs", "2", "--set", "train.checkpoint_every=10", "--out", str(whole)])
    # simulate an interruption: train only 1 epoch into the checkpoint of another run ...
    part = tmp_path / "part.tsnn"
    main(["train", *SMALL, "--epochs", "1", "--set", "train.checkpoint_every=10", "--out", str(part)])
    ckpt = part.with_name(part.name + ".ckpt")
    from tinysnn_core.modelfile import save_network

    net = load_network(ckpt)
    net.config.train.epochs = 2          # ... as if it had been started with 2 epochs
    save_network(net, ckpt)
    capsys.readouterr()
    assert main(["run", *SMALL, "--epochs", "2", "--set", "train.checkpoint_every=10",
                 "--out", str(part)]) == 0
    assert "resuming" in capsys.readouterr().err
    assert np.array_equal(load_network(whole).w, load_network(part).w)


def test_checkpoint_of_another_config_is_not_silently_reused(tmp_path, capsys):
    out = tmp_path / "m.tsnn"
    main(["train", *SMALL, "--out", str(out)])
    assert main(["run", *SMALL, "--seed", "9", "--out", str(out)]) == 2
    assert "different configuration" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["run", "--topology", "ring"], "unknown topology 'ring'; known: diehl-cook, tinysnn"),
    (["run", "--set", "topology.w_inh=3"], "must be <= 0"),
    (["run", "--dataset", "mnist-idx"], "needs a directory"),
    (["run", "--backend", "tpu"], "unknown backend 'tpu'; known:"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path, capsys):
    assert main([*args, "-q", "--out", str(tmp_path / "x.tsnn")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_corrupt_model_file_is_refused_by_eval(tmp_path, capsys):
    bad = tmp_path / "bad.tsnn"
    bad.write_bytes(b"TSNNMDL\x00" + b"\x01" * 50)
    assert main(["eval", str(bad)]) == 2
    assert "tinysnn: error" in capsys.readouterr().err


def test_plugins_listing(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["plugins"]
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("topology", "tinysnn") in names and ("command", "run") in names
    assert all(r["distribution"] and r["version"] for r in rows)
