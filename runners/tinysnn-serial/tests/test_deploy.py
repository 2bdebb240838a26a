"""tinysnn deploy / measure end to end: QEMU (CI), the host board, a flaky link, a board killed
midway and the run resumed, the fit refusals."""

from __future__ import annotations

import io
import json

import pytest
from serial_models import small_model
from serial_test_tools import need_qemu

from tinysnn_core.modelfile import save_network
from tinysnn_core.registry import Registry
from tinysnn_serial import deploy, plugin
from tinysnn_serial.boards import BOARDS, BoardFitError


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.tsnn"
    save_network(small_model("tinysnn", n=16, time_steps=40, n_test=40), path)
    return path


def run(model, board, tmp_path, samples=20, **kw):
    out = io.StringIO()
    summary = deploy.execute(model_path=model, board_name=board, samples=samples,
                             meter_name=kw.pop("meter", None), meter_options={},
                             results_path=tmp_path / "results.jsonl", port=kw.pop("port", None),
                             build=kw.pop("build", True), build_dir=tmp_path / "build", out=out,
                             **kw)
    return summary, out.getvalue()


def sample_lines(path):
    return [json.loads(line) for line in open(path) if '"kind": "sample"' in line]


def test_plugin_registers_deploy_measure_meters_exporter():
    reg = Registry(load_builtins=False, load_entry_points=False)
    reg.add_plugin(plugin, distribution="tinysnn-serial")
    assert {"deploy", "measure", "board"} <= set(reg.names("command"))
    assert {"model", "ppk2", "lpm01a"} <= set(reg.names("energy_meter"))
    assert "c" in reg.names("exporter")


def test_deploy_to_qemu_end_to_end(model_file, tmp_path):
    """CI: generate, build for the Cortex-M3, launch QEMU, 20 samples, 100% parity."""
    need_qemu()
    summary, text = run(model_file, "qemu-mps2-an385", tmp_path, samples=20)
    assert summary["samples"] == 20 and summary["parity"] == 1.0
    assert summary["counts_identical"] == 1.0
    assert 0 < summary["cycles"]["min"] <= summary["cycles"]["median"] <= summary["cycles"]["max"]
    assert summary["flash_bytes"] > 4096 and summary["ram_bytes"] > 0
    assert "QEMU instruction count (icount)" in text and "parity" in text
    assert len(sample_lines(tmp_path / "results.jsonl")) == 20


def test_killed_board_resumes_without_loss_or_duplicates(model_file, tmp_path):
    need_qemu()
    target = {}

    def kill_after_five(rec):
        if rec["sid"] == 4:
            target["t"].running.process.kill()

    with pytest.raises(deploy.DeployError, match="run the same command again to resume"):
        run(model_file, "qemu-mps2-an385", tmp_path, samples=12, on_sample=kill_after_five,
            on_target=lambda t: target.update(t=t))
    assert [r["sid"] for r in sample_lines(tmp_path / "results.jsonl")] == [0, 1, 2, 3, 4]
    with open(tmp_path / "results.jsonl", "a") as fh:  # a runner killed in the middle of a write
        fh.write('{"kind": "sample", "sid": 5, "pr')
    summary, text = run(model_file, "qemu-mps2-an385", tmp_path, samples=12)
    assert "resuming" in text
    sids = [r["sid"] for r in sample_lines(tmp_path / "results.jsonl")]
    assert sids == list(range(12)), "every sample exactly once"
    assert summary["samples"] == 12 and summary["parity"] == 1.0 and summary["sessions"] == 2


def test_flaky_link_still_gives_full_parity(model_file, tmp_path):
    summary, text = run(model_file, "host", tmp_path, samples=3, flaky=0.01, flaky_seed=7)
    assert summary["parity"] == 1.0 and summary["counts_identical"] == 1.0
    assert summary["link"]["retries"] > 0 and summary["link"]["flaky_damaged_bytes"] > 0
    assert "retries" in text


