"""tinysnn-cupy on any machine: import, registration, the no-GPU messages, CUDA source checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import tinysnn_cupy
from tinysnn_core import counter_rng
from tinysnn_core.config import Config
from tinysnn_core.errors import TinySNNError
from tinysnn_core.network import Network
from tinysnn_core.ops import OpCounts
from tinysnn_cupy import backend as cb


def test_import_and_hook_registers_the_backend():
    from tinysnn_cupy import plugin

    seen = {}
    plugin.register_backends(
        lambda name, obj, **kw: seen.update({name: (obj, kw.get("summary", ""))}))
    assert seen["cupy"][0] is tinysnn_cupy.CupyBackend
    assert "CuPy" in seen["cupy"][1]
    assert tinysnn_cupy.KERNEL_SOURCE.is_file()


def test_registry_lists_cupy_when_installed():
    from importlib.metadata import entry_points

    if not any(ep.value == "tinysnn_cupy.plugin" for ep in entry_points(group="tinysnn")):
        pytest.skip("tinysnn-cupy is not pip-installed here (no entry point), e.g. PYTHONPATH run")
    from tinysnn_core.registry import get_registry

    assert get_registry().get("backend", "cupy") is tinysnn_cupy.CupyBackend


def _no_cupy(monkeypatch):
    real = cb.importlib.util.find_spec
    monkeypatch.setattr(cb.importlib.util, "find_spec",
                        lambda name, *a: None if name == "cupy" else real(name, *a))


def test_available_false_without_cupy(monkeypatch):
    _no_cupy(monkeypatch)
    ok, why = tinysnn_cupy.CupyBackend().available()
    assert ok is False
    assert "CuPy is not installed" in why and "tinysnn-cupy[cuda12]" in why


def test_available_false_without_device(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.__version__ = "13.0.0"
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setattr(cb.importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setitem(sys.modules, "cupy", fake)
    ok, why = cb.cupy_status()
    assert ok is False and why.startswith("no CUDA device found") and "cudaErrorNoDevice" in why


def test_run_raises_the_reason(monkeypatch, small_config, tiny_images):
    _no_cupy(monkeypatch)
    net = Network.build(small_config())
    with pytest.raises(cb.CupyUnavailable, match="CuPy is not installed"):
        tinysnn_cupy.CupyBackend().run(net, tiny_images[0][:2], [0, 1], learn=False, seed=0,
                                       ops=OpCounts())
    with pytest.raises(cb.CupyUnavailable, match="CuPy is not installed"):
        tinysnn_cupy.CupyBackend().run_many(net, net.w[None], None, tiny_images[0][:2], [0, 1],
                                            seed=0)


def test_core_get_backend_refuses_clearly(monkeypatch):
    from tinysnn_core.registry import get_registry
    from tinysnn_core.train import get_backend

    try:
        get_registry().get("backend", "cupy")
    except Exception:
        pytest.skip("the cupy backend is not registered (package not pip-installed)")
    _no_cupy(monkeypatch)
    with pytest.raises(TinySNNError, match="'cupy' is not usable here: CuPy is not installed"):
        get_backend(Config.from_dict({"backend": "cupy"}))


def test_unsupported_plugins_are_named(small_config):
    net = Network.build(small_config())
    net.exc = object()
    with pytest.raises(cb.UnsupportedNetwork, match="only 'lif' and 'adaptive-lif'"):
        cb.check_supported(net)


def test_sample_keys_match_counter_rng():
    ids = np.array([0, 1, 2, 77, 4000, 123456789, 2 ** 40 + 3])
    for seed in (0, 5, 2 ** 32 - 1):
        want = [counter_rng.sample_key(seed, int(i)) for i in ids]
        assert cb.sample_keys(seed, ids).tolist() == want


def test_packing_and_geometry(small_config):
    net = Network.build(small_config(topology={"name": "diehl-cook"}))
    fp, ip = cb.pack_params(net)
    assert fp.shape == (len(cb.FP_NAMES),) and ip.shape == (len(cb.IP_NAMES),)
    i = dict(zip(cb.IP_NAMES, ip.tolist()))
    assert i["has_inh"] == 1 and i["N"] == 40 and i["n_in"] == 784 and i["T"] == 80
    # the CUDA source and the host agree on the parameter and counter layouts
    src = tinysnn_cupy.KERNEL_SOURCE.read_text()
    for prefix, names in (("FP_", cb.FP_NAMES), ("IP_", cb.IP_NAMES)):
        for k, name in enumerate(names):
            assert f"#define {prefix}{name.upper()} {k}\n" in src, name
    assert f"#define N_OPS {len(cb.OPS_NAMES)}" in src
    npt, threads, maxch = cb.launch_config(400, 784)
    assert (npt, threads, maxch) == (2, 224, 4) and threads * maxch >= 784
    assert cb.launch_config(1600, 784) == (7, 256, 4)
    assert cb.shared_bytes(400, 784, False, 2, 4) < 48 * 1024
    assert cb.shared_bytes(1600, 784, True, 7, 4) < 48 * 1024


def test_cuda_source_inlines_the_shared_generator_once():
    for path in (tinysnn_cupy.KERNEL_SOURCE, cb.INT_KERNEL_SOURCE):
        text = cb.cuda_source(path)
        assert '#include "' not in text
        assert text.count("rng_fmix32(rng_u32 x)") == 1
        assert path.read_text().count('#include "snn_rng.cuh"') == 1


@pytest.mark.parametrize("defines", [("-DNPT=1", "-DMAXCH=4"), ("-DNPT=4", "-DMAXCH=7")])
def test_cuda_source_compiles_with_nvcc(tmp_path, defines):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH: the CUDA source compile check needs the CUDA toolkit")
    out = tmp_path / "snn.ptx"
    src = tmp_path / "snn_kernels.cu"       # the text NVRTC gets, alone in a directory
    src.write_text(cb.cuda_source(tinysnn_cupy.KERNEL_SOURCE))
    res = subprocess.run([nvcc, "--ptx", "-fmad=false", "-std=c++14", *defines, "-o", str(out),
                          str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    ptx = out.read_text()
    assert ".entry snn_infer" in ptx and ".entry snn_train" in ptx
