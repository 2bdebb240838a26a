"""Flashing a Nucleo through its ST-LINK USB drive (`--mount DIR`): the ST-LINK programs whatever
.bin is copied onto that drive, so the copy is the whole mechanism and a folder that holds the
drive's files stands in for it here. Argument checks come before any build."""

from __future__ import annotations

import io
import os

import pytest
from serial_models import small_model
from serial_test_tools import need_arm_toolchain

from tinysnn_core.modelfile import save_network
from tinysnn_serial import deploy
from tinysnn_serial.boards import BOARDS, DRIVE_IMAGE_NAME, BoardError, check_mount


def stlink_drive(path):
    """A folder with the files that a Nucleo's ST-LINK/V2-1 shows on its drive."""
    path.mkdir()
    (path / "MBED.HTM").write_text("<!-- mbed Microcontroller Website and Authentication "
                                   "Shortcut -->\n")
    (path / "DETAILS.TXT").write_text("Version: V2J40M27\n")
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.tsnn"
    save_network(small_model("tinysnn", n=16, time_steps=40, n_test=40), path)
    return path


def deploy_with(model, board, tmp_path, **kw):
    out = io.StringIO()
    summary = deploy.execute(model_path=model, board_name=board, samples=2, meter_name=None,
                             meter_options={}, results_path=tmp_path / "results.jsonl",
                             port=None, build=True, build_dir=tmp_path / "build", out=out, **kw)
    return summary, out.getvalue()


def test_check_mount_refuses_what_is_not_a_drive(tmp_path):
    with pytest.raises(BoardError, match="not a directory"):
        check_mount(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BoardError, match="not a directory"):
        check_mount(tmp_path / "file")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BoardError, match="not an ST-LINK drive"):
        check_mount(tmp_path / "plain")
    drive = stlink_drive(tmp_path / "NODE_L476RG")
    assert check_mount(drive) == drive


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_check_mount_refuses_a_read_only_drive(tmp_path):
    drive = stlink_drive(tmp_path / "NODE_L476RG")
    drive.chmod(0o555)
    try:
        with pytest.raises(BoardError, match="not writable"):
            check_mount(drive)
    finally:
        drive.chmod(0o755)


@pytest.mark.parametrize("kw, message", [
    ({"mount": "DRIVE"}, "emulated"),
    ({"mount": "DRIVE", "flash": False}, "contradict"),
    ({"mount": "absent"}, "not a directory"),
])
def test_deploy_mount_arguments_are_checked_before_the_build(model_file, tmp_path, kw, message):
    board = "qemu-mps2-an385" if message == "emulated" else "nucleo-l476rg"
    drive = stlink_drive(tmp_path / "DRIVE")
    kw = {**kw, "mount": str(drive if kw["mount"] == "DRIVE" else tmp_path / kw["mount"])}
    with pytest.raises(deploy.DeployError if message != "not a directory" else BoardError,
                       match=message):
        deploy_with(model_file, board, tmp_path, **kw)
    assert not (tmp_path / "build").exists()  # refused before generating or building anything
    assert not (drive / DRIVE_IMAGE_NAME).exists()


def test_deploy_mount_copies_the_built_image_to_the_drive(model_file, tmp_path):
    """The whole flow up to the serial port: generate, build for the Nucleo, copy the .bin."""
    need_arm_toolchain()
    drive = stlink_drive(tmp_path / "NODE_L476RG")
    with pytest.raises(deploy.DeployError, match="--port"):
        deploy_with(model_file, "nucleo-l476rg", tmp_path, mount=str(drive))
    image = next((tmp_path / "build").rglob("tinysnn-fw.bin"))
    assert (drive / DRIVE_IMAGE_NAME).read_bytes() == image.read_bytes()
    assert image.stat().st_size > 4096  # the firmware, not an empty file


def test_board_flash_mount_message_and_copy(tmp_path):
    need_arm_toolchain()
    board = BOARDS["nucleo-l432kc"]
    elf = board.build(None, tmp_path / "fw")
    drive = stlink_drive(tmp_path / "NODE_L432KC")
    message = board.flash(elf, mount=str(drive))
    assert (drive / DRIVE_IMAGE_NAME).read_bytes() == elf.with_suffix(".bin").read_bytes()
    assert DRIVE_IMAGE_NAME in message and "FAIL.TXT" in message


def test_deploy_cli_mount_error_is_one_line(model_file, tmp_path, capsys):
    from tinysnn_core.cli import main

    code = main(["deploy", str(model_file), "--board", "nucleo-l476rg", "--mount",
                 str(tmp_path / "absent"), "--build-dir", str(tmp_path / "build")])
    err = [line for line in capsys.readouterr().err.splitlines() if "warning: plugin" not in line]
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("tinysnn deploy: --mount ") and "NODE_L476RG" in err[0]


def test_board_flash_cli_checks_the_mount_before_building(tmp_path, capsys):
    from tinysnn_core.cli import main

    code = main(["board", "flash", "nucleo-l432kc", "--mount", str(tmp_path / "absent"),
                 "--build-dir", str(tmp_path / "fw")])
    assert code != 0 and "not a directory" in capsys.readouterr().err
    assert not (tmp_path / "fw").exists()