def test_measure_a_running_board(model_file, tmp_path):
    """measure over the pyserial URL of a board started elsewhere (here: the host board)."""
    _, m = deploy.load_model(model_file)
    name = deploy.firmware_model_name("small", deploy.codegen.model_digest(m))
    elf, *_ = deploy.prepare(None, m, BOARDS["host"], name=name, build_dir=tmp_path / "b")
    with BOARDS["host"].start(elf) as running:
        summary, _ = run(model_file, None, tmp_path, samples=5, build=False, port=running.url)
    assert summary["parity"] == 1.0 and summary["board"] == "host"


def test_measure_refuses_another_model(model_file, tmp_path):
    elf = BOARDS["host"].build(build_dir=tmp_path / "pte")  # the protocol test engine
    with pytest.raises(deploy.DeployError, match="deploy this model first"):
        run(model_file, None, tmp_path, samples=2, build=False, port=f"pty:{elf}")


def test_results_of_another_run_are_not_mixed(model_file, tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(
        {"kind": "header", "model_digest": "0" * 16, "board": "host", "dataset": "mnist-5k",
         "seed": 2, "engine": "tinysnn-int-v1"}) + "\n")
    with pytest.raises(deploy.DeployError, match="another run"):
        run(model_file, "host", tmp_path, samples=2)


def test_fp32_model_is_refused_with_the_fit(tmp_path):
    from tinysnn_core.config import Config
    from tinysnn_core.network import Network

    import numpy as np

    net = Network.build(Config.from_dict({"n_neurons": 400, "topology": "tinysnn"}))
    net.assignments = np.zeros(400, dtype=np.int64)
    net.proportions = np.zeros((400, 10))
    path = tmp_path / "fp32.tsnn"
    save_network(net, path)
    with pytest.raises(deploy.DeployError) as exc:
        deploy.load_model(path, board=BOARDS["nucleo-l432kc"])
    assert "does NOT fit nucleo-l432kc" in str(exc.value) and "over by" in str(exc.value)
    assert "not quantized" in str(exc.value)


def test_quantized_model_too_big_is_refused_before_building(tmp_path):
    from tinysnn_core import intsim

    m = intsim.from_network(small_model("tinysnn", n=400, w_bits=8))   # 784 x 400 bytes
    with pytest.raises(BoardFitError, match=r"does NOT fit nucleo-l432kc: flash .*\(over by"):
        deploy.prepare(None, m, BOARDS["nucleo-l432kc"], name="big", build_dir=tmp_path)
    assert not (tmp_path / "firmware").exists()
    m4 = intsim.from_network(small_model("tinysnn", n=400, w_bits=4))  # the 4-bit one fits
    exp = deploy.codegen.generate(m4, "m4")
    assert BOARDS["nucleo-l432kc"].estimate_fit(exp.const_bytes, exp.state_bytes, 400).fits


def test_board_build_takes_a_model(model_file, tmp_path, capsys):
    """``tinysnn board build NAME --model M`` builds the model's firmware, as deploy does; a model
    that does not fit is refused before anything is built."""
    from tinysnn_core.cli import main

    rc = main(["board", "build", "host", "--model", str(model_file), "--build-dir",
               str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert rc == 0 and "16 neurons" in out and "firmware:" in out
    assert "model_data" in (tmp_path / "b" / "engine" / "model_data.c").read_text()
    assert (tmp_path / "b" / "firmware" / "tinysnn-fw").is_file()
    big = tmp_path / "big.tsnn"
    save_network(small_model("tinysnn", n=400, w_bits=8), big)
    rc = main(["board", "build", "nucleo-l432kc", "--model", str(big), "--build-dir",
               str(tmp_path / "big")])
    assert rc != 0
    assert "does NOT fit nucleo-l432kc" in capsys.readouterr().err
    assert not (tmp_path / "big" / "firmware").exists()
