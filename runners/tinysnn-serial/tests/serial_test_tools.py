"""Skip helpers (a uniquely named module: other test folders have their own conftest)."""

import shutil

import pytest


def need_arm_toolchain():
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (Debian: gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi); CI installs it")


def need_qemu():
    need_arm_toolchain()
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed (Debian: qemu-system-arm); CI installs it")
