"""The integer CUDA kernel (cuda/snn_int_kernels.cu) on CPU, under the CUDA emulation (tests/emu),
through the real host code: bit-exact with ``tinysnn_core.intsim.infer`` (counts and predictions)."""

from __future__ import annotations

import numpy as np
import pytest

from tinysnn_core import intsim
from tinysnn_cupy import CupyBackend
from tinysnn_cupy import backend as cb

#: (topology, wbits, pbits, rounding, extra config): both topologies, truncation / nearest leak,
#: busy one-spike layers, an adaptive one-spike inhibitory layer, coarse (saturating) potentials,
#: 8-bit (packed uint8), 16-bit (int16 / uint16) and 28-bit (int32 codes, int64 accumulation) weights,
#: retries at a low rate
INT_CASES = {
    "tinysnn-w4-p8-tr": ("tinysnn", 4, 8, "truncation", {}),
    "dc-w4-p8-rn": ("diehl-cook", 4, 8, "nearest", {}),
    "busy-w8-p12-rn": ("tinysnn", 8, 12, "nearest",
                       {"exc_neuron": {"name": "adaptive-lif", "thresh": -62.0},
                        "topology": {"name": "tinysnn", "w_inh": -1.0}}),
    "dc-soft-w6-p16-tr": ("diehl-cook", 6, 16, "truncation",
                          {"exc_neuron": {"name": "adaptive-lif", "thresh": -62.0,
                                          "one_spike": False},
                           "inh_neuron": {"name": "adaptive-lif", "one_spike": True,
                                          "thresh": -58.0},
                           "topology": {"name": "diehl-cook", "inh": 2.0}}),
    "w16-p32-rn": ("tinysnn", 16, 32, "nearest", {"exc_neuron": {"name": "lif", "thresh": -62.0}}),
    "w28-p32-tr-int64": ("diehl-cook", 28, 32, "truncation", {}),
    "retries-w5-p10": ("diehl-cook", 5, 10, "nearest",
                       {"encoder": {"max_rate_hz": 6.0, "retry_rate_hz": 6.0,
                                    "retry_min_spikes": 8, "max_retries": 3}}),
}


def _check(backend, model, images, seed, ids):
    want = intsim.infer(model, images, seed, ids)
    got = backend.run_integer(model, images, seed, ids)
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    return want


@pytest.mark.parametrize("case", sorted(INT_CASES))
def test_emulated_integer_kernel_matches_intsim(emu_int_executor, int_network, digits, case):
    topology, wb, pb, rounding, extra = INT_CASES[case]
    net = int_network(topology, 40, 50, 1, wb, pb, rounding, **extra)
    model = intsim.from_network(net)
    npt = 2 if case.startswith(("busy", "w16")) else None     # 20 threads (one warp) / default
    be = CupyBackend(executor=emu_int_executor, int_neurons_per_thread=npt)
    want = _check(be, model, digits[0][30:34], 11, np.arange(500, 504))
    assert want[1].sum() > 0
    packed = cb.pack_integer_models([model], be.int_geometry(40, 784)[3])
    kinds = {"w4": ("si_u8",), "w8": ("si_u8",), "w6": ("si_u8",), "w5": ("si_u8",),
             "w16": ("short", "si_u16"), "w28": ("int",)}     # w16: codes below 2**15 or not
    assert packed["wtype"] in next(v for k, v in kinds.items() if k in case)
    assert packed["atype"] == ("si_i64" if "int64" in case else "int")


def test_emulated_integer_one_spike_winner_is_busy(emu_int_executor, int_network, digits):
    """The busy case really exercises the winner draw: several crossings per step happen."""
    topology, wb, pb, rounding, extra = INT_CASES["busy-w8-p12-rn"]
    net = int_network(topology, 40, 50, 1, wb, pb, rounding, **extra)
    model = intsim.from_network(net)
    model.exc.one_spike = False
    free = intsim.infer(model, digits[0][30:32], 11, [500, 501])[1]
    model.exc.one_spike = True
    one = _check(CupyBackend(executor=emu_int_executor), model, digits[0][30:32], 11, [500, 501])
    assert free.sum() > one[1].sum() > 0


def test_emulated_run_integer_many(emu_int_executor, int_network, digits):
    """K models of one shape with different formats, T and roundings in one launch."""
    models = [intsim.from_network(int_network("tinysnn", 40, T, 2, wb, pb, r))
              for T, wb, pb, r in ((40, 3, 8, "truncation"), (50, 6, 10, "nearest"),
                                   (30, 10, 16, "nearest"))]
    be = CupyBackend(executor=emu_int_executor)
    images, ids = digits[0][40:43], np.array([7, 8, 9])
    preds, counts = be.run_integer_many(models, images, 3, ids)
    assert preds.shape == (3, 3) and counts.shape == (3, 3, 40)
    for k, m in enumerate(models):
        want = intsim.infer(m, images, 3, ids)
        np.testing.assert_array_equal(counts[k], want[1])
        np.testing.assert_array_equal(preds[k], want[0])
    empty = be.run_integer(models[0], images[:0], 3, [])
    assert empty[0].shape == (0,) and empty[1].shape == (0, 40)


def test_integer_packing_and_refusals(int_network):
    net = int_network("diehl-cook", 40, 30, 0, 4, 8, "nearest")
    model = intsim.from_network(net)
    src = cb.INT_KERNEL_SOURCE.read_text()
    for k, name in enumerate(cb.INT_MP_NAMES):
        assert f"#define IM_{name.upper()} {k}\n" in src, name
    assert f"#define N_IM {len(cb.INT_MP_NAMES)}\n" in src
    assert f"#define SI_MAX_CLASSES {cb.INT_MAX_CLASSES}\n" in src
    assert cb.int_launch_config(400, 784) == (4, 128, 7, 400)
    assert cb.int_launch_config(40, 784, 3) == (3, 32, 25, 42)
    assert cb.int_shared_bytes(784, 7) < 48 * 1024
    packed = cb.pack_integer_models([model], 42)
    assert packed["W"].shape == (1, 784, 42) and packed["W"].dtype == np.uint8
    assert (packed["W"][0, :, 40:] == 0).all() and (packed["ASSIGN"][0, 40:] == -1).all()
    model.n_classes = 100
    with pytest.raises(cb.UnsupportedNetwork, match="classes"):
        CupyBackend(executor=object()).run_integer(model, np.zeros((1, 784), np.uint8), 0)
    with pytest.raises(Exception, match="sample ids"):
        CupyBackend(executor=object()).run_integer(model, np.zeros((2, 784), np.uint8), 0, [1])


@pytest.mark.parametrize("defines", [("-DNPT=4", "-DMAXCH=7", "-DWT=si_u8", "-DAT=int"),
                                     ("-DNPT=3", "-DMAXCH=9", "-DWT=si_i64", "-DAT=si_i64")])
def test_int_source_compiles_with_nvcc(tmp_path, defines):
    import shutil
    import subprocess

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH: the CUDA source compile check needs the CUDA toolkit")
    out = tmp_path / "snn_int.ptx"
    src = tmp_path / "snn_int_kernels.cu"   # the text NVRTC gets, alone in a directory
    src.write_text(cb.cuda_source(cb.INT_KERNEL_SOURCE))
    res = subprocess.run([nvcc, "--ptx", "-std=c++14", *defines, "-o", str(out), str(src)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    assert ".entry snn_int_infer" in out.read_text()
